//! Shared objects a program named with `forkscope.watch(obj, "name")`: what it registered
//! (kind, where the bytes are, how to decode them) and reading their current values from
//! outside the program, through `/proc/PID/fd/N` (a `multiprocessing` heap arena) or
//! `/dev/shm/NAME` (a `SharedMemory` segment).

use std::fs::File;
use std::os::unix::fs::FileExt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest region a watch may read.
pub const MAX_WATCH_BYTES: u64 = 1 << 20;

/// What a program registers (the `watch` op).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSpec {
    pub name: String,
    /// `value`, `array`, `barrier`, `lock`, `rlock`, `semaphore`, `event`, `condition`,
    /// `queue`, `shared_memory`, `shareable_list`.
    pub kind: String,
    /// A `ctypes`/`array` type code (`i`, `d`, `c`, ...) for values and arrays.
    #[serde(default)]
    pub typecode: Option<String>,
    /// Elements of an array.
    #[serde(default)]
    pub length: Option<u64>,
    /// A `/dev/shm` segment name (`psm_1a2b3c4d`) or a heap arena (`pym-...`).
    #[serde(default)]
    pub segment: Option<String>,
    /// The registering process's fd of the heap arena, read through `/proc/PID/fd/N`.
    #[serde(default)]
    pub fd: Option<i32>,
    #[serde(default)]
    pub offset: Option<u64>,
    #[serde(default)]
    pub size: Option<u64>,
    /// A barrier's parties (Python keeps them only in each process's memory).
    #[serde(default)]
    pub parties: Option<u32>,
    /// The address of a glibc `sem_t` in the registering process (a `SemLock`'s handle),
    /// read through `/proc/PID/mem`: locks, semaphores, events, conditions, queues.
    #[serde(default)]
    pub address: Option<u64>,
}

/// A registered watch: the spec and the process that holds the mapping.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Watched {
    pub pid: i32,
    #[serde(flatten)]
    pub spec: WatchSpec,
    /// The value as last read (null when unreadable).
    pub value: Value,
    /// Why the value could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Decodes one element from at least its width of bytes.
type ElementReader = fn(&[u8]) -> Value;

/// Bytes per element of a type code, and how to decode one.
fn element(typecode: &str) -> Option<(usize, ElementReader)> {
    fn int<const N: usize, const SIGNED: bool>(b: &[u8]) -> Value {
        let mut raw = [0u8; 8];
        raw[..N].copy_from_slice(&b[..N]);
        let unsigned = u64::from_le_bytes(raw);
        if SIGNED {
            let shift = 64 - 8 * N as u32;
            Value::from(((unsigned << shift) as i64) >> shift)
        } else {
            Value::from(unsigned)
        }
    }
    fn f32v(b: &[u8]) -> Value {
        let raw: [u8; 4] = [b[0], b[1], b[2], b[3]];
        Value::from(f64::from(f32::from_le_bytes(raw)))
    }
    fn f64v(b: &[u8]) -> Value {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&b[..8]);
        Value::from(f64::from_le_bytes(raw))
    }
    fn char1(b: &[u8]) -> Value {
        Value::from(String::from_utf8_lossy(&b[..1]).into_owned())
    }
    fn boolean(b: &[u8]) -> Value {
        Value::from(b[0] != 0)
    }
    Some(match typecode {
        "b" => (1, int::<1, true>),
        "B" => (1, int::<1, false>),
        "c" => (1, char1),
        "?" => (1, boolean),
        "h" => (2, int::<2, true>),
        "H" => (2, int::<2, false>),
        "i" => (4, int::<4, true>),
        "I" => (4, int::<4, false>),
        "l" | "q" => (8, int::<8, true>),
        "L" | "Q" => (8, int::<8, false>),
        "f" => (4, f32v),
        "d" => (8, f64v),
        _ => return None,
    })
}

/// Decodes a region as the spec says: a number, a list, or a barrier's state. Never panics.
pub fn decode(spec: &WatchSpec, bytes: &[u8]) -> Result<Value, String> {
    match spec.kind.as_str() {
        "value" | "array" => {
            let code = spec.typecode.as_deref().unwrap_or("B");
            let (width, read) =
                element(code).ok_or_else(|| format!("unknown type code {code:?}"))?;
            let values: Vec<Value> = bytes.chunks_exact(width).map(read).collect();
            if spec.kind == "value" {
                values
                    .into_iter()
                    .next()
                    .ok_or_else(|| "region too short".to_string())
            } else {
                Ok(Value::from(values))
            }
        }
        "barrier" => {
            let int = |at: usize| {
                bytes
                    .get(at..at + 4)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            };
            let (Some(state), Some(count)) = (int(0), int(4)) else {
                return Err("region too short".into());
            };
            let state_word = match state {
                0 => "filling",
                1 => "draining",
                -1 => "resetting",
                -2 => "broken",
                _ => "unknown",
            };
            Ok(serde_json::json!({
                "state": state_word,
                "n_waiting": count,
                "parties": spec.parties,
                "broken": state == -2,
            }))
        }
        "lock" | "rlock" | "semaphore" | "event" | "condition" | "queue" => {
            let raw = bytes
                .get(..8)
                .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .ok_or_else(|| "region too short".to_string())?;
            // glibc x86-64 `sem_t`: the value in the low 32 bits, waiters in the high 32.
            let value = raw & 0xffff_ffff;
            let waiters = raw >> 32;
            Ok(match spec.kind.as_str() {
                "lock" | "rlock" | "condition" => {
                    serde_json::json!({"locked": value == 0, "waiters": waiters})
                }
                "event" => serde_json::json!({"set": value > 0, "waiters": waiters}),
                "queue" => {
                    let maxsize = spec.length.unwrap_or(0);
                    serde_json::json!({"qsize": maxsize.saturating_sub(value), "waiters": waiters})
                }
                _ => serde_json::json!({"value": value, "waiters": waiters}),
            })
        }
        "shareable_list" => crate::inspect::shm::decode::shareable_list::decode(bytes)
            .map(|list| {
                serde_json::to_value(crate::model::shm::Decoded::from(list)).unwrap_or_default()
            })
            .map_err(|err| err.0),
        _ => Ok(Value::from(
            bytes
                .iter()
                .take(64)
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        )),
    }
}

/// Reads the watched region now.
pub fn read(pid: i32, spec: &WatchSpec) -> Result<Value, String> {
    let size = match spec.address {
        Some(_) => 8,
        None => spec.size.unwrap_or(0).min(MAX_WATCH_BYTES),
    };
    if size == 0 {
        return Ok(Value::Null);
    }
    let (path, at) = match (spec.address, spec.fd, spec.segment.as_deref()) {
        (Some(address), _, _) => (format!("/proc/{pid}/mem"), address),
        (None, Some(fd), _) => (format!("/proc/{pid}/fd/{fd}"), spec.offset.unwrap_or(0)),
        (None, None, Some(segment)) => {
            let name = segment.trim_start_matches('/');
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                return Err(format!("bad segment name {segment:?}"));
            }
            (format!("/dev/shm/{name}"), spec.offset.unwrap_or(0))
        }
        _ => return Err("no fd or segment to read".into()),
    };
    let file = File::open(&path).map_err(|err| format!("{path}: {err}"))?;
    let mut bytes = vec![0u8; size as usize];
    let got = file
        .read_at(&mut bytes, at)
        .map_err(|err| format!("{path}: {err}"))?;
    bytes.truncate(got);
    decode(spec, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec(kind: &str, typecode: &str) -> WatchSpec {
        WatchSpec {
            name: "x".into(),
            kind: kind.into(),
            typecode: Some(typecode.into()),
            length: None,
            segment: None,
            fd: None,
            offset: None,
            size: None,
            parties: Some(3),
            address: None,
        }
    }

    #[test]
    fn decodes_typed_values() {
        assert_eq!(
            decode(&spec("value", "i"), &(-7i32).to_le_bytes()),
            Ok(Value::from(-7))
        );
        let floats: Vec<u8> = [1.5f64, -2.0]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        assert_eq!(
            decode(&spec("array", "d"), &floats),
            Ok(serde_json::json!([1.5, -2.0]))
        );
        let barrier: Vec<u8> = [0i32, 2].iter().flat_map(|i| i.to_le_bytes()).collect();
        let value = decode(&spec("barrier", ""), &barrier).unwrap();
        assert_eq!(value["n_waiting"], 2);
        assert_eq!(value["state"], "filling");
        assert!(decode(&spec("value", "i"), &[1]).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(kind in "value|array|barrier|lock", code in ".{0,2}", bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&spec(&kind, &code), &bytes);
        }
    }
}
