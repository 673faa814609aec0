//! A C-style SysV segment (Python ctypes shmget/shmat): listed by key, read through
//! /proc/PID/mem (no fd holds it), decoded as i32 and as a struct layout; changes seen.

mod common;

use common::shm::*;

const PROGRAM: &str = r#"
import ctypes, ctypes.util, os, sys
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
IPC_CREAT, IPC_EXCL, IPC_RMID = 0o1000, 0o2000, 0
key = int(sys.argv[1])
shmid = libc.shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0o600)
assert shmid >= 0, ctypes.get_errno()
addr = libc.shmat(shmid, None, 0)
assert addr not in (None, ctypes.c_void_p(-1).value)
ints = (ctypes.c_int32 * 4).from_address(addr)
ints[0], ints[1], ints[2] = 1, 2, 3
name = ctypes.create_string_buffer(b"sysv!", 8)
ctypes.memmove(addr + 16, name, 8)
print("ready", shmid, flush=True)
for line in sys.stdin:
    if line.strip() == "bump":
        ints[1] = 20
        print("bumped", flush=True)
    elif line.strip() == "quit":
        break
libc.shmdt(ctypes.c_void_p(addr))
libc.shmctl(shmid, IPC_RMID, None)
print("bye", flush=True)
"#;

/// Removes the segment with `key` if the program did not (a failed test).
struct SysvGuard(i32);

impl Drop for SysvGuard {
    fn drop(&mut self) {
        // SAFETY: plain syscalls on a key only this test uses.
        unsafe {
            let id = libc::shmget(self.0, 0, 0);
            if id >= 0 {
                libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
            }
        }
    }
}

#[test]
fn sysv_segment() {
    let key = 0x5f00_0000 | (std::process::id() as i32 & 0xff_ffff);
    let _guard = SysvGuard(key);
    let mut py = Py::start(PROGRAM, &[&key.to_string()]);
    py.expect("ready");
    let pid = py.pid().to_string();
    let name = format!("SYSV{key:08x}");
    let entry = find_entry(py.pid(), |e| e["name"] == name.as_str()).expect("listed");
    assert_eq!(entry["kind"], "sysv");
    assert_eq!(entry["size"], 4096);
    assert_eq!(entry["deleted"], false);
    assert_eq!(entry["pids"], serde_json::json!([py.pid()]));

    let ints = forkscope_json(&["shm", "show", &name, "--pid", &pid, "--as", "i32"]);
    assert_eq!(ints["values"].as_array().unwrap()[..4], [1, 2, 3, 0]);
    let record = forkscope_json(&[
        "shm",
        "show",
        &name,
        "--pid",
        &pid,
        "--as",
        "layout:a:i32, b:i32[3], name:char[8]",
    ]);
    assert_eq!(record["fields"][1]["values"], serde_json::json!([2, 3, 0]));
    assert_eq!(record["fields"][2]["text"], "sysv!");

    // Without --pid: found in the system-wide scan too.
    let all = forkscope_json(&["shm", "ls"]);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == name.as_str())
    );

    py.send("bump");
    py.expect("bumped");
    let ints = forkscope_json(&["shm", "show", &name, "--pid", &pid, "--as", "i32"]);
    assert_eq!(ints["values"][1], 20);

    py.send("quit");
    py.expect("bye");
    py.finish();
    // SAFETY: a lookup only.
    assert!(unsafe { libc::shmget(key, 0, 0) } < 0, "segment removed");
}
