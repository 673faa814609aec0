//! Python `multiprocessing.shared_memory.ShareableList`, decoded without trusting the bytes.
//!
//! CPython 3.9 to 3.13 (all little-endian int64 unless said):
//! ```text
//! 0            N (item count)
//! 8            N+1 offsets into the data area (first 0, last = data length)
//! D=(N+2)*8    data: item i at D + offset[i], slot width offset[i+1] - offset[i]
//! D+offset[N]  N struct formats, 8 bytes each, NUL padded: q d xxxxxxx? xxxxxx?x Ns
//! then         N int8 codes: 0 value as is, 1 UTF-8 str, 2 bytes, 3 None
//! ```
//! CPython 3.8 stores N slot sizes instead of N+1 offsets, so its data starts at (N+1)*8.
//! A 3.9+ list's first offset is always 0 and a 3.8 size never is: that tells them apart.
//! Formats and codes are re-read on every decode, since assignments change them.

use crate::model::shm::{Decoded, ListItem};

use super::hex::hex_string;

/// Why bytes are not a ShareableList.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a ShareableList: {0}")]
pub struct NotAList(pub String);

fn err<T>(why: impl Into<String>) -> Result<T, NotAList> {
    Err(NotAList(why.into()))
}

fn i64_at(bytes: &[u8], at: usize) -> Result<i64, NotAList> {
    let raw = at
        .checked_add(8)
        .and_then(|end| bytes.get(at..end))
        .ok_or_else(|| NotAList(format!("header runs past the end at byte {at}")))?;
    let mut w = [0u8; 8];
    w.copy_from_slice(raw);
    Ok(i64::from_le_bytes(w))
}

/// The decoded list and which layout it used.
#[derive(Clone, Debug, PartialEq)]
pub struct ShareableList {
    /// `"3.9+"` or `"3.8"`.
    pub layout: &'static str,
    pub items: Vec<ListItem>,
    /// Byte range of each item's slot (for change highlighting).
    pub slots: Vec<std::ops::Range<usize>>,
}

impl From<ShareableList> for Decoded {
    fn from(list: ShareableList) -> Decoded {
        Decoded::ShareableList {
            layout: list.layout.to_string(),
            items: list.items,
        }
    }
}

/// Decodes `bytes`, trying the 3.9+ layout, then 3.8's.
pub fn decode(bytes: &[u8]) -> Result<ShareableList, NotAList> {
    let n = i64_at(bytes, 0)?;
    // Every item takes at least 8 (offset) + 8 (data) + 8 (format) + 1 (code) bytes.
    if n < 0 || (n as u64).saturating_mul(25) > bytes.len() as u64 {
        return err(format!(
            "item count {n} does not fit in {} bytes",
            bytes.len()
        ));
    }
    let n = n as usize;
    // An empty 3.8 list is just its count; an empty 3.9+ one has its single offset 0.
    let first = if n == 0 {
        i64_at(bytes, 8).unwrap_or(1)
    } else {
        i64_at(bytes, 8)?
    };
    if first == 0 {
        decode_with(bytes, n, Layout::Offsets)
    } else {
        decode_with(bytes, n, Layout::Sizes)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// 3.9+: N+1 offsets.
    Offsets,
    /// 3.8: N sizes.
    Sizes,
}

fn decode_with(bytes: &[u8], n: usize, layout: Layout) -> Result<ShareableList, NotAList> {
    // Slot boundaries relative to the data start.
    let mut bounds = Vec::with_capacity(n + 1);
    let data_start = match layout {
        Layout::Offsets => {
            for i in 0..=n {
                bounds.push(i64_at(bytes, 8 + i * 8)?);
            }
            (n + 2) * 8
        }
        Layout::Sizes => {
            let mut total = 0i64;
            bounds.push(0);
            for i in 0..n {
                let size = i64_at(bytes, 8 + i * 8)?;
                if size <= 0 {
                    return err(format!("slot {i} has size {size}"));
                }
                total = total
                    .checked_add(size)
                    .ok_or_else(|| NotAList("sizes overflow".into()))?;
                bounds.push(total);
            }
            (n + 1) * 8
        }
    };
    if bounds.first() != Some(&0) {
        return err("the first offset is not 0");
    }
    for (i, pair) in bounds.windows(2).enumerate() {
        let width = pair[1].checked_sub(pair[0]).unwrap_or(-1);
        if width < 8 || width % 8 != 0 {
            return err(format!(
                "slot {i} is {width} bytes (expected a multiple of 8)"
            ));
        }
    }
    let data_len = *bounds.last().unwrap_or(&0) as u64;
    let formats_at = (data_start as u64).saturating_add(data_len);
    let codes_at = formats_at.saturating_add(8 * n as u64);
    let end = codes_at.saturating_add(n as u64);
    if end > bytes.len() as u64 {
        return err(format!(
            "needs {end} bytes, the segment has {}",
            bytes.len()
        ));
    }
    let (formats_at, codes_at) = (formats_at as usize, codes_at as usize);
    let mut items = Vec::with_capacity(n);
    let mut slots = Vec::with_capacity(n);
    for i in 0..n {
        let start = data_start + bounds[i] as usize;
        let width = (bounds[i + 1] - bounds[i]) as usize;
        let slot = &bytes[start..start + width];
        let format = &bytes[formats_at + i * 8..formats_at + i * 8 + 8];
        let format_end = format.iter().position(|b| *b == 0).unwrap_or(8);
        let format = std::str::from_utf8(&format[..format_end])
            .map_err(|_| NotAList(format!("item {i} has a non-text format")))?;
        let code = bytes[codes_at + i] as i8;
        items.push(decode_item(i, slot, format, code)?);
        slots.push(start..start + width);
    }
    Ok(ShareableList {
        layout: match layout {
            Layout::Offsets => "3.9+",
            Layout::Sizes => "3.8",
        },
        items,
        slots,
    })
}

fn decode_item(i: usize, slot: &[u8], format: &str, code: i8) -> Result<ListItem, NotAList> {
    let word = || {
        let mut w = [0u8; 8];
        w.copy_from_slice(&slot[..8]);
        w
    };
    match (format, code) {
        ("q", 0) => Ok(ListItem::Int {
            value: i64::from_le_bytes(word()),
        }),
        ("d", 0) => Ok(ListItem::Float {
            value: f64::from_le_bytes(word()),
        }),
        ("xxxxxxx?", 0) => Ok(ListItem::Bool {
            value: slot[7] != 0,
        }),
        (_, 3) if format == "xxxxxx?x" => Ok(ListItem::None { value: () }),
        (f, 1 | 2) if f.ends_with('s') => {
            let len: usize = f[..f.len() - 1]
                .parse()
                .map_err(|_| NotAList(format!("item {i} has format {f:?}")))?;
            if len > slot.len() {
                return err(format!(
                    "item {i}: format {f:?} is wider than its {}-byte slot",
                    slot.len()
                ));
            }
            let raw = &slot[..len];
            let trimmed = &raw[..raw.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1)];
            if code == 1 {
                let value = std::str::from_utf8(trimmed)
                    .map_err(|_| NotAList(format!("item {i} is not UTF-8")))?;
                Ok(ListItem::Str {
                    value: value.to_string(),
                })
            } else {
                Ok(ListItem::Bytes {
                    hex: hex_string(trimmed),
                })
            }
        }
        _ => err(format!("item {i} has format {format:?} with code {code}")),
    }
}

/// Encodes items the way CPython 3.9+ does (test helper and documentation of the layout).
#[cfg(test)]
pub fn encode(items: &[ListItem], legacy_38: bool) -> Vec<u8> {
    let mut formats = Vec::new();
    let mut data = Vec::new();
    let mut codes = Vec::new();
    let mut bounds = vec![0i64];
    for item in items {
        let (fmt, slot, code): (String, Vec<u8>, i8) = match item {
            ListItem::Int { value } => ("q".into(), value.to_le_bytes().to_vec(), 0),
            ListItem::Float { value } => ("d".into(), value.to_le_bytes().to_vec(), 0),
            ListItem::Bool { value } => (
                "xxxxxxx?".into(),
                vec![0, 0, 0, 0, 0, 0, 0, *value as u8],
                0,
            ),
            ListItem::None { .. } => ("xxxxxx?x".into(), vec![0; 8], 3),
            ListItem::Str { value } => {
                let width = 8 * (value.len() / 8 + 1);
                let mut b = value.as_bytes().to_vec();
                b.resize(width, 0);
                (format!("{width}s"), b, 1)
            }
            ListItem::Bytes { hex } => {
                let raw: Vec<u8> = (0..hex.len() / 2)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                    .collect();
                let width = 8 * (raw.len() / 8 + 1);
                let mut b = raw;
                b.resize(width, 0);
                (format!("{width}s"), b, 2)
            }
        };
        bounds.push(bounds.last().unwrap() + slot.len() as i64);
        data.extend(slot);
        let mut f = fmt.into_bytes();
        f.resize(8, 0);
        formats.extend(f);
        codes.push(code as u8);
    }
    let mut out = (items.len() as i64).to_le_bytes().to_vec();
    if legacy_38 {
        for pair in bounds.windows(2) {
            out.extend((pair[1] - pair[0]).to_le_bytes());
        }
    } else {
        for b in &bounds {
            out.extend(b.to_le_bytes());
        }
    }
    out.extend(data);
    out.extend(formats);
    out.extend(codes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<ListItem> {
        vec![
            ListItem::Int { value: 7 },
            ListItem::Float { value: 2.5 },
            ListItem::Bool { value: true },
            ListItem::None { value: () },
            ListItem::Str {
                value: "héllo".into(),
            },
            ListItem::Bytes { hex: "6162".into() },
        ]
    }

    #[test]
    fn decodes_both_layouts() {
        let list = decode(&encode(&sample(), false)).unwrap();
        assert_eq!(list.layout, "3.9+");
        assert_eq!(list.items, sample());
        let list = decode(&encode(&sample(), true)).unwrap();
        assert_eq!(list.layout, "3.8");
        assert_eq!(list.items, sample());
        let json = serde_json::to_value(Decoded::from(decode(&encode(&sample(), false)).unwrap()))
            .unwrap();
        assert_eq!(
            json["items"][3],
            serde_json::json!({"type": "none", "value": null})
        );
        assert_eq!(
            json["items"][5],
            serde_json::json!({"type": "bytes", "hex": "6162"})
        );
    }

    #[test]
    fn page_padding_is_fine_and_garbage_is_not() {
        let mut bytes = encode(&sample(), false);
        bytes.resize(4096, 0);
        assert_eq!(decode(&bytes).unwrap().items.len(), 6);
        assert!(decode(&[0u8; 4]).is_err());
        assert!(decode(&[0xffu8; 64]).is_err());
        let mut huge = vec![0u8; 64];
        huge[..8].copy_from_slice(&(1i64 << 60).to_le_bytes());
        assert!(decode(&huge).is_err());
        // A zero page decodes as the empty list (auto-detection refuses it, see decode::auto).
        assert_eq!(decode(&[0u8; 64]).unwrap().items.len(), 0);
    }

    fn item() -> impl Strategy<Value = ListItem> {
        prop_oneof![
            any::<i64>().prop_map(|value| ListItem::Int { value }),
            (-1e9f64..1e9).prop_map(|value| ListItem::Float { value }),
            any::<bool>().prop_map(|value| ListItem::Bool { value }),
            Just(ListItem::None { value: () }),
            "[a-zé]{0,20}".prop_map(|value| ListItem::Str { value }),
            "([0-9a-f][1-9a-f]){0,10}".prop_map(|hex| ListItem::Bytes { hex }),
        ]
    }

    proptest! {
        #[test]
        fn round_trips(items in proptest::collection::vec(item(), 0..12), legacy: bool) {
            let list = decode(&encode(&items, legacy)).unwrap();
            prop_assert_eq!(list.items, items);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn corrupted_lists_never_panic(items in proptest::collection::vec(item(), 1..6),
                                       flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
            let mut bytes = encode(&items, false);
            for (at, value) in flips {
                let len = bytes.len();
                bytes[at % len] = value;
            }
            let _ = decode(&bytes);
        }
    }
}
