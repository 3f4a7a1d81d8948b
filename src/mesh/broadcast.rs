//! The piggyback queue: membership updates waiting to be disseminated, at most one per
//! (member, kind), each sent a bounded number of times, least-sent and newest first
//! (memberlist's `TransmitLimitedQueue`). Which messages carry them is the state
//! machine's business; this only picks what fits a byte budget.
//!
//! Two kinds of entries share one priority order (times sent, then newest first):
//! - full updates (suspect, dead, left, health, this node's own alive), kept by value;
//! - alive announcements of members, kept by reference to the member's record slot
//!   (16 bytes of list links per slot, nothing per entry) and built from the record when
//!   sent. Right after a join every member is announced once per node, so in a
//!   10,000-node simulation these are 10⁸ entries: by value (≈ 200 B each with their map
//!   and order entries) they would not fit in memory.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;

use crate::base::NodeId;
use crate::mesh::cbor_len::encoded_len;
use crate::mesh::message::Update;
#[cfg(test)]
use crate::mesh::message::encode_value;

/// Updates about the same member replace each other, except health which travels apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Membership,
    Health,
}

type Key = (NodeId, Kind);

#[derive(Debug)]
struct Queued {
    update: Update,
    encoded_len: usize,
    transmits: u32,
    seq: u64,
}

/// "No slot" in the intrusive lists.
const NIL: u32 = u32::MAX;

/// Queue state of one member slot's alive announcement: a node of the doubly linked list
/// of its level (times sent). The lists live inside this fixed per-slot array, so
/// queueing, sending and cancelling allocate nothing (per-level vectors that grow and
/// shrink as the join backlog moves up the levels fragment the heap, leaving the
/// allocator holding several times the live heap).
#[derive(Clone, Copy, Debug)]
struct RefState {
    queued: bool,
    /// Times sent so far (= its level).
    transmits: u16,
    /// Encoded length of the update, measured when queued.
    encoded_len: u16,
    /// Neighbours in the level's list (towards the head = newer).
    prev: u32,
    next: u32,
}

impl Default for RefState {
    fn default() -> RefState {
        RefState {
            queued: false,
            transmits: 0,
            encoded_len: 0,
            prev: NIL,
            next: NIL,
        }
    }
}

/// Updates waiting to be piggybacked.
#[derive(Debug, Default)]
pub(crate) struct BroadcastQueue {
    entries: HashMap<Key, Queued, BuildHasherDefault<crate::mesh::index::IdHasher>>,
    /// (times sent, newest first) -> key; iteration order = send priority.
    order: BTreeMap<(u32, Reverse<u64>), Key>,
    next_seq: u64,
    /// Updates whose encoding exceeds this are dropped (they could never be sent).
    max_item_bytes: usize,
    /// Alive announcements by member slot.
    refs: Vec<RefState>,
    /// Per number of times sent: the head (newest) of that level's list, or `NIL`.
    heads: Vec<u32>,
    /// Queued alive announcements.
    ref_count: usize,
    /// Membership entries (not health, not announcements) never sent yet.
    unsent_news: usize,
    /// Membership entries (not health, not announcements) queued, sent or not.
    news: usize,
}

impl BroadcastQueue {
    /// An empty queue that refuses updates larger than `max_item_bytes` once encoded.
    pub fn new(max_item_bytes: usize) -> BroadcastQueue {
        BroadcastQueue {
            max_item_bytes,
            ..BroadcastQueue::default()
        }
    }

    /// Queues `update`, replacing any queued update of the same kind about the same member.
    pub fn push(&mut self, update: Update) {
        let encoded_len = encoded_len(&update);
        if encoded_len > self.max_item_bytes {
            tracing::warn!(
                subject = %update.subject(),
                encoded_len,
                "membership update too large for a datagram; it will only travel by push-pull"
            );
            return;
        }
        let kind = match update {
            Update::Health { .. } => Kind::Health,
            _ => Kind::Membership,
        };
        let key = (update.subject(), kind);
        self.remove_entry(key);
        if kind == Kind::Membership {
            self.unsent_news += 1;
            self.news += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert((0, Reverse(seq)), key);
        self.entries.insert(
            key,
            Queued {
                update,
                encoded_len,
                transmits: 0,
                seq,
            },
        );
    }

    /// Queues the alive announcement of the member in record slot `slot` (built by the
    /// `materialize` callback of [`BroadcastQueue::fill`] when sent), replacing any
    /// queued membership update about `id`. `encoded_len` is the update's encoded size.
    pub fn push_alive_ref(&mut self, slot: u32, id: NodeId, encoded_len: usize) {
        if encoded_len > self.max_item_bytes {
            tracing::warn!(
                subject = %id,
                encoded_len,
                "membership update too large for a datagram; it will only travel by push-pull"
            );
            return;
        }
        self.remove_entry((id, Kind::Membership));
        let i = slot as usize;
        if i >= self.refs.len() {
            // Grow by an eighth, not by doubling: this array has one entry per member.
            let want = (i + 1).max(self.refs.len() + self.refs.len() / 8 + 16);
            self.refs.reserve_exact(want - self.refs.len());
            self.refs.resize(i + 1, RefState::default());
        }
        self.unlink(slot);
        self.refs[i].encoded_len = u16::try_from(encoded_len).unwrap_or(u16::MAX);
        self.link(slot, 0);
    }

    /// Drops the full update queued under `key`, if any.
    fn remove_entry(&mut self, key: Key) {
        if let Some(old) = self.entries.remove(&key) {
            self.order.remove(&(old.transmits, Reverse(old.seq)));
            if key.1 == Kind::Membership {
                self.news -= 1;
                if old.transmits == 0 {
                    self.unsent_news -= 1;
                }
            }
        }
    }

    /// Makes room for the alive-announcement state of `slots` member slots.
    #[cfg(any(test, feature = "sim"))]
    pub fn reserve_refs(&mut self, slots: usize) {
        self.refs
            .reserve_exact(slots.saturating_sub(self.refs.len()));
    }

    /// Drops the alive announcement queued for `slot`, if any (the member changed state,
    /// or its record was dropped).
    pub fn cancel_ref(&mut self, slot: u32) {
        self.unlink(slot);
    }

    /// Puts `slot` at the head (newest) of level `level`'s list.
    fn link(&mut self, slot: u32, level: u16) {
        let l = usize::from(level);
        if self.heads.len() <= l {
            self.heads.resize(l + 1, NIL);
        }
        let head = self.heads[l];
        if let Some(h) = self.refs.get_mut(head as usize) {
            h.prev = slot;
        }
        let Some(r) = self.refs.get_mut(slot as usize) else {
            return;
        };
        *r = RefState {
            queued: true,
            transmits: level,
            encoded_len: r.encoded_len,
            prev: NIL,
            next: head,
        };
        self.heads[l] = slot;
        self.ref_count += 1;
    }

    /// Takes `slot` out of its level's list, if queued.
    fn unlink(&mut self, slot: u32) {
        let Some(r) = self.refs.get(slot as usize).copied() else {
            return;
        };
        if !r.queued {
            return;
        }
        match self.refs.get_mut(r.prev as usize) {
            Some(p) => p.next = r.next,
            None => {
                if let Some(h) = self.heads.get_mut(usize::from(r.transmits)) {
                    *h = r.next;
                }
            }
        }
        if let Some(n) = self.refs.get_mut(r.next as usize) {
            n.prev = r.prev;
        }
        if let Some(x) = self.refs.get_mut(slot as usize) {
            x.queued = false;
            x.prev = NIL;
            x.next = NIL;
        }
        self.ref_count -= 1;
    }

    /// Takes updates whose encodings total at most `budget` bytes, least-sent first (full
    /// updates before alive announcements sent as often), and counts one transmission
    /// for each; updates sent `limit` times leave the queue. `materialize(slot)` builds
    /// the alive announcement of the member in `slot` (`None`: drop the entry).
    pub fn fill(
        &mut self,
        mut budget: usize,
        limit: u32,
        materialize: impl Fn(u32) -> Option<Update>,
    ) -> Vec<Update> {
        const SMALLEST_UPDATE: usize = 24;
        const MAX_SKIPS: usize = 16;
        let mut out = Vec::new();
        let mut taken: Vec<((u32, Reverse<u64>), Key)> = Vec::new();
        let mut taken_refs: Vec<u32> = Vec::new();
        let mut dropped_refs: Vec<u32> = Vec::new();
        let mut skips = 0;
        let mut full = self.order.iter().peekable();
        let mut level = 0usize;
        'levels: loop {
            if budget < SMALLEST_UPDATE || skips > MAX_SKIPS {
                break;
            }
            if full.peek().is_none() && (level >= self.heads.len() || self.ref_count == 0) {
                break;
            }
            while let Some(&(&prio, &key)) = full.peek() {
                if prio.0 as usize != level {
                    break;
                }
                full.next();
                if budget < SMALLEST_UPDATE || skips > MAX_SKIPS {
                    break 'levels;
                }
                let Some(entry) = self.entries.get(&key) else {
                    continue;
                };
                if entry.encoded_len <= budget {
                    budget -= entry.encoded_len;
                    out.push(entry.update.clone());
                    taken.push((prio, key));
                } else {
                    skips += 1;
                }
            }
            let mut node = self.heads.get(level).copied().unwrap_or(NIL);
            while let Some(r) = self.refs.get(node as usize) {
                if budget < SMALLEST_UPDATE || skips > MAX_SKIPS {
                    break 'levels;
                }
                let slot = node;
                node = r.next;
                if usize::from(r.encoded_len) > budget {
                    skips += 1;
                    continue;
                }
                match materialize(slot) {
                    Some(update) => {
                        budget -= usize::from(r.encoded_len);
                        out.push(update);
                        taken_refs.push(slot);
                    }
                    None => dropped_refs.push(slot),
                }
            }
            level += 1;
        }
        for (prio, key) in taken {
            self.order.remove(&prio);
            let Some(entry) = self.entries.get_mut(&key) else {
                continue;
            };
            if entry.transmits == 0 && key.1 == Kind::Membership {
                self.unsent_news -= 1;
            }
            entry.transmits += 1;
            if entry.transmits >= limit {
                self.entries.remove(&key);
                if key.1 == Kind::Membership {
                    self.news -= 1;
                }
            } else {
                self.order
                    .insert((entry.transmits, Reverse(entry.seq)), key);
            }
        }
        for slot in dropped_refs {
            self.unlink(slot);
        }
        // Oldest-taken linked first, so the next level keeps newest-first order.
        for &slot in taken_refs.iter().rev() {
            let Some(r) = self.refs.get(slot as usize).copied() else {
                continue;
            };
            self.unlink(slot);
            let sent = r.transmits.saturating_add(1);
            if u32::from(sent) < limit {
                self.link(slot, sent);
            }
        }
        out
    }

    /// True when news waits that has not been sent yet: a suspicion, a death, a leave,
    /// this node's own alive (a refutation). Health results and alive announcements of
    /// members do not count: see
    /// [`Config::fresh_gossip_interval`](crate::mesh::config::Config::fresh_gossip_interval).
    pub fn has_unsent_news(&self) -> bool {
        self.unsent_news > 0
    }

    /// True when membership news is queued, sent already or not: a suspicion, a death, a
    /// leave, this node's own alive. Not health results, not alive announcements.
    pub fn has_membership_news(&self) -> bool {
        self.news > 0
    }

    /// True when nothing waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.ref_count == 0
    }

    /// Number of queued updates.
    pub fn len(&self) -> usize {
        self.entries.len() + self.ref_count
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.refs = Vec::new();
        self.heads = Vec::new();
        self.ref_count = 0;
        self.unsent_news = 0;
        self.news = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suspect(n: u8, inc: u64) -> Update {
        Update::Suspect {
            id: NodeId([n; 16]),
            incarnation: inc,
            by: NodeId([0; 16]),
        }
    }

    #[test]
    fn newer_update_about_same_member_replaces_older() {
        let mut q = BroadcastQueue::new(1000);
        q.push(suspect(1, 1));
        q.push(suspect(1, 2));
        assert_eq!(q.len(), 1);
        assert_eq!(q.fill(1000, 10, |_| None), vec![suspect(1, 2)]);
    }

    #[test]
    fn fill_respects_budget_and_transmit_limit() {
        let mut q = BroadcastQueue::new(1000);
        for n in 0..10 {
            q.push(suspect(n, 0));
        }
        let one = encode_value(&suspect(0, 0)).len();
        let first = q.fill(one * 3 + 1, 2, |_| None);
        assert_eq!(first.len(), 3);
        // Newest first among the never-sent.
        assert_eq!(first[0], suspect(9, 0));
        // Least-sent first: the next fill takes the 7 never-sent ones before repeats.
        let second = q.fill(one * 7, 2, |_| None);
        assert_eq!(second.len(), 7);
        assert!(second.iter().all(|u| !first.contains(u)));
        // Every update goes out exactly `limit` = 2 times, then the queue is empty.
        let mut total = first.len() + second.len();
        while !q.is_empty() {
            total += q.fill(10_000, 2, |_| None).len();
        }
        assert_eq!(total, 20);
    }

    #[test]
    fn alive_announcements_by_slot_follow_the_same_order_and_limit() {
        use crate::mesh::member::{Peer, Tags};
        let alive = |slot: u32| Update::Alive {
            peer: Peer {
                id: NodeId([slot as u8 + 100; 16]),
                addr: std::net::SocketAddr::from(([127, 0, 0, slot as u8], 7946)),
            },
            incarnation: 0,
            tags: Tags::new(),
        };
        let len = encode_value(&alive(0)).len();
        let mut q = BroadcastQueue::new(1000);
        for slot in 0..6 {
            q.push_alive_ref(slot, NodeId([slot as u8 + 100; 16]), len);
        }
        q.push(suspect(1, 1));
        q.cancel_ref(2);
        assert_eq!(q.len(), 6);
        // Full updates first, then announcements newest first; three fit.
        let first = q.fill(len * 3, 2, |s| Some(alive(s)));
        assert_eq!(first, vec![suspect(1, 1), alive(5), alive(4)]);
        // Never-sent ones before repeats; a dropped member's entry disappears.
        let second = q.fill(len * 3, 2, |s| (s != 0).then(|| alive(s)));
        assert_eq!(second, vec![alive(3), alive(1), suspect(1, 1)]);
        assert_eq!(q.len(), 4);
        // Re-queueing resets the count; each goes out exactly `limit` times in total.
        q.push_alive_ref(5, NodeId([105; 16]), len);
        let mut sent = Vec::new();
        while !q.is_empty() {
            sent.extend(q.fill(10_000, 2, |s| Some(alive(s))));
        }
        let count = |u: &Update| sent.iter().filter(|x| *x == u).count();
        assert_eq!(count(&alive(5)), 2);
        assert_eq!(count(&alive(4)), 1);
        assert_eq!(count(&alive(3)), 1);
        assert_eq!(count(&alive(2)), 0);
    }

    #[test]
    fn unsent_news_means_a_full_update_never_sent() {
        let mut q = BroadcastQueue::new(1000);
        assert!(!q.has_unsent_news());
        // Alive announcements are not news in this sense.
        q.push_alive_ref(0, NodeId([100; 16]), 40);
        assert!(!q.has_unsent_news());
        q.push(suspect(1, 1));
        assert!(q.has_unsent_news());
        let one = encode_value(&suspect(1, 1)).len();
        assert_eq!(q.fill(one, 3, |_| None), vec![suspect(1, 1)]);
        assert!(!q.has_unsent_news());
        // A newer update about the same member is news again, until an announcement
        // replaces it.
        q.push(suspect(1, 2));
        assert!(q.has_unsent_news());
        q.push_alive_ref(0, NodeId([1; 16]), 40);
        assert!(!q.has_unsent_news());
        // Health results are not news in this sense either.
        q.push(Update::Health {
            id: NodeId([2; 16]),
            incarnation: 0,
            summary: crate::mesh::member::HealthSummary {
                version: 1,
                passing: 3,
                failing: 0,
                erroring: 0,
                failing_names: Vec::new(),
                erroring_names: Vec::new(),
                names_omitted: 0,
                at_unix_ms: 0,
                refresh_id: 0,
            },
        });
        assert!(!q.has_unsent_news());
        q.push(suspect(3, 0));
        q.clear();
        assert!(!q.has_unsent_news());
    }

    #[test]
    fn measured_length_is_the_encoded_length() {
        let u = suspect(7, 1 << 40);
        assert_eq!(encoded_len(&u), encode_value(&u).len());
    }

    #[test]
    fn oversized_updates_are_refused() {
        let mut q = BroadcastQueue::new(10);
        q.push(suspect(1, 1));
        assert!(q.is_empty());
    }
}
