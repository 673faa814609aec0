//! The Python helper (`import forkscope`), shipped inside the binary and written out on
//! demand to a per-user directory that `forkscope python-path` prints.
