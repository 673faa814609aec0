//! The config file (`forkscope.toml`, `docs/config.md`): pools for `forkscope up`, session-wide
//! settings, shared-memory segments to create and shared-memory layouts for `shm show` and
//! the TUI.
//!
//! Loading reads the file, parses it with serde (every table denies unknown keys) and then
//! validates each value. Every error names the place as `FILE:LINE:COL` with the offending line
//! and a caret under it; nothing in here panics on any input (a property test feeds it
//! random text). The binary turns a [`ConfigError`] into exit status 2.

mod launch;
mod logs;
mod policy;
pub mod procfile;
mod raw;
pub mod up;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_logs;
#[cfg(test)]
mod tests_policy;
#[cfg(test)]
mod tests_procfile;

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use crate::inspect::shm::decode::{Format, layout, rules::FormatRule};
use crate::model::policy::RestartPolicy;
use crate::supervise::PoolSpec;
use crate::supervise::shm::{ShmSpec, parse_spec};
use crate::supervise::worker_io::{Buffering, StdinMode, WorkerIo};
use crate::track::TrackMode;
use raw::{CommandValue, RawConfig, RawPool, SignalValue, SizeValue};

/// The default config file name (looked up in the current directory).
pub const DEFAULT_FILE: &str = "forkscope.toml";
/// Largest config file read (a config is a few KiB; this keeps garbage input cheap).
const MAX_FILE: u64 = 1 << 20;
/// Most workers in one pool (as `run -n`).
pub const MAX_WORKERS: i64 = 4096;
/// Longest pool name.
const MAX_NAME: usize = 64;

/// A loaded, validated config file.
#[derive(Clone, Debug)]
pub struct Config {
    pub path: PathBuf,
    /// Seconds between the stop signal and SIGKILL (session-wide).
    pub stop_timeout: Option<f64>,
    /// Seconds between `/proc` samples.
    pub sample_interval: Option<f64>,
    pub track: Option<TrackMode>,
    /// The pools, in file order (cwd resolved against the file's directory).
    pub pools: Vec<PoolSpec>,
    /// `[[shm.segment]]`: segments to create, as `--shm NAME:SIZE`.
    pub segments: Vec<ShmSpec>,
    /// `[[shm.layout]]`: decoder rules, in file order.
    pub layouts: Vec<FormatRule>,
    /// Pools with a `log`, by name.
    pub logs: Vec<(String, crate::obs::logs::LogSpec)>,
}

/// Why a config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: no such file{hint}")]
    Missing { path: String, hint: String },
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    At(Box<Located>),
}

/// An error at a place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub path: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
    pub message: String,
    /// The offending line and a caret line under it (empty when there is no such line).
    pub excerpt: String,
}

impl std::fmt::Display for Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path, self.line, self.col, self.message
        )?;
        if !self.excerpt.is_empty() {
            write!(f, "\n{}", self.excerpt)?;
        }
        Ok(())
    }
}

impl ConfigError {
    /// The located error, if it has a place.
    pub fn located(&self) -> Option<&Located> {
        match self {
            ConfigError::At(located) => Some(located),
            _ => None,
        }
    }
}

/// A pool name is 1 to 64 characters, not only blanks, without control characters (the
/// config's `name` and `run --name` alike).
pub fn check_pool_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty()
        || name.chars().count() > MAX_NAME
        || name
            .chars()
            .any(crate::model::printable::is_terminal_control)
    {
        return Err(format!(
            "a pool name is 1 to {MAX_NAME} characters, no control characters (got {name:?})"
        ));
    }
    Ok(())
}

/// Reads and validates the config at `path`. `explicit` says whether the person named the
/// file (with `-f`); it only changes the hint of a missing file.
pub fn load(path: &Path, explicit: bool) -> Result<Config, ConfigError> {
    let bytes = read_bounded(path, explicit)?;
    let shown = path.display().to_string();
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parse_bytes(&bytes, &shown, path, base)
}

/// The bytes of a config-like file (at most [`MAX_FILE`]), or why not.
fn read_bounded(path: &Path, explicit: bool) -> Result<Vec<u8>, ConfigError> {
    let shown = path.display().to_string();
    let metadata = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let hint = if explicit {
                String::new()
            } else {
                " in the current directory (give a config with -f FILE; \
                 assets/forkscope.example.toml is an example)"
                    .to_string()
            };
            return Err(ConfigError::Missing { path: shown, hint });
        }
        Err(source) => {
            return Err(ConfigError::Read {
                path: shown,
                source,
            });
        }
    };
    if metadata.is_dir() {
        return Err(ConfigError::Read {
            path: shown,
            source: std::io::Error::other("is a directory"),
        });
    }
    // Bounded by what is read, not by `stat`: a FIFO or /dev/zero has no size.
    crate::bounded::read_at_most(path, MAX_FILE).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })
}

/// Parses and validates config bytes; `shown` names the file in messages, `base` is the
/// directory relative `cwd`s are resolved against.
pub fn parse_bytes(
    bytes: &[u8],
    shown: &str,
    path: &Path,
    base: &Path,
) -> Result<Config, ConfigError> {
    let text = utf8_text(bytes, shown)?;
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(err) => {
            let span = err.span().unwrap_or(0..0);
            let message = err.message().trim().to_string();
            return Err(locate(text, shown, span, &message));
        }
    };
    Checker { text, shown, base }.config(raw, path)
}

/// The bytes as text, or an error located at the first byte that is not UTF-8.
fn utf8_text<'a>(bytes: &'a [u8], shown: &str) -> Result<&'a str, ConfigError> {
    std::str::from_utf8(bytes).map_err(|err| {
        let good = String::from_utf8_lossy(&bytes[..err.valid_up_to()]).into_owned();
        let at = good.len();
        locate(&good, shown, at..at, "the file is not valid UTF-8")
    })
}

/// Validation of the parsed values, with the text at hand to locate errors.
struct Checker<'a> {
    text: &'a str,
    shown: &'a str,
    base: &'a Path,
}

impl Checker<'_> {
    fn err(&self, span: Range<usize>, message: impl AsRef<str>) -> ConfigError {
        locate(self.text, self.shown, span, message.as_ref())
    }

    fn origin(&self, span: Range<usize>) -> String {
        let (line, col) = line_col(self.text, span.start);
        format!("{}:{line}:{col}", self.shown)
    }

    fn config(&self, raw: RawConfig, path: &Path) -> Result<Config, ConfigError> {
        let stop_timeout = raw
            .stop_timeout
            .map(|v| self.seconds(v, 0.0, "stop_timeout"))
            .transpose()?;
        let sample_interval = raw
            .sample_interval
            .map(|v| self.seconds(v, 0.01, "sample_interval"))
            .transpose()?;
        let mut names = HashSet::new();
        let mut pools = Vec::with_capacity(raw.pool.len());
        let mut dependencies = Vec::with_capacity(raw.pool.len());
        let mut logs = Vec::new();
        for mut pool in raw.pool {
            if let Some(log) = self.pool_log(&pool)? {
                logs.push((pool.name.get_ref().clone(), log));
            }
            let deps = pool
                .depends_on
                .as_mut()
                .map(|d| std::mem::take(d.get_mut()))
                .unwrap_or_default();
            let mut spec = self.pool(pool, &mut names)?;
            spec.launch.depends_on = deps.iter().map(|d| d.get_ref().clone()).collect();
            dependencies.push((spec.name.clone(), deps));
            pools.push(spec);
        }
        self.check_dependencies(&dependencies)?;
        let mut segments: Vec<ShmSpec> = Vec::new();
        for seg in raw.shm.segment {
            let size = match seg.size.get_ref() {
                SizeValue::Bytes(n) => n.to_string(),
                SizeValue::Text(t) => t.clone(),
            };
            let spec = parse_spec(&format!("{}:{size}", seg.name.get_ref())).map_err(|e| {
                let span = if e.starts_with(&format!("{:?}", seg.name.get_ref())) {
                    seg.name.span()
                } else {
                    seg.size.span()
                };
                self.err(span, format!("bad shared-memory segment: {e}"))
            })?;
            if segments.iter().any(|s| s.name == spec.name) {
                return Err(self.err(
                    seg.name.span(),
                    format!("a segment named {:?} is already defined", spec.name),
                ));
            }
            segments.push(spec);
        }
        let mut layouts = Vec::new();
        for rule in raw.shm.layout {
            let pattern = rule.pattern.get_ref().trim();
            if pattern.is_empty() {
                return Err(self.err(
                    rule.pattern.span(),
                    "`match` is empty (a segment name, or a glob like \"psm_*\")",
                ));
            }
            let parsed = layout::parse(rule.layout.get_ref())
                .map_err(|e| self.err(rule.layout.span(), format!("bad layout: {e}")))?;
            layouts.push(FormatRule {
                pattern: pattern.to_string(),
                format: Format::Layout(parsed),
                origin: self.origin(rule.layout.span()),
            });
        }
        Ok(Config {
            path: path.to_path_buf(),
            stop_timeout,
            sample_interval,
            track: raw.track,
            pools,
            segments,
            layouts,
            logs,
        })
    }

    fn seconds(&self, value: Spanned<f64>, min: f64, key: &str) -> Result<f64, ConfigError> {
        let v = *value.get_ref();
        if v.is_finite() && v >= min && v <= 86_400.0 {
            Ok(v)
        } else {
            Err(self.err(
                value.span(),
                format!("{key} must be {min} to 86400 seconds, not {v}"),
            ))
        }
    }

    fn pool(&self, raw: RawPool, names: &mut HashSet<String>) -> Result<PoolSpec, ConfigError> {
        let name = raw.name.get_ref().clone();
        if let Err(message) = check_pool_name(&name) {
            return Err(self.err(raw.name.span(), message));
        }
        if !names.insert(name.clone()) {
            return Err(self.err(
                raw.name.span(),
                format!("a pool named {name:?} is already defined"),
            ));
        }
        let argv = self.command(&raw.command, raw.shell)?;
        let size = match &raw.workers {
            None => 1,
            Some(w) => match u32::try_from(*w.get_ref()) {
                Ok(n) if (1..=MAX_WORKERS).contains(w.get_ref()) => n,
                _ => {
                    return Err(self.err(
                        w.span(),
                        format!("workers must be 1 to {MAX_WORKERS}, not {}", w.get_ref()),
                    ));
                }
            },
        };
        let stop_signal = match &raw.stop_signal {
            None => libc::SIGTERM,
            Some(s) => {
                let parsed = match s.get_ref() {
                    SignalValue::Name(n) => crate::model::signals::signal_number(n),
                    SignalValue::Number(n) => i32::try_from(*n)
                        .ok()
                        .and_then(|n| crate::model::signals::signal_number(&n.to_string())),
                };
                parsed.ok_or_else(|| {
                    let shown = match s.get_ref() {
                        SignalValue::Name(n) => format!("{n:?}"),
                        SignalValue::Number(n) => n.to_string(),
                    };
                    self.err(
                        s.span(),
                        format!(
                            "unknown stop_signal {shown} (a name like \"SIGTERM\" or \"INT\", or a number 1 to 64)"
                        ),
                    )
                })?
            }
        };
        let env = match &raw.env {
            None => Vec::new(),
            Some(env) => {
                for (key, value) in env.get_ref() {
                    if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
                        return Err(self.err(
                            env.span(),
                            format!(
                                "env: {key:?} is not a valid variable (no '=' or NUL in names, no NUL in values)"
                            ),
                        ));
                    }
                }
                env.get_ref()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }
        };
        let cwd = match &raw.cwd {
            None => None,
            Some(dir) => {
                let text = dir.get_ref();
                if text.is_empty() || text.contains('\0') {
                    return Err(self.err(dir.span(), "cwd is empty"));
                }
                let resolved = self.base.join(text);
                if !resolved.is_dir() {
                    return Err(self.err(
                        dir.span(),
                        format!(
                            "cwd {} is not a directory (relative paths start at the config file's directory)",
                            resolved.display()
                        ),
                    ));
                }
                Some(resolved)
            }
        };
        let io = self.pool_io(&raw)?;
        let policy = self.pool_policy(&raw)?;
        let launch = self.pool_launch(&raw, cwd.as_deref().unwrap_or(self.base))?;
        Ok(PoolSpec {
            name,
            size,
            argv,
            env,
            cwd,
            restart: raw.restart.unwrap_or(RestartPolicy::Never),
            stop_signal,
            io,
            policy,
            launch,
        })
    }

    /// `buffering`, `pty`, `stdin` and `python_hooks` (on unless set to false).
    fn pool_io(&self, raw: &RawPool) -> Result<WorkerIo, ConfigError> {
        let stdin = match &raw.stdin {
            None => StdinMode::Null,
            Some(stdin) if *stdin.get_ref() == StdinMode::Pty && !raw.pty => {
                return Err(self.err(stdin.span(), "stdin = \"pty\" needs pty = true"));
            }
            Some(stdin) => *stdin.get_ref(),
        };
        Ok(WorkerIo {
            buffering: raw.buffering.map_or(Buffering::Live, Into::into),
            pty: raw.pty,
            stdin,
            python_hooks: raw.python_hooks.unwrap_or(true),
        })
    }

    fn command(
        &self,
        command: &Spanned<CommandValue>,
        shell: bool,
    ) -> Result<Vec<String>, ConfigError> {
        let span = command.span();
        match (command.get_ref(), shell) {
            (CommandValue::Line(line), false) => Err(self.err(
                span,
                format!(
                    "command is a string; write the argv as an array (command = [\"prog\", \"arg\"]) \
                     or set shell = true to run it with sh -c (got {line:?})"
                ),
            )),
            (CommandValue::Argv(_), true) => Err(self.err(
                span,
                "with shell = true, command is one string for sh -c, not an array",
            )),
            (CommandValue::Line(line), true) => {
                if line.trim().is_empty() || line.contains('\0') {
                    Err(self.err(span, "command is empty"))
                } else {
                    Ok(vec!["sh".into(), "-c".into(), line.clone()])
                }
            }
            (CommandValue::Argv(argv), false) => {
                if argv.first().is_none_or(|p| p.is_empty()) {
                    Err(self.err(span, "command is empty (it needs at least the program)"))
                } else if argv.iter().any(|a| a.contains('\0')) {
                    Err(self.err(span, "command contains a NUL character"))
                } else {
                    Ok(argv.clone())
                }
            }
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_boundary(text, offset);
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

fn floor_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    // A char is at most 4 bytes: at most 3 steps back.
    for _ in 0..4 {
        if text.is_char_boundary(offset) {
            break;
        }
        offset -= 1;
    }
    offset
}

/// Characters of the offending line shown in an excerpt.
const EXCERPT_WIDTH: usize = 120;

/// A located error for `span` of `text`, with the line and a caret under the span. A long
/// line is shown as a window of [`EXCERPT_WIDTH`] characters around the column.
fn locate(text: &str, shown: &str, span: Range<usize>, message: &str) -> ConfigError {
    let (line, col) = line_col(text, span.start);
    let start = floor_boundary(text, span.start);
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let chars: Vec<char> = text[line_start..line_end]
        .trim_end_matches('\r')
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let end = floor_boundary(text, span.end.max(start)).min(line_end);
    let caret = col - 1;
    let from = if caret > EXCERPT_WIDTH / 2 {
        caret - EXCERPT_WIDTH / 4
    } else {
        0
    };
    let window: String = chars.iter().skip(from).take(EXCERPT_WIDTH).collect();
    let (lead, indent) = if from > 0 {
        ("…", caret - from + 1)
    } else {
        ("", caret)
    };
    let width = text[start..end.max(start)]
        .chars()
        .count()
        .clamp(1, EXCERPT_WIDTH.saturating_sub(caret - from).max(1));
    let gutter = line.to_string().len();
    let excerpt = if window.trim().is_empty() {
        String::new()
    } else {
        format!(
            "{:gutter$} |\n{line} | {lead}{window}\n{:gutter$} | {}{}",
            "",
            "",
            " ".repeat(indent),
            "^".repeat(width)
        )
    };
    ConfigError::At(Box::new(Located {
        path: shown.to_string(),
        line,
        col,
        message: message.to_string(),
        excerpt,
    }))
}

/// The `[[shm.layout]]` rules of the config at `path` (or of `./forkscope.toml` if it exists
/// when `path` is `None`; no file then means no rules).
pub fn layout_rules(path: Option<&Path>) -> Result<Vec<FormatRule>, ConfigError> {
    let (path, explicit) = match path {
        Some(p) => (p, true),
        None => (Path::new(DEFAULT_FILE), false),
    };
    if !explicit && !path.exists() {
        return Ok(Vec::new());
    }
    Ok(load(path, explicit)?.layouts)
}
