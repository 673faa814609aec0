//! Reading a recording (`--record FILE`) back: every line one event, located errors. What
//! `forkscope replay` plays (`ui::replay::Playback`) and tests inspect.

use std::path::Path;

use crate::bounded::{BoundedLines, LineError};
use crate::model::Event;

/// Longest line of a recording (an event): a `sample` of 10,000 processes is about 1 MiB.
const MAX_EVENT_LINE: usize = 16 << 20;

/// Why a recording could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: not a forkscope event: {message}")]
    BadLine {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: no events in the recording")]
    Empty { path: String },
    #[error("{path}:{line}: {message}")]
    Line {
        path: String,
        line: usize,
        message: String,
    },
}

/// Reads a recording, streamed line by line (any kind of file: a FIFO, `/dev/zero`);
/// every line must be one event of at most 16 MiB.
pub fn load(path: &Path) -> Result<Vec<Event>, LoadError> {
    let shown = path.display().to_string();
    let io_error = |source| LoadError::Io {
        path: shown.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mut events = Vec::new();
    let lines = BoundedLines::new(std::io::BufReader::new(file), MAX_EVENT_LINE);
    for read in lines {
        let (number, bytes) = read.map_err(|err| match err {
            LineError::Io(source) => io_error(source),
            LineError::TooLong { line, .. } => LoadError::Line {
                path: shown.clone(),
                line,
                message: err.to_string(),
            },
        })?;
        let line = std::str::from_utf8(&bytes).map_err(|_| LoadError::Line {
            path: shown.clone(),
            line: number,
            message: "not UTF-8 text".into(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let event: Event = serde_json::from_str(line).map_err(|err| LoadError::BadLine {
            path: shown.clone(),
            line: number,
            column: err.column(),
            message: err.to_string(),
        })?;
        events.push(event);
    }
    if events.is_empty() {
        return Err(LoadError::Empty { path: shown });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_located() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.jsonl");
        std::fs::write(
            &path,
            "{\"t\":0,\"kind\":\"end\",\"pid\":null,\"status\":0}\n{oops\n",
        )
        .unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("rec.jsonl:2:2"), "{err}");
        std::fs::write(&path, "").unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("no events"));
    }
}
