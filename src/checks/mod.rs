//! Host checks: the operations-file format, every check type, and the runner.
//!
//! # What lives here
//! - [`spec`]: the data model ([`CheckSet`], [`Check`]), limits, [`SpecError`] and the
//!   rules re-checked on sets received from peers ([`CheckSet::validate`]); `parse`
//!   (strict parsing of JSON or YAML files with `FILE:LINE:COLUMN` errors, re-exported as
//!   [`parse_operations`], [`parse_operations_as`] and [`load_operations_file`]), with
//!   `json` and `yaml` (the position-keeping readers under it, which build one tree).
//! - [`author`]: writing operations files (a check rendered as JSON or YAML, added to a
//!   file's text with the rest kept); [`inspect`]: the check of a given type that this
//!   host passes now (`werify checks add`).
//! - `check_type`: the `CheckType` trait every check type implements (its `type` name,
//!   its fields, its rules, how it runs) and the field plumbing it is handed.
//! - `types`: one file per check type, and the one list that registers them; from that
//!   list [`registry`] generates [`CheckKind`] (what a check tests, as it travels between
//!   nodes) and [`registry::CHECK_TYPES`] (names, docs and fields, which drive the parser
//!   and its error messages). A new type is its file plus its lines in `types/mod.rs`.
//! - Shared helpers for the types: `read` (opening regular files without blocking or
//!   touching devices, chunked reads under a deadline), `procfs` (`/proc/net` socket
//!   tables, `/proc/PID` entries), `accounts` (`/etc/passwd` and `/etc/group`).
//! - [`run`]: runs a [`CheckSet`] concurrently with per-check timeouts; summaries.
//! - [`outcome`]: the result of one check on one host: the verdict and what was
//!   observed (found, and expected when it did not pass); [`duration`]: `"5s"`-style
//!   durations.
//!
//! # What does not
//! Nothing here talks to other nodes. Sending a set to the mesh and collecting the
//! results is `crate::rpc` (which calls [`CheckSet::validate`] on what it receives and
//! [`run_checks`] to answer); spreading a node's health summary is `crate::mesh`;
//! printing results and exit codes is `crate::cli`.

mod accounts;
pub mod author;
mod check_type;
pub mod duration;
pub mod inspect;
mod json;
#[cfg(test)]
mod observation_tests;
pub mod outcome;
mod parse;
mod procfs;
mod read;
pub mod registry;
pub mod run;
pub mod spec;
#[cfg(test)]
mod testutil;
#[cfg(test)]
mod text_tests;
pub mod types;
#[cfg(test)]
mod wire_tests;
mod yaml;

pub use outcome::{CheckResult, Facts, Observation, Outcome};
pub use run::{RunOptions, Summary, run_checks, summarize};
pub use spec::{
    Check, CheckKind, CheckSet, FileFormat, MAX_CHECKS, SpecError, load_operations_file,
    parse_operations, parse_operations_as, read_operations, read_operations_file,
};
pub use types::command::{self, COMMAND_DISABLED};
