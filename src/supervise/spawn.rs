//! Starting one worker: no shell, its own process group, stdin from /dev/null, stdout and
//! stderr into pipes (or one pseudo-terminal), the pool variables in its environment, and
//! its pidfd from the same `clone` (`launch.rs`). Costs per worker, on the engine thread:
//! two `pipe2`, one `clone`, two `close`, one read of `/proc/PID/stat` (the start time).

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::OnceLock;

use super::PoolSpec;
use super::launch::{LaunchError, Plan, Step, launch};
use super::pidfd::Pidfd;
use super::worker_io::{SessionIo, StdinMode, buffering_env};
use crate::inspect::proc::{ProcStat, read_stat};

/// A worker that was started.
pub struct Spawned {
    pub pid: i32,
    pub pidfd: Pidfd,
    /// Its `/proc/PID/stat` right after exec (start time, comm).
    pub stat: Option<ProcStat>,
    pub start_time: Option<u64>,
    /// The read end of the stdout pipe, or the pty's master side (stdout and stderr both).
    pub stdout: OwnedFd,
    /// The read end of the stderr pipe; `None` with a pty.
    pub stderr: Option<OwnedFd>,
    /// `stdout` is a pty master.
    pub pty: bool,
}

/// The worker's ends of its output channels, and forkscope's.
struct OutputEnds {
    ours_stdout: OwnedFd,
    ours_stderr: Option<OwnedFd>,
    /// The worker's stdin, stdout and stderr (`None`: /dev/null); closed here after the spawn.
    theirs: [Option<OwnedFd>; 3],
}

/// /dev/null, opened once for every worker's stdin.
fn dev_null() -> std::io::Result<&'static OwnedFd> {
    static NULL: OnceLock<OwnedFd> = OnceLock::new();
    if let Some(fd) = NULL.get() {
        return Ok(fd);
    }
    use rustix::fs::{Mode, OFlags, open};
    let fd = open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    Ok(NULL.get_or_init(|| fd))
}

/// Two pipes; stdin is /dev/null (`worker_io::resolve` refuses a pty stdin without a pty).
fn pipes() -> std::io::Result<OutputEnds> {
    use rustix::pipe::{PipeFlags, pipe_with};
    let (out_read, out_write) = pipe_with(PipeFlags::CLOEXEC)?;
    let (err_read, err_write) = pipe_with(PipeFlags::CLOEXEC)?;
    Ok(OutputEnds {
        ours_stdout: out_read,
        ours_stderr: Some(err_read),
        theirs: [None, Some(out_write), Some(err_write)],
    })
}

/// Inodes of the capture pipes, for the Python hooks (only asked when they are on).
fn pipe_inodes(ends: &OutputEnds) -> std::io::Result<Vec<u64>> {
    let Some(stderr) = &ends.ours_stderr else {
        return Ok(Vec::new());
    };
    Ok(vec![
        rustix::fs::fstat(&ends.ours_stdout)?.st_ino,
        rustix::fs::fstat(stderr)?.st_ino,
    ])
}

/// A pseudo-terminal: the worker gets the slave side as stdout and stderr (and stdin if
/// asked), forkscope keeps the master. The slave never becomes a controlling terminal (the
/// worker is no session leader), and output post-processing is off so `\n` stays `\n`.
fn pty(stdin: StdinMode, cols: u16, rows: u16) -> std::io::Result<OutputEnds> {
    use rustix::io::{FdFlags, fcntl_setfd};
    use rustix::termios::{OptionalActions, OutputModes, tcgetattr, tcsetattr};
    let size = nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pair = nix::pty::openpty(&size, None).map_err(std::io::Error::from)?;
    fcntl_setfd(&pair.master, FdFlags::CLOEXEC)?;
    fcntl_setfd(&pair.slave, FdFlags::CLOEXEC)?;
    let mut modes = tcgetattr(&pair.slave)?;
    modes.output_modes.remove(OutputModes::ONLCR);
    tcsetattr(&pair.slave, OptionalActions::Now, &modes)?;
    let stdin = match stdin {
        StdinMode::Null => None,
        StdinMode::Pty => Some(pair.slave.try_clone()?),
    };
    Ok(OutputEnds {
        ours_stdout: pair.master,
        ours_stderr: None,
        theirs: [stdin, Some(pair.slave.try_clone()?), Some(pair.slave)],
    })
}

/// execve answers EACCES both for a directory and for a file without the execute bit: say
/// which (and name the program in every case).
fn explain_exec_error(
    program: &str,
    cwd: Option<&std::path::Path>,
    err: std::io::Error,
) -> std::io::Error {
    let why = match err.kind() {
        std::io::ErrorKind::PermissionDenied => match find_program(program, cwd) {
            Some(path) if path.is_dir() => "is a directory".to_string(),
            Some(path) => {
                use std::os::unix::fs::PermissionsExt;
                match std::fs::metadata(&path) {
                    Ok(meta) if meta.permissions().mode() & 0o111 == 0 => {
                        "permission denied (not executable)".to_string()
                    }
                    _ => format!("permission denied ({})", path.display()),
                }
            }
            None => "permission denied".to_string(),
        },
        std::io::ErrorKind::NotFound if !program.contains('/') => {
            format!("{err}: no such program in PATH")
        }
        _ => err.to_string(),
    };
    std::io::Error::new(err.kind(), format!("{program}: {why}"))
}

/// The file `execvp` would try for `program`: the path itself when it has a `/` (relative to
/// `cwd`), else the first entry of PATH that exists.
fn find_program(program: &str, cwd: Option<&std::path::Path>) -> Option<std::path::PathBuf> {
    if program.contains('/') {
        let path = std::path::Path::new(program);
        return Some(match cwd {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        });
    }
    let search = std::env::var_os("PATH")?;
    std::env::split_paths(&search)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.exists())
}

/// Starts worker `index` of `spec`. `extra_env` comes from the engine (the `--shm` names).
pub fn spawn_worker(
    spec: &PoolSpec,
    index: u32,
    size: u32,
    extra_env: &[(String, String)],
    trace: bool,
    session_io: &SessionIo,
) -> std::io::Result<Spawned> {
    let (program, _) = spec
        .argv
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"))?;
    let ends = if spec.io.pty {
        let (cols, rows) = session_io.pty_size;
        pty(spec.io.stdin, cols, rows)?
    } else {
        pipes()?
    };
    let hooks_wanted = spec.io.python_hooks && session_io.python_hooks.is_some();
    let inodes = if hooks_wanted {
        pipe_inodes(&ends)?
    } else {
        Vec::new()
    };
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let mut set = |name: &str, value: &OsStr| match env.iter_mut().find(|(k, _)| k == name) {
        Some(entry) => entry.1 = value.to_os_string(),
        None => env.push((name.into(), value.to_os_string())),
    };
    for (name, value) in spec.env.iter().chain(extra_env) {
        set(name, value.as_ref());
    }
    set("FORKSCOPE_POOL", spec.name.as_ref());
    set("FORKSCOPE_WORKER", index.to_string().as_ref());
    set("FORKSCOPE_POOL_SIZE", size.to_string().as_ref());
    for (name, value) in buffering_env(&spec.io, &spec.env, |name| std::env::var_os(name)) {
        set(&name, &value);
    }
    for (name, value) in session_io.hooks_env(spec, &inodes) {
        set(&name, &value);
    }
    let search = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone());
    let null = dev_null()?;
    let fd_of = |end: &Option<OwnedFd>| end.as_ref().unwrap_or(null).as_raw_fd();
    let plan = Plan {
        candidates: candidates(program, search.as_deref())?,
        argv: spec
            .argv
            .iter()
            .map(|arg| c_string(arg.as_str()))
            .collect::<Result<_, _>>()?,
        envp: env
            .into_iter()
            .map(|(k, v)| {
                let mut entry = k.into_vec();
                entry.push(b'=');
                entry.extend_from_slice(v.as_bytes());
                c_string(entry)
            })
            .collect::<Result<_, _>>()?,
        cwd: spec
            .cwd
            .as_ref()
            .map(|dir| c_string(dir.as_os_str().as_bytes()))
            .transpose()?,
        stdio: [
            fd_of(&ends.theirs[0]),
            fd_of(&ends.theirs[1]),
            fd_of(&ends.theirs[2]),
        ],
        trace,
        identity: spec.launch.identity.clone(),
    };
    let launched = launch(&plan).map_err(|err| match err {
        LaunchError::Clone(err) => std::io::Error::new(err.kind(), format!("{program}: {err}")),
        LaunchError::Child(Step::Exec, err) => {
            explain_exec_error(program, spec.cwd.as_deref(), err)
        }
        LaunchError::Child(Step::Chdir, err) => {
            let dir = spec.cwd.as_deref().unwrap_or(std::path::Path::new(""));
            std::io::Error::new(
                err.kind(),
                format!("{program}: cwd {}: {err}", dir.display()),
            )
        }
        LaunchError::Child(Step::Identity, err) => std::io::Error::new(
            err.kind(),
            format!("{program}: taking the pool's user and group: {err}"),
        ),
        LaunchError::Child(Step::Setup, err) => std::io::Error::new(
            err.kind(),
            format!("{program}: setting up the worker: {err}"),
        ),
    })?;
    // The worker's ends must close here, or end of file would never come.
    drop(ends.theirs);
    let pid = launched.pid;
    let stat = read_stat(pid).ok();
    Ok(Spawned {
        pid,
        pidfd: Pidfd::from_owned(launched.pidfd, pid),
        start_time: stat.as_ref().map(|s| s.start_time),
        stat,
        stdout: ends.ours_stdout,
        stderr: ends.ours_stderr,
        pty: spec.io.pty,
    })
}

fn c_string(bytes: impl Into<Vec<u8>>) -> std::io::Result<CString> {
    CString::new(bytes).map_err(|err| {
        let bytes = err.into_vec();
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("a NUL byte in {:?}", String::from_utf8_lossy(&bytes)),
        )
    })
}

/// The files `execvp` would try for `program`, in order: the path itself when it has a `/`,
/// else each entry of `search` (the worker's PATH; `/bin:/usr/bin` without one, as glibc).
fn candidates(program: &str, search: Option<&OsStr>) -> std::io::Result<Vec<CString>> {
    if program.contains('/') {
        return Ok(vec![c_string(program)?]);
    }
    let search = search.unwrap_or(OsStr::new("/bin:/usr/bin"));
    search
        .as_bytes()
        .split(|b| *b == b':')
        .map(|dir| {
            let mut path = dir.to_vec();
            if !path.is_empty() && !path.ends_with(b"/") {
                path.push(b'/');
            }
            path.extend_from_slice(program.as_bytes());
            c_string(path)
        })
        .collect()
}

/// Raises the soft limit of open files to the hard limit; returns the new soft limit.
///
/// Every running worker costs forkscope three descriptors (two pipe ends and a pidfd), so
/// the usual default soft limit of 1024 would make worker ~340 fail with EMFILE. Workers
/// inherit the raised limit.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit)?;
    }
    Ok(limit.current.unwrap_or(u64::MAX))
}
