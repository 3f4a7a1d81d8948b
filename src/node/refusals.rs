//! Refusals between this node and its peers, told to whoever needs to know: each one is
//! logged on this node's side, naming the peer and the reason, the first time and then at
//! most once a minute per peer (a join is retried every few seconds); the latest refusal
//! of this node by a peer is the reason `mesh status` and `/healthz` give for a node that
//! is not joined. What counts as a refusal is [`crate::rpc::transport::TransportError::is_refusal`]
//! for dials, and a refused handshake or hello for connections peers dial to us.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::mesh::member::{MeshView, State};

/// A refusal by (or of) the same peer for the same reason is logged again at most this
/// often.
pub const LOG_EVERY: Duration = Duration::from_secs(60);
/// How long a refusal stays the reason given for a node that is not joined.
pub const REASON_FOR: Duration = Duration::from_secs(300);
/// Peers remembered at once; past this the one refused longest ago is forgotten.
const MAX_PEERS: usize = 1024;

/// Which side of the refusals a [`Refusals`] keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Peers that refused this node, or that this node refused when it dialed them:
    /// logged at ERROR, since this node is the one left out.
    Dialed,
    /// Peers that dialed this node and were refused: logged at WARN.
    Accepted,
}

struct Entry {
    reason: String,
    logged_at: Instant,
    seen_at: Instant,
    /// Refusals since the last log line.
    unlogged: u64,
}

/// The refusals of one side, by peer address.
pub struct Refusals {
    side: Side,
    peers: Mutex<HashMap<SocketAddr, Entry>>,
}

impl Refusals {
    /// An empty record for `side`.
    pub fn new(side: Side) -> Refusals {
        Refusals {
            side,
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// Records that `peer` was refused (or refused us) for `reason`, a line that names
    /// the peer. Logs it when it is new for this peer, its reason changed, or the last
    /// line is older than [`LOG_EVERY`]; returns whether it logged.
    pub fn record(&self, peer: SocketAddr, reason: &str, now: Instant) -> bool {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if !peers.contains_key(&peer)
            && peers.len() >= MAX_PEERS
            && let Some(oldest) = peers
                .iter()
                .min_by_key(|(_, e)| e.seen_at)
                .map(|(addr, _)| *addr)
        {
            peers.remove(&oldest);
        }
        let (log, repeated) = match peers.get_mut(&peer) {
            Some(e) if e.reason == reason && now.duration_since(e.logged_at) < LOG_EVERY => {
                e.seen_at = now;
                e.unlogged += 1;
                (false, 0)
            }
            Some(e) => {
                let repeated = if e.reason == reason { e.unlogged } else { 0 };
                *e = Entry {
                    reason: reason.to_string(),
                    logged_at: now,
                    seen_at: now,
                    unlogged: 0,
                };
                (true, repeated)
            }
            None => {
                peers.insert(
                    peer,
                    Entry {
                        reason: reason.to_string(),
                        logged_at: now,
                        seen_at: now,
                        unlogged: 0,
                    },
                );
                (true, 0)
            }
        };
        drop(peers);
        if log {
            let again = if repeated > 0 {
                format!(" ({repeated} more times since the last report)")
            } else {
                String::new()
            };
            match self.side {
                Side::Dialed => tracing::error!("refused: {reason}{again}"),
                Side::Accepted => tracing::warn!("rejected {reason}{again}"),
            }
        }
        log
    }

    /// Forgets `peer`'s refusal: a later connection with it worked.
    pub fn clear(&self, peer: SocketAddr) {
        self.peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&peer);
    }

    /// The most recent refusal seen within [`REASON_FOR`] before `now`.
    pub fn latest(&self, now: Instant) -> Option<String> {
        self.peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|e| now.saturating_duration_since(e.seen_at) < REASON_FOR)
            .max_by_key(|e| e.seen_at)
            .map(|e| e.reason.clone())
    }
}

/// Why a node is not part of a mesh, if it is not: it was told to join (`join` non-empty)
/// or was refused by a peer (`refusal`), and no other member is alive. The reason is the
/// refusal when there is one. A node removed from the mesh is out for another reason
/// (see `/healthz`), and a node that stands alone by choice is not "not joined".
pub fn not_joined(view: &MeshView, join: &[SocketAddr], refusal: Option<&str>) -> Option<String> {
    if view.removed
        || view
            .members
            .iter()
            .any(|m| !m.is_self && m.member.state == State::Alive)
    {
        return None;
    }
    match (refusal, join.is_empty()) {
        (Some(reason), _) => Some(reason.to_string()),
        (None, false) => {
            let contacts: Vec<String> = join.iter().take(3).map(|a| a.to_string()).collect();
            Some(format!(
                "no other member is alive and no contact answered yet (joining through {})",
                contacts.join(", ")
            ))
        }
        (None, true) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, last], 30035))
    }

    #[test]
    fn a_refusal_is_logged_at_first_then_at_most_once_a_minute() {
        let r = Refusals::new(Side::Dialed);
        let t0 = Instant::now();
        assert!(r.record(addr(2), "peer 127.0.0.2:30035 refused us", t0));
        for s in 1..60 {
            assert!(!r.record(
                addr(2),
                "peer 127.0.0.2:30035 refused us",
                t0 + Duration::from_secs(s)
            ));
        }
        assert!(r.record(addr(2), "peer 127.0.0.2:30035 refused us", t0 + LOG_EVERY));
        // Another peer, or another reason, is news.
        assert!(r.record(addr(3), "peer 127.0.0.3:30035 refused us", t0 + LOG_EVERY));
        let later = t0 + LOG_EVERY + Duration::from_secs(1);
        assert!(r.record(
            addr(2),
            "peer 127.0.0.2:30035 speaks werify protocol 7",
            later
        ));
        // The latest refusal is the reason given, while it is fresh.
        assert_eq!(
            r.latest(later).as_deref(),
            Some("peer 127.0.0.2:30035 speaks werify protocol 7")
        );
        assert_eq!(r.latest(later + REASON_FOR), None);
        r.clear(addr(2));
        assert_eq!(
            r.latest(later).as_deref(),
            Some("peer 127.0.0.3:30035 refused us")
        );
    }

    #[test]
    fn peers_remembered_are_bounded() {
        let r = Refusals::new(Side::Accepted);
        let t0 = Instant::now();
        for i in 0..(MAX_PEERS + 10) {
            let peer = SocketAddr::from(([10, 0, (i / 256) as u8, (i % 256) as u8], 1));
            r.record(peer, "x", t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(r.peers.lock().unwrap().len(), MAX_PEERS);
    }
}
