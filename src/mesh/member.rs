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
/// At most this many check names (failing and erroring together) are kept in a
/// [`HealthSummary`]; the rest are counted in [`HealthSummary::names_omitted`].
pub const MAX_FAILING_NAMES: usize = 8;
/// Each check name is cut to at most this many bytes (at a char boundary).
pub const MAX_FAILING_NAME_BYTES: usize = 48;

/// A node's latest periodic check results, gossiped so every node can show mesh health.
///
/// The names are bounded ([`HealthSummary::capped`]) so that a summary always fits in one
/// gossip datagram: at most [`MAX_FAILING_NAMES`] of them, failing names before erroring
/// ones, each at most [`MAX_FAILING_NAME_BYTES`] long, and a count of the names left out.
/// The full results stay on the node that ran them, which answers for them on request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Names of checks that did not hold. A node that does not send
    /// [`HealthSummary::erroring_names`] lists its erroring checks here too.
    #[serde(rename = "n")]
    pub failing_names: Vec<String>,
    /// Names of checks that could not be decided (absent on the wire when empty).
    #[serde(rename = "x", default, skip_serializing_if = "Vec::is_empty")]
    pub erroring_names: Vec<String>,
    /// How many failing or erroring names were left out to keep the summary small
    /// (absent on the wire when 0).
    #[serde(rename = "m", default, skip_serializing_if = "is_zero")]
    pub names_omitted: u32,
    /// Wall-clock time of the run, milliseconds since the Unix epoch.
    #[serde(rename = "t")]
    pub at_unix_ms: u64,
    /// The refresh round that produced it (0 for periodic runs).
    #[serde(rename = "r")]
    pub refresh_id: u64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl HealthSummary {
    /// The same summary with at most [`MAX_FAILING_NAMES`] names in all (failing names
    /// first) of at most [`MAX_FAILING_NAME_BYTES`] bytes each; the names dropped are
    /// added to [`HealthSummary::names_omitted`]. Capping twice changes nothing more.
    pub fn capped(mut self) -> HealthSummary {
        let keep_failing = self.failing_names.len().min(MAX_FAILING_NAMES);
        let keep_erroring = self
            .erroring_names
            .len()
            .min(MAX_FAILING_NAMES - keep_failing);
        let dropped =
            (self.failing_names.len() - keep_failing) + (self.erroring_names.len() - keep_erroring);
        self.failing_names.truncate(keep_failing);
        self.erroring_names.truncate(keep_erroring);
        self.names_omitted = self
            .names_omitted
            .saturating_add(u32::try_from(dropped).unwrap_or(u32::MAX));
        for name in self
            .failing_names
            .iter_mut()
            .chain(self.erroring_names.iter_mut())
        {
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

    /// Every name carried, failing ones first.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.failing_names
            .iter()
            .chain(self.erroring_names.iter())
            .map(String::as_str)
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
    use crate::base::hex::cbor;

    #[test]
    fn state_displays_lowercase() {
        assert_eq!(State::Alive.to_string(), "alive");
        assert_eq!(State::Left.to_string(), "left");
    }

    #[test]
    fn health_summary_is_capped_at_char_boundary() {
        let summary = HealthSummary {
            version: 1,
            failing: 20,
            failing_names: (0..20).map(|i| format!("{i}{}", "é".repeat(40))).collect(),
            ..HealthSummary::default()
        }
        .capped();
        assert_eq!(summary.failing_names.len(), MAX_FAILING_NAMES);
        assert_eq!(summary.names_omitted, 12);
        for name in &summary.failing_names {
            assert!(name.len() <= MAX_FAILING_NAME_BYTES, "{name}");
            assert!(name.len() >= MAX_FAILING_NAME_BYTES - 1);
        }
    }

    #[test]
    fn capping_keeps_failing_names_first_and_counts_the_rest_once() {
        let names = |prefix: &str, n: usize| -> Vec<String> {
            (0..n).map(|i| format!("{prefix}{i}")).collect()
        };
        let summary = HealthSummary {
            failing: 6,
            erroring: 5,
            failing_names: names("f", 6),
            erroring_names: names("e", 5),
            ..HealthSummary::default()
        };
        let capped = summary.clone().capped();
        assert_eq!(capped.failing_names, names("f", 6));
        assert_eq!(capped.erroring_names, names("e", 2));
        assert_eq!(capped.names_omitted, 3);
        assert_eq!(
            capped.names().collect::<Vec<_>>(),
            ["f0", "f1", "f2", "f3", "f4", "f5", "e0", "e1"]
        );
        assert_eq!(capped.clone().capped(), capped);
        // Only erroring names: all of them fit.
        let erroring = HealthSummary {
            erroring: 3,
            erroring_names: names("e", 3),
            ..HealthSummary::default()
        }
        .capped();
        assert_eq!(erroring.erroring_names.len(), 3);
        assert_eq!(erroring.names_omitted, 0);
    }

    /// A summary as a node without `erroring_names` and `names_omitted` writes and reads
    /// it: the field names of [`HealthSummary`] before those two.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct SummaryWithoutNewFields {
        v: u64,
        p: u32,
        f: u32,
        e: u32,
        n: Vec<String>,
        t: u64,
        r: u64,
    }

    #[test]
    fn summaries_stay_readable_both_ways_across_the_new_fields() {
        let old = SummaryWithoutNewFields {
            v: 3,
            p: 1,
            f: 1,
            e: 0,
            n: vec!["disk".into()],
            t: 9,
            r: 0,
        };
        let read: HealthSummary = ciborium::from_reader(&cbor(&old)[..]).expect("new reads old");
        assert_eq!(read.failing_names, ["disk"]);
        assert!(read.erroring_names.is_empty());
        assert_eq!(read.names_omitted, 0);
        // Without names left out or erroring names, the encoding is the old one.
        assert_eq!(cbor(&read), cbor(&old));
        let new = HealthSummary {
            erroring: 1,
            erroring_names: vec!["dns".into()],
            names_omitted: 4,
            ..read
        };
        let back: SummaryWithoutNewFields =
            ciborium::from_reader(&cbor(&new)[..]).expect("old reads new");
        assert_eq!(back.n, ["disk"]);
        assert_eq!(back.e, 1);
    }

    #[test]
    fn the_largest_capped_summary_fits_a_gossip_datagram_of_every_profile() {
        use crate::mesh::config::{Config, Profile};
        use crate::mesh::message::{Message, Update};
        let long = |c: char| c.to_string().repeat(MAX_FAILING_NAME_BYTES * 2);
        let summary = HealthSummary {
            version: u64::MAX,
            passing: u32::MAX,
            failing: u32::MAX,
            erroring: u32::MAX,
            failing_names: (0..4).map(|_| long('f')).collect(),
            erroring_names: (0..100).map(|_| long('€')).collect(),
            names_omitted: u32::MAX - 1,
            at_unix_ms: u64::MAX,
            refresh_id: u64::MAX,
        }
        .capped();
        assert_eq!(summary.names().count(), MAX_FAILING_NAMES);
        let msg = Message::Gossip {
            from: NodeId([0xff; 16]),
            updates: vec![Update::Health {
                id: NodeId([0xff; 16]),
                incarnation: u64::MAX,
                summary,
            }],
        };
        let len = msg.encode().len();
        for profile in [Profile::Lan, Profile::Wan, Profile::Local] {
            let budget = Config::for_profile(profile).datagram_budget();
            assert!(len <= budget, "{len} bytes > {budget} ({profile})");
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
