//! `ctl health`: every host's periodic checks as the asked node gathered them, as
//! seed-style `Host:… Check:… Success:…` lines or JSON, and the counts that decide its
//! exit code.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::checks::Outcome;
use crate::mesh::member::HealthSummary;
use crate::rpc::protocol::{HealthReport, HostChecks, PeriodicChecks};

/// Counts over a [`HealthReport`]: hosts by how they answered, checks by outcome (from
/// a host's full answer when there is one, else from its gossiped summary).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HealthCounts {
    pub hosts: usize,
    pub answered: usize,
    pub unavailable: usize,
    pub not_asked: usize,
    pub checks_passing: u64,
    pub checks_failing: u64,
    pub checks_erroring: u64,
}

/// Counts for `r`.
pub fn health_counts(r: &HealthReport) -> HealthCounts {
    let mut c = HealthCounts {
        hosts: r.hosts.len(),
        ..HealthCounts::default()
    };
    for h in &r.hosts {
        match &h.checks {
            HostChecks::Answered(_) => c.answered += 1,
            HostChecks::NotAsked => c.not_asked += 1,
            HostChecks::Unavailable(_) => c.unavailable += 1,
        }
        match (&h.checks, &h.summary) {
            (HostChecks::Answered(PeriodicChecks::Ran { results, .. }), _) if !r.failing_only => {
                for o in results.values() {
                    match o {
                        Outcome::Success(true) => c.checks_passing += 1,
                        Outcome::Success(false) => c.checks_failing += 1,
                        Outcome::Error(_) => c.checks_erroring += 1,
                    }
                }
            }
            (HostChecks::Answered(PeriodicChecks::Off), _) => {}
            (_, Some(s)) => {
                c.checks_passing += u64::from(s.passing);
                c.checks_failing += u64::from(s.failing);
                c.checks_erroring += u64::from(s.erroring);
            }
            (_, None) => {}
        }
    }
    c
}

/// `ctl health` passed: no check fails or errors anywhere and every host could be asked.
pub fn health_passed(r: &HealthReport) -> bool {
    let c = health_counts(r);
    c.unavailable == 0 && c.checks_failing == 0 && c.checks_erroring == 0
}

/// What a host reported finding for a check, shown under its result line (text) and as
/// `found` (JSON). The outcomes hosts send carry no observed value, so this is `None`.
fn found_of(_outcome: &Outcome) -> Option<String> {
    None
}

/// A one-line summary of a gossiped health summary: `1 passing, 2 failing (a,b), 0 erroring`.
fn summary_words(h: &HealthSummary) -> String {
    format!(
        "{} passing, {} failing, {} erroring{}",
        h.passing,
        h.failing,
        h.erroring,
        names_in_parens(h)
    )
}

/// `ctl health`: `Host:… Check:… Success:…` lines (seed style), host lines, a summary.
pub(super) fn health_text(r: &HealthReport) -> String {
    let mut out = String::new();
    for h in &r.hosts {
        let host = &h.addr;
        match &h.checks {
            HostChecks::Answered(PeriodicChecks::Ran { results, .. }) => {
                for (name, o) in results {
                    match o {
                        Outcome::Success(b) => {
                            let _ = writeln!(out, "Host:{host} Check:{name} Success:{b}");
                        }
                        Outcome::Error(e) => {
                            let _ = writeln!(out, "Host:{host} Check:{name} Error:{e}");
                        }
                    }
                    if let Some(found) = found_of(o) {
                        let _ = writeln!(out, "  found: {found}");
                    }
                }
            }
            HostChecks::Answered(PeriodicChecks::Off) if !r.failing_only => {
                let _ = writeln!(out, "Host:{host} Health:no periodic checks");
            }
            HostChecks::Answered(PeriodicChecks::Off) => {}
            HostChecks::Answered(PeriodicChecks::NotRunYet) => {
                let _ = writeln!(out, "Host:{host} Health:not run yet");
            }
            HostChecks::NotAsked => {}
            HostChecks::Unavailable(why) => {
                let last = match &h.summary {
                    Some(s) => format!("; last gossiped: {}", summary_words(s)),
                    None => String::new(),
                };
                let _ = writeln!(out, "Host:{host} Error:{why}{last}");
            }
        }
    }
    let c = health_counts(r);
    let _ = write!(
        out,
        "Hosts: {} known, {} answered, {} unavailable",
        c.hosts, c.answered, c.unavailable
    );
    if c.not_asked > 0 {
        let _ = write!(out, ", {} not asked (passing)", c.not_asked);
    }
    let _ = writeln!(
        out,
        "; checks: {} passing, {} failing, {} erroring",
        c.checks_passing, c.checks_failing, c.checks_erroring
    );
    out
}

/// `ctl health` as JSON.
pub(super) fn health_json(r: &HealthReport) -> Value {
    let hosts: Vec<Value> = r
        .hosts
        .iter()
        .map(|h| {
            let (status, error, at, took, checks) = match &h.checks {
                HostChecks::Answered(PeriodicChecks::Ran {
                    at_unix_ms,
                    took_ms,
                    results,
                }) => {
                    let checks: serde_json::Map<String, Value> = results
                        .iter()
                        .map(|(n, o)| {
                            let mut v = match o {
                                Outcome::Success(b) => json!({"success": b}),
                                Outcome::Error(e) => json!({"error": e}),
                            };
                            if let Some(found) = found_of(o) {
                                v["found"] = json!(found);
                            }
                            (n.clone(), v)
                        })
                        .collect();
                    (
                        "answered",
                        Value::Null,
                        json!(at_unix_ms),
                        json!(took_ms),
                        Value::Object(checks),
                    )
                }
                HostChecks::Answered(PeriodicChecks::Off) => (
                    "no_checks",
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ),
                HostChecks::Answered(PeriodicChecks::NotRunYet) => (
                    "not_run_yet",
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ),
                HostChecks::NotAsked => (
                    "not_asked",
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ),
                HostChecks::Unavailable(why) => (
                    "unavailable",
                    json!(why),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ),
            };
            json!({
                "host": h.addr,
                "node_id": h.node_id.to_string(),
                "state": h.state.to_string(),
                "status": status,
                "error": error,
                "at_unix_ms": at,
                "took_ms": took,
                "checks": checks,
                "gossiped": h.summary.as_ref().map(crate::node::status::health_json),
            })
        })
        .collect();
    json!({
        "gathered_by": r.gathered_by,
        "failing_only": r.failing_only,
        "hosts": hosts,
        "summary": health_counts(r),
    })
}

/// ` (disk,dns +3 more)`: the failing then erroring check names a summary carries and
/// how many it left out; empty when it names none.
pub(super) fn names_in_parens(h: &HealthSummary) -> String {
    let names: Vec<&str> = h.names().collect();
    match (names.is_empty(), h.names_omitted) {
        (true, 0) => String::new(),
        (true, more) => format!(" ({more} not named)"),
        (false, 0) => format!(" ({})", names.join(",")),
        (false, more) => format!(" ({} +{more} more)", names.join(",")),
    }
}
