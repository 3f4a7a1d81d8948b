//! The JSON document of an [`OperationReport`]: what `werify ctl get --output json` prints
//! and what the node's `GET /v1/operations/HANDLE` answers, from this one function, with
//! each check's result (`found`, `expected`, `negated` where observed) and the counts over
//! the results ([`summarize`]). Fetching the report is [`crate::ops::coordinator`]'s job;
//! the other output formats are the CLI's.

use std::net::SocketAddr;

use serde_json::{Map, Value, json};

use crate::checks::{Facts, Observation, Outcome};
use crate::rpc::protocol::{HostReport, OperationReport};

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

/// The hosts of `rec` with their reports, in address order (`IP:PORT` numerically, then
/// anything else by text).
pub fn hosts_sorted(rec: &OperationReport) -> Vec<(&String, &HostReport)> {
    let mut hosts: Vec<_> = rec.hosts.iter().collect();
    hosts.sort_by_key(|(a, _)| (a.parse::<SocketAddr>().ok(), a.to_string()));
    hosts
}

fn facts_json(facts: &Facts) -> Value {
    Value::Object(
        facts
            .iter()
            .map(|(n, v)| (n.to_string(), Value::String(v.to_string())))
            .collect(),
    )
}

/// One check's result: `{"success": true}` or `{"error": "…"}`, with `found`, `expected`
/// and `negated` when there are.
pub fn check_json(outcome: &Outcome, observation: Option<&Observation>) -> Value {
    let mut v = Map::new();
    match outcome {
        Outcome::Success(b) => v.insert("success".into(), json!(b)),
        Outcome::Error(e) => v.insert("error".into(), json!(e)),
    };
    if let Some(o) = observation {
        if !o.found.is_empty() {
            v.insert("found".into(), facts_json(&o.found));
        }
        if !o.expected.is_empty() {
            v.insert("expected".into(), facts_json(&o.expected));
            if o.negated {
                v.insert("negated".into(), json!(true));
            }
        }
    }
    Value::Object(v)
}

/// One host of an operation.
pub fn host_json(host: &str, r: &HostReport) -> Value {
    let (status, checks, error, took_ms) = match r {
        HostReport::Pending => ("pending", Value::Null, Value::Null, Value::Null),
        HostReport::Failed(e) => ("unreachable", Value::Null, json!(e), Value::Null),
        HostReport::Answered {
            results, took_ms, ..
        } => {
            let checks: Map<String, Value> = results
                .iter()
                .map(|(n, o)| (n.clone(), check_json(o, r.observation(n))))
                .collect();
            (
                "answered",
                Value::Object(checks),
                Value::Null,
                json!(took_ms),
            )
        }
    };
    json!({"host": host, "status": status, "checks": checks, "error": error, "took_ms": took_ms})
}

/// `get` as JSON: the operation, one entry per host in address order, and the counts.
pub fn operation_json(rec: &OperationReport) -> Value {
    let hosts: Vec<Value> = hosts_sorted(rec)
        .into_iter()
        .map(|(host, r)| host_json(host, r))
        .collect();
    json!({
        "handle": rec.handle.to_string(),
        "coordinator": rec.coordinator,
        "submitted_unix_ms": rec.submitted_unix_ms,
        "ended_unix_ms": rec.ended_unix_ms,
        "took_ms": rec.ended_unix_ms.map(|e| e.saturating_sub(rec.submitted_unix_ms)),
        "running": rec.ended_unix_ms.is_none(),
        "checks": rec.check_names,
        "hosts": hosts,
        "summary": summarize(rec),
        "submitted_by": rec.submitted_by.as_ref().map(|by| json!({
            "operator": by.operator,
            "from": by.from,
            "certificate_sha256": by.certificate,
        })),
    })
}
