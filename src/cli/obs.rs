//! The flags of logs and metrics for operators (`run`, `up`, `demo`): clap definitions
//! (`convert.rs` turns the worker-log flags into `settings::WorkerLogFlags`).

use std::net::SocketAddr;

use clap::Args;

use crate::obs::logs;

/// `--metrics` (on `run`, `up` and `demo`).
#[derive(Debug, Args, Clone, Default)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464; port 0 picks a
    /// free port, announced in the `session` event).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Allow a --metrics address other than loopback (the metrics are not authenticated).
    #[arg(long, requires = "metrics")]
    pub metrics_public: bool,
}

/// `--worker-log` (on `run` and `up`).
#[derive(Debug, Args, Clone, Default)]
pub struct WorkerLogArgs {
    /// Write each worker's output lines, timestamped, to TEMPLATE ({pool} and {worker} are
    /// replaced), rotated by size. With `up`, every pool's `log`.
    #[arg(long, value_name = "TEMPLATE", value_parser = template)]
    pub worker_log: Option<String>,
    /// Rotate a worker log before it passes SIZE (K, M, G suffixes; default 10M).
    #[arg(long, value_name = "SIZE", value_parser = log_max)]
    pub worker_log_max: Option<u64>,
    /// Rotated files kept per worker log (name.log.1 ... .N; default 5).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=i64::from(logs::MAX_KEEP)))]
    pub worker_log_keep: Option<u32>,
}

impl MetricsArgs {
    pub fn addr(&self) -> Option<(SocketAddr, bool)> {
        self.metrics.map(|addr| (addr, self.metrics_public))
    }
}

fn template(text: &str) -> Result<String, String> {
    if text.is_empty() || text.contains('\0') {
        Err("the log template is empty".into())
    } else {
        Ok(text.to_string())
    }
}

fn log_max(text: &str) -> Result<u64, String> {
    let size = logs::parse_size(text)?;
    if size < logs::MIN_MAX_BYTES {
        Err(format!("{text} is too small (at least 1K)"))
    } else {
        Ok(size)
    }
}
