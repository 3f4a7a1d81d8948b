//! The JSON document of a [`HealthReport`] (`werify ctl health`'s gathering): what
//! `werify ctl health --output json` prints and what the node's `GET /v1/health` answers,
//! from this one function, with each check's `found` and `expected` where the host
//! reported them, and the counts that decide `ctl health`'s exit code ([`health_counts`]).
//! Gathering the report is [`crate::node::health_report`]'s job; the text is the CLI's.

use serde_json::{Value, json};

use crate::checks::Outcome;
use crate::node::operation_json::check_json;
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

/// `ctl health` as JSON.
pub fn health_json(r: &HealthReport) -> Value {
    let hosts: Vec<Value> = r
        .hosts
        .iter()
        .map(|h| {
            let (status, error, at, took, checks) = match &h.checks {
                HostChecks::Answered(
                    ran @ PeriodicChecks::Ran {
                        at_unix_ms,
                        took_ms,
                        results,
                        ..
                    },
                ) => {
                    let checks: serde_json::Map<String, Value> = results
                        .iter()
                        .map(|(n, o)| (n.clone(), check_json(o, ran.observation(n))))
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
