//! `forkscope up --procfile Procfile` (`docs/config.md`, "Procfile"): one pool per
//! `NAME: command` line as foreman and honcho read it (blank lines and `#` comments skipped,
//! the command run with `sh -c`, in the Procfile's directory), the `.env` file next to it
//! loaded when present (or `--env-file`), and `PORT` = port base + 100 × the pool's index.
//! Every bad line is an error at FILE:LINE:COL, as in the config file.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Config, ConfigError, check_pool_name, locate, read_bounded, utf8_text};
use crate::model::policy::RestartPolicy;
use crate::supervise::PoolSpec;

/// foreman's default `--port` base.
pub const DEFAULT_PORT_BASE: u16 = 5000;
/// foreman's step between the ports of successive process types.
const PORT_STEP: u32 = 100;

/// Where the pools of a Procfile come from.
#[derive(Clone, Debug)]
pub struct ProcfileSource<'a> {
    pub procfile: &'a Path,
    /// `--env-file`; `None`: `.env` next to the Procfile, when it exists.
    pub env_file: Option<&'a Path>,
    pub port_base: u16,
}

/// Reads the Procfile and its environment file into a [`Config`] with one pool per line.
pub fn load(source: &ProcfileSource) -> Result<Config, ConfigError> {
    let dir = source
        .procfile
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let env = match source.env_file {
        Some(path) => parse_env(path, &read_text(path, true)?)?,
        None => {
            let default = dir.join(".env");
            if default.is_file() {
                parse_env(&default, &read_text(&default, true)?)?
            } else {
                BTreeMap::new()
            }
        }
    };
    let text = read_text(source.procfile, true)?;
    let pools = parse_procfile(source.procfile, &text, &env, source.port_base, &dir)?;
    Ok(Config {
        path: source.procfile.to_path_buf(),
        stop_timeout: None,
        sample_interval: None,
        track: None,
        pools,
        segments: Vec::new(),
        layouts: Vec::new(),
        logs: Vec::new(),
    })
}

fn read_text(path: &Path, explicit: bool) -> Result<String, ConfigError> {
    let bytes = read_bounded(path, explicit)?;
    Ok(utf8_text(&bytes, &path.display().to_string())?.to_string())
}

/// The byte offset of each line's start, with the line (without its `\n` or `\r\n`).
fn lines_at(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut offset = 0;
    text.split_inclusive('\n').map(move |raw| {
        let at = offset;
        offset += raw.len();
        (at, raw.trim_end_matches('\n').trim_end_matches('\r'))
    })
}

/// The pools of a Procfile's text (foreman's line format `^([A-Za-z0-9_-]+):\s*(.+)$`).
pub fn parse_procfile(
    path: &Path,
    text: &str,
    env: &BTreeMap<String, String>,
    port_base: u16,
    dir: &Path,
) -> Result<Vec<PoolSpec>, ConfigError> {
    let shown = path.display().to_string();
    let err = |at: usize, message: String| locate(text, &shown, at..at + 1, &message);
    let mut pools: Vec<PoolSpec> = Vec::new();
    for (start, line) in lines_at(text) {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some(colon) = line.find(':') else {
            return Err(err(
                start,
                "not a Procfile line: `NAME: command` (comments start with #)".into(),
            ));
        };
        let name = &line[..colon];
        if let Some(bad) = name.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        {
            return Err(err(
                start + bad,
                format!(
                    "a Procfile name is letters, digits, _ and - only (got {name:?}): `NAME: command`"
                ),
            ));
        }
        if name.is_empty() {
            return Err(err(start, "the line has no name before `:`".into()));
        }
        check_pool_name(name).map_err(|message| err(start, message))?;
        if pools.iter().any(|p| p.name == name) {
            return Err(err(
                start,
                format!("a process named {name:?} is already defined"),
            ));
        }
        let command = line[colon + 1..].trim();
        if command.is_empty() || command.contains('\0') {
            return Err(err(start + colon, format!("{name}: the command is empty")));
        }
        let port = u32::from(port_base) + PORT_STEP * pools.len() as u32;
        if port > u32::from(u16::MAX) {
            return Err(err(
                start,
                format!("{name}: its PORT would be {port}, over 65535 (give a lower --port-base)"),
            ));
        }
        let mut pool_env = env.clone();
        pool_env.insert("PORT".into(), port.to_string());
        pools.push(PoolSpec {
            name: name.to_string(),
            size: 1,
            argv: vec!["sh".into(), "-c".into(), command.to_string()],
            env: pool_env.into_iter().collect(),
            cwd: Some(dir.to_path_buf()),
            restart: RestartPolicy::Never,
            stop_signal: libc::SIGTERM,
            io: Default::default(),
            policy: Default::default(),
            launch: Default::default(),
        });
    }
    if pools.is_empty() {
        return Err(locate(
            text,
            &shown,
            0..0,
            "no `NAME: command` line: the Procfile has no process",
        ));
    }
    Ok(pools)
}

/// A `.env` file as foreman reads it: `KEY=VALUE` lines (an optional `export ` before),
/// blank lines and `#` comments; a value in single quotes is literal, in double quotes it
/// knows `\n`, `\t`, `\"`, `\\`; an unquoted value is trimmed and ends before ` #`.
pub fn parse_env(path: &Path, text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let shown = path.display().to_string();
    let err = |at: usize, message: &str| locate(text, &shown, at..at + 1, message);
    let mut env = BTreeMap::new();
    for (start, line) in lines_at(text) {
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let mut at = start + (line.len() - body.len());
        let body = match body.strip_prefix("export ") {
            Some(rest) => {
                let rest_trimmed = rest.trim_start();
                at += body.len() - rest_trimmed.len();
                rest_trimmed
            }
            None => body,
        };
        let Some(eq) = body.find('=') else {
            return Err(err(
                at,
                "not a .env line: KEY=VALUE (comments start with #)",
            ));
        };
        let key = body[..eq].trim_end();
        let valid_key = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_key {
            return Err(err(
                at,
                "a .env name is a letter or _ then letters, digits or _ (KEY=VALUE)",
            ));
        }
        let raw_value = body[eq + 1..].trim_start();
        let value_at = at + eq + 1 + (body[eq + 1..].len() - raw_value.len());
        let value = env_value(raw_value).map_err(|message| err(value_at, message))?;
        env.insert(key.to_string(), value);
    }
    Ok(env)
}

/// One `.env` value (after `=` and leading blanks).
fn env_value(raw: &str) -> Result<String, &'static str> {
    let after_quote = |rest: &str| {
        let rest = rest.trim();
        if rest.is_empty() || rest.starts_with('#') {
            Ok(())
        } else {
            Err("text after the closing quote (a comment starts with #)")
        }
    };
    if let Some(inner) = raw.strip_prefix('\'') {
        let end = inner.find('\'').ok_or("no closing ' on this line")?;
        after_quote(&inner[end + 1..])?;
        return Ok(inner[..end].to_string());
    }
    if let Some(inner) = raw.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = inner.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    after_quote(&inner[i + 1..])?;
                    return Ok(value);
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('r') => value.push('\r'),
                    Some(other) => value.push(other),
                    None => break,
                },
                c => value.push(c),
            }
        }
        return Err("no closing \" on this line");
    }
    let value = match raw.find(" #") {
        Some(comment) => &raw[..comment],
        None => raw,
    };
    if value.contains('\0') {
        return Err("a NUL character in the value");
    }
    Ok(value.trim_end().to_string())
}
