//! Host checks: the operations-file format, every check type, and the runner.
//!
//! # Layout
//! - [`spec`]: the operations-file data model ([`CheckSet`], [`CheckKind`]), limits,
//!   errors and the rules re-checked on sets received from peers; [`registry`]: every
//!   check type and its fields; `parse`: strict parsing with `FILE:LINE:COLUMN` errors
//!   (re-exported as [`parse_operations`] and [`load_operations_file`]).
//! - [`run`]: runs a [`CheckSet`] concurrently with per-check timeouts; summaries.
//! - One module per family of checks: `file` (file_exists, file_mode, safe opening),
//!   `content` (file_contains, file_matches, file_hash), `process` (process_running),
//!   `port` (port_listening), `command`, `http` (http_status), `disk` (disk_free),
//!   `user` (user_exists), `service` (service_active).
//! - [`outcome`]: the result of one check on one host.

mod accounts;
pub mod command;
mod content;
mod disk;
pub mod duration;
mod file;
mod http;
mod json;
pub mod outcome;
mod parse;
mod port;
mod process;
mod procfs;
mod read;
pub mod registry;
pub mod run;
mod service;
pub mod spec;
#[cfg(test)]
mod testutil;
#[cfg(test)]
mod text_tests;
mod user;
#[cfg(test)]
mod wire_tests;

pub use command::COMMAND_DISABLED;
pub use outcome::Outcome;
pub use run::{RunOptions, Summary, run_checks, summarize};
pub use spec::{
    Check, CheckKind, CheckSet, MAX_CHECKS, SpecError, load_operations_file, parse_operations,
};
