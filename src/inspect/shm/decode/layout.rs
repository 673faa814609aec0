//! C structs described by a layout string: `"count:i64, flags:u8[16], name:char[8], _:pad[4]"`.
//!
//! Fields are laid out in order with no implicit padding (write C padding as `pad[N]`),
//! little endian. Types: `i8..i64`, `u8..u64`, `f32`, `f64`, `bool` (1 byte), `char` (1 byte;
//! `char[N]` is also shown as text up to the first NUL), `pad` (skipped). A field may be an
//! array `ty[N]`. The spec is bounded (4096 characters, 256 fields, 1 MiB of struct) so a
//! bad spec is an error, never a huge allocation.

use super::typed::ElemType;
use crate::model::shm::{Decoded, FieldValue};

const MAX_SPEC: usize = 4096;
const MAX_FIELDS: usize = 256;
const MAX_STRUCT: u64 = 1 << 20;

/// One field of a layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// `None` for padding.
    pub ty: Option<ElemType>,
    pub count: u64,
    /// Written as `ty[N]` (shown as an array even when N is 1).
    pub array: bool,
    pub offset: u64,
}

/// A parsed layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    pub fields: Vec<Field>,
    pub size: u64,
}

/// Why a layout string is not valid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    #[error("layout is empty")]
    Empty,
    #[error("layout is too long (at most {MAX_SPEC} characters and {MAX_FIELDS} fields)")]
    TooLong,
    #[error("layout field {0:?}: expected NAME:TYPE or NAME:TYPE[N]")]
    Syntax(String),
    #[error("layout field {0:?}: unknown type (i8..i64, u8..u64, f32, f64, bool, char, pad)")]
    Type(String),
    #[error("layout field {0:?}: bad array length (1 to 1048576)")]
    Count(String),
    #[error("layout describes more than {MAX_STRUCT} bytes")]
    TooBig,
    #[error("duplicate layout field name {0:?}")]
    Duplicate(String),
}

/// Parses a layout string.
pub fn parse(spec: &str) -> Result<Layout, LayoutError> {
    if spec.len() > MAX_SPEC {
        return Err(LayoutError::TooLong);
    }
    let mut fields: Vec<Field> = Vec::new();
    let mut offset = 0u64;
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if fields.len() == MAX_FIELDS {
            return Err(LayoutError::TooLong);
        }
        let (name, ty) = part
            .split_once(':')
            .ok_or_else(|| LayoutError::Syntax(part.into()))?;
        let (name, ty) = (name.trim(), ty.trim());
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !valid_name {
            return Err(LayoutError::Syntax(part.into()));
        }
        let (ty_name, count, array) = match ty.split_once('[') {
            Some((t, rest)) => {
                let n = rest
                    .strip_suffix(']')
                    .ok_or_else(|| LayoutError::Syntax(part.into()))?;
                let n: u64 = n
                    .trim()
                    .parse()
                    .map_err(|_| LayoutError::Count(part.into()))?;
                if !(1..=MAX_STRUCT).contains(&n) {
                    return Err(LayoutError::Count(part.into()));
                }
                (t.trim(), n, true)
            }
            None => (ty, 1, false),
        };
        let elem = if ty_name == "pad" {
            None
        } else {
            Some(ElemType::parse(ty_name, true).ok_or_else(|| LayoutError::Type(part.into()))?)
        };
        if elem.is_some() && name != "_" && fields.iter().any(|f| f.name == name) {
            return Err(LayoutError::Duplicate(name.into()));
        }
        let size = elem.map(|e| e.size() as u64).unwrap_or(1) * count;
        fields.push(Field {
            name: name.into(),
            ty: elem,
            count,
            array,
            offset,
        });
        offset += size;
        if offset > MAX_STRUCT {
            return Err(LayoutError::TooBig);
        }
    }
    if fields.is_empty() {
        return Err(LayoutError::Empty);
    }
    Ok(Layout {
        fields,
        size: offset,
    })
}

/// Decodes one struct at the start of `bytes`. Fields past the end of the bytes are an error.
pub fn decode(bytes: &[u8], layout: &Layout) -> Result<Decoded, String> {
    if (bytes.len() as u64) < layout.size {
        return Err(format!(
            "the layout needs {} bytes, the segment has {}",
            layout.size,
            bytes.len()
        ));
    }
    let mut fields = Vec::new();
    for f in &layout.fields {
        let Some(ty) = f.ty else { continue };
        let start = f.offset as usize;
        let len = ty.size() * f.count as usize;
        let raw = bytes
            .get(start..start + len)
            .ok_or_else(|| "field out of range".to_string())?;
        let values = raw
            .chunks_exact(ty.size())
            .filter_map(|c| ty.read(c))
            .collect();
        let text = (ty == ElemType::Char && f.array).then(|| {
            let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
            String::from_utf8_lossy(&raw[..end]).into_owned()
        });
        fields.push(FieldValue {
            name: f.name.clone(),
            ty: if f.array {
                format!("{}[{}]", ty.name(), f.count)
            } else {
                ty.name().to_string()
            },
            offset: f.offset,
            values,
            text,
        });
    }
    Ok(Decoded::Layout {
        size: layout.size,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::shm::Scalar;

    #[test]
    fn parses_and_decodes() {
        let layout = parse("count:i64, flags:u8[2], _:pad[2], name:char[4], ok:bool").unwrap();
        assert_eq!(layout.size, 17);
        assert_eq!(layout.fields[3].offset, 12);
        let mut bytes = 7i64.to_le_bytes().to_vec();
        bytes.extend([1, 2, 0, 0, b'a', b'b', 0, b'z', 1]);
        let Decoded::Layout { fields, .. } = decode(&bytes, &layout).unwrap() else {
            panic!()
        };
        assert_eq!(fields.len(), 4);
        assert_eq!(fields[0].values, vec![Scalar::Int(7)]);
        assert_eq!(fields[1].ty, "u8[2]");
        assert_eq!(fields[2].text.as_deref(), Some("ab"));
        assert_eq!(fields[3].values, vec![Scalar::Bool(true)]);
        assert!(decode(&bytes[..10], &layout).is_err());
    }

    #[test]
    fn rejects_bad_specs() {
        assert_eq!(parse(""), Err(LayoutError::Empty));
        assert!(matches!(parse("x"), Err(LayoutError::Syntax(_))));
        assert!(matches!(parse("x:i128"), Err(LayoutError::Type(_))));
        assert!(matches!(parse("x:u8[0]"), Err(LayoutError::Count(_))));
        assert!(matches!(
            parse("x:u8[99999999999999999999]"),
            Err(LayoutError::Count(_))
        ));
        assert!(matches!(parse("x:u64[1048576]"), Err(LayoutError::TooBig)));
        assert!(matches!(
            parse("x:u8, x:u8"),
            Err(LayoutError::Duplicate(_))
        ));
        assert!(matches!(parse("x:u8[3"), Err(LayoutError::Syntax(_))));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(spec in "\\PC{0,80}", bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            if let Ok(layout) = parse(&spec) {
                proptest::prop_assert!(layout.size <= MAX_STRUCT);
                let _ = decode(&bytes, &layout);
            }
        }

        #[test]
        fn structured_specs(fields in proptest::collection::vec(("[a-z]{1,4}", "(i8|i16|i32|i64|u8|u16|u32|u64|f32|f64|bool|char|pad)", proptest::option::of(1u64..5)), 1..8),
                            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128)) {
            let spec: Vec<String> = fields.iter().enumerate().map(|(i, (n, t, c))| match c {
                Some(c) => format!("{n}{i}:{t}[{c}]"),
                None => format!("{n}{i}:{t}"),
            }).collect();
            let layout = parse(&spec.join(", ")).unwrap();
            let result = decode(&bytes, &layout);
            proptest::prop_assert_eq!(result.is_ok(), bytes.len() as u64 >= layout.size);
        }
    }
}
