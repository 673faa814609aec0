//! The binary edge: parse the command line, dispatch, turn errors into exit statuses.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Parser as _;
use forkscope::cli::{Cli, Command};
use forkscope::model::printable::lines;
use forkscope::session::{self, SessionOptions};
use forkscope::settings::{IoFlags, Output, Supervision, Up, WorkerLogFlags};
use forkscope::{demo, inspect};

fn main() -> ExitCode {
    let clock = Instant::now();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version: clap prints them as it likes.
        Err(err) if !err.use_stderr() => err.exit(),
        Err(err) => {
            // clap quotes the argument it refuses: escaped, as every text from outside.
            eprint!("{}", lines(&err.render().to_string()));
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    match dispatch(cli, clock) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) => {
            eprintln!("forkscope: {}", lines(&format!("{err:#}")));
            let usage = err.chain().any(|e| e.is::<session::UsageError>());
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

fn dispatch(cli: Cli, clock: Instant) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run(args) => {
            let supervision = Supervision::from(&args.supervision);
            let output = Output::from(&args.output);
            let segments = session::prepare(&supervision, output.view.headless)?;
            let mut pool = args.pool();
            if args.python_helper {
                let dir = forkscope::coord::python::write_helper()
                    .context("writing the Python helper")?;
                pool.env
                    .push(forkscope::coord::python::pythonpath_entry(&dir));
            }
            let title = args.command.join(" ");
            let options = SessionOptions {
                supervision: &supervision,
                output: &output,
                log: cli.log.as_deref(),
                title,
                shm_rules: Vec::new(),
                steps: None,
                reload: None,
                obs: forkscope::obs::ObsOptions {
                    metrics: args.metrics.addr(),
                    logs: {
                        let mut logs = Vec::new();
                        WorkerLogFlags::from(&args.worker_log)
                            .apply_to(std::slice::from_ref(&pool.name), &mut logs);
                        logs
                    },
                },
            };
            session::run_pools(vec![pool], options, segments, clock)
        }
        Command::Up(args) => {
            // Every config problem is found before anything starts: exit 2, FILE:LINE:COL.
            let up = Up::from(&args);
            let plan = match forkscope::config::up::plan(&up) {
                Ok(plan) => plan,
                Err(err) => {
                    eprintln!("forkscope: {}", lines(&err.to_string()));
                    return Ok(2);
                }
            };
            let segments = session::prepare(&plan.supervision, plan.output.view.headless)?;
            let options = SessionOptions {
                supervision: &plan.supervision,
                output: &plan.output,
                log: cli.log.as_deref(),
                title: plan.title.clone(),
                shm_rules: plan.layouts.clone(),
                steps: None,
                obs: forkscope::obs::ObsOptions {
                    metrics: args.metrics.addr(),
                    logs: plan.logs.clone(),
                },
                reload: Some(session::up_reloader(up)),
            };
            session::run_pools(plan.pools.clone(), options, segments, clock)
        }
        Command::Demo(args) => run_demo(&args, cli.log.as_deref(), clock),
        Command::Inspect(args) => forkscope::coord::ctl::inspect(args.pid, args.json),
        Command::Replay(args) => replay(&args),
        Command::Shm(command) => inspect::shm::command::run(&command.request(), &|path| {
            forkscope::config::layout_rules(path).map_err(|err| err.to_string())
        }),
        Command::DemoWorker(args) => Ok(demo::worker::run(&args.name)),
        Command::Ctl(args) => Ok(forkscope::coord::ctl::run(
            args.socket,
            args.json,
            args.command.into(),
        )),
        Command::Barrier(forkscope::cli::BarrierCommand::Wait {
            name,
            parties,
            timeout,
            socket,
        }) => Ok(forkscope::coord::ctl::barrier_wait(
            socket, &name, parties, timeout,
        )),
        Command::PythonPath => {
            let dir =
                forkscope::coord::python::write_helper().context("writing the Python helper")?;
            println!("{}", dir.display());
            Ok(0)
        }
    }
}

/// `forkscope demo`: list, print or run a demo (built in, Python, or a teacher's `.py` file).
fn run_demo(
    args: &forkscope::cli::DemoArgs,
    log: Option<&std::path::Path>,
    clock: Instant,
) -> anyhow::Result<i32> {
    use demo::{Chosen, python};
    if args.list {
        for (name, summary) in demo::catalogue() {
            println!("{name:<14} {summary}");
        }
        return Ok(0);
    }
    let name = args.name.as_deref().unwrap_or("tour");
    let Some(chosen) = demo::choose(name) else {
        eprintln!("forkscope: no demo named {name:?}; `forkscope demo --list` lists them");
        return Ok(2);
    };
    if args.print {
        match &chosen {
            Chosen::Builtin(_) => print!("{}", demo::WORKER_SOURCE),
            Chosen::Python(found) => print!("{}", found.source),
            Chosen::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => print!("{text}"),
                Err(err) => {
                    eprintln!("forkscope: {}: {err}", path.display());
                    return Ok(2);
                }
            },
        }
        return Ok(0);
    }
    let python = match &chosen {
        Chosen::Builtin(_) => None,
        Chosen::Python(_) | Chosen::File(_) => match python::interpreter() {
            Ok(path) => Some(path),
            Err(err) => {
                eprintln!("forkscope: {err}");
                return Ok(2);
            }
        },
    };
    if let Chosen::File(path) = &chosen
        && let Err(err) = python::Script::existing(path)
    {
        eprintln!("forkscope: {err}");
        return Ok(2);
    }
    let supervision = Supervision::from(&args.supervision);
    let output = Output::from(&args.output);
    let segments = session::prepare(&supervision, output.view.headless)?;
    let stop_signal = supervision.stop_signal;
    // Lives until the session ends: a built-in Python demo's file is removed with it.
    let mut _script = None;
    let pool = match (&chosen, python) {
        (Chosen::Builtin(found), _) => {
            demo::pool(found, stop_signal, args.pace).context("finding forkscope's own binary")?
        }
        (Chosen::Python(found), Some(python)) => {
            let script = python::Script::write(found)?;
            let pool = python::pool(found.name, &python, &script, stop_signal, args.pace);
            _script = Some(script);
            pool
        }
        (Chosen::File(path), Some(python)) => {
            let script = python::Script::existing(path)?;
            let pool_name = path
                .file_stem()
                .map_or("demo".into(), |s| s.to_string_lossy().into_owned());
            python::pool(&pool_name, &python, &script, stop_signal, args.pace)
        }
        _ => anyhow::bail!("no Python interpreter for {name}"),
    };
    let mut pool = pool;
    pool.io = IoFlags::from(&args.io).worker_io();
    let headless = output.view.headless;
    let auto = args.auto.map(std::time::Duration::from_secs_f64);
    let options = SessionOptions {
        supervision: &supervision,
        output: &output,
        log,
        title: format!("demo {name}"),
        shm_rules: Vec::new(),
        // --headless alone runs straight through; with --auto it steps by itself.
        steps: (!headless || auto.is_some())
            .then_some(forkscope::supervise::steps::StepConfig { auto }),
        reload: None,
        obs: forkscope::obs::ObsOptions {
            metrics: args.metrics.addr(),
            logs: Vec::new(),
        },
    };
    session::run_pools(vec![pool], options, segments, clock)
}

fn replay(args: &forkscope::cli::ReplayArgs) -> anyhow::Result<i32> {
    use forkscope::ui::replay::{Control, Playback};
    let mut playback = match forkscope::record::read::load(&args.file) {
        Ok(events) => Playback::new(events, Instant::now()),
        Err(err) => {
            eprintln!("forkscope: {}", lines(&err.to_string()));
            return Ok(2);
        }
    };
    let now = Instant::now();
    playback.set_speed(args.speed, now);
    if args.paused {
        playback.control(Control::TogglePause, now);
    }
    let title = format!("replay of {}", args.file.display());
    forkscope::ui::run(
        forkscope::ui::Source::Replay(playback),
        None,
        None,
        10_000,
        &title,
        Vec::new(),
    )
}
