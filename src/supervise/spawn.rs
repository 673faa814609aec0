//! Starting one worker: no shell, its own process group, stdin from /dev/null, stdout and
//! stderr into pipes (or one pseudo-terminal), the pool variables in its environment, and a
//! pidfd taken at once.

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use super::PoolSpec;
use super::pidfd::Pidfd;
use super::worker_io::{SessionIo, StdinMode, buffering_env};
use crate::inspect::proc::read_stat;

/// A worker that was started.
pub struct Spawned {
    pub pid: i32,
    pub pidfd: Pidfd,
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
    stdin: Stdio,
    stdout: Stdio,
    stderr: Stdio,
    /// Inodes of the capture pipes (for the Python hooks); empty with a pty.
    inodes: Vec<u64>,
}

/// Two pipes; stdin is /dev/null (`worker_io::resolve` refuses a pty stdin without a pty).
fn pipes() -> std::io::Result<OutputEnds> {
    use rustix::pipe::{PipeFlags, pipe_with};
    let (out_read, out_write) = pipe_with(PipeFlags::CLOEXEC)?;
    let (err_read, err_write) = pipe_with(PipeFlags::CLOEXEC)?;
    let inodes = vec![
        rustix::fs::fstat(&out_read)?.st_ino,
        rustix::fs::fstat(&err_read)?.st_ino,
    ];
    Ok(OutputEnds {
        ours_stdout: out_read,
        ours_stderr: Some(err_read),
        stdin: Stdio::null(),
        stdout: Stdio::from(out_write),
        stderr: Stdio::from(err_write),
        inodes,
    })
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
        StdinMode::Null => Stdio::null(),
        StdinMode::Pty => Stdio::from(pair.slave.try_clone()?),
    };
    Ok(OutputEnds {
        ours_stdout: pair.master,
        ours_stderr: None,
        stdin,
        stdout: Stdio::from(pair.slave.try_clone()?),
        stderr: Stdio::from(pair.slave),
        inodes: Vec::new(),
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
    let (program, args) = spec
        .argv
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"))?;
    let ends = if spec.io.pty {
        let (cols, rows) = session_io.pty_size;
        pty(spec.io.stdin, cols, rows)?
    } else {
        pipes()?
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .envs(extra_env.iter().map(|(k, v)| (k, v)))
        .env("FORKSCOPE_POOL", &spec.name)
        .env("FORKSCOPE_WORKER", index.to_string())
        .env("FORKSCOPE_POOL_SIZE", size.to_string())
        .envs(buffering_env(&spec.io, &spec.env, |name| {
            std::env::var_os(name)
        }))
        .envs(session_io.hooks_env(spec, &ends.inodes))
        .stdin(ends.stdin)
        .stdout(ends.stdout)
        .stderr(ends.stderr)
        .process_group(0);
    if let Some(dir) = &spec.cwd {
        command.current_dir(dir);
    }
    if let Some(identity) = &spec.launch.identity {
        super::launch::apply_identity(&mut command, identity);
    }
    if trace {
        // SAFETY: between fork and exec only async-signal-safe calls: ptrace(2).
        unsafe {
            command.pre_exec(|| {
                let rc = libc::ptrace(
                    libc::PTRACE_TRACEME,
                    0,
                    std::ptr::null_mut::<libc::c_void>(),
                    std::ptr::null_mut::<libc::c_void>(),
                );
                if rc == -1 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(())
                }
            });
        }
    }
    let child = command
        .spawn()
        .map_err(|err| explain_exec_error(program, spec.cwd.as_deref(), err))?;
    // The worker's ends must close here, or end of file would never come.
    drop(command);
    let pid = child.id() as i32;
    // The child is ours and unreaped, so this pidfd is certainly for it.
    let pidfd = Pidfd::open(pid).map_err(|e| std::io::Error::other(e.to_string()))?;
    let start_time = read_stat(pid).ok().map(|s| s.start_time);
    // Dropping a std Child neither waits nor kills: the engine reaps it.
    drop(child);
    Ok(Spawned {
        pid,
        pidfd,
        start_time,
        stdout: ends.ours_stdout,
        stderr: ends.ours_stderr,
        pty: spec.io.pty,
    })
}

/// Raises the soft limit of open files to the hard limit; returns the new soft limit.
///
/// Every running worker costs forkscope three descriptors (two pipe ends and a pidfd), so
/// the usual default soft limit of 1024 would make worker ~340 fail with EMFILE. Workers
/// inherit the raised limit.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a plain struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(limit.rlim_cur)
}
