//! Decoders of segment bytes. None trusts the bytes: garbage gives an error value, never a
//! panic or an allocation larger than the input.
//!
//! `--as` names: `auto`, `hex`, `shareable-list`, `sem`, `i8`..`i64`, `u8`..`u64`, `f32`,
//! `f64`, `layout:SPEC` (see [`layout`]). `auto` picks a semaphore for `sem.*` segments, a
//! ShareableList when the bytes validate as one (at least one item), else hex.

pub mod hex;
pub mod layout;
pub mod rules;
pub mod shareable_list;
pub mod typed;

use crate::model::shm::{Decoded, SegmentKind};

use layout::Layout;
use typed::ElemType;

/// How to decode a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    Auto,
    Hex,
    ShareableList,
    Semaphore,
    Typed(ElemType),
    Layout(Layout),
}

/// Why an `--as` value is not valid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error(
        "unknown format {0:?} (auto, hex, shareable-list, sem, i8..i64, u8..u64, f32, f64, layout:SPEC)"
    )]
    Unknown(String),
    #[error(transparent)]
    Layout(#[from] layout::LayoutError),
}

impl std::str::FromStr for Format {
    type Err = FormatError;

    fn from_str(text: &str) -> Result<Format, FormatError> {
        if let Some(spec) = text.strip_prefix("layout:") {
            return Ok(Format::Layout(layout::parse(spec)?));
        }
        Ok(match text {
            "auto" => Format::Auto,
            "hex" => Format::Hex,
            "shareable-list" | "shareablelist" | "sl" => Format::ShareableList,
            "sem" | "semaphore" => Format::Semaphore,
            other => Format::Typed(
                ElemType::parse(other, false).ok_or_else(|| FormatError::Unknown(other.into()))?,
            ),
        })
    }
}

/// The result of decoding, with the byte range of each decoded item (list items, array
/// elements, struct fields) so changes can be mapped to items.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoding {
    pub decoded: Decoded,
    pub item_ranges: Vec<std::ops::Range<usize>>,
}

/// Decodes `bytes` of a segment of `kind` as `format`. An explicit format that does not fit
/// is an error; `Auto` falls back to hex.
pub fn decode(bytes: &[u8], kind: SegmentKind, format: &Format) -> Result<Decoding, String> {
    decode_with(bytes, kind, format, false)
}

/// Bytes of a typed array a live view decodes (the first 1 MiB).
pub const VIEW_TYPED_BYTES: usize = 1 << 20;

/// [`decode`] for a live view: hex leaves its text empty (the view renders from the bytes)
/// and typed arrays decode only the first [`VIEW_TYPED_BYTES`].
pub fn decode_for_view(
    bytes: &[u8],
    kind: SegmentKind,
    format: &Format,
) -> Result<Decoding, String> {
    decode_with(bytes, kind, format, true)
}

fn decode_with(
    bytes: &[u8],
    kind: SegmentKind,
    format: &Format,
    light: bool,
) -> Result<Decoding, String> {
    match format {
        Format::Auto => Ok(auto_with(bytes, kind, !light)),
        Format::Hex => Ok(as_hex(bytes, !light)),
        Format::ShareableList => {
            let list = shareable_list::decode(bytes).map_err(|e| e.to_string())?;
            let item_ranges = list.slots.clone();
            Ok(Decoding {
                decoded: list.into(),
                item_ranges,
            })
        }
        Format::Semaphore => typed::decode_semaphore(bytes)
            .map(|decoded| Decoding {
                decoded,
                item_ranges: std::iter::once(0..8).collect(),
            })
            .ok_or_else(|| "a semaphore needs at least 8 bytes".to_string()),
        Format::Typed(ty) => {
            let size = ty.size();
            let bytes = if light {
                &bytes[..bytes.len().min(VIEW_TYPED_BYTES)]
            } else {
                bytes
            };
            Ok(Decoding {
                decoded: typed::decode(bytes, *ty),
                item_ranges: (0..bytes.len() / size)
                    .map(|i| i * size..(i + 1) * size)
                    .collect(),
            })
        }
        Format::Layout(l) => {
            let decoded = layout::decode(bytes, l)?;
            let item_ranges = l
                .fields
                .iter()
                .filter_map(|f| {
                    let ty = f.ty?;
                    let start = f.offset as usize;
                    Some(start..start + ty.size() * f.count as usize)
                })
                .collect();
            Ok(Decoding {
                decoded,
                item_ranges,
            })
        }
    }
}

fn as_hex(bytes: &[u8], text: bool) -> Decoding {
    Decoding {
        decoded: Decoded::Hex {
            size: bytes.len() as u64,
            hex: if text {
                hex::hex_string(bytes)
            } else {
                String::new()
            },
        },
        item_ranges: Vec::new(),
    }
}

/// Recognises what it can; hex otherwise.
pub fn auto(bytes: &[u8], kind: SegmentKind) -> Decoding {
    auto_with(bytes, kind, true)
}

fn auto_with(bytes: &[u8], kind: SegmentKind, hex_text: bool) -> Decoding {
    if kind == SegmentKind::Semaphore
        && bytes.len() == 32
        && let Ok(d) = decode(bytes, kind, &Format::Semaphore)
    {
        return d;
    }
    if matches!(kind, SegmentKind::Posix | SegmentKind::Memfd)
        && let Ok(list) = shareable_list::decode(bytes)
        && !list.items.is_empty()
    {
        let item_ranges = list.slots.clone();
        return Decoding {
            decoded: list.into(),
            item_ranges,
        };
    }
    as_hex(bytes, hex_text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::shm::ListItem;

    #[test]
    fn parses_formats() {
        assert_eq!("auto".parse::<Format>(), Ok(Format::Auto));
        assert_eq!("i32".parse::<Format>(), Ok(Format::Typed(ElemType::I32)));
        assert!(matches!(
            "layout:a:u8".parse::<Format>(),
            Ok(Format::Layout(_))
        ));
        assert!("bool".parse::<Format>().is_err());
        assert!("i128".parse::<Format>().is_err());
        assert!("layout:".parse::<Format>().is_err());
    }

    #[test]
    fn auto_detects() {
        let list = shareable_list::encode(&[ListItem::Int { value: 1 }], false);
        assert!(matches!(
            auto(&list, SegmentKind::Posix).decoded,
            Decoded::ShareableList { .. }
        ));
        assert!(matches!(
            auto(&[0u8; 4096], SegmentKind::Posix).decoded,
            Decoded::Hex { .. }
        ));
        assert!(matches!(
            auto(&[0u8; 32], SegmentKind::Semaphore).decoded,
            Decoded::Semaphore { .. }
        ));
        assert!(decode(b"xx", SegmentKind::Posix, &Format::ShareableList).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            for kind in [SegmentKind::Posix, SegmentKind::Semaphore, SegmentKind::Sysv] {
                let _ = auto(&bytes, kind);
                for f in ["hex", "shareable-list", "sem", "u16", "f64", "layout:a:i64,b:char[9]"] {
                    let format: Format = f.parse().unwrap();
                    if let Ok(d) = decode(&bytes, kind, &format) {
                        for r in d.item_ranges {
                            proptest::prop_assert!(r.end <= bytes.len());
                        }
                    }
                }
            }
        }
    }
}
