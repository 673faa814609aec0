//! A blocking client of the control socket, for `ctl` and `barrier wait`, and finding the
//! socket: `--socket`, else `FORKSCOPE_SOCKET`, else the only live session of this user.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::supervise::session_files;

/// What went wrong talking to a session.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The service answered with an error.
    #[error("{message}")]
    Refused { code: String, message: String },
    #[error("the session closed the connection")]
    Closed,
    #[error("cannot find a session: {0}")]
    NotFound(String),
}

/// One connection.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("cannot connect to {}: {err}", path.display()),
            )
        })?;
        Ok(Client {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            next_id: 1,
        })
    }

    /// Bounds every read (`None`: wait as long as it takes, for barriers and follows).
    pub fn set_timeout(&self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        self.writer.set_read_timeout(timeout)
    }

    /// Sends `op` (an object with "op") with a fresh id; returns the id.
    pub fn send(&mut self, mut op: Value) -> Result<u64, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        op["id"] = json!(id);
        let mut line = op.to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        Ok(id)
    }

    /// The next line from the service, parsed.
    pub fn read(&mut self) -> Result<Value, ClientError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(ClientError::Closed);
        }
        serde_json::from_str(&line).map_err(|err| ClientError::Io(io::Error::other(err)))
    }

    /// Sends `op` and waits for its reply (lines of other ids are skipped); the `result`.
    pub fn request(&mut self, op: Value) -> Result<Value, ClientError> {
        let id = match self.send(op) {
            Ok(id) => id,
            // Refused at the door: the service wrote why and closed before reading.
            Err(ClientError::Io(err)) if err.kind() == io::ErrorKind::BrokenPipe => {
                return outcome(self.read()?);
            }
            Err(err) => return Err(err),
        };
        loop {
            let line = self.read()?;
            let for_us = line["id"] == json!(id) || line["id"].is_null();
            if !for_us || line.get("event").is_some() {
                continue;
            }
            return outcome(line);
        }
    }
}

/// A reply line's `result`, or its error.
pub fn outcome(mut line: Value) -> Result<Value, ClientError> {
    if line["ok"] == json!(true) {
        return Ok(line["result"].take());
    }
    Err(ClientError::Refused {
        code: line["error"]["code"]
            .as_str()
            .unwrap_or("error")
            .to_string(),
        message: line["error"]["message"]
            .as_str()
            .unwrap_or("unknown error")
            .to_string(),
    })
}

/// A live session: its socket and its `hello`.
#[derive(Debug)]
pub struct Session {
    pub socket: PathBuf,
    pub hello: Value,
}

/// Every live session of this user; socket files nobody listens on any more are removed.
pub fn live_sessions() -> Vec<Session> {
    let Ok(dir) = session_files::socket_dir() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found: Vec<Session> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sock"))
        .filter_map(|socket| match Client::connect(&socket) {
            Ok(mut client) => {
                // A session that does not answer within 5 s is not listed (nor removed).
                client
                    .set_timeout(Some(std::time::Duration::from_secs(5)))
                    .ok()?;
                client
                    .request(json!({"op": "hello"}))
                    .ok()
                    .map(|hello| Session { socket, hello })
            }
            Err(ClientError::Io(err)) if err.kind() == io::ErrorKind::ConnectionRefused => {
                let _ = std::fs::remove_file(&socket);
                None
            }
            Err(_) => None,
        })
        .collect();
    found.sort_by_key(|s| s.hello["session_pid"].as_i64());
    found
}

/// The socket to talk to: `explicit`, else `FORKSCOPE_SOCKET`, else the only live session.
pub fn find_socket(explicit: Option<&Path>) -> Result<PathBuf, ClientError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = std::env::var_os("FORKSCOPE_SOCKET").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let mut sessions = live_sessions();
    match sessions.len() {
        0 => Err(ClientError::NotFound(
            "no forkscope session of this user is running".into(),
        )),
        1 => Ok(sessions.remove(0).socket),
        _ => Err(ClientError::NotFound(format!(
            "{} sessions are running; choose one with --socket ({})",
            sessions.len(),
            sessions
                .iter()
                .map(|s| s.socket.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
