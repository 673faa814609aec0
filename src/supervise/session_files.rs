//! Where a session's control socket lives: `$XDG_RUNTIME_DIR/forkscope/` when that directory
//! is usable, else a private `forkscope-<uid>` directory (mode 0700) under the temp dir. The
//! socket of the session whose guardian (or engine, without a guardian) has pid P is
//! `<dir>/P.sock`, so the guardian can remove it after a SIGKILLed engine without being told.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;

/// The directory holding this user's control sockets; created (0700) when missing. Refuses a
/// directory that belongs to another user or that others can enter.
pub fn socket_dir() -> io::Result<PathBuf> {
    let uid = rustix::process::getuid().as_raw();
    let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(runtime) if !runtime.is_empty() && PathBuf::from(&runtime).is_dir() => {
            PathBuf::from(runtime).join("forkscope")
        }
        _ => std::env::temp_dir().join(format!("forkscope-{uid}")),
    };
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err),
    }
    let meta = fs::symlink_metadata(&dir)?;
    if !meta.is_dir() || meta.uid() != uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is not a directory of uid {uid}", dir.display()),
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir)
}

/// The control socket of the session whose user-visible pid is `session_pid`.
pub fn socket_path(session_pid: i32) -> io::Result<PathBuf> {
    Ok(socket_dir()?.join(format!("{session_pid}.sock")))
}

/// Removes the session's socket if it is still there; true if something was removed.
pub fn remove_socket(session_pid: i32) -> bool {
    socket_path(session_pid).is_ok_and(|path| fs::remove_file(path).is_ok())
}
