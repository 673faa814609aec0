//! forkscope: launch, supervise and explain multiprocess programs.
//!
//! The flow (see `docs/ARCHITECTURE.md`): every fact becomes one [`model::Event`]; the state
//! the views render is a pure function of the events; user intentions are
//! [`model::Action`]s carried out by the supervisor, never by the UI.

pub mod bounded;
pub mod cli;
pub mod config;
pub mod coord;
pub mod demo;
pub mod headless;
pub mod inspect;
pub mod model;
pub mod notify;
pub mod session;
pub mod supervise;
pub mod track;
pub mod ui;
