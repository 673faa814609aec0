//! A blocking client of the control socket, for `ctl` and `barrier wait`.
