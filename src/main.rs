//! The binary edge: parse the command line, dispatch, turn errors into exit statuses.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use forkscope::cli::{Cli, Command};
use forkscope::session::{self, SessionOptions};
use forkscope::{demo, inspect};

fn main() -> ExitCode {
    let clock = Instant::now();
    let cli = Cli::parse();
    match dispatch(cli, clock) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(err) => {
            eprintln!("forkscope: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn dispatch(cli: Cli, clock: Instant) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run(args) => {
            session::prepare(&args.supervision, args.output.view.headless)?;
            let pool = session::pool_from_run(&args);
            let title = args.command.join(" ");
            let options = SessionOptions {
                supervision: &args.supervision,
                output: &args.output,
                log: cli.log.as_deref(),
                title,
                shm_rules: Vec::new(),
            };
            session::run_pools(vec![pool], options, clock)
        }
        Command::Up(args) => {
            // Every config problem is found before anything starts: exit 2, FILE:LINE:COL.
            let plan = match forkscope::config::up::plan(&args) {
                Ok(plan) => plan,
                Err(err) => {
                    eprintln!("forkscope: {err}");
                    return Ok(2);
                }
            };
            session::prepare(&plan.supervision, plan.output.view.headless)?;
            let options = SessionOptions {
                supervision: &plan.supervision,
                output: &plan.output,
                log: cli.log.as_deref(),
                title: plan.title.clone(),
                shm_rules: plan.layouts.clone(),
            };
            session::run_pools(plan.pools.clone(), options, clock)
        }
        Command::Demo(args) => {
            if args.list {
                for demo in demo::DEMOS {
                    println!("{:<12} {}", demo.name, demo.summary);
                }
                return Ok(0);
            }
            let name = args.name.as_deref().unwrap_or("tour");
            let Some(found) = demo::find(name) else {
                eprintln!("forkscope: no demo named {name:?}; `forkscope demo --list` lists them");
                return Ok(2);
            };
            session::prepare(&args.supervision, args.output.view.headless)?;
            let pool = demo::pool(found, args.supervision.stop_signal, args.pace)
                .context("finding forkscope's own binary")?;
            let options = SessionOptions {
                supervision: &args.supervision,
                output: &args.output,
                log: cli.log.as_deref(),
                title: format!("demo {name}"),
                shm_rules: Vec::new(),
            };
            session::run_pools(vec![pool], options, clock)
        }
        Command::Inspect(args) => inspect::snapshot::print(args.pid, args.json),
        Command::Replay(args) => replay(&args),
        Command::Shm(command) => inspect::shm::command::run(&command),
        Command::DemoWorker(args) => Ok(demo::worker::run(&args.name)),
    }
}

fn replay(args: &forkscope::cli::ReplayArgs) -> anyhow::Result<i32> {
    use forkscope::ui::replay::{Control, Playback};
    let mut playback = match Playback::load(&args.file) {
        Ok(playback) => playback,
        Err(err) => {
            eprintln!("forkscope: {err}");
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
        10_000,
        &title,
        Vec::new(),
    )
}
