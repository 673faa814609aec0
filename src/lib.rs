//! forkscope: launch, supervise and explain multiprocess programs.
//!
//! The flow (see `docs/ARCHITECTURE.md`): every fact becomes one [`model::Event`]; the state
//! the views render is a pure function of the events; user intentions are
//! [`model::Action`]s carried out by the supervisor, never by the UI.

// Modules that need no `unsafe` forbid it (docs/ARCHITECTURE.md, "Dependencies").
#[forbid(unsafe_code)]
pub mod bounded;
#[forbid(unsafe_code)]
pub mod cli;
#[forbid(unsafe_code)]
pub mod config;
pub mod coord;
pub mod demo;
pub mod headless;
pub mod inspect;
#[forbid(unsafe_code)]
pub mod live;
#[forbid(unsafe_code)]
pub mod model;
pub mod notify;
pub mod obs;
pub mod record;
pub mod session;
#[forbid(unsafe_code)]
pub mod settings;
pub mod supervise;
pub mod track;
#[forbid(unsafe_code)]
pub mod ui;
