//! A pool's launch keys in the config (`docs/config.md`): `depends_on` (every name a pool of
//! the file, no cycle), `ready` (one of `tcp`, `file`, `command`, with `timeout` and
//! `interval`) and `user`/`group` (resolved here; someone else than us only as root).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::raw::{RawPool, RawReady, SignalValue};
use super::{Checker, ConfigError};
use crate::supervise::launch_rules::{Identity, LaunchRules, Probe, ReadyCheck};

/// `ready.timeout` when not given.
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// `ready.interval` when not given.
const DEFAULT_READY_INTERVAL: Duration = Duration::from_millis(200);

/// The `depends_on` names of one pool, with their places (checked once every pool is known).
pub(super) type Dependencies = Vec<Spanned<String>>;

impl Checker<'_> {
    /// `depends_on` (names only; [`Checker::check_dependencies`] checks them), `ready`,
    /// `user`/`group`. `dir`: where the pool's workers run.
    pub(super) fn pool_launch(
        &self,
        raw: &RawPool,
        dir: &Path,
    ) -> Result<LaunchRules, ConfigError> {
        let depends_on = raw
            .depends_on
            .as_ref()
            .map(|deps| deps.get_ref().iter().map(|d| d.get_ref().clone()).collect())
            .unwrap_or_default();
        let ready = raw
            .ready
            .as_ref()
            .map(|ready| self.ready(ready, dir))
            .transpose()?;
        let identity = self.identity(raw)?;
        Ok(LaunchRules {
            depends_on,
            ready,
            identity,
        })
    }

    fn ready(&self, ready: &Spanned<RawReady>, dir: &Path) -> Result<ReadyCheck, ConfigError> {
        let raw = ready.get_ref();
        let probes = [&raw.tcp, &raw.file, &raw.command];
        if probes.iter().filter(|p| p.is_some()).count() != 1 {
            return Err(self.err(
                ready.span(),
                "ready needs exactly one of tcp = \"127.0.0.1:8080\", file = \"path\" or command = \"...\"",
            ));
        }
        let probe = if let Some(tcp) = &raw.tcp {
            let addr = tcp.get_ref().parse().map_err(|_| {
                self.err(
                    tcp.span(),
                    format!(
                        "ready.tcp: {:?} is not an IP address and port (like \"127.0.0.1:8080\")",
                        tcp.get_ref()
                    ),
                )
            })?;
            Probe::Tcp(addr)
        } else if let Some(file) = &raw.file {
            if file.get_ref().is_empty() || file.get_ref().contains('\0') {
                return Err(self.err(file.span(), "ready.file is empty"));
            }
            Probe::File(file.get_ref().into())
        } else if let Some(command) = &raw.command {
            if command.get_ref().trim().is_empty() || command.get_ref().contains('\0') {
                return Err(self.err(command.span(), "ready.command is empty"));
            }
            Probe::Command(command.get_ref().clone())
        } else {
            return Err(self.err(ready.span(), "ready needs tcp, file or command"));
        };
        let timeout = match &raw.timeout {
            Some(t) => self.duration(t, 0.001, "ready.timeout")?,
            None => DEFAULT_READY_TIMEOUT,
        };
        let interval = match &raw.interval {
            Some(i) => self.duration(i, 0.01, "ready.interval")?,
            None => DEFAULT_READY_INTERVAL,
        };
        Ok(ReadyCheck {
            probe,
            timeout,
            interval,
            dir: dir.to_path_buf(),
        })
    }

    /// `user`/`group`: `None` when the workers keep our identity.
    fn identity(&self, raw: &RawPool) -> Result<Option<Identity>, ConfigError> {
        use nix::unistd::{Gid, Group, Uid, User, getegid, geteuid};
        if raw.user.is_none() && raw.group.is_none() {
            return Ok(None);
        }
        let user = match &raw.user {
            None => None,
            Some(value) => {
                let found = match value.get_ref() {
                    SignalValue::Name(name) => User::from_name(name).ok().flatten(),
                    SignalValue::Number(id) => u32::try_from(*id)
                        .ok()
                        .and_then(|id| User::from_uid(Uid::from_raw(id)).ok().flatten()),
                };
                Some(found.ok_or_else(|| {
                    self.err(value.span(), format!("user: no such user {}", shown(value)))
                })?)
            }
        };
        let gid = match &raw.group {
            None => user.as_ref().map(|u| u.gid.as_raw()),
            Some(value) => {
                let found = match value.get_ref() {
                    SignalValue::Name(name) => Group::from_name(name).ok().flatten(),
                    SignalValue::Number(id) => u32::try_from(*id)
                        .ok()
                        .and_then(|id| Group::from_gid(Gid::from_raw(id)).ok().flatten()),
                };
                Some(
                    found
                        .ok_or_else(|| {
                            self.err(
                                value.span(),
                                format!("group: no such group {}", shown(value)),
                            )
                        })?
                        .gid
                        .as_raw(),
                )
            }
        };
        let uid = user.as_ref().map_or(geteuid().as_raw(), |u| u.uid.as_raw());
        let gid = gid.unwrap_or(getegid().as_raw());
        if !geteuid().is_root() {
            if let (Some(value), true) = (&raw.user, uid != geteuid().as_raw()) {
                return Err(self.err(
                    value.span(),
                    format!(
                        "user: running as another user ({}) needs forkscope to run as root",
                        shown(value)
                    ),
                ));
            }
            if let (Some(value), true) = (&raw.group, gid != getegid().as_raw()) {
                return Err(self.err(
                    value.span(),
                    format!(
                        "group: running as another group ({}) needs forkscope to run as root",
                        shown(value)
                    ),
                ));
            }
            // Ourselves: nothing to change.
            return Ok(None);
        }
        let groups = match &user {
            Some(user) => std::ffi::CString::new(user.name.clone())
                .ok()
                .and_then(|name| nix::unistd::getgrouplist(&name, Gid::from_raw(gid)).ok())
                .map(|list| list.into_iter().map(Gid::as_raw).collect())
                .unwrap_or_else(|| vec![gid]),
            None => vec![gid],
        };
        Ok(Some(Identity { uid, gid, groups }))
    }

    /// Every `depends_on` name is another pool of the file, and no pool waits for itself
    /// through others (the error points at the name that closes the cycle).
    pub(super) fn check_dependencies(
        &self,
        pools: &[(String, Dependencies)],
    ) -> Result<(), ConfigError> {
        let index: HashMap<&str, usize> = pools
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.as_str(), i))
            .collect();
        for (name, deps) in pools {
            for dep in deps {
                if !index.contains_key(dep.get_ref().as_str()) {
                    return Err(self.err(
                        dep.span(),
                        format!("depends_on: no pool named {:?}", dep.get_ref()),
                    ));
                }
                if dep.get_ref() == name {
                    return Err(self.err(
                        dep.span(),
                        format!("depends_on: pool {name:?} cannot wait for itself"),
                    ));
                }
            }
        }
        // 0: not visited, 1: on the current path, 2: done.
        let mut mark = vec![0u8; pools.len()];
        for start in 0..pools.len() {
            let mut path: Vec<(usize, usize)> = vec![(start, 0)];
            if mark[start] != 0 {
                continue;
            }
            mark[start] = 1;
            while let Some(&mut (node, ref mut next)) = path.last_mut() {
                let deps = &pools[node].1;
                if *next >= deps.len() {
                    mark[node] = 2;
                    path.pop();
                    continue;
                }
                let dep = &deps[*next];
                *next += 1;
                let Some(&target) = index.get(dep.get_ref().as_str()) else {
                    continue;
                };
                match mark[target] {
                    0 => {
                        mark[target] = 1;
                        path.push((target, 0));
                    }
                    1 => {
                        let from = path.iter().position(|(n, _)| *n == target).unwrap_or(0);
                        let mut names: Vec<&str> = path[from..]
                            .iter()
                            .map(|(n, _)| pools[*n].0.as_str())
                            .collect();
                        names.push(pools[target].0.as_str());
                        return Err(self.err(
                            dep.span(),
                            format!("depends_on: a cycle: {}", names.join(" -> ")),
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

fn shown(value: &Spanned<SignalValue>) -> String {
    match value.get_ref() {
        SignalValue::Name(name) => format!("{name:?}"),
        SignalValue::Number(id) => id.to_string(),
    }
}
