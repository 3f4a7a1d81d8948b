//! The read-only JSON endpoints, the same documents the CLI prints with `--output json`:
//!
//! | path | answer |
//! | --- | --- |
//! | `GET /v1/status` | `werify mesh status --output json` |
//! | `GET /v1/events[?since=SEQ]` | the node's membership events after SEQ, oldest first ([`events_json`]) |
//! | `GET /v1/operations[?limit=N]` | the operations this node knows, newest first: those it coordinates and those of other coordinators fetched through it |
//! | `GET /v1/operations/HANDLE` | `werify ctl get HANDLE --output json`, partial while hosts are still answering |
//! | `GET /v1/health[?failing]` | `werify ctl health [--failing] --output json`: every host's latest periodic results with what they found, gathered at most every [`HEALTH_FRESH_FOR`] ([`HealthCache`]) |
//!
//! Errors are JSON too: `{"error": "what was wrong and what to do", "code": "not_found"}`
//! with the status code of its kind (400, 404, 429, 502, 503, 504).
//!
//! Not here: building the documents ([`crate::node::status`],
//! [`crate::node::operation_json`], [`crate::node::health_json`]), fetching operations
//! ([`crate::ops::coordinator`]), gathering health ([`crate::node::health_report`]),
//! recording events ([`crate::node::events`]).

use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::{Value, json};

use crate::node::dispatch::{NodeContext, status};
use crate::node::events::Backlog;
use crate::node::health_json::health_json;
use crate::node::health_report;
use crate::node::operation_json::operation_json;
use crate::node::status::status_json;
use crate::ops::error::OpsError;
use crate::ops::handle::Handle;
use crate::rpc::protocol::ErrorCode;

use super::{Reply, one_line};

/// Operations `/v1/operations` lists unless `?limit=` says otherwise.
pub const DEFAULT_LIST_LIMIT: usize = 50;
/// Most operations `/v1/operations` lists.
pub const MAX_LIST_LIMIT: usize = 500;
/// Longest `/v1/operations/HANDLE` waits for another coordinator to answer; the
/// connection itself is closed after [`super::CONNECTION_TIMEOUT`].
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET /v1/status`.
pub async fn mesh_status(ctx: &NodeContext) -> Reply {
    match status(ctx).await {
        Ok(report) => Reply::json(StatusCode::OK, &status_json(&report)),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            &e.to_string(),
        ),
    }
}

/// `GET /v1/events?since=SEQ`.
pub fn events(ctx: &NodeContext, query: Option<&str>) -> Reply {
    match since_param(query) {
        Ok(after) => {
            let backlog = ctx.mesh.events().since(after);
            Reply::json(StatusCode::OK, &events_json(ctx.node_id, after, &backlog))
        }
        Err(why) => error(StatusCode::BAD_REQUEST, "invalid", &why),
    }
}

/// The `since` of a `/v1/events` query: the sequence number after which to list events
/// (0, all the node still holds, when absent).
pub fn since_param(query: Option<&str>) -> Result<u64, String> {
    let mut since = 0;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("since", value)) => {
                since = value.parse().map_err(|_| {
                    format!(
                        "bad request: since={} is not a sequence number; use since=SEQ with the seq of the last event you have (0 for all)",
                        one_line(value)
                    )
                })?;
            }
            _ => {
                return Err(format!(
                    "bad request: unknown parameter {:?}; the only one is since=SEQ",
                    one_line(pair)
                ));
            }
        }
    }
    Ok(since)
}

/// The `/v1/events` document: the events after `since` the node still holds, oldest
/// first; `missed` counts those after `since` it no longer holds (the node keeps the last
/// [`crate::node::events::EVENT_LOG_CAPACITY`]), `next_seq` is the seq the next event will
/// get. To follow the log, ask again with `since` = the last `seq` received.
pub fn events_json(
    node_id: crate::base::NodeId,
    since: u64,
    backlog: &Backlog,
) -> serde_json::Value {
    serde_json::json!({
        "node_id": node_id.to_string(),
        "since": since,
        "next_seq": backlog.next_seq,
        "missed": backlog.missed,
        "events": backlog.events.iter().map(|e| &**e).collect::<Vec<_>>(),
    })
}

/// `GET /v1/operations?limit=N`.
pub async fn operations(ctx: &NodeContext, query: Option<&str>) -> Reply {
    let limit = match list_limit(query) {
        Ok(limit) => limit,
        Err(why) => return error(StatusCode::BAD_REQUEST, "invalid", &why),
    };
    match ctx.coordinator.recent(limit).await {
        Ok(list) => {
            let operations: Vec<Value> = list
                .iter()
                .map(|op| {
                    let mut doc = operation_json(&op.report);
                    if let Value::Object(fields) = &mut doc {
                        fields.remove("hosts");
                        fields.insert("coordinated_here".into(), json!(op.coordinated_here));
                    }
                    doc
                })
                .collect();
            Reply::json(StatusCode::OK, &json!({ "operations": operations }))
        }
        Err(e) => ops_error(&e),
    }
}

/// `GET /v1/operations/HANDLE`.
pub async fn operation(ctx: &NodeContext, handle: &str) -> Reply {
    let handle: Handle = match handle.parse() {
        Ok(h) => h,
        Err(e) => return ops_error(&OpsError::from(e)),
    };
    match tokio::time::timeout(
        FETCH_TIMEOUT,
        ctx.coordinator.get(&handle, Duration::ZERO, None),
    )
    .await
    {
        Ok(Ok(report)) => Reply::json(StatusCode::OK, &operation_json(&report)),
        Ok(Err(e)) => ops_error(&e),
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            "unavailable",
            &format!(
                "the coordinator of {handle} did not answer within {}s; try again, or ask the coordinator's own endpoint",
                FETCH_TIMEOUT.as_secs()
            ),
        ),
    }
}

/// How long a gathered `/v1/health` answer is served again before the hosts are asked
/// anew: however many pages poll it, the mesh is asked at most this often.
pub const HEALTH_FRESH_FOR: Duration = Duration::from_secs(2);

/// The latest `/v1/health` answers (all checks, failing only), shared by every request;
/// one gathering at a time, the others wait for it and take its answer.
#[derive(Default)]
pub struct HealthCache {
    latest: tokio::sync::Mutex<[Option<(Instant, Value)>; 2]>,
}

/// `GET /v1/health[?failing]`.
pub async fn health(ctx: &NodeContext, cache: &HealthCache, query: Option<&str>) -> Reply {
    let failing_only = match failing_param(query) {
        Ok(f) => f,
        Err(why) => return error(StatusCode::BAD_REQUEST, "invalid", &why),
    };
    let mut latest = cache.latest.lock().await;
    let slot = &mut latest[usize::from(failing_only)];
    if let Some((at, doc)) = slot.as_ref()
        && at.elapsed() < HEALTH_FRESH_FOR
    {
        return Reply::json(StatusCode::OK, doc);
    }
    match health_report::gather(ctx, failing_only).await {
        Ok(report) => {
            let doc = health_json(&report);
            let reply = Reply::json(StatusCode::OK, &doc);
            *slot = Some((Instant::now(), doc));
            reply
        }
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            &e.to_string(),
        ),
    }
}

/// Whether a `/v1/health` query asks for failing and erroring checks only (`failing`,
/// `failing=true`).
fn failing_param(query: Option<&str>) -> Result<bool, String> {
    let mut failing = false;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        failing = match pair {
            "failing" | "failing=true" | "failing=1" => true,
            "failing=false" | "failing=0" => false,
            _ => {
                return Err(format!(
                    "unknown query {:.40}: the only parameter is failing (or failing=true|false)",
                    one_line(pair)
                ));
            }
        };
    }
    Ok(failing)
}

/// The `limit` of a `/v1/operations` query: [`DEFAULT_LIST_LIMIT`] when absent.
fn list_limit(query: Option<&str>) -> Result<usize, String> {
    let mut limit = DEFAULT_LIST_LIMIT;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("limit", n)) => {
                limit = n
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
                    .ok_or_else(|| {
                        format!("limit={n:.20}: use a whole number from 1 to {MAX_LIST_LIMIT}")
                    })?;
            }
            _ => {
                return Err(format!(
                    "unknown query {pair:.40}: the only parameter is limit=N"
                ));
            }
        }
    }
    Ok(limit)
}

fn ops_error(e: &OpsError) -> Reply {
    let code = e.code();
    let status = match code {
        ErrorCode::Invalid => StatusCode::BAD_REQUEST,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound | ErrorCode::NoMatch => StatusCode::NOT_FOUND,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Peer | ErrorCode::Incompatible => StatusCode::BAD_GATEWAY,
        ErrorCode::Unavailable | ErrorCode::Unknown => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, code.as_str(), &e.to_string())
}

/// A JSON error document.
pub fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    Reply::json(status, &json!({ "error": message, "code": code }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_events_query_takes_since_only() {
        assert_eq!(since_param(None), Ok(0));
        assert_eq!(since_param(Some("")), Ok(0));
        assert_eq!(since_param(Some("since=42")), Ok(42));
        let bad = since_param(Some("since=-1")).unwrap_err();
        assert!(bad.contains("since=-1 is not a sequence number"), "{bad}");
        let unknown = since_param(Some("limit=3")).unwrap_err();
        assert!(
            unknown.contains("unknown parameter \"limit=3\""),
            "{unknown}"
        );
    }

    #[test]
    fn the_health_query_takes_failing_only() {
        assert_eq!(failing_param(None), Ok(false));
        assert_eq!(failing_param(Some("failing")), Ok(true));
        assert_eq!(failing_param(Some("failing=true")), Ok(true));
        assert_eq!(failing_param(Some("failing=0")), Ok(false));
        let bad = failing_param(Some("failing=maybe")).unwrap_err();
        assert!(bad.contains("unknown query failing=maybe"), "{bad}");
    }

    #[test]
    fn the_list_limit_is_a_bounded_number() {
        assert_eq!(list_limit(None), Ok(DEFAULT_LIST_LIMIT));
        assert_eq!(list_limit(Some("")), Ok(DEFAULT_LIST_LIMIT));
        assert_eq!(list_limit(Some("limit=7")), Ok(7));
        assert_eq!(list_limit(Some("limit=500")), Ok(MAX_LIST_LIMIT));
        for bad in [
            "limit=0",
            "limit=501",
            "limit=x",
            "limit=",
            "limit=-1",
            "since=3",
            "limit",
        ] {
            let err = list_limit(Some(bad)).expect_err(bad);
            assert!(
                err.contains("limit") || err.contains("unknown"),
                "{bad}: {err}"
            );
        }
    }
}
