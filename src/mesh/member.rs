//! What one node knows about one member: [`Peer`] (id + address), [`State`], [`Tags`], the
//! gossiped [`HealthSummary`] and the [`Member`] record that holds them together with
//! suspicion provenance. The rules that change these records live in the membership state
//! machine, not here.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::base::NodeId;

/// A mesh node: its stable id and the address its runtime listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Peer {
    /// The node's identity (bound to its certificate).
    #[serde(rename = "i")]
    pub id: NodeId,
    /// Where the node's runtime accepts QUIC connections.
    #[serde(rename = "a")]
    pub addr: SocketAddr,
}

/// A copy of one member as seen at one instant, for status and listing.
#[derive(Clone, Debug)]
pub struct MemberView {
    pub member: Member,
    pub is_self: bool,
    pub last_heard_ago: Option<Duration>,
    pub state_for: Duration,
}

/// The whole mesh as seen at one instant.
#[derive(Clone, Debug)]
pub struct MeshView {
    pub members: Vec<MemberView>,
    pub local_health: u32,
    pub local_health_max: u32,
    pub removed: bool,
}

#[cfg(test)]
impl Peer {
    /// Test node `n`: id `[n; 16]`, listening on 127.0.0.`n`:`port`.
    pub(crate) fn numbered(n: u8, port: u16) -> Peer {
        Peer {
            id: NodeId([n; 16]),
            addr: SocketAddr::from(([127, 0, 0, n], port)),
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id.short(), self.addr)
    }
}

/// Liveness of a member as seen by one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum State {
    /// Answering probes (or not yet suspected).
    #[serde(rename = "a")]
    Alive,
    /// Missed a probe; declared dead unless it refutes before the suspicion timeout.
    #[serde(rename = "s")]
    Suspect,
    /// Declared failed; still remembered (and retried) until reaped.
    #[serde(rename = "d")]
    Dead,
    /// Left gracefully, or was removed by an operator (`werify ctl del`).
    #[serde(rename = "l")]
    Left,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Alive => "alive",
            State::Suspect => "suspect",
            State::Dead => "dead",
            State::Left => "left",
        })
    }
}

/// Free-form labels a node announces about itself (role, zone, …). Travel in Alive updates;
/// keep them small (their encoding is capped at [`MAX_TAGS_BYTES`]).
pub type Tags = BTreeMap<String, String>;

/// Largest encoded size of a node's tags (memberlist's node-meta limit).
pub const MAX_TAGS_BYTES: usize = 512;
/// At most this many failing check names are kept in a [`HealthSummary`].
pub const MAX_FAILING_NAMES: usize = 8;
/// Each failing check name is cut to at most this many bytes (at a char boundary).
pub const MAX_FAILING_NAME_BYTES: usize = 48;

/// A node's latest periodic check results, gossiped so every node can show mesh health.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthSummary {
    /// Increases with every new summary from the same node (newer wins).
    #[serde(rename = "v")]
    pub version: u64,
    /// Checks that held.
    #[serde(rename = "p")]
    pub passing: u32,
    /// Checks that did not hold.
    #[serde(rename = "f")]
    pub failing: u32,
    /// Checks that could not be decided.
    #[serde(rename = "e")]
    pub erroring: u32,
    /// Names of failing checks; see [`HealthSummary::capped`] for the limits.
    #[serde(rename = "n")]
    pub failing_names: Vec<String>,
    /// Wall-clock time of the run, milliseconds since the Unix epoch.
    #[serde(rename = "t")]
    pub at_unix_ms: u64,
    /// The refresh round that produced it (0 for periodic runs).
    #[serde(rename = "r")]
    pub refresh_id: u64,
}

impl HealthSummary {
    /// The same summary with at most [`MAX_FAILING_NAMES`] names of at most
    /// [`MAX_FAILING_NAME_BYTES`] bytes each, so that it always fits in one datagram.
    pub fn capped(mut self) -> HealthSummary {
        self.failing_names.truncate(MAX_FAILING_NAMES);
        for name in &mut self.failing_names {
            if name.len() > MAX_FAILING_NAME_BYTES {
                let mut end = MAX_FAILING_NAME_BYTES;
                while !name.is_char_boundary(end) {
                    end -= 1;
                }
                name.truncate(end);
            }
        }
        self
    }
}

/// Tags cut down (dropping the largest entries last in key order) until their encoding
/// fits [`MAX_TAGS_BYTES`].
pub fn cap_tags(tags: Tags) -> Tags {
    let mut out = Tags::new();
    let mut size = 1usize; // CBOR map header
    for (k, v) in tags {
        // CBOR text: header (<= 3 bytes for these sizes) + bytes.
        let entry = k.len() + v.len() + 6;
        if size + entry > MAX_TAGS_BYTES {
            continue;
        }
        size += entry;
        out.insert(k, v);
    }
    out
}

/// Everything one node knows about one member (itself included).
#[derive(Clone, Debug)]
pub struct Member {
    /// Id and address.
    pub peer: Peer,
    /// The member's incarnation: only the member itself raises it, to refute suspicion.
    pub incarnation: u64,
    /// Current liveness.
    pub state: State,
    /// The member's tags, from its latest Alive update.
    pub tags: Tags,
    /// The member's latest health summary, if any arrived.
    pub health: Option<HealthSummary>,
    /// When `state` last changed (local clock).
    pub state_since: Instant,
    /// Last time a message from this member arrived directly.
    pub last_heard: Option<Instant>,
    /// Round-trip time of the latest direct probe this node sent it.
    pub rtt: Option<Duration>,
    /// Who first suspected it in the current suspicion, or who declared it dead / removed
    /// it. Kept after the member is declared dead, cleared when it is alive again.
    pub suspected_by: Option<NodeId>,
    /// Independent confirmations of the current suspicion (accusers other than
    /// `suspected_by`).
    pub confirmations: usize,
    /// Incarnation the member had when it published `health` (orders summaries across
    /// restarts: a newer incarnation wins over a higher version).
    pub(crate) health_incarnation: u64,
}

impl Member {
    /// A fresh Alive record.
    pub(crate) fn new(peer: Peer, incarnation: u64, tags: Tags, now: Instant) -> Member {
        Member {
            peer,
            incarnation,
            state: State::Alive,
            tags,
            health: None,
            state_since: now,
            last_heard: None,
            rtt: None,
            suspected_by: None,
            confirmations: 0,
            health_incarnation: 0,
        }
    }

    /// True for Alive and Suspect: members that are probed and gossiped to.
    pub fn is_live(&self) -> bool {
        matches!(self.state, State::Alive | State::Suspect)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_displays_lowercase() {
        assert_eq!(State::Alive.to_string(), "alive");
        assert_eq!(State::Left.to_string(), "left");
    }

    #[test]
    fn health_summary_is_capped_at_char_boundary() {
        let summary = HealthSummary {
            version: 1,
            passing: 0,
            failing: 20,
            erroring: 0,
            failing_names: (0..20).map(|i| format!("{i}{}", "é".repeat(40))).collect(),
            at_unix_ms: 0,
            refresh_id: 0,
        }
        .capped();
        assert_eq!(summary.failing_names.len(), MAX_FAILING_NAMES);
        for name in &summary.failing_names {
            assert!(name.len() <= MAX_FAILING_NAME_BYTES, "{name}");
            assert!(name.len() >= MAX_FAILING_NAME_BYTES - 1);
        }
    }

    #[test]
    fn tags_are_capped() {
        let mut tags = Tags::new();
        for i in 0..100 {
            tags.insert(format!("key{i:03}"), "v".repeat(20));
        }
        let capped = cap_tags(tags);
        assert!(!capped.is_empty() && capped.len() < 100);
        let mut buf = Vec::new();
        ciborium::into_writer(&capped, &mut buf)
            .map_err(|e| e.to_string())
            .unwrap();
        assert!(buf.len() <= MAX_TAGS_BYTES, "{}", buf.len());
    }
}
