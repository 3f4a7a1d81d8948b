//! The JSON document of a [`StatusReport`]: what `werify mesh status --output json` prints
//! and what the node's `GET /v1/status` answers, from this one function. Building the
//! report is [`crate::node::dispatch::status`]; the text table is the CLI's.

use std::time::Duration;

use serde_json::{Value, json};

use crate::mesh::member::{HealthSummary, State};
use crate::rpc::protocol::StatusReport;

/// A gossiped health summary under readable names.
pub fn health_json(h: &HealthSummary) -> Value {
    json!({
        "version": h.version,
        "passing": h.passing,
        "failing": h.failing,
        "erroring": h.erroring,
        "failing_names": h.failing_names,
        "erroring_names": h.erroring_names,
        "names_omitted": h.names_omitted,
        "at_unix_ms": h.at_unix_ms,
        "refresh_id": h.refresh_id,
    })
}

fn millis(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.as_secs_f64() * 1000.0))
}

/// `mesh status` as JSON: the same fields as the table, with readable names.
pub fn status_json(r: &StatusReport) -> Value {
    let count = |s: State| r.members.iter().filter(|m| m.state == s).count();
    let members: Vec<Value> = r
        .members
        .iter()
        .map(|m| {
            json!({
                "addr": m.addr,
                "node_id": m.node_id.to_string(),
                "state": m.state.to_string(),
                "is_self": m.is_self,
                "incarnation": m.incarnation,
                "last_heard_ms_ago": millis(m.last_heard_ago),
                "rtt_ms": millis(m.rtt_us.or(m.rtt)),
                "in_state_for_ms": millis(m.state_for),
                "tags": m.tags,
                "health": m.health.as_ref().map(health_json),
                "suspected_by": m.suspected_by.map(|id| id.to_string()),
                "confirmations": m.confirmations,
                "protocol": m.protocol,
            })
        })
        .collect();
    json!({
        "env": r.env,
        "node_id": r.node_id.to_string(),
        "addr": r.addr,
        "profile": r.profile,
        "local_health": r.local_health,
        "local_health_max": r.local_health_max,
        "connections": r.connections,
        "not_joined": r.not_joined,
        "counts": {
            "alive": count(State::Alive),
            "suspect": count(State::Suspect),
            "dead": count(State::Dead),
            "left": count(State::Left),
        },
        "members": members,
    })
}
