//! Control-socket helpers: a private socket directory per test (`XDG_RUNTIME_DIR`), `ctl`
//! runs against it, and a line client speaking the protocol directly.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::{Forkscope, StartOptions, bin, command_output, secs, wait_for};

/// A private `XDG_RUNTIME_DIR`: sessions started with [`SocketDir::start`] put their socket
/// in it, and `ctl` run through [`SocketDir::ctl`] finds them there.
pub struct SocketDir {
    pub dir: tempfile::TempDir,
}

impl SocketDir {
    pub fn new() -> SocketDir {
        SocketDir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn env(&self) -> Vec<(String, String)> {
        vec![(
            "XDG_RUNTIME_DIR".into(),
            self.dir.path().to_string_lossy().into_owned(),
        )]
    }

    /// Starts forkscope with this directory.
    pub fn start(&self, marker: &str, args: &[&str]) -> Forkscope {
        Forkscope::start_with(
            marker,
            args,
            StartOptions {
                env: self.env(),
                ..StartOptions::default()
            },
        )
    }

    /// The socket of the session whose guardian is `fs`.
    pub fn socket(&self, fs: &Forkscope) -> PathBuf {
        self.dir
            .path()
            .join("forkscope")
            .join(format!("{}.sock", fs.pid()))
    }

    /// Waits until the session's socket accepts connections.
    pub fn wait_socket(&self, fs: &Forkscope) -> PathBuf {
        let path = self.socket(fs);
        wait_for("the control socket", secs(10.0), || {
            UnixStream::connect(&path).is_ok()
        });
        path
    }

    /// Runs `forkscope ARGS` (ctl, barrier) with this directory; bounded to 30 s.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(bin());
        command
            .args(args)
            .envs(self.env())
            .env_remove("FORKSCOPE_SOCKET")
            .stdin(Stdio::null());
        command_output(&mut command, secs(30.0))
    }

    /// `forkscope ctl ARGS`, asserting success; its stdout.
    pub fn ctl(&self, args: &[&str]) -> String {
        let mut all = vec!["ctl"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "ctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A raw protocol connection.
pub struct LineClient {
    pub reader: BufReader<UnixStream>,
    pub writer: UnixStream,
}

impl LineClient {
    pub fn connect(path: &std::path::Path) -> LineClient {
        let stream = UnixStream::connect(path).expect("connect");
        stream
            .set_read_timeout(Some(secs(30.0)))
            .expect("read timeout");
        LineClient {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    pub fn read(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read a reply");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line:?}"))
    }

    /// Sends one request line and returns the next line.
    pub fn ask(&mut self, request: &str) -> Value {
        self.send_raw(request.as_bytes());
        self.send_raw(b"\n");
        self.read()
    }
}
