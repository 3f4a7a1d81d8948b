//! The node's HTTP endpoint, off unless `--http ADDR` is given: plain HTTP/1.1 (hyper) on
//! the node's own tokio runtime, for load balancers, orchestrator probes and Prometheus.
//!
//! | path | answer |
//! | --- | --- |
//! | `GET /healthz` | `200 ok`, or `503` and one line saying why ([`health_verdict`]) |
//! | `GET /metrics` | the Prometheus text exposition of [`crate::node::metrics`] |
//! | `GET /v1/status` | the JSON of `werify mesh status --output json` ([`crate::node::status`]) |
//! | `GET /v1/events[?since=SEQ]` | the node's membership events after SEQ, oldest first ([`events_json`]) |
//!
//! Other paths get 404, other methods 405. There is no authentication: the endpoint
//! listens on loopback unless the operator names another address (the node then warns).
//! What a hostile local client can cost is bounded: at most [`MAX_HTTP_CONNECTIONS`]
//! connections at once (more are closed at once), one request per connection (no
//! keep-alive), a request head of at most [`MAX_REQUEST_HEAD_BYTES`] read within
//! [`HEADER_READ_TIMEOUT`], request bodies never read, and every connection closed after
//! [`CONNECTION_TIMEOUT`] whatever it is doing.
//!
//! Not here: what the metrics count and where ([`crate::node::metrics`]), how the status
//! report is built ([`crate::node::dispatch::status`]), the periodic checks
//! ([`crate::node::health`]).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::mesh::member::{MeshView, State};
use crate::node::dispatch::{NodeContext, status};
use crate::node::events::Backlog;
use crate::node::health::Periodic;
use crate::node::metrics;
use crate::node::status::status_json;

/// Connections served at once; past this new ones are closed unanswered.
pub const MAX_HTTP_CONNECTIONS: usize = 16;
/// Longest a client may take to send its request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest one connection (its one request and response) may stay open.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line and headers) read; hyper's minimum.
pub const MAX_REQUEST_HEAD_BYTES: usize = 8192;
/// Most request headers accepted.
pub const MAX_REQUEST_HEADERS: usize = 32;
/// Failing check names `/healthz` lists before saying how many more there are.
pub const HEALTHZ_NAMES: usize = 3;

/// Why the HTTP endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("--http: cannot listen on {addr}: {source}")]
pub struct HttpError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// Binds the endpoint's TCP listener (port 0 picks a free port).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError { addr, source })
}

/// Serves HTTP on `listener` until the returned future is dropped; dropping it closes
/// every connection it serves.
pub async fn serve(listener: TcpListener, ctx: Arc<NodeContext>) {
    let slots = Arc::new(Semaphore::new(MAX_HTTP_CONNECTIONS));
    let mut connections = JoinSet::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(false)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES)
        .max_headers(MAX_REQUEST_HEADERS);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, most likely: let some close first.
                        tracing::warn!("HTTP accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::debug!(%remote, "HTTP connection closed: {MAX_HTTP_CONNECTIONS} already open");
                    continue;
                };
                let ctx = ctx.clone();
                let service = service_fn(move |req: Request<Incoming>| {
                    let ctx = ctx.clone();
                    async move { Ok::<_, Infallible>(answer(&ctx, &req).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                connections.spawn(async move {
                    match tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::debug!(%remote, "HTTP connection: {e}"),
                        Err(_) => tracing::debug!(%remote, "HTTP connection closed after {CONNECTION_TIMEOUT:?}"),
                    }
                    drop(slot);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The answer to one request.
async fn answer(ctx: &NodeContext, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        let mut resp = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: only GET\n".into(),
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return resp;
    }
    match req.uri().path() {
        "/healthz" => {
            let view = ctx.mesh.view().await.ok();
            let periodic = ctx.periodic.borrow().clone();
            match health_verdict(view.as_ref(), &periodic, &ctx.join) {
                Ok(()) => text(StatusCode::OK, "ok\n".into()),
                Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
            }
        }
        "/metrics" => {
            let view = ctx.mesh.view().await.ok();
            let body = ctx
                .metrics
                .render(view.as_ref(), ctx.transport.open_connections());
            with_type(StatusCode::OK, metrics::CONTENT_TYPE, body)
        }
        "/v1/status" => match status(ctx).await {
            Ok(report) => match serde_json::to_string_pretty(&status_json(&report)) {
                Ok(mut json) => {
                    json.push('\n');
                    with_type(StatusCode::OK, "application/json", json)
                }
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot render the status: {e}\n"),
                ),
            },
            Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
        },
        "/v1/events" => match since_param(req.uri().query()) {
            Ok(after) => {
                let backlog = ctx.mesh.events().since(after);
                json_answer(&events_json(ctx.node_id, after, &backlog))
            }
            Err(why) => text(StatusCode::BAD_REQUEST, format!("{why}\n")),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: the paths are /healthz, /metrics, /v1/status and /v1/events\n".into(),
        ),
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

fn json_answer(doc: &serde_json::Value) -> Response<Full<Bytes>> {
    match serde_json::to_string_pretty(doc) {
        Ok(mut json) => {
            json.push('\n');
            with_type(StatusCode::OK, "application/json", json)
        }
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the answer: {e}\n"),
        ),
    }
}

fn text(code: StatusCode, body: String) -> Response<Full<Bytes>> {
    with_type(code, "text/plain; charset=utf-8", body)
}

fn with_type(code: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = code;
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `Ok` when the node is in a mesh and its periodic checks pass, else one line saying
/// why not. In a mesh means: the mesh task runs, this node was not removed, and when it
/// was told to join (`join` non-empty) at least one other member is alive. The checks
/// pass when there are none, or when their latest run had no failing or erroring check.
pub fn health_verdict(
    view: Option<&MeshView>,
    periodic: &Periodic,
    join: &[SocketAddr],
) -> Result<(), String> {
    let Some(view) = view else {
        return Err("the node is shutting down".into());
    };
    let mut reasons = Vec::new();
    if view.removed {
        reasons.push(
            "removed from the mesh (werify ctl del); it stays out until added again".to_string(),
        );
    } else if !join.is_empty()
        && !view
            .members
            .iter()
            .any(|m| !m.is_self && m.member.state == State::Alive)
    {
        let contacts: Vec<String> = join.iter().take(3).map(|a| a.to_string()).collect();
        reasons.push(format!(
            "alone in the mesh: no other member is alive (joining through {})",
            contacts.join(", ")
        ));
    }
    match periodic {
        Periodic::Off => {}
        Periodic::NotRunYet => reasons.push("the periodic checks have not run yet".into()),
        Periodic::Ran(run) if run.summary.failing + run.summary.erroring > 0 => {
            let s = &run.summary;
            let total = s.passing + s.failing + s.erroring;
            let mut line = format!(
                "{} of {total} periodic checks failing: {}",
                s.failing + s.erroring,
                s.failing_names
                    .iter()
                    .take(HEALTHZ_NAMES)
                    .map(|n| one_line(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let more = s.failing_names.len().saturating_sub(HEALTHZ_NAMES);
            if more > 0 {
                let _ = write!(line, " and {more} more");
            }
            reasons.push(line);
        }
        Periodic::Ran(_) => {}
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons.join("; "))
    }
}

/// A check name on one line (names come from the operator's checks file).
fn one_line(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::base::NodeId;
    use crate::checks::run::Summary;
    use crate::mesh::member::{Member, MemberView, Peer, Tags};
    use crate::node::health::PeriodicRun;

    fn view(others: &[State], removed: bool) -> MeshView {
        let member = |n: u8, state: State| {
            let peer = Peer {
                id: NodeId([n; 16]),
                addr: SocketAddr::from(([127, 0, 0, n], 1)),
            };
            let mut m = Member::new(peer, 0, Tags::new(), Instant::now());
            m.state = state;
            MemberView {
                member: m,
                is_self: n == 1,
                last_heard_ago: None,
                state_for: Duration::ZERO,
            }
        };
        let mut members = vec![member(1, State::Alive)];
        for (i, s) in others.iter().enumerate() {
            members.push(member(i as u8 + 2, *s));
        }
        MeshView {
            members,
            local_health: 0,
            local_health_max: 8,
            removed,
        }
    }

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
    fn healthz_needs_a_mesh_when_told_to_join_and_passing_checks() {
        let seed = [SocketAddr::from(([127, 0, 0, 2], 1))];
        let ran = |summary: Summary| {
            Periodic::Ran(std::sync::Arc::new(PeriodicRun {
                summary,
                ..PeriodicRun::default()
            }))
        };
        let ok = ran(Summary {
            passing: 2,
            ..Summary::default()
        });
        assert_eq!(
            health_verdict(Some(&view(&[], false)), &Periodic::Off, &[]),
            Ok(())
        );
        assert_eq!(
            health_verdict(Some(&view(&[State::Alive], false)), &ok, &seed),
            Ok(())
        );
        let alone = health_verdict(Some(&view(&[State::Dead], false)), &ok, &seed);
        assert!(
            alone
                .as_ref()
                .is_err_and(|e| e.starts_with("alone in the mesh")),
            "{alone:?}"
        );
        let removed = health_verdict(Some(&view(&[State::Alive], true)), &ok, &seed);
        assert!(removed.is_err_and(|e| e.starts_with("removed")));
        assert!(health_verdict(None, &ok, &[]).is_err());
        let not_yet = health_verdict(Some(&view(&[], false)), &Periodic::NotRunYet, &[]);
        assert!(not_yet.is_err_and(|e| e.contains("not run yet")));
        let failing = ran(Summary {
            passing: 1,
            failing: 4,
            erroring: 1,
            failing_names: ["a", "b\nc", "d", "e", "f"].map(String::from).to_vec(),
        });
        assert_eq!(
            health_verdict(Some(&view(&[State::Dead], false)), &failing, &seed),
            Err(
                "alone in the mesh: no other member is alive (joining through 127.0.0.2:1); \
                 5 of 6 periodic checks failing: a, b c, d and 2 more"
                    .into()
            )
        );
    }
}
