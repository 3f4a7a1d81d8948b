//! `werify mesh watch` on the node side: one stream per watcher carrying this node's
//! membership events as they are recorded ([`crate::node::events`]). At most
//! [`MAX_WATCHERS`] streams at once; a watcher that reads too slowly loses events (and is
//! told how many), and one that stops reading for [`WRITE_TIMEOUT`] is dropped, so a
//! watcher never holds up the mesh. What an event is, is the event log's business.

use std::time::Duration;

use crate::node::dispatch::NodeContext;
use crate::node::events::Received;
use crate::rpc::frame::{self, FrameError};
use crate::rpc::protocol::{ErrorCode, Response};

/// Watch streams a node serves at once; more are refused as rate limited.
pub const MAX_WATCHERS: usize = 64;
/// Longest one event may wait to be written to a watcher that does not read.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a watch stream ended, for the log.
#[derive(Debug, thiserror::Error)]
pub enum WatchEnd {
    #[error("the watcher went away")]
    WatcherGone,
    #[error("the watcher read nothing for {WRITE_TIMEOUT:?}")]
    Stalled,
    #[error(transparent)]
    Write(#[from] FrameError),
    #[error("the node is shutting down")]
    ShuttingDown,
}

async fn send(stream: &mut quinn::SendStream, resp: &Response) -> Result<(), WatchEnd> {
    match tokio::time::timeout(WRITE_TIMEOUT, frame::write_frame(stream, resp)).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(WatchEnd::Stalled),
    }
}

/// Serves one watch stream: the first frame says who is watched, then the events after
/// `since` still in the log (with the count of those no longer in it), then every event
/// as it is recorded, until the watcher goes away or the node stops.
pub async fn serve_watch(
    ctx: &NodeContext,
    stream: &mut quinn::SendStream,
    since: Option<u64>,
) -> Result<(), WatchEnd> {
    let Ok(_slot) = ctx.watch_slots.try_acquire() else {
        let refusal = Response::error(
            ErrorCode::RateLimited,
            format!(
                "this node already serves {MAX_WATCHERS} watchers; stop one or watch through another node"
            ),
        );
        return send(stream, &refusal).await;
    };
    let (backlog, mut sub) = ctx.mesh.events().subscribe(since);
    send(
        stream,
        &Response::Watching {
            node_id: ctx.node_id,
            addr: ctx.addr.to_string(),
            next_seq: backlog.next_seq,
        },
    )
    .await?;
    if backlog.missed > 0 {
        send(
            stream,
            &Response::EventsMissed {
                count: backlog.missed,
            },
        )
        .await?;
    }
    for e in backlog.events {
        send(stream, &Response::Event(Box::new((*e).clone()))).await?;
    }
    loop {
        let next = tokio::select! {
            next = sub.recv() => next,
            _ = stream.stopped() => return Err(WatchEnd::WatcherGone),
        };
        let resp = match next {
            Some(Received::Event(e)) => Response::Event(Box::new((*e).clone())),
            Some(Received::Missed(count)) => Response::EventsMissed { count },
            None => return Err(WatchEnd::ShuttingDown),
        };
        send(stream, &resp).await?;
    }
}
