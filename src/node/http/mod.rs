//! The node's HTTP endpoint, off unless `--http ADDR` is given: plain HTTP/1.1 (hyper) on
//! the node's own tokio runtime, for people, load balancers, orchestrator probes,
//! Prometheus and scripts. Read-only: nothing served here changes the node or the mesh.
//!
//! | path | answer |
//! | --- | --- |
//! | `GET /` | the live page of the mesh ([`page`]) |
//! | `GET /healthz` | `200 ok`, or `503` and one line saying why ([`healthz`]) |
//! | `GET /metrics` | the Prometheus text exposition of [`crate::node::metrics`] |
//! | `GET /v1/status` | the JSON of `werify mesh status --output json` ([`api`]) |
//! | `GET /v1/events[?since=SEQ]` | the node's membership events after SEQ, oldest first ([`api`]) |
//! | `GET /v1/operations` | the operations this node knows, newest first ([`api`]) |
//! | `GET /v1/operations/HANDLE` | the JSON of `werify ctl get HANDLE --output json` ([`api`]) |
//! | `GET /v1/health[?failing]` | the JSON of `werify ctl health [--failing] --output json` ([`api`]) |
//!
//! Other paths get 404, other methods 405. Who may read what is [`access`]: on loopback
//! anyone who can connect; elsewhere only with the bearer token of `--http-token-file`
//! (every path but `/healthz`). What a hostile client can cost is bounded: at most
//! [`MAX_HTTP_CONNECTIONS`] connections at once (more are closed at once), one request
//! per connection (no keep-alive), a request head of at most [`MAX_REQUEST_HEAD_BYTES`]
//! read within [`HEADER_READ_TIMEOUT`], request bodies never read, and every connection
//! closed after [`CONNECTION_TIMEOUT`] whatever it is doing.
//!
//! Not here: what the metrics count and where ([`crate::node::metrics`]), how the status
//! report is built ([`crate::node::dispatch::status`]), the periodic checks
//! ([`crate::node::health`]).

pub mod access;
pub mod api;
pub mod healthz;
pub mod page;

use std::convert::Infallible;
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

pub use access::{Access, AccessError};
pub use healthz::{HEALTHZ_NAMES, health_verdict};

use crate::node::dispatch::NodeContext;
use crate::node::metrics;
use access::Admission;

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

/// Why the HTTP endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("--http: cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Access(#[from] AccessError),
}

/// Binds the endpoint's TCP listener (port 0 picks a free port).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Listen { addr, source })
}

/// Serves HTTP on `listener` to those `access` admits until the returned future is dropped; dropping it closes
/// every connection it serves.
pub async fn serve(listener: TcpListener, ctx: Arc<NodeContext>, access: Access) {
    let slots = Arc::new(Semaphore::new(MAX_HTTP_CONNECTIONS));
    let health = Arc::new(api::HealthCache::default());
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
                let (ctx, access, health) = (ctx.clone(), access.clone(), health.clone());
                let service = service_fn(move |req: Request<Incoming>| {
                    let (ctx, access, health) = (ctx.clone(), access.clone(), health.clone());
                    async move {
                        Ok::<_, Infallible>(answer(&ctx, &access, &health, &req).await.into_response())
                    }
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
async fn answer(
    ctx: &NodeContext,
    access: &Access,
    health: &api::HealthCache,
    req: &Request<Incoming>,
) -> Reply {
    let path = req.uri().path();
    if path != "/healthz" {
        match access.admit(req.headers()) {
            Admission::Admitted => {}
            Admission::NeedsToken => {
                let mut reply = Reply::text(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized: send the token of the node's --http-token-file as \
                     `Authorization: Bearer TOKEN`\n"
                        .into(),
                );
                reply.challenge = true;
                return reply;
            }
            Admission::ForeignHost => {
                return Reply::text(
                    StatusCode::FORBIDDEN,
                    "forbidden: address this endpoint by IP address or localhost (the Host \
                     header names another host)\n"
                        .into(),
                );
            }
        }
    }
    if req.method() != Method::GET {
        let mut reply = Reply::text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: only GET\n".into(),
        );
        reply.allow_get = true;
        return reply;
    }
    match path {
        "/healthz" => {
            let view = ctx.mesh.view().await.ok();
            let periodic = ctx.periodic.borrow().clone();
            let refusal = ctx.refusals.latest(std::time::Instant::now());
            match health_verdict(view.as_ref(), &periodic, &ctx.join, refusal.as_deref()) {
                Ok(()) => Reply::text(StatusCode::OK, "ok\n".into()),
                Err(why) => Reply::text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
            }
        }
        "/metrics" => {
            let view = ctx.mesh.view().await.ok();
            let body = ctx
                .metrics
                .render(view.as_ref(), ctx.transport.open_connections());
            Reply::new(StatusCode::OK, metrics::CONTENT_TYPE, body)
        }
        "/v1/status" => api::mesh_status(ctx).await,
        "/v1/events" => api::events(ctx, req.uri().query()),
        "/v1/health" => api::health(ctx, health, req.uri().query()).await,
        "/v1/operations" | "/v1/operations/" => api::operations(ctx, req.uri().query()).await,
        _ => {
            if let Some(handle) = path.strip_prefix("/v1/operations/") {
                return api::operation(ctx, handle).await;
            }
            match page::asset(path) {
                Some(asset) => Reply::new(StatusCode::OK, asset.content_type, asset.body),
                None if path.starts_with("/v1/") => api::error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    &format!("no such endpoint {path:.100}: the JSON paths are {JSON_PATHS}"),
                ),
                None => Reply::text(
                    StatusCode::NOT_FOUND,
                    format!("not found: the paths are /, /healthz, /metrics and {JSON_PATHS}\n"),
                ),
            }
        }
    }
}

/// Text on one line: control characters become spaces (check names come from the
/// operator's checks file, query values from the client).
pub fn one_line(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The JSON paths, for 404 answers.
const JSON_PATHS: &str =
    "/v1/status, /v1/events, /v1/health, /v1/operations and /v1/operations/HANDLE";

/// An answer before it becomes a hyper response.
pub struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
    /// Ask for a bearer token (`WWW-Authenticate`).
    challenge: bool,
    /// Say that only GET is allowed (`Allow`).
    allow_get: bool,
}

impl Reply {
    fn new(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            content_type,
            body: body.into(),
            challenge: false,
            allow_get: false,
        }
    }

    fn text(status: StatusCode, body: String) -> Reply {
        Reply::new(status, "text/plain; charset=utf-8", body)
    }

    /// `value` as pretty JSON, ending in a newline.
    fn json(status: StatusCode, value: &serde_json::Value) -> Reply {
        match serde_json::to_string_pretty(value) {
            Ok(mut json) => {
                json.push('\n');
                Reply::new(status, "application/json", json)
            }
            Err(e) => Reply::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("BUG! cannot render JSON: {e}\n"),
            ),
        }
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut resp = Response::new(Full::new(self.body));
        *resp.status_mut() = self.status;
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(page::CONTENT_SECURITY_POLICY),
        );
        if self.challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"werify\""),
            );
        }
        if self.allow_get {
            headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
        }
        resp
    }
}
