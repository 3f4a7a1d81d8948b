//! JSON and JSON Lines. `--output json` prints one document per command; every check in
//! it carries `found` and, unless it passed, `expected` (and `"negated": true` when the
//! check wanted the expected facts not to hold). `--output jsonl` prints one compact
//! object per host result (the same object as in the JSON document's `hosts`, with the
//! operation's `handle`), which `ctl operation --wait` and `get --wait` print as each
//! host answers; commands without per-host results print their JSON document on one line.

use serde_json::{Map, Value, json};

use super::status::partition_hosts;
use super::{CommandOutput, LocalRun, RefreshResult, hosts_sorted};
use crate::checks::Outcome;
use crate::node::operation_json::{check_json, host_json, operation_json};
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
        CommandOutput::Health(report) => crate::node::health_json::health_json(report),
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
