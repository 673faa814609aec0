//! Typed arrays: the whole segment as little-endian `i8..i64`, `u8..u64`, `f32`, `f64`
//! elements, plus the scalar reader the struct-layout decoder shares.

use crate::model::shm::{Decoded, Scalar};

/// An element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemType {
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
    Bool,
    /// A byte shown as text in a struct field (`char[N]`); a `u8` elsewhere.
    Char,
}

impl ElemType {
    /// Parses `i32`, `u8`, `f64`... (`bool` and `char` only where `struct_only`).
    pub fn parse(name: &str, struct_only: bool) -> Option<ElemType> {
        Some(match name {
            "i8" => ElemType::I8,
            "i16" => ElemType::I16,
            "i32" => ElemType::I32,
            "i64" => ElemType::I64,
            "u8" => ElemType::U8,
            "u16" => ElemType::U16,
            "u32" => ElemType::U32,
            "u64" => ElemType::U64,
            "f32" => ElemType::F32,
            "f64" => ElemType::F64,
            "bool" if struct_only => ElemType::Bool,
            "char" if struct_only => ElemType::Char,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ElemType::I8 => "i8",
            ElemType::I16 => "i16",
            ElemType::I32 => "i32",
            ElemType::I64 => "i64",
            ElemType::U8 => "u8",
            ElemType::U16 => "u16",
            ElemType::U32 => "u32",
            ElemType::U64 => "u64",
            ElemType::F32 => "f32",
            ElemType::F64 => "f64",
            ElemType::Bool => "bool",
            ElemType::Char => "char",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            ElemType::I8 | ElemType::U8 | ElemType::Bool | ElemType::Char => 1,
            ElemType::I16 | ElemType::U16 => 2,
            ElemType::I32 | ElemType::U32 | ElemType::F32 => 4,
            ElemType::I64 | ElemType::U64 | ElemType::F64 => 8,
        }
    }

    /// Reads one element from the start of `bytes` (`None` if too short).
    pub fn read(self, bytes: &[u8]) -> Option<Scalar> {
        let b = bytes.get(..self.size())?;
        let mut w = [0u8; 8];
        w[..b.len()].copy_from_slice(b);
        let u = u64::from_le_bytes(w);
        Some(match self {
            ElemType::I8 => Scalar::Int(u as u8 as i8 as i64),
            ElemType::I16 => Scalar::Int(u as u16 as i16 as i64),
            ElemType::I32 => Scalar::Int(u as u32 as i32 as i64),
            ElemType::I64 => Scalar::Int(u as i64),
            ElemType::U8 | ElemType::U16 | ElemType::U32 | ElemType::U64 | ElemType::Char => {
                Scalar::UInt(u)
            }
            ElemType::F32 => Scalar::Float(f32::from_bits(u as u32) as f64),
            ElemType::F64 => Scalar::Float(f64::from_bits(u)),
            ElemType::Bool => Scalar::Bool(u != 0),
        })
    }
}

/// Decodes every whole element of `bytes`.
pub fn decode(bytes: &[u8], ty: ElemType) -> Decoded {
    let size = ty.size();
    let values = bytes
        .chunks_exact(size)
        .filter_map(|c| ty.read(c))
        .collect();
    Decoded::Typed {
        ty: ty.name().to_string(),
        values,
        trailing: (bytes.len() % size) as u64,
    }
}

/// A glibc semaphore on x86-64: the low 32 bits of the first u64 are the value, the high 32
/// bits the number of waiters.
pub fn decode_semaphore(bytes: &[u8]) -> Option<Decoded> {
    let word = ElemType::U64.read(bytes)?;
    let Scalar::UInt(word) = word else {
        return None;
    };
    Some(Decoded::Semaphore {
        value: word as u32,
        waiters: (word >> 32) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_little_endian() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 9];
        let Decoded::Typed {
            values, trailing, ..
        } = decode(&bytes, ElemType::I32)
        else {
            panic!()
        };
        assert_eq!(values, vec![Scalar::Int(-1), Scalar::Int(1)]);
        assert_eq!(trailing, 1);
        assert_eq!(
            ElemType::F64.read(&2.5f64.to_le_bytes()),
            Some(Scalar::Float(2.5))
        );
        assert_eq!(ElemType::U16.read(&[1]), None);
        let mut sem = 3u64 | (2u64 << 32);
        assert_eq!(
            decode_semaphore(&sem.to_le_bytes()),
            Some(Decoded::Semaphore {
                value: 3,
                waiters: 2
            })
        );
        sem = 0;
        assert!(decode_semaphore(&sem.to_le_bytes()[..4]).is_none());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100)) {
            for name in ["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64"] {
                let ty = ElemType::parse(name, false).unwrap();
                if let Decoded::Typed { values, trailing, .. } = decode(&bytes, ty) {
                    proptest::prop_assert_eq!(values.len() * ty.size() + trailing as usize, bytes.len());
                }
            }
            let _ = decode_semaphore(&bytes);
        }
    }
}
