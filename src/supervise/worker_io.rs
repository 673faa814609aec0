//! How a worker's output reaches forkscope: the buffering hints put in its environment
//! (`PYTHONUNBUFFERED`, coreutils' libstdbuf), whether stdout and stderr are pipes or a
//! pseudo-terminal, and what its stdin is.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// How workers are asked to buffer their output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Buffering {
    /// `PYTHONUNBUFFERED=1` unless the environment already says otherwise (the default).
    #[default]
    Live,
    /// Nothing added: programs buffer as they would into any pipe.
    Buffered,
    /// Live, and C stdio line-buffered through libstdbuf (`LD_PRELOAD`). The path is found
    /// by [`resolve_libstdbuf`] before the session starts.
    LineBuffered { libstdbuf: Option<PathBuf> },
}

/// A pool's `buffering` key in the config file (`--buffered` and `--line-buffered` on the
/// command line); [`Buffering`] once libstdbuf is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BufferingChoice {
    Live,
    Buffered,
    LineBuffered,
}

impl From<BufferingChoice> for Buffering {
    fn from(choice: BufferingChoice) -> Self {
        match choice {
            BufferingChoice::Live => Self::Live,
            BufferingChoice::Buffered => Self::Buffered,
            BufferingChoice::LineBuffered => Self::LineBuffered { libstdbuf: None },
        }
    }
}

/// What a worker's stdin is (`--stdin`, a pool's `stdin`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StdinMode {
    /// `/dev/null`: reading gives end of file at once.
    #[default]
    Null,
    /// The worker's pseudo-terminal (with `pty`): reading waits, as nothing is ever typed.
    Pty,
}

impl StdinMode {
    /// The spelling of `--stdin` and of a pool's `stdin`.
    pub fn as_str(self) -> &'static str {
        match self {
            StdinMode::Null => "null",
            StdinMode::Pty => "pty",
        }
    }
}

/// A pool's output settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerIo {
    pub buffering: Buffering,
    /// stdout and stderr are one pseudo-terminal instead of two pipes.
    pub pty: bool,
    pub stdin: StdinMode,
    /// Python processes of the tree get a pipe of their own (`supervise::python_hooks`).
    pub python_hooks: bool,
}

/// The session's side of the workers' output: what every spawn needs besides its pool.
#[derive(Clone, Debug)]
pub struct SessionIo {
    /// Columns and rows of a new pty (the TUI's output pane; 80x24 headless).
    pub pty_size: (u16, u16),
    /// Where the Python bootstrap lives, when the hooks run this session.
    pub python_hooks: Option<HooksPaths>,
}

impl Default for SessionIo {
    fn default() -> Self {
        SessionIo {
            pty_size: (80, 24),
            python_hooks: None,
        }
    }
}

/// The private directory with `sitecustomize.py`, and the socket the hooks talk to.
#[derive(Clone, Debug)]
pub struct HooksPaths {
    pub dir: PathBuf,
    pub socket: PathBuf,
}

/// The variable listing the inodes of a worker's capture pipes.
pub const CAPTURE_INODES_ENV: &str = "FORKSCOPE_CAPTURE_INODES";
/// The variable naming the socket where Python processes ask for a pipe of their own.
pub const OUTPUT_SOCKET_ENV: &str = "FORKSCOPE_OUTPUT_SOCKET";

impl SessionIo {
    /// The Python bootstrap's variables for a worker of `spec` whose capture pipes have
    /// `inodes` (none with a pty: a process there keeps the terminal).
    pub fn hooks_env(&self, spec: &super::PoolSpec, inodes: &[u64]) -> Vec<(String, OsString)> {
        let Some(paths) = &self.python_hooks else {
            return Vec::new();
        };
        if !spec.io.python_hooks || inodes.is_empty() {
            return Vec::new();
        }
        let current = spec
            .env
            .iter()
            .find(|(k, _)| k == "PYTHONPATH")
            .map(|(_, v)| OsString::from(v))
            .or_else(|| std::env::var_os("PYTHONPATH"))
            .filter(|v| !v.is_empty());
        let mut python_path = paths.dir.as_os_str().to_os_string();
        if let Some(current) = current {
            python_path.push(":");
            python_path.push(current);
        }
        let inodes: Vec<String> = inodes.iter().map(u64::to_string).collect();
        vec![
            ("PYTHONPATH".to_string(), python_path),
            (
                OUTPUT_SOCKET_ENV.to_string(),
                paths.socket.as_os_str().to_os_string(),
            ),
            (
                CAPTURE_INODES_ENV.to_string(),
                OsString::from(inodes.join(",")),
            ),
        ]
    }
}

/// Why a pool's output settings cannot be honoured.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    #[error(
        "--line-buffered needs coreutils' libstdbuf.so (the library behind `stdbuf`); \
         none found ({searched})"
    )]
    NoLibstdbuf { searched: String },
    #[error("pool {pool:?}: stdin = pty needs pty = true (--stdin pty needs --pty)")]
    StdinPtyWithoutPty { pool: String },
}

/// Checks every pool's output settings and fills in the libstdbuf path where asked for.
pub fn resolve(pools: &mut [super::PoolSpec]) -> Result<(), IoError> {
    for pool in pools.iter_mut() {
        if pool.io.stdin == StdinMode::Pty && !pool.io.pty {
            return Err(IoError::StdinPtyWithoutPty {
                pool: pool.name.clone(),
            });
        }
        if let Buffering::LineBuffered { libstdbuf } = &mut pool.io.buffering
            && libstdbuf.is_none()
        {
            *libstdbuf = Some(resolve_libstdbuf()?);
        }
    }
    Ok(())
}

/// Finds libstdbuf.so where `stdbuf` finds it: in coreutils' libexec directory beside the
/// `stdbuf` found on PATH (`/usr/bin/stdbuf` -> `/usr/libexec/coreutils/libstdbuf.so`, or
/// `/usr/lib/coreutils/` on distributions that put it there). No `stdbuf`, no library.
pub fn resolve_libstdbuf() -> Result<PathBuf, IoError> {
    let mut prefixes: Vec<PathBuf> = Vec::new();
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let stdbuf = dir.join("stdbuf");
        if !stdbuf.is_file() {
            continue;
        }
        let real = std::fs::canonicalize(&stdbuf).unwrap_or(stdbuf);
        let Some(prefix) = real.parent().and_then(Path::parent) else {
            continue;
        };
        for sub in ["libexec/coreutils", "lib/coreutils", "lib64/coreutils"] {
            let candidate = prefix.join(sub).join("libstdbuf.so");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        prefixes.push(prefix.to_path_buf());
    }
    let searched: Vec<String> = prefixes.iter().map(|p| p.display().to_string()).collect();
    Err(IoError::NoLibstdbuf {
        searched: if searched.is_empty() {
            "no stdbuf on PATH".into()
        } else {
            searched.join(", ")
        },
    })
}

/// The variables a worker gets for `io`, given the pool's `env` and forkscope's own
/// environment (`inherited`). A variable either of them sets is never overridden.
pub fn buffering_env(
    io: &WorkerIo,
    pool_env: &[(String, String)],
    inherited: impl Fn(&str) -> Option<OsString>,
) -> Vec<(String, OsString)> {
    let set_already =
        |name: &str| pool_env.iter().any(|(k, _)| k == name) || inherited(name).is_some();
    let mut env = Vec::new();
    if io.buffering != Buffering::Buffered && !set_already("PYTHONUNBUFFERED") {
        env.push(("PYTHONUNBUFFERED".to_string(), OsString::from("1")));
    }
    if let Buffering::LineBuffered {
        libstdbuf: Some(lib),
    } = &io.buffering
    {
        let current = pool_env
            .iter()
            .find(|(k, _)| k == "LD_PRELOAD")
            .map(|(_, v)| OsString::from(v))
            .or_else(|| inherited("LD_PRELOAD"))
            .filter(|v| !v.is_empty());
        let mut preload = lib.as_os_str().to_os_string();
        if let Some(current) = current {
            preload.push(":");
            preload.push(current);
        }
        env.push(("LD_PRELOAD".to_string(), preload));
        for name in ["_STDBUF_O", "_STDBUF_E"] {
            if !set_already(name) {
                env.push((name.to_string(), OsString::from("L")));
            }
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(env: &[(String, OsString)]) -> Vec<String> {
        env.iter()
            .map(|(k, v)| format!("{k}={}", v.to_string_lossy()))
            .collect()
    }

    #[test]
    fn live_unless_someone_said_otherwise() {
        let io = WorkerIo::default();
        assert_eq!(
            names(&buffering_env(&io, &[], |_| None)),
            ["PYTHONUNBUFFERED=1"]
        );
        let inherited = |n: &str| (n == "PYTHONUNBUFFERED").then(|| OsString::from(""));
        assert!(buffering_env(&io, &[], inherited).is_empty());
        let pool = [("PYTHONUNBUFFERED".to_string(), "0".to_string())];
        assert!(buffering_env(&io, &pool, |_| None).is_empty());
    }

    #[test]
    fn buffered_adds_nothing() {
        let io = WorkerIo {
            buffering: Buffering::Buffered,
            ..WorkerIo::default()
        };
        assert!(buffering_env(&io, &[], |_| None).is_empty());
    }

    #[test]
    fn line_buffered_preloads_libstdbuf_before_the_users_preload() {
        let io = WorkerIo {
            buffering: Buffering::LineBuffered {
                libstdbuf: Some(PathBuf::from("/x/libstdbuf.so")),
            },
            ..WorkerIo::default()
        };
        let inherited = |n: &str| (n == "LD_PRELOAD").then(|| OsString::from("/y/lib.so"));
        assert_eq!(
            names(&buffering_env(&io, &[], inherited)),
            [
                "PYTHONUNBUFFERED=1",
                "LD_PRELOAD=/x/libstdbuf.so:/y/lib.so",
                "_STDBUF_O=L",
                "_STDBUF_E=L"
            ]
        );
    }

    #[test]
    fn stdin_pty_needs_a_pty() {
        let mut pools = [super::super::PoolSpec {
            name: "p".into(),
            size: 1,
            argv: vec!["true".into()],
            env: Vec::new(),
            cwd: None,
            restart: crate::model::policy::RestartPolicy::Never,
            stop_signal: libc::SIGTERM,
            io: WorkerIo {
                stdin: StdinMode::Pty,
                ..WorkerIo::default()
            },
            policy: Default::default(),
            launch: Default::default(),
        }];
        assert!(matches!(
            resolve(&mut pools),
            Err(IoError::StdinPtyWithoutPty { .. })
        ));
    }
}
