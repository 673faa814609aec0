//! The command line: clap definitions only. `docs/cli.md` documents every flag.

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::model::policy::RestartPolicy;
use crate::supervise::worker_io::StdinMode;
use crate::track::TrackMode;

mod convert;
mod obs;
pub use obs::{MetricsArgs, WorkerLogArgs};

/// forkscope: launch, supervise and explain multiprocess programs.
#[derive(Debug, Parser)]
#[command(name = "forkscope", version, about, propagate_version = true)]
pub struct Cli {
    /// Write a debug log to this file (never to the terminal). Also FORKSCOPE_LOG.
    #[arg(long, global = true, env = "FORKSCOPE_LOG", value_name = "FILE")]
    pub log: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a pool of N workers of CMD and supervise them (TUI, or --headless JSON lines).
    Run(RunArgs),
    /// Start the pools of a config file (default ./forkscope.toml) side by side.
    Up(UpArgs),
    /// Classroom demos of fork semantics; no NAME runs the built-in tour.
    Demo(DemoArgs),
    /// One-shot snapshot of the live process tree under PID.
    Inspect(InspectArgs),
    /// Play a `--record` file back in the TUI (p pause, . step, < > speed).
    Replay(ReplayArgs),
    /// Shared memory: list the segments a tree (or the system) uses, show one decoded.
    #[command(subcommand)]
    Shm(ShmCommand),
    /// Internal: the programs the demos run as workers.
    #[command(name = "__demo-worker", hide = true)]
    DemoWorker(DemoWorkerArgs),
    /// Drive a running session through its control socket (docs/protocol.md).
    Ctl(CtlArgs),
    /// Hosted barriers, for supervised programs in any language.
    #[command(subcommand)]
    Barrier(BarrierCommand),
    /// Print the directory of the Python helper (`import forkscope`) for PYTHONPATH.
    PythonPath,
}

/// `forkscope ctl [--socket PATH] [--json] COMMAND`
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The session's socket (default: FORKSCOPE_SOCKET, else the only running session).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// The running sessions of this user.
    Ls,
    /// Pools, workers, barriers and watched objects.
    Status,
    /// Send SIGNAL to PID, every running worker of POOL, or POOL:WORKER.
    Signal {
        target: String,
        #[arg(value_parser = parse_signal)]
        signal: i32,
    },
    /// Restart every worker of POOL, or POOL:WORKER.
    Restart { target: String },
    /// Set POOL's size.
    Scale {
        pool: String,
        #[arg(value_parser = clap::value_parser!(u32).range(0..=4096))]
        size: u32,
    },
    /// Stop everything and end the session.
    Stop,
    /// Read the config file again (`forkscope up`); exit 1 with the error if it is refused.
    Reload,
    /// Events as `--headless` prints them: the recent ones, or live with --follow.
    Events {
        /// Keep printing new events until the session ends.
        #[arg(long)]
        follow: bool,
        /// With --follow, start with the recent events the session keeps.
        #[arg(long)]
        from_start: bool,
    },
    /// The session's tree, as `forkscope inspect PID --json`.
    Inspect,
    /// Hosted barriers: abort, reset, status.
    #[command(subcommand)]
    Barrier(CtlBarrierCommand),
}

#[derive(Debug, Subcommand)]
pub enum CtlBarrierCommand {
    /// Break NAME: every waiter is released with an error.
    Abort { name: String },
    /// Bring NAME back to a fresh, unbroken generation.
    Reset { name: String },
    /// Parties, waiting parties, generation, broken.
    Status { name: String },
}

/// `forkscope barrier ...`
#[derive(Debug, Subcommand)]
pub enum BarrierCommand {
    /// Block until PARTIES parties arrived at NAME (exit 0), or it broke (exit 3).
    Wait {
        name: String,
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        parties: u32,
        /// Break the barrier if it has not passed after SECS.
        #[arg(long, value_name = "SECS", value_parser = non_negative_seconds)]
        timeout: Option<f64>,
        /// The session's socket (default: FORKSCOPE_SOCKET).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
}

impl From<CtlCommand> for crate::coord::ctl::Request {
    fn from(command: CtlCommand) -> Self {
        use crate::coord::ctl::Request;
        match command {
            CtlCommand::Ls => Request::Ls,
            CtlCommand::Status => Request::Status,
            CtlCommand::Signal { target, signal } => Request::Signal { target, signal },
            CtlCommand::Restart { target } => Request::Restart { target },
            CtlCommand::Scale { pool, size } => Request::Scale { pool, size },
            CtlCommand::Stop => Request::Stop,
            CtlCommand::Reload => Request::Reload,
            CtlCommand::Events { follow, from_start } => Request::Events { follow, from_start },
            CtlCommand::Inspect => Request::Inspect,
            CtlCommand::Barrier(CtlBarrierCommand::Abort { name }) => {
                Request::BarrierAbort { name }
            }
            CtlCommand::Barrier(CtlBarrierCommand::Reset { name }) => {
                Request::BarrierReset { name }
            }
            CtlCommand::Barrier(CtlBarrierCommand::Status { name }) => {
                Request::BarrierStatus { name }
            }
        }
    }
}

/// How the session is shown and recorded (the same for `run`, `demo` and `up`).
#[derive(Debug, Args, Clone, Default)]
pub struct ViewArgs {
    /// No TUI: print one JSON object per event on stdout.
    #[arg(long)]
    pub headless: bool,
    /// Also write every event as JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// With --headless, also print the periodic `sample` events.
    #[arg(long)]
    pub samples: bool,
    /// Lines of output kept per process in the TUI (at least 1).
    #[arg(long, value_name = "LINES", default_value_t = 10_000, value_parser = scrollback_lines)]
    pub scrollback: usize,
}

/// How the session is shown, recorded and sampled.
#[derive(Debug, Args, Clone, Default)]
pub struct OutputArgs {
    #[command(flatten)]
    pub view: ViewArgs,
    /// Seconds between /proc samples of the tree (CPU, memory, state).
    #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = positive_seconds)]
    pub sample_interval: f64,
}

/// How workers are stopped and restarted.
#[derive(Debug, Args, Clone)]
pub struct SupervisionArgs {
    /// Seconds between the stop signal and SIGKILL.
    #[arg(long, value_name = "SECS", default_value_t = 5.0, value_parser = non_negative_seconds)]
    pub stop_timeout: f64,
    /// When to start an ended worker again.
    #[arg(long, value_enum, default_value_t = RestartPolicy::Never)]
    pub restart: RestartPolicy,
    /// The polite stop signal (name or number).
    #[arg(long, value_name = "SIGNAL", default_value = "SIGTERM", value_parser = parse_signal)]
    pub stop_signal: i32,
    /// Where fork/exec/exit facts of descendants come from.
    #[arg(long, value_enum, default_value_t = TrackMode::Auto)]
    pub track: TrackMode,
    /// Create a shared-memory segment /dev/shm/forkscope-<PID>-NAME of SIZE bytes (K/M/G
    /// suffixes) before the workers start; they get its name in FORKSCOPE_SHM_<NAME>.
    /// Removed when forkscope ends. Repeatable.
    #[arg(long = "shm", value_name = "NAME:SIZE", value_parser = crate::supervise::shm::parse_spec)]
    pub shm: Vec<crate::supervise::shm::ShmSpec>,
    /// Internal: run without the guardian process (tests of the guardian itself).
    #[arg(long, hide = true)]
    pub no_guardian: bool,
}

/// How workers' output reaches forkscope (the same for `run`, `demo` and `up`).
#[derive(Debug, Args, Clone, Default)]
pub struct IoArgs {
    /// Leave output buffering to the programs: no PYTHONUNBUFFERED=1, so Python (like C
    /// stdio) block-buffers into the pipe and lines come in bursts.
    #[arg(long, conflicts_with = "line_buffered")]
    pub buffered: bool,
    /// Also line-buffer C stdio (coreutils' libstdbuf through LD_PRELOAD; exit 2 where it
    /// does not exist).
    #[arg(long)]
    pub line_buffered: bool,
    /// stdout and stderr are one pseudo-terminal sized to the output pane (isatty is true;
    /// the two streams cannot be told apart).
    #[arg(long)]
    pub pty: bool,
    /// The workers' stdin: `null` (/dev/null) or `pty` (the worker's pty; needs --pty).
    #[arg(long, value_enum, value_name = "null|pty")]
    pub stdin: Option<StdinMode>,
    /// No Python bootstrap: lines of a Python worker's children are filed under the worker.
    #[arg(long)]
    pub no_python_hooks: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Number of workers.
    #[arg(short = 'n', long = "workers", value_name = "N", default_value_t = 1,
          allow_negative_numbers = true, value_parser = worker_count)]
    pub workers: u32,
    /// Pool name (default: the command's file name).
    #[arg(long, value_parser = pool_name)]
    pub name: Option<String>,
    #[command(flatten)]
    pub supervision: SupervisionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub io: IoArgs,
    /// Put the Python helper (`import forkscope`) on the workers' PYTHONPATH.
    #[arg(long)]
    pub python_helper: bool,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub worker_log: WorkerLogArgs,
    /// The command and its arguments (no shell unless you write one).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `forkscope up`: pools from a config file (`docs/config.md`). Flags given here override the
/// file's values; `--restart` and `--stop-signal` then apply to every pool.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The config file (default: ./forkscope.toml).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Seconds between the stop signal and SIGKILL (overrides `stop_timeout`).
    #[arg(long, value_name = "SECS", value_parser = non_negative_seconds)]
    pub stop_timeout: Option<f64>,
    /// Restart policy of every pool (overrides each pool's `restart`).
    #[arg(long, value_enum)]
    pub restart: Option<RestartPolicy>,
    /// Stop signal of every pool (overrides each pool's `stop_signal`).
    #[arg(long, value_name = "SIGNAL", value_parser = parse_signal)]
    pub stop_signal: Option<i32>,
    /// Where fork/exec/exit facts come from (overrides `track`).
    #[arg(long, value_enum)]
    pub track: Option<TrackMode>,
    /// Another shared-memory segment to create (as `run --shm`); a NAME also in the file
    /// takes this SIZE. Repeatable.
    #[arg(long = "shm", value_name = "NAME:SIZE", value_parser = crate::supervise::shm::parse_spec)]
    pub shm: Vec<crate::supervise::shm::ShmSpec>,
    /// Internal: run without the guardian process.
    #[arg(long, hide = true)]
    pub no_guardian: bool,
    #[command(flatten)]
    pub view: ViewArgs,
    /// Seconds between /proc samples (overrides `sample_interval`).
    #[arg(long, value_name = "SECS", value_parser = positive_seconds)]
    pub sample_interval: Option<f64>,
    /// Output settings; each flag given overrides every pool's key.
    #[command(flatten)]
    pub io: IoArgs,
    /// Run the processes of a Procfile (`NAME: command` lines) instead of a config file.
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    pub procfile: Option<PathBuf>,
    /// PORT of the Procfile's first process; each next one gets 100 more (default 5000).
    #[arg(long, value_name = "N", requires = "procfile")]
    pub port_base: Option<u16>,
    /// Environment for the Procfile's processes (default: .env next to the Procfile, if any).
    #[arg(long, value_name = "FILE", requires = "procfile")]
    pub env_file: Option<PathBuf>,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub worker_log: WorkerLogArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Which demo (see --list).
    pub name: Option<String>,
    /// List the demos and exit.
    #[arg(long)]
    pub list: bool,
    /// Speed of the demo's own pauses: 2 is twice as slow (for a class), 0.1 ten times faster.
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0, value_parser = pace)]
    pub pace: f64,
    /// Release each lesson step by itself SECS after it appears (instead of waiting for `.`).
    #[arg(long, value_name = "SECS", value_parser = non_negative_seconds)]
    pub auto: Option<f64>,
    /// Print the demo's source and exit.
    #[arg(long)]
    pub print: bool,
    #[command(flatten)]
    pub supervision: SupervisionArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub io: IoArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The root of the tree.
    pub pid: i32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A file written by `--record`.
    pub file: PathBuf,
    /// Start paused (step with `.`).
    #[arg(long)]
    pub paused: bool,
    /// Playback speed (1 = as recorded).
    #[arg(long, default_value_t = 1.0, value_parser = positive_seconds)]
    pub speed: f64,
}

#[derive(Debug, Args)]
pub struct DemoWorkerArgs {
    pub name: String,
}

/// `forkscope shm ...`
#[derive(Debug, Subcommand)]
pub enum ShmCommand {
    /// One line (or JSON object) per segment: name, kind, inode, size, deleted, pids.
    Ls(ShmLsArgs),
    /// The contents of one segment, decoded.
    Show(ShmShowArgs),
}

#[derive(Debug, Args)]
pub struct ShmLsArgs {
    /// Only segments the tree under PID maps or holds (default: the whole system).
    #[arg(long)]
    pub pid: Option<i32>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShmShowArgs {
    /// The segment: its name (psm_1a2b3c4d, sem.x, SYSV0000002a, memfd:x) or inode.
    pub segment: String,
    /// Look only at the tree under PID.
    #[arg(long)]
    pub pid: Option<i32>,
    /// Decoder: auto, hex, shareable-list, sem, i8..i64, u8..u64, f32, f64, layout:SPEC.
    #[arg(long = "as", value_name = "FORMAT", default_value = "auto",
          value_parser = |s: &str| s.parse::<crate::inspect::shm::decode::Format>().map_err(|e| e.to_string()))]
    pub format: crate::inspect::shm::decode::Format,
    /// Config file whose `[[shm.layout]]` rules pick the decoder when FORMAT is auto
    /// (default: ./forkscope.toml if it exists).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Refuse to read segments larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = crate::inspect::shm::DEFAULT_MAX_BYTES)]
    pub max_bytes: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

// The vocabulary lives below this file, once (the config file reads the same types with
// serde); clap learns the spellings here, in the same order as the listed possible values.

/// Implements clap's `ValueEnum` for a vocabulary type with an `as_str` spelling.
macro_rules! value_enum_by_as_str {
    ($type:ty: $($variant:expr),+ $(,)?) => {
        impl ValueEnum for $type {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($variant),+]
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(PossibleValue::new(self.as_str()))
            }
        }
    };
}

value_enum_by_as_str!(RestartPolicy: RestartPolicy::Never, RestartPolicy::OnFailure, RestartPolicy::Always);
value_enum_by_as_str!(TrackMode: TrackMode::Auto, TrackMode::Kernel, TrackMode::Ptrace, TrackMode::Poll);
value_enum_by_as_str!(StdinMode: StdinMode::Null, StdinMode::Pty);

fn parse_signal(text: &str) -> Result<i32, String> {
    crate::model::signals::signal_number(text)
        .ok_or_else(|| format!("unknown signal {text:?} (try TERM, SIGINT, 15)"))
}

fn non_negative_seconds(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if value.is_finite() && (0.0..=86_400.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{text} is out of range (0 to 86400 seconds)"))
    }
}

fn pace(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if value.is_finite() && (0.01..=100.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{text} is out of range (0.01 to 100)"))
    }
}

/// `-n N`: 1 to 4096 (the config's limit too), with a message for 0 and negatives.
fn worker_count(text: &str) -> Result<u32, String> {
    let max = crate::config::MAX_WORKERS;
    match text.trim().parse::<i64>() {
        Ok(n) if (1..=max).contains(&n) => u32::try_from(n).map_err(|e| e.to_string()),
        Ok(n) if n < 1 => Err(format!(
            "the number of workers is 1 to {max}; {n} would start none"
        )),
        Ok(n) => Err(format!("the number of workers is 1 to {max}, not {n}")),
        Err(_) => Err(format!("{text:?} is not a number of workers (1 to {max})")),
    }
}

/// `--scrollback LINES`: at least one line, or the output pane could show nothing.
fn scrollback_lines(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("at least 1 line (0 would keep no output at all)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a number of lines")),
    }
}

/// `--name`: the config's rule for pool names.
fn pool_name(text: &str) -> Result<String, String> {
    crate::config::check_pool_name(text).map(|()| text.to_string())
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    let value = non_negative_seconds(text)?;
    if value >= 0.01 {
        Ok(value)
    } else {
        Err(format!("{text} is too small (at least 0.01 seconds)"))
    }
}

impl ShmCommand {
    /// What `inspect::shm::command` runs (it knows nothing of clap).
    pub fn request(&self) -> crate::inspect::shm::command::ShmRequest {
        use crate::inspect::shm::command::{LsRequest, ShmRequest, ShowRequest};
        match self {
            ShmCommand::Ls(args) => ShmRequest::Ls(LsRequest {
                pid: args.pid,
                json: args.json,
            }),
            ShmCommand::Show(args) => ShmRequest::Show(ShowRequest {
                segment: args.segment.clone(),
                pid: args.pid,
                format: args.format.clone(),
                config: args.config.clone(),
                max_bytes: args.max_bytes,
                json: args.json,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_run() {
        let cli = Cli::try_parse_from([
            "forkscope",
            "run",
            "-n",
            "4",
            "--restart",
            "on-failure",
            "--stop-timeout",
            "2",
            "--",
            "python3",
            "-c",
            "print(1)",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.workers, 4);
        assert_eq!(run.supervision.restart, RestartPolicy::OnFailure);
        assert_eq!(run.command, vec!["python3", "-c", "print(1)"]);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(Cli::try_parse_from(["forkscope", "run", "--",]).is_err());
        assert!(Cli::try_parse_from(["forkscope", "run", "-n", "0", "--", "true"]).is_err());
        assert!(
            Cli::try_parse_from(["forkscope", "run", "--stop-signal", "SIGNOPE", "--", "true"])
                .is_err()
        );
        assert!(
            Cli::try_parse_from(["forkscope", "run", "--stop-timeout", "-1", "--", "true"])
                .is_err()
        );
    }

    #[test]
    fn counts_lines_and_names_are_checked() {
        let error = |args: &[&str]| {
            let mut all = vec!["forkscope", "run"];
            all.extend_from_slice(args);
            all.extend_from_slice(&["--", "true"]);
            Cli::try_parse_from(all)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        assert!(error(&["-n", "-1"]).contains("would start none"));
        assert!(error(&["-n", "5000"]).contains("1 to 4096, not 5000"));
        assert!(error(&["--scrollback", "0"]).contains("at least 1 line"));
        assert!(error(&["--name", "a\x1b[2Jb"]).contains("no control characters"));
        assert!(error(&["--name", " "]).contains("no control characters"));
        assert!(Cli::try_parse_from(["forkscope", "run", "--name", "ok", "--", "true"]).is_ok());
    }
}
