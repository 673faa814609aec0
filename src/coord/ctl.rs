//! `forkscope ctl`: talks to a running session's control socket.
