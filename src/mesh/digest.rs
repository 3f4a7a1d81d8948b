//! [`StateDigest`]: an order-independent 128-bit fingerprint of a member list, so that a
//! periodic sync between two nodes that hold the same states need not carry them. Here
//! live the digest, the borrowed view of one member's state it is computed from
//! ([`StateView`]) and the hash behind it. When a sync sends a digest is the state
//! machine's business (`membership/sync.rs`); the wire field is in `message.rs`.
//!
//! The digest is the wrapping sum of one 128-bit hash per member, so the order of the
//! list does not matter, and a node can keep it as a running sum (`record.rs`). The hash is defined here, byte by byte, so every build of werify
//! computes the same digest from the same states (std's hashers promise no such thing). It
//! guards against accidental mismatch, not against forgery: peers are authenticated by
//! mTLS, and a wrong "in sync" only delays anti-entropy with that peer until the next sync
//! (with another random member).

use serde::{Deserialize, Serialize};

use crate::base::NodeId;
use crate::mesh::member::{HealthSummary, Peer, State, Tags};
use crate::mesh::message::MemberState;

/// The fingerprint of a member list (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDigest(#[serde(with = "serde_bytes")] pub [u8; 16]);

/// One member's synced state, borrowed: exactly what a [`MemberState`] carries.
#[derive(Clone, Copy, Debug)]
pub struct StateView<'a> {
    /// Who, and where.
    pub peer: Peer,
    /// Its incarnation.
    pub incarnation: u64,
    /// Its state in this node's view.
    pub state: State,
    /// Its tags (`None` and empty tags are the same).
    pub tags: Option<&'a Tags>,
    /// Its health summary and the incarnation it was published at, if known.
    pub health: Option<(u64, &'a HealthSummary)>,
    /// Who suspected / declared / removed it.
    pub by: Option<NodeId>,
}

impl<'a> StateView<'a> {
    /// The view of a member state as received.
    pub fn of(m: &'a MemberState) -> StateView<'a> {
        StateView {
            peer: m.peer,
            incarnation: m.incarnation,
            state: m.state,
            tags: Some(&m.tags),
            health: m.health.as_ref().map(|(n, h)| (*n, h)),
            by: m.by,
        }
    }

    /// This state's term of a digest: its 128-bit hash.
    pub fn digest_term(&self) -> u128 {
        let mut h = Lanes::default();
        h.write(&self.peer.id.0);
        match self.peer.addr {
            std::net::SocketAddr::V4(a) => {
                h.write(&[4]);
                h.write(&a.ip().octets());
            }
            std::net::SocketAddr::V6(a) => {
                h.write(&[6]);
                h.write(&a.ip().octets());
            }
        }
        h.write(&self.peer.addr.port().to_le_bytes());
        h.write(&self.incarnation.to_le_bytes());
        h.write(&[match self.state {
            State::Alive => 0,
            State::Suspect => 1,
            State::Dead => 2,
            State::Left => 3,
        }]);
        let tags = self.tags.map_or(0, Tags::len);
        h.write(&(tags as u64).to_le_bytes());
        for (k, v) in self.tags.into_iter().flatten() {
            h.write_str(k);
            h.write_str(v);
        }
        match self.health {
            None => h.write(&[0]),
            Some((incarnation, s)) => {
                h.write(&[1]);
                h.write(&incarnation.to_le_bytes());
                h.write(&s.version.to_le_bytes());
                h.write(&s.passing.to_le_bytes());
                h.write(&s.failing.to_le_bytes());
                h.write(&s.erroring.to_le_bytes());
                h.write(&(s.failing_names.len() as u64).to_le_bytes());
                for name in &s.failing_names {
                    h.write_str(name);
                }
                h.write(&s.at_unix_ms.to_le_bytes());
                h.write(&s.refresh_id.to_le_bytes());
            }
        }
        match self.by {
            None => h.write(&[0]),
            Some(id) => {
                h.write(&[1]);
                h.write(&id.0);
            }
        }
        h.finish()
    }
}

impl StateDigest {
    /// The digest of `members`, in any order.
    pub fn of<'a>(members: impl IntoIterator<Item = StateView<'a>>) -> StateDigest {
        let sum = members
            .into_iter()
            .fold(0u128, |sum, m| sum.wrapping_add(m.digest_term()));
        StateDigest::from_sum(sum)
    }

    /// The digest whose member terms ([`StateView::digest_term`]) add up to `sum`
    /// (wrapping): for a caller that keeps the sum as its states change.
    pub fn from_sum(sum: u128) -> StateDigest {
        StateDigest(sum.to_le_bytes())
    }

    /// The digest of member states as received.
    pub fn of_states<'a>(members: impl IntoIterator<Item = &'a MemberState>) -> StateDigest {
        StateDigest::of(members.into_iter().map(StateView::of))
    }
}

/// Two independent 64-bit lanes over 8-byte little-endian words (multiply, rotate), each
/// ended by MurmurHash3's 64-bit finalizer. Fast (a member is ~15 words) and stable.
struct Lanes {
    a: u64,
    b: u64,
    word: [u8; 8],
    fill: usize,
    len: u64,
}

impl Default for Lanes {
    fn default() -> Lanes {
        Lanes {
            a: 0x243f_6a88_85a3_08d3,
            b: 0x1319_8a2e_0370_7344,
            word: [0; 8],
            fill: 0,
            len: 0,
        }
    }
}

impl Lanes {
    fn write(&mut self, mut bytes: &[u8]) {
        self.len = self.len.wrapping_add(bytes.len() as u64);
        while let Some((&byte, rest)) = bytes.split_first() {
            if self.fill == 0
                && let Some((word, rest)) = bytes.split_first_chunk::<8>()
            {
                // Whole words straight from the input (same words as byte by byte).
                self.mix(u64::from_le_bytes(*word));
                bytes = rest;
                continue;
            }
            self.word[self.fill] = byte;
            self.fill += 1;
            if self.fill == 8 {
                self.mix(u64::from_le_bytes(self.word));
                self.fill = 0;
            }
            bytes = rest;
        }
    }

    /// A length-prefixed string, so that ("ab", "c") and ("a", "bc") differ.
    fn write_str(&mut self, s: &str) {
        self.write(&(s.len() as u64).to_le_bytes());
        self.write(s.as_bytes());
    }

    fn mix(&mut self, w: u64) {
        self.a = (self.a ^ w)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(31);
        self.b = (self.b ^ w.rotate_left(17))
            .wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
            .rotate_left(29);
    }

    fn finish(mut self) -> u128 {
        let mut last = [0u8; 8];
        last[..self.fill].copy_from_slice(&self.word[..self.fill]);
        self.mix(u64::from_le_bytes(last));
        self.mix(self.len);
        (u128::from(fmix64(self.a)) << 64) | u128::from(fmix64(self.b))
    }
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(n: u8, incarnation: u64) -> MemberState {
        MemberState {
            peer: Peer {
                id: NodeId([n; 16]),
                addr: std::net::SocketAddr::from(([127, 0, 0, n], 7946)),
            },
            incarnation,
            state: State::Alive,
            tags: Tags::new(),
            health: None,
            by: None,
        }
    }

    #[test]
    fn ignores_order_and_sees_any_change() {
        let (a, b, c) = (state(1, 0), state(2, 0), state(3, 0));
        let digest = StateDigest::of_states([&a, &b, &c]);
        assert_eq!(digest, StateDigest::of_states([&c, &a, &b]));
        assert_ne!(digest, StateDigest::of_states([&a, &b]));
        assert_ne!(digest, StateDigest::of_states([&a, &b, &state(3, 1)]));
        assert_ne!(StateDigest::of_states([]), digest);

        let mut moved = state(3, 0);
        moved.peer.addr.set_port(7947);
        let mut tagged = state(3, 0);
        tagged.tags.insert("role".into(), "db".into());
        let mut suspect = state(3, 0);
        suspect.state = State::Suspect;
        let mut accused = suspect.clone();
        accused.by = Some(NodeId([9; 16]));
        let mut healthy = state(3, 0);
        healthy.health = Some((
            0,
            HealthSummary {
                version: 1,
                passing: 2,
                failing: 0,
                erroring: 0,
                failing_names: vec![],
                erroring_names: Vec::new(),
                names_omitted: 0,
                at_unix_ms: 5,
                refresh_id: 0,
            },
        ));
        let mut seen = vec![digest];
        for changed in [moved, tagged, suspect, accused, healthy] {
            let d = StateDigest::of_states([&a, &b, &changed]);
            assert!(!seen.contains(&d), "{changed:?} did not change the digest");
            seen.push(d);
        }
    }

    #[test]
    fn string_boundaries_count() {
        let mut x = state(1, 0);
        x.tags.insert("ab".into(), "c".into());
        let mut y = state(1, 0);
        y.tags.insert("a".into(), "bc".into());
        assert_ne!(StateDigest::of_states([&x]), StateDigest::of_states([&y]));
    }

    #[test]
    fn absent_and_empty_tags_are_the_same() {
        let m = state(1, 0);
        let mut none = StateView::of(&m);
        none.tags = None;
        assert_eq!(StateDigest::of([none]), StateDigest::of_states([&m]));
    }
}
