//! How results look, in every `--output` format. A command hands what it has to show to
//! [`render`] as a [`CommandOutput`]; the choice of format is made there and nowhere else.
//! Nothing here talks to the network.
//!
//! One module per format: [`text`] (the original tool's lines, `-v` detail), [`status`]
//! (`list` and the `mesh status` table), [`json`] (JSON and JSON Lines), [`junit`],
//! [`tap`], [`nagios`] and [`prometheus`]. The last four, and JSON Lines, read check
//! results as the rows of [`results`], whichever command produced them.

pub mod json;
pub mod junit;
pub mod nagios;
pub mod prometheus;
pub mod results;
pub mod status;
pub mod tap;
pub mod text;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::checks::{CheckResult, Outcome};
use crate::mesh::member::HealthSummary;
use crate::rpc::protocol::{HostReport, OperationReport, StatusReport};

pub use results::Rows;
pub use status::partition_hosts;

/// How results are printed (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Lines for people, as the original tool printed them (`-v` adds what was found).
    Text,
    /// One JSON document per command.
    Json,
    /// One JSON object per line: per host result for results, else the document.
    Jsonl,
    /// JUnit XML: a testsuite per host, a testcase per check (results only).
    Junit,
    /// TAP version 13: a test point per host and check (results only).
    Tap,
    /// A Nagios/Icinga plugin's status line and exit code (results only).
    Nagios,
    /// Prometheus text format for node_exporter's textfile collector (results only).
    Prometheus,
}

impl OutputFormat {
    /// The format only shows check results (`ctl operation --wait`, `get`, `refresh
    /// --wait`, `checks run`), not hosts lists, handles or the mesh.
    pub fn results_only(self) -> bool {
        matches!(
            self,
            OutputFormat::Junit
                | OutputFormat::Tap
                | OutputFormat::Nagios
                | OutputFormat::Prometheus
        )
    }

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Text => "text",
            OutputFormat::Json => "json",
            OutputFormat::Jsonl => "jsonl",
            OutputFormat::Junit => "junit",
            OutputFormat::Tap => "tap",
            OutputFormat::Nagios => "nagios",
            OutputFormat::Prometheus => "prometheus",
        }
    }
}

/// What one command has to show.
#[derive(Debug, Clone, Copy)]
pub enum CommandOutput<'a> {
    /// `ctl add`.
    Added { host: &'a str },
    /// `ctl del`.
    Removed { host: &'a str },
    /// `ctl list`, `listactive`, `listinactive`.
    List {
        report: &'a StatusReport,
        active: bool,
        inactive: bool,
    },
    /// `ctl operation` without `--wait`: the handle, and the command that shows results.
    Submitted {
        handle: &'a str,
        coordinator: SocketAddr,
        targeted: usize,
        get_command: &'a str,
    },
    /// `ctl get`, and `operation --wait`.
    Operation(&'a OperationReport),
    /// `ctl refresh` without `--wait`.
    RefreshStarted { refresh_id: u64, targeted: usize },
    /// `ctl refresh --wait`.
    Refreshed(&'a RefreshResult),
    /// `checks run`.
    Local(&'a LocalRun),
    /// `mesh status`.
    Status(&'a StatusReport),
}

impl CommandOutput<'_> {
    /// The check results it holds, as rows; `None` for outputs that hold none.
    pub fn rows(&self) -> Option<Rows<'_>> {
        match *self {
            CommandOutput::Operation(rec) => Some(Rows::of_operation(rec)),
            CommandOutput::Refreshed(r) => Some(Rows::of_refresh(r)),
            CommandOutput::Local(run) => Some(Rows::of_local(run)),
            _ => None,
        }
    }
}

/// What `refresh --wait` collected: each alive host's summary of this refresh, if it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshResult {
    pub refresh_id: u64,
    /// Every alive host reported before the wait ended.
    pub complete: bool,
    pub hosts: Vec<(String, Option<HealthSummary>)>,
}

impl RefreshResult {
    /// Every alive host reported, and no check fails or errors anywhere.
    pub fn all_passed(&self) -> bool {
        self.complete
            && self.hosts.iter().all(|(_, h)| {
                h.as_ref()
                    .is_some_and(|h| h.failing == 0 && h.erroring == 0)
            })
    }
}

/// What `checks run` produced on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRun {
    /// The operations file, as given.
    pub file: String,
    /// This host's name, as results name it.
    pub host: String,
    /// One result per check name.
    pub results: BTreeMap<String, CheckResult>,
    /// When the run ended (Unix ms) and how long it took.
    pub at_unix_ms: u64,
    pub took_ms: u64,
}

/// How to render besides the format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// `-v`: text shows what each check found and expected under its result line.
    pub verbose: bool,
}

/// `out` in `format`, ending in a newline. A results-only format given an output without
/// results (which the commands refuse before running) prints the text.
pub fn render(format: OutputFormat, out: &CommandOutput<'_>, opts: RenderOptions) -> String {
    match (format, out.rows()) {
        (OutputFormat::Json, _) => {
            let mut s =
                serde_json::to_string_pretty(&json::json(out)).unwrap_or_else(|_| "null".into());
            s.push('\n');
            s
        }
        (OutputFormat::Jsonl, _) => json::jsonl(out),
        (OutputFormat::Junit, Some(r)) => junit::junit(&r),
        (OutputFormat::Tap, Some(r)) => tap::tap(&r),
        (OutputFormat::Nagios, Some(r)) => nagios::nagios(&r),
        (OutputFormat::Prometheus, Some(r)) => prometheus::prometheus(&r),
        (OutputFormat::Text, _)
        | (
            OutputFormat::Junit
            | OutputFormat::Tap
            | OutputFormat::Nagios
            | OutputFormat::Prometheus,
            None,
        ) => text(out, opts),
    }
}

/// The exit code of a command that shows check results: with `--output nagios` the
/// plugin's status (see [`nagios`]); otherwise 0 when `passed` (the command's own
/// judgement: every answer it waited for came and every check passed), else 1.
pub fn results_exit_code(format: OutputFormat, out: &CommandOutput<'_>, passed: bool) -> u8 {
    if format == OutputFormat::Nagios {
        let counts = out.rows().map(|r| r.counts()).unwrap_or_default();
        return nagios::status(&counts).exit_code();
    }
    if passed {
        crate::cli::error::EXIT_OK
    } else {
        crate::cli::error::EXIT_CHECKS_FAILED
    }
}

/// The last line of batch mode, the original tool's, in every format (it is not a
/// command's result).
pub fn batch_end(processed: usize) -> String {
    format!("Commands processed: {processed}\n")
}

fn text(out: &CommandOutput<'_>, opts: RenderOptions) -> String {
    match *out {
        CommandOutput::Added { host } => format!("Added host {host}\n"),
        CommandOutput::Removed { host } => format!("Removed host {host}\n"),
        CommandOutput::List {
            report,
            active,
            inactive,
        } => status::list_text(report, active, inactive),
        CommandOutput::Submitted { get_command, .. } => {
            format!("Operation submitted. To check progress, run: {get_command}\n")
        }
        CommandOutput::Operation(rec) => text::operation_text(rec, opts.verbose),
        CommandOutput::RefreshStarted { .. } => "Initiated refresh\n".into(),
        CommandOutput::Refreshed(r) => text::refresh_text(r),
        CommandOutput::Local(run) => text::local_text(run, opts.verbose),
        CommandOutput::Status(report) => status::status_text(report),
    }
}

/// `mesh status` as JSON; the node's `GET /v1/status` answers the same document.
pub use crate::node::status::status_json;

fn sort_key(addr: &str) -> (Option<SocketAddr>, String) {
    (addr.parse().ok(), addr.to_string())
}

/// Counts over an operation's results.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct OperationSummary {
    pub hosts_targeted: usize,
    pub hosts_answered: usize,
    pub hosts_unreachable: usize,
    pub hosts_pending: usize,
    pub checks_passed: usize,
    pub checks_failed: usize,
    pub checks_errored: usize,
}

impl OperationSummary {
    /// Every targeted host answered and every check passed.
    pub fn all_passed(&self) -> bool {
        self.hosts_answered == self.hosts_targeted
            && self.checks_failed == 0
            && self.checks_errored == 0
    }
}

/// Counts for `rec`.
pub fn summarize(rec: &OperationReport) -> OperationSummary {
    let mut s = OperationSummary {
        hosts_targeted: rec.hosts.len(),
        ..Default::default()
    };
    for r in rec.hosts.values() {
        match r {
            HostReport::Pending => s.hosts_pending += 1,
            HostReport::Failed(_) => {
                s.hosts_unreachable += 1;
                s.checks_errored += rec.check_names.len();
            }
            HostReport::Answered { results, .. } => {
                s.hosts_answered += 1;
                for o in results.values() {
                    match o {
                        Outcome::Success(true) => s.checks_passed += 1,
                        Outcome::Success(false) => s.checks_failed += 1,
                        Outcome::Error(_) => s.checks_errored += 1,
                    }
                }
            }
        }
    }
    s
}

fn hosts_sorted(rec: &OperationReport) -> Vec<(&String, &HostReport)> {
    let mut hosts: Vec<_> = rec.hosts.iter().collect();
    hosts.sort_by_key(|(a, _)| sort_key(a));
    hosts
}

/// A duration the way Go prints `time.Duration` (the original tool's `took` format):
/// `406.97µs`, `13.22664ms`, `1m0.004510389s`, `0s`.
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    fn frac(value: u128, unit: u128) -> String {
        let whole = value / unit;
        let rest = value % unit;
        if rest == 0 {
            return whole.to_string();
        }
        let width = unit.to_string().len() - 1;
        let digits = format!("{rest:0width$}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", frac(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", frac(nanos, 1_000_000));
    }
    let total_secs = nanos / 1_000_000_000;
    let sub = nanos % 1_000_000_000;
    let (h, m, s) = (total_secs / 3600, (total_secs / 60) % 60, total_secs % 60);
    let secs = frac(s * 1_000_000_000 + sub, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_matches_go() {
        assert_eq!(go_duration(Duration::from_nanos(406_970)), "406.97µs");
        assert_eq!(go_duration(Duration::from_nanos(13_226_640)), "13.22664ms");
        assert_eq!(
            go_duration(Duration::from_nanos(60_004_510_389)),
            "1m0.004510389s"
        );
        assert_eq!(go_duration(Duration::from_millis(3)), "3ms");
        assert_eq!(go_duration(Duration::from_secs(2)), "2s");
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_secs(3723)), "1h2m3s");
    }
}
