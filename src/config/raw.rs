//! The config file as serde reads it: every table denies unknown keys, and every value that is
//! checked after parsing keeps its span (`toml::Spanned`) so errors can point at it.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, SeqAccess, Visitor};
use toml::Spanned;

use crate::model::policy::RestartPolicy;
use crate::supervise::worker_io::{BufferingChoice, StdinMode};
use crate::track::TrackMode;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub stop_timeout: Option<Spanned<f64>>,
    pub sample_interval: Option<Spanned<f64>>,
    pub track: Option<TrackMode>,
    #[serde(default)]
    pub pool: Vec<RawPool>,
    #[serde(default)]
    pub shm: RawShm,
}

/// One `[[pool]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    pub name: Spanned<String>,
    pub command: Spanned<CommandValue>,
    #[serde(default)]
    pub shell: bool,
    pub workers: Option<Spanned<i64>>,
    pub restart: Option<RestartPolicy>,
    pub stop_signal: Option<Spanned<SignalValue>>,
    pub env: Option<Spanned<BTreeMap<String, String>>>,
    pub cwd: Option<Spanned<String>>,
    pub buffering: Option<BufferingChoice>,
    #[serde(default)]
    pub pty: bool,
    pub stdin: Option<Spanned<StdinMode>>,
    pub python_hooks: Option<bool>,
    pub stop_timeout: Option<Spanned<DurationValue>>,
    pub success_codes: Option<Spanned<Vec<Spanned<i64>>>>,
    pub backoff: Option<Spanned<RawBackoff>>,
    pub max_restarts: Option<Spanned<i64>>,
    pub restart_window: Option<Spanned<DurationValue>>,
    pub start_secs: Option<Spanned<DurationValue>>,
    pub depends_on: Option<Spanned<Vec<Spanned<String>>>>,
    pub ready: Option<Spanned<RawReady>>,
    pub user: Option<Spanned<SignalValue>>,
    pub group: Option<Spanned<SignalValue>>,
    pub log: Option<Spanned<String>>,
    pub log_max: Option<Spanned<SizeValue>>,
    pub log_keep: Option<Spanned<i64>>,
}

/// A pool's `ready = { tcp = "127.0.0.1:8080", timeout = "30s", interval = "200ms" }` (or
/// `file`, or `command`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReady {
    pub tcp: Option<Spanned<String>>,
    pub file: Option<Spanned<String>>,
    pub command: Option<Spanned<String>>,
    pub timeout: Option<Spanned<DurationValue>>,
    pub interval: Option<Spanned<DurationValue>>,
}

/// A pool's `backoff = { initial = "100ms", max = "30s" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackoff {
    pub initial: Option<Spanned<DurationValue>>,
    pub max: Option<Spanned<DurationValue>>,
}

/// `[shm]`: `[[shm.segment]]` and `[[shm.layout]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShm {
    #[serde(default)]
    pub segment: Vec<RawSegment>,
    #[serde(default)]
    pub layout: Vec<RawLayout>,
}

/// One `[[shm.segment]]` (as `--shm NAME:SIZE`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSegment {
    pub name: Spanned<String>,
    pub size: Spanned<SizeValue>,
}

/// One `[[shm.layout]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLayout {
    #[serde(rename = "match")]
    pub pattern: Spanned<String>,
    pub layout: Spanned<String>,
}

/// `command`: an argv array, or one string (only with `shell = true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandValue {
    Argv(Vec<String>),
    Line(String),
}

impl<'de> Deserialize<'de> for CommandValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CommandValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of strings (the argv), or a string with `shell = true`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CommandValue, E> {
                Ok(CommandValue::Line(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CommandValue, A::Error> {
                let mut argv = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    argv.push(arg);
                }
                Ok(CommandValue::Argv(argv))
            }
        }
        d.deserialize_any(V)
    }
}

/// `stop_signal`: a name (`"TERM"`, `"SIGINT"`) or a number (and `user`/`group`: a name or
/// an id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalValue {
    Name(String),
    Number(i64),
}

impl<'de> Deserialize<'de> for SignalValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SignalValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a name or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SignalValue, E> {
                Ok(SignalValue::Name(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SignalValue, E> {
                Ok(SignalValue::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SignalValue, E> {
                Ok(SignalValue::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A segment `size`: bytes as an integer, or a string with a K/M/G suffix (`"4K"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SizeValue {
    Bytes(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for SizeValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SizeValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size in bytes, or a string like \"4K\", \"16M\", \"1G\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SizeValue, E> {
                Ok(SizeValue::Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SizeValue, E> {
                Ok(SizeValue::Bytes(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SizeValue, E> {
                Ok(SizeValue::Bytes(i64::try_from(v).unwrap_or(i64::MAX)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration: seconds as a number (`2`, `0.5`) or a string with a unit (`"100ms"`, `"30s"`,
/// `"5m"`, `"1h"`).
#[derive(Debug, Clone, PartialEq)]
pub enum DurationValue {
    Seconds(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("seconds as a number, or a string like \"100ms\", \"30s\", \"5m\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationValue, E> {
                Ok(DurationValue::Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationValue, E> {
                Ok(DurationValue::Seconds(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationValue, E> {
                Ok(DurationValue::Seconds(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationValue, E> {
                Ok(DurationValue::Seconds(v as f64))
            }
        }
        d.deserialize_any(V)
    }
}

impl DurationValue {
    /// Seconds, or `None` for a string that is not a number with a known unit.
    pub fn seconds(&self) -> Option<f64> {
        match self {
            DurationValue::Seconds(s) => Some(*s),
            DurationValue::Text(text) => {
                let text = text.trim();
                let split = text
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .unwrap_or(text.len());
                let (number, unit) = text.split_at(split);
                let number: f64 = number.parse().ok()?;
                let scale = match unit.trim() {
                    "ms" => 0.001,
                    "s" | "" => 1.0,
                    "m" => 60.0,
                    "h" => 3600.0,
                    _ => return None,
                };
                Some(number * scale)
            }
        }
    }
}
