//! The control protocol (`docs/protocol.md`): one JSON object per line each way. Requests
//! carry an `id` and an `op`; every request gets exactly one reply with the same `id`
//! (`ok` true with a `result`, or false with an `error`); a subscription then streams
//! `{"id": ID, "event": {...}}` lines. The decoder is pure and never panics.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Action;

/// The protocol version `hello` reports; bumped on incompatible changes.
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest request line accepted (bytes, without the newline). Longer lines are skipped
/// without being buffered and get a `too_long` error.
pub const MAX_LINE: usize = 1 << 20;

/// What a client can ask.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Versions and who this instance is.
    Hello,
    /// Pools, workers, barriers and watches.
    Status,
    /// The `inspect --json` document of the session's tree.
    Inspect,
    /// A user intention, in the same vocabulary as the keymap.
    Action { action: Action },
    /// Stream events from now (or from the start of the ring of recent events).
    Subscribe {
        #[serde(default)]
        from_start: bool,
    },
    /// Wait at a hosted barrier; the reply comes when it passes or breaks.
    BarrierWait {
        name: String,
        parties: u32,
        #[serde(default)]
        timeout: Option<f64>,
        #[serde(default)]
        pool: Option<String>,
        #[serde(default)]
        worker: Option<u32>,
    },
    /// Break a barrier: every waiter is released with an error.
    BarrierAbort { name: String },
    /// Bring a barrier back to a fresh, unbroken generation.
    BarrierReset { name: String },
    /// Parties, waiting parties, generation and whether it is broken.
    BarrierStatus { name: String },
    /// A named instant on the timeline.
    Mark {
        label: String,
        #[serde(default)]
        pool: Option<String>,
        #[serde(default)]
        worker: Option<u32>,
    },
    /// Name a shared object of the calling program so forkscope shows it (`docs/protocol.md`).
    Watch(crate::coord::watch::WatchSpec),
}

/// The ops a server knows, for telling "unknown op" from "bad fields".
pub const OPS: [&str; 11] = [
    "hello",
    "status",
    "inspect",
    "action",
    "subscribe",
    "barrier_wait",
    "barrier_abort",
    "barrier_reset",
    "barrier_status",
    "mark",
    "watch",
];

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("not JSON: {0}")]
    Parse(String),
    #[error("a request is a JSON object with \"id\" and \"op\"")]
    NotAnObject,
    #[error("unknown op {0:?}")]
    UnknownOp(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("line longer than {MAX_LINE} bytes")]
    TooLong,
}

impl ProtoError {
    /// The machine-readable `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ProtoError::Parse(_) => "parse",
            ProtoError::NotAnObject => "bad_request",
            ProtoError::UnknownOp(_) => "unknown_op",
            ProtoError::BadRequest(_) => "bad_request",
            ProtoError::TooLong => "too_long",
        }
    }
}

/// Decodes one request line; the id (null when absent or unreadable) comes back either way
/// so the error reply can carry it.
pub fn decode(line: &[u8]) -> (Value, Result<Op, ProtoError>) {
    let value: Value = match serde_json::from_slice(line) {
        Ok(value) => value,
        Err(err) => return (Value::Null, Err(ProtoError::Parse(err.to_string()))),
    };
    let Value::Object(mut fields) = value else {
        return (Value::Null, Err(ProtoError::NotAnObject));
    };
    let id = match fields.remove("id") {
        Some(id @ (Value::Number(_) | Value::String(_))) => id,
        Some(_) => {
            return (
                Value::Null,
                Err(ProtoError::BadRequest(
                    "id must be a number or string".into(),
                )),
            );
        }
        None => Value::Null,
    };
    let op = match fields.get("op") {
        Some(Value::String(op)) => op.clone(),
        _ => return (id, Err(ProtoError::BadRequest("missing \"op\"".into()))),
    };
    if !OPS.contains(&op.as_str()) {
        return (id, Err(ProtoError::UnknownOp(op)));
    }
    let decoded = serde_json::from_value::<Op>(Value::Object(fields))
        .map_err(|err| ProtoError::BadRequest(err.to_string()));
    (id, decoded)
}

/// An `ok` reply.
pub fn reply_ok(id: &Value, result: Value) -> String {
    let mut line = serde_json::json!({"id": id, "ok": true, "result": result}).to_string();
    line.push('\n');
    line
}

/// An error reply.
pub fn reply_err(id: &Value, code: &str, message: &str) -> String {
    let mut line = serde_json::json!({
        "id": id,
        "ok": false,
        "error": {"code": code, "message": message},
    })
    .to_string();
    line.push('\n');
    line
}

/// One streamed event of subscription `id`; `event_json` is the event as `--headless` prints it.
pub fn stream_line(id: &Value, event_json: &str) -> String {
    format!("{{\"id\":{id},\"event\":{event_json}}}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_requests_and_keeps_the_id() {
        let (id, op) = decode(br#"{"id":7,"op":"scale_nope"}"#);
        assert_eq!(id, 7);
        assert_eq!(op, Err(ProtoError::UnknownOp("scale_nope".into())));
        let (id, op) =
            decode(br#"{"id":"a","op":"action","action":{"action":"scale","pool":"w","size":2}}"#);
        assert_eq!(id, "a");
        assert_eq!(
            op,
            Ok(Op::Action {
                action: Action::Scale {
                    pool: "w".into(),
                    size: 2
                }
            })
        );
        let (_, op) = decode(br#"{"id":1,"op":"barrier_wait","name":"b"}"#);
        assert_eq!(op.unwrap_err().code(), "bad_request");
        let (_, op) = decode(b"[1,2]");
        assert_eq!(op, Err(ProtoError::NotAnObject));
        let (_, op) = decode(b"\xff\xfe");
        assert_eq!(op.unwrap_err().code(), "parse");
    }

    #[test]
    fn replies_are_single_json_lines() {
        let line = reply_err(&Value::from(3), "parse", "bad \"quote\"\nnewline");
        assert_eq!(line.matches('\n').count(), 1);
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["error"]["code"], "parse");
        let line = stream_line(&Value::from("s"), r#"{"t":1.0,"kind":"end"}"#);
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["event"]["kind"], "end");
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let (_, result) = decode(&bytes);
            let _ = result.map_err(|e| e.code());
        }

        #[test]
        fn json_shaped_garbage_never_panics(
            op in "[a-z_]{0,16}",
            id in any::<i64>(),
            key in "[a-z_]{0,10}",
            value in any::<i32>(),
        ) {
            // A repeated "id" or "op" key would replace the first (serde_json keeps the last).
            prop_assume!(key != "id" && key != "op");
            let line = format!(r#"{{"id":{id},"op":"{op}","{key}":{value}}}"#);
            let (got, result) = decode(line.as_bytes());
            prop_assert_eq!(got, Value::from(id));
            if !OPS.contains(&op.as_str()) {
                prop_assert_eq!(result, Err(ProtoError::UnknownOp(op)));
            }
        }

        #[test]
        fn barrier_waits_round_trip(name in ".{0,40}", parties in 1u32..1000, timeout in proptest::option::of(0u32..4_000_000)) {
            // Quarter seconds: exact in binary, so the JSON round trip is exact too.
            let timeout = timeout.map(|q| f64::from(q) / 4.0);
            let op = Op::BarrierWait { name, parties, timeout, pool: None, worker: Some(1) };
            let mut value = serde_json::to_value(&op).unwrap();
            value["id"] = Value::from(1);
            let (_, back) = decode(value.to_string().as_bytes());
            prop_assert_eq!(back, Ok(op));
        }
    }
}
