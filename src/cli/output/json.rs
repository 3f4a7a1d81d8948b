//! JSON and JSON Lines. `--output json` prints one document per command; every check in
//! it carries `found` and, unless it passed, `expected` (and `"negated": true` when the
//! check wanted the expected facts not to hold). `--output jsonl` prints one compact
//! object per host result (the same object as in the JSON document's `hosts`, with the
//! operation's `handle`), which `ctl operation --wait` and `get --wait` print as each
//! host answers; commands without per-host results print their JSON document on one line.

use serde_json::{Map, Value, json};

use super::status::partition_hosts;
use super::{CommandOutput, LocalRun, RefreshResult, hosts_sorted, summarize};
use crate::checks::{Facts, Observation, Outcome};
use crate::node::status::status_json;
use crate::rpc::protocol::{HostReport, OperationReport, StatusReport};

/// The command's JSON document.
pub(super) fn json(out: &CommandOutput<'_>) -> Value {
    match *out {
        CommandOutput::Added { host } => json!({"added": host}),
        CommandOutput::Removed { host } => json!({"removed": host}),
        CommandOutput::List {
            report,
            active,
            inactive,
        } => list_json(report, active, inactive),
        CommandOutput::Submitted {
            handle,
            coordinator,
            targeted,
            ..
        } => json!({
            "handle": handle,
            "coordinator": coordinator.to_string(),
            "targeted": targeted,
        }),
        CommandOutput::Operation(rec) => operation_json(rec),
        CommandOutput::RefreshStarted {
            refresh_id,
            targeted,
        } => json!({"refresh_id": refresh_id, "targeted": targeted}),
        CommandOutput::Refreshed(r) => json!({
            "refresh_id": r.refresh_id,
            "complete": r.complete,
            "hosts": r.hosts.iter().map(|(a, h)| json!({"host": a, "health": h})).collect::<Vec<_>>(),
        }),
        CommandOutput::Local(run) => local_json(run),
        CommandOutput::Status(report) => status_json(report),
    }
}

/// The command's JSON Lines: one object per host result, or the document on one line.
pub(super) fn jsonl(out: &CommandOutput<'_>) -> String {
    let lines: Vec<Value> = match *out {
        CommandOutput::Operation(rec) => hosts_sorted(rec)
            .into_iter()
            .map(|(host, r)| operation_host_line(rec, host, r))
            .collect(),
        CommandOutput::Refreshed(r) => refresh_lines(r),
        CommandOutput::Local(run) => vec![local_host_json(run)],
        ref other => vec![json(other)],
    };
    let mut text = String::new();
    for line in lines {
        text.push_str(&line.to_string());
        text.push('\n');
    }
    text
}

/// One JSON Lines object: what `host` answered to operation `rec`.
pub fn operation_host_line(rec: &OperationReport, host: &str, r: &HostReport) -> Value {
    let mut v = host_json(host, r);
    if let Value::Object(map) = &mut v {
        map.insert("handle".into(), json!(rec.handle));
    }
    v
}

fn refresh_lines(r: &RefreshResult) -> Vec<Value> {
    r.hosts
        .iter()
        .map(|(a, h)| json!({"refresh_id": r.refresh_id, "host": a, "health": h}))
        .collect()
}

/// `list` as JSON.
fn list_json(report: &StatusReport, show_active: bool, show_inactive: bool) -> Value {
    let (active, inactive) = partition_hosts(report);
    let mut v = Map::new();
    if show_active {
        v.insert("active".into(), json!(active));
    }
    if show_inactive {
        v.insert("inactive".into(), json!(inactive));
    }
    Value::Object(v)
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
fn check_json(outcome: &Outcome, observation: Option<&Observation>) -> Value {
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
fn host_json(host: &str, r: &HostReport) -> Value {
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

/// `get` as JSON.
fn operation_json(rec: &OperationReport) -> Value {
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
    })
}

/// This host's result of `checks run`, shaped like one host of an operation.
fn local_host_json(run: &LocalRun) -> Value {
    let checks: Map<String, Value> = run
        .results
        .iter()
        .map(|(n, r)| (n.clone(), check_json(&r.outcome, Some(&r.observation))))
        .collect();
    json!({
        "host": run.host,
        "status": "answered",
        "checks": checks,
        "error": null,
        "took_ms": run.took_ms,
    })
}

/// `checks run` as JSON: the file, when, and this host's results.
fn local_json(run: &LocalRun) -> Value {
    let count = |f: fn(&Outcome) -> bool| run.results.values().filter(|r| f(&r.outcome)).count();
    json!({
        "file": run.file,
        "at_unix_ms": run.at_unix_ms,
        "took_ms": run.took_ms,
        "checks": run.results.keys().collect::<Vec<_>>(),
        "hosts": [local_host_json(run)],
        "summary": {
            "checks_passed": count(|o| matches!(o, Outcome::Success(true))),
            "checks_failed": count(|o| matches!(o, Outcome::Success(false))),
            "checks_errored": count(|o| matches!(o, Outcome::Error(_))),
        },
    })
}
