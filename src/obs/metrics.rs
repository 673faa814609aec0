//! The numbers `--metrics` serves, folded from the events (like the model: no `/proc` read
//! of its own): per worker slot `up`, restarts, exits by status and by signal, CPU seconds,
//! RSS, output lines and bytes, time sampled in uninterruptible wait; per pool size and
//! failures; the engine's own counts. [`MetricsFold::encode`] writes the Prometheus text
//! exposition through `prometheus-client`.

use std::collections::BTreeMap;
use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::owners::Slot;
use crate::model::{Event, EventBody, ExitStatus, signals::signal_name};

/// One worker slot's numbers.
#[derive(Clone, Debug, Default)]
pub struct WorkerStats {
    pub up: bool,
    pub restarts: u64,
    /// Exits by exit code (`"unknown"` when no source could tell).
    pub exits: BTreeMap<String, u64>,
    /// Exits by signal name.
    pub signaled: BTreeMap<String, u64>,
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    pub blocked_seconds: f64,
    pub lines: u64,
    pub bytes: u64,
}

/// One pool's numbers.
#[derive(Clone, Debug, Default)]
pub struct PoolStats {
    pub size: u64,
    pub failed: u64,
}

/// Numbers the fold cannot see in events, read at scrape time.
#[derive(Clone, Copy, Debug, Default)]
pub struct EngineCounters {
    pub backpressure_pauses: u64,
    pub unknown_exits: u64,
    pub log_write_errors: u64,
}

/// The fold.
#[derive(Clone, Debug, Default)]
pub struct MetricsFold {
    pub host: String,
    pub version: String,
    pub workers: BTreeMap<Slot, WorkerStats>,
    pub pools: BTreeMap<String, PoolStats>,
    pub events: BTreeMap<&'static str, u64>,
    pub connector_drops: u64,
    pub processes: i64,
    last_sample_t: f64,
    /// Pools a reload removed: their workers' series go as each worker ends.
    removed: std::collections::BTreeSet<String>,
}

impl MetricsFold {
    pub fn new(host: String) -> MetricsFold {
        MetricsFold {
            host,
            ..MetricsFold::default()
        }
    }

    /// Applies one event; `slot` is the worker slot its pid belongs to (`obs::owners`).
    pub fn apply(&mut self, event: &Event, slot: Option<&Slot>) {
        *self.events.entry(kind(&event.body)).or_default() += 1;
        match &event.body {
            EventBody::Session { version, pools, .. } => {
                self.version = version.clone();
                for pool in pools {
                    self.pools.entry(pool.name.clone()).or_default().size = u64::from(pool.size);
                }
            }
            EventBody::Spawn { restarts, .. } => {
                self.processes += 1;
                if let Some(slot) = slot {
                    let stats = self.workers.entry(slot.clone()).or_default();
                    stats.up = true;
                    // Restarts asked for (the `restart` action, a reload) have no `restart`
                    // event; the spawn counts them all.
                    stats.restarts = stats.restarts.max(u64::from(*restarts));
                }
            }
            EventBody::Fork { .. } => self.processes += 1,
            EventBody::Exit {
                status,
                pool,
                worker,
                zombie,
                ..
            } => {
                if !zombie {
                    self.processes -= 1;
                }
                if let (Some(pool), Some(worker)) = (pool, worker) {
                    if self.removed.contains(pool) {
                        self.workers.remove(&(Arc::from(pool.as_str()), *worker));
                        return;
                    }
                    let stats = self
                        .workers
                        .entry((Arc::from(pool.as_str()), *worker))
                        .or_default();
                    stats.up = false;
                    match status {
                        ExitStatus::Exited(code) => {
                            *stats.exits.entry(code.to_string()).or_default() += 1;
                        }
                        ExitStatus::Signaled { signal, .. } => {
                            *stats
                                .signaled
                                .entry(signal_name(*signal).into_owned())
                                .or_default() += 1;
                        }
                        ExitStatus::Unknown => {
                            *stats.exits.entry("unknown".into()).or_default() += 1;
                        }
                    }
                }
            }
            EventBody::Reap { .. } => self.processes -= 1,
            EventBody::Restart { pool, worker, .. } => {
                self.workers
                    .entry((Arc::from(pool.as_str()), *worker))
                    .or_default()
                    .restarts += 1;
            }
            EventBody::WorkerFailed { pool, .. } => {
                self.pools.entry(pool.clone()).or_default().failed += 1;
            }
            EventBody::Scale { pool, to, .. } => {
                self.pools.entry(pool.clone()).or_default().size = u64::from(*to);
            }
            EventBody::Reload {
                ok: true,
                removed,
                pools,
                ..
            } => {
                for pool in removed {
                    self.pools.remove(pool);
                    self.workers
                        .retain(|(p, _), stats| **p != **pool || stats.up);
                    self.removed.insert(pool.clone());
                }
                for pool in pools {
                    self.removed.remove(&pool.name);
                    self.pools.entry(pool.name.clone()).or_default().size = u64::from(pool.size);
                }
            }
            EventBody::Output { line, partial, .. } => {
                if let Some(stats) = slot.and_then(|slot| self.workers.get_mut(slot)) {
                    stats.lines += u64::from(!partial);
                    stats.bytes += line.len() as u64;
                }
            }
            EventBody::Notice { message, .. }
                if message.starts_with("the kernel dropped process events") =>
            {
                self.connector_drops += 1;
            }
            _ => {}
        }
    }

    /// Applies a `sample`, with the slot of each sampled pid.
    pub fn sample(&mut self, t: f64, procs: &[(Option<Slot>, &crate::model::ProcSample)]) {
        let dt = (t - self.last_sample_t).max(0.0);
        self.last_sample_t = t;
        let mut rss: BTreeMap<&Slot, u64> = BTreeMap::new();
        for (slot, proc) in procs {
            let Some(slot) = slot else { continue };
            *rss.entry(slot).or_default() += proc.rss_kb * 1024;
            if let Some(stats) = self.workers.get_mut(slot) {
                stats.cpu_seconds += f64::from(proc.cpu) / 100.0 * dt;
                if proc.state == 'D' {
                    stats.blocked_seconds += dt;
                }
            }
        }
        for (slot, stats) in self.workers.iter_mut() {
            stats.rss_bytes = rss.get(slot).copied().unwrap_or(0);
        }
    }

    /// The Prometheus (OpenMetrics) text exposition.
    pub fn encode(&self, engine: EngineCounters) -> Result<String, std::fmt::Error> {
        let mut registry = Registry::with_prefix("forkscope");
        let info = Family::<Labels, Gauge>::default();
        info.get_or_create(&vec![
            ("version", self.version.clone()),
            ("host", self.host.clone()),
        ])
        .set(1);
        registry.register("info", "forkscope's version and host", info);
        self.register_workers(&mut registry);
        self.register_pools(&mut registry);
        let events = Family::<Labels, Counter>::default();
        for (kind, n) in &self.events {
            events
                .get_or_create(&vec![("kind", (*kind).to_string())])
                .inc_by(*n);
        }
        registry.register("events", "Events the engine sent, by kind", events);
        let plain: [(&str, &str, u64); 4] = [
            (
                "backpressure_pauses",
                "Times output capture paused for a lagging consumer or log writer",
                engine.backpressure_pauses,
            ),
            (
                "connector_drops",
                "Episodes of process events the kernel dropped (ENOBUFS)",
                self.connector_drops,
            ),
            (
                "unknown_exits",
                "Exits no source could tell the status of",
                engine.unknown_exits,
            ),
            (
                "log_write_errors",
                "Log lines or flushes that failed (a full disk...)",
                engine.log_write_errors,
            ),
        ];
        for (name, help, value) in plain {
            let counter = Counter::<u64>::default();
            counter.inc_by(value);
            registry.register(name, help, counter);
        }
        let processes = Gauge::<i64>::default();
        processes.set(self.processes.max(0));
        registry.register("processes", "Live processes of the tree", processes);
        let mut text = String::with_capacity(256 * (self.workers.len() + 8));
        encode(&mut text, &registry)?;
        Ok(text)
    }

    fn register_workers(&self, registry: &mut Registry) {
        let up = Family::<Labels, Gauge>::default();
        let restarts = Family::<Labels, Counter>::default();
        let exits = Family::<Labels, Counter>::default();
        let signaled = Family::<Labels, Counter>::default();
        let cpu = Family::<Labels, Counter<f64>>::default();
        let rss = Family::<Labels, Gauge>::default();
        let blocked = Family::<Labels, Counter<f64>>::default();
        let lines = Family::<Labels, Counter>::default();
        let bytes = Family::<Labels, Counter>::default();
        for ((pool, worker), stats) in &self.workers {
            let labels = vec![("pool", pool.to_string()), ("worker", worker.to_string())];
            up.get_or_create(&labels).set(i64::from(stats.up));
            restarts.get_or_create(&labels).inc_by(stats.restarts);
            for (status, n) in &stats.exits {
                let mut with = labels.clone();
                with.push(("status", status.clone()));
                exits.get_or_create(&with).inc_by(*n);
            }
            for (signal, n) in &stats.signaled {
                let mut with = labels.clone();
                with.push(("signal", signal.clone()));
                signaled.get_or_create(&with).inc_by(*n);
            }
            cpu.get_or_create(&labels).inc_by(stats.cpu_seconds);
            rss.get_or_create(&labels)
                .set(i64::try_from(stats.rss_bytes).unwrap_or(i64::MAX));
            blocked.get_or_create(&labels).inc_by(stats.blocked_seconds);
            lines.get_or_create(&labels).inc_by(stats.lines);
            bytes.get_or_create(&labels).inc_by(stats.bytes);
        }
        registry.register("worker_up", "1 while the worker slot's process runs", up);
        registry.register("worker_restarts", "Restarts of the worker slot", restarts);
        registry.register("worker_exits", "Worker exits by exit status", exits);
        registry.register("worker_signaled", "Worker exits by signal", signaled);
        registry.register(
            "worker_cpu_seconds",
            "CPU seconds of the worker's tree, from the samples",
            cpu,
        );
        registry.register(
            "worker_rss_bytes",
            "Resident memory of the worker's tree at the last sample",
            rss,
        );
        registry.register(
            "worker_blocked_seconds",
            "Seconds the worker's tree was sampled in uninterruptible wait (state D)",
            blocked,
        );
        registry.register(
            "worker_output_lines",
            "Output lines of the worker's tree",
            lines,
        );
        registry.register(
            "worker_output_bytes",
            "Output bytes of the worker's tree (newlines not counted)",
            bytes,
        );
    }

    fn register_pools(&self, registry: &mut Registry) {
        let size = Family::<Labels, Gauge>::default();
        let failed = Family::<Labels, Counter>::default();
        for (pool, stats) in &self.pools {
            let labels = vec![("pool", pool.clone())];
            size.get_or_create(&labels)
                .set(i64::try_from(stats.size).unwrap_or(i64::MAX));
            failed.get_or_create(&labels).inc_by(stats.failed);
        }
        registry.register("pool_size", "Worker slots the pool should have", size);
        registry.register(
            "pool_worker_failures",
            "Worker slots given up (crash loop, spawn failure)",
            failed,
        );
    }
}

type Labels = Vec<(&'static str, String)>;

/// The host label: the kernel's host name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// An event's `kind`, as `docs/events.md` spells it.
fn kind(body: &EventBody) -> &'static str {
    match body {
        EventBody::Session { .. } => "session",
        EventBody::Spawn { .. } => "spawn",
        EventBody::SpawnFailed { .. } => "spawn_failed",
        EventBody::Fork { .. } => "fork",
        EventBody::Exec { .. } => "exec",
        EventBody::Exit { .. } => "exit",
        EventBody::Signal { .. } => "signal",
        EventBody::Output { .. } | EventBody::OutputLines(_) => "output",
        EventBody::Restart { .. } => "restart",
        EventBody::WorkerFailed { .. } => "worker_failed",
        EventBody::Scale { .. } => "scale",
        EventBody::Stopping { .. } => "stopping",
        EventBody::Sample { .. } => "sample",
        EventBody::Notice { .. } => "notice",
        EventBody::Step { .. } => "step",
        EventBody::StepRelease { .. } => "step_release",
        EventBody::Barrier { .. } => "barrier",
        EventBody::Mark { .. } => "mark",
        EventBody::Watched { .. } => "watched",
        EventBody::End { .. } => "end",
        EventBody::Reap { .. } => "reap",
        EventBody::Reparent { .. } => "reparent",
        EventBody::Shm { .. } => "shm",
        EventBody::Ready { .. } => "ready",
        EventBody::Reload { .. } => "reload",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(body: EventBody) -> Event {
        Event { t: 0.0, body }
    }

    fn spawn(pid: i32, restarts: u32) -> Event {
        event(EventBody::Spawn {
            pid,
            ppid: 1,
            pool: "web".into(),
            worker: 0,
            argv: Vec::new(),
            start_time: None,
            restarts,
        })
    }

    #[test]
    fn restarts_count_policy_restarts_and_asked_ones_once() {
        let slot: Slot = (Arc::from("web"), 0);
        let mut fold = MetricsFold::new("h".into());
        fold.apply(&spawn(10, 0), Some(&slot));
        // A crash: the `restart` event comes before the spawn that carries restarts = 1.
        fold.apply(
            &event(EventBody::Restart {
                pid: Some(10),
                pool: "web".into(),
                worker: 0,
                attempt: 1,
                delay_ms: 100,
            }),
            None,
        );
        assert_eq!(fold.workers[&slot].restarts, 1);
        fold.apply(&spawn(11, 1), Some(&slot));
        assert_eq!(fold.workers[&slot].restarts, 1);
        // `ctl restart` or a reload: no `restart` event, only the spawn.
        fold.apply(&spawn(12, 2), Some(&slot));
        assert_eq!(fold.workers[&slot].restarts, 2);
    }
}
