//! Results as text for people: the original tool's lines, one per host and check,
//! `Host:IP:PORT Operation:NAME Success:true|false` or `… Error:REASON`, then
//! `Operation ended, took …` and a summary line. With `-v`, each result line is followed
//! by indented `found:` and `expected:` lines (which no parser of the result lines
//! mistakes for results: they start with spaces). Also `refresh --wait` and
//! `checks run`.

use std::fmt::Write as _;
use std::time::Duration;

use super::results::{expected_line, facts_line};
use super::{LocalRun, RefreshResult, go_duration, hosts_sorted, summarize};
use crate::checks::{Observation, Outcome};
use crate::rpc::protocol::{HostReport, OperationReport};

/// Indent of the detail lines under a result line.
const DETAIL_INDENT: &str = "    ";

/// The result line of one check: `Host:H Operation:N Success:B` or `… Error:E`.
fn result_line(out: &mut String, host: &str, name: &str, outcome: &Outcome) {
    let _ = match outcome {
        Outcome::Success(b) => writeln!(out, "Host:{host} Operation:{name} Success:{b}"),
        Outcome::Error(e) => writeln!(out, "Host:{host} Operation:{name} Error:{e}"),
    };
}

/// `-v`'s lines under a result: what was found, and what was expected.
fn detail_lines(out: &mut String, observation: Option<&Observation>) {
    let Some(o) = observation else { return };
    if !o.found.is_empty() {
        let _ = writeln!(out, "{DETAIL_INDENT}found: {}", facts_line(&o.found));
    }
    if let Some(expected) = expected_line(o) {
        let _ = writeln!(out, "{DETAIL_INDENT}expected: {expected}");
    }
}

/// `get`: the original tool's lines (with `verbose`, each followed by its detail), then
/// how long it took and a summary line.
pub(super) fn operation_text(rec: &OperationReport, verbose: bool) -> String {
    let mut out = String::new();
    for (host, r) in hosts_sorted(rec) {
        match r {
            HostReport::Pending => {}
            HostReport::Failed(e) => {
                let mut names = rec.check_names.clone();
                names.sort();
                for name in names {
                    let _ = writeln!(out, "Host:{host} Operation:{name} Error:{e}");
                }
            }
            HostReport::Answered { results, .. } => {
                for (name, o) in results {
                    result_line(&mut out, host, name, o);
                    if verbose {
                        detail_lines(&mut out, r.observation(name));
                    }
                }
            }
        }
    }
    match rec.ended_unix_ms {
        Some(end) => {
            let took = Duration::from_millis(end.saturating_sub(rec.submitted_unix_ms));
            let _ = writeln!(out, "Operation ended, took {}", go_duration(took));
        }
        None => out.push_str("Operation still running...\n"),
    }
    let s = summarize(rec);
    let _ = write!(
        out,
        "Hosts: {} targeted, {} answered, {} unreachable",
        s.hosts_targeted, s.hosts_answered, s.hosts_unreachable
    );
    if s.hosts_pending > 0 {
        let _ = write!(out, ", {} pending", s.hosts_pending);
    }
    let _ = writeln!(
        out,
        "; checks: {} passed, {} failed, {} errored",
        s.checks_passed, s.checks_failed, s.checks_errored
    );
    out
}

/// `checks run`: the same result lines for this host, then how long it took and a
/// summary line.
pub(super) fn local_text(run: &LocalRun, verbose: bool) -> String {
    let mut out = String::new();
    let (mut passed, mut failed, mut errored) = (0, 0, 0);
    for (name, r) in &run.results {
        result_line(&mut out, &run.host, name, &r.outcome);
        if verbose {
            detail_lines(&mut out, Some(&r.observation));
        }
        match r.outcome {
            Outcome::Success(true) => passed += 1,
            Outcome::Success(false) => failed += 1,
            Outcome::Error(_) => errored += 1,
        }
    }
    let _ = writeln!(
        out,
        "Checks ended, took {}; checks: {passed} passed, {failed} failed, {errored} errored",
        go_duration(Duration::from_millis(run.took_ms))
    );
    out
}

/// `refresh --wait` as text.
pub(super) fn refresh_text(r: &RefreshResult) -> String {
    let mut out = String::from("Initiated refresh\n");
    for (addr, h) in &r.hosts {
        match h {
            Some(h) => {
                let _ = write!(
                    out,
                    "Host:{addr} Health: {} passing, {} failing, {} erroring",
                    h.passing, h.failing, h.erroring
                );
                if !h.failing_names.is_empty() {
                    let _ = write!(out, " ({})", h.failing_names.join(", "));
                }
                out.push('\n');
            }
            None => {
                let _ = writeln!(out, "Host:{addr} Error:no new health summary arrived");
            }
        }
    }
    let reported = r.hosts.iter().filter(|(_, h)| h.is_some()).count();
    let _ = writeln!(
        out,
        "Refresh complete: {reported} of {} alive hosts reported",
        r.hosts.len()
    );
    out
}
