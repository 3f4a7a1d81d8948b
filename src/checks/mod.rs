//! Host checks: the operations-file format, every check type, and the runner.
//!
//! # Layout
//! - [`spec`]: the operations file: check types and their fields, strict parsing with
//!   `FILE:LINE:COLUMN` errors, and re-validation of sets received from peers.
//! - [`run`]: runs a [`CheckSet`] concurrently with per-check timeouts; summaries.
//! - One module per family of checks: `file` (file_exists, file_mode, safe opening),
//!   `content` (file_contains, file_matches, file_hash), `process` (process_running),
//!   `port` (port_listening), `command`, `http` (http_status), `disk` (disk_free),
//!   `user` (user_exists), `service` (service_active).
//! - [`outcome`]: the result of one check on one host.

pub mod command;
pub mod content;
pub mod disk;
pub mod duration;
pub mod file;
pub mod http;
mod json;
pub mod outcome;
pub mod port;
pub mod process;
pub mod run;
pub mod service;
pub mod spec;
#[cfg(test)]
mod testutil;
pub mod user;

pub use outcome::Outcome;
pub use run::{RunOptions, Summary, run_checks, summarize};
pub use spec::{
    Check, CheckKind, CheckSet, MAX_CHECKS, SpecError, load_operations_file, parse_operations,
};
