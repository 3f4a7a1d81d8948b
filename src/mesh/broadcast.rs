//! The piggyback queue: membership updates waiting to be disseminated, at most one per
//! (member, kind), each sent a bounded number of times, least-sent and newest first
//! (memberlist's `TransmitLimitedQueue`). Which messages carry them is the state
//! machine's business; this only picks what fits a byte budget.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;

use crate::mesh::id::NodeId;
use crate::mesh::message::{Update, encode_value};

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

/// Updates waiting to be piggybacked.
#[derive(Debug, Default)]
pub(crate) struct BroadcastQueue {
    entries: HashMap<Key, Queued, BuildHasherDefault<crate::mesh::membership::IdHasher>>,
    /// (times sent, newest first) -> key; iteration order = send priority.
    order: BTreeMap<(u32, Reverse<u64>), Key>,
    next_seq: u64,
    /// Updates whose encoding exceeds this are dropped (they could never be sent).
    max_item_bytes: usize,
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
        let encoded_len = encode_value(&update).len();
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
        if let Some(old) = self.entries.remove(&key) {
            self.order.remove(&(old.transmits, Reverse(old.seq)));
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

    /// Takes updates whose encodings total at most `budget` bytes, least-sent first, and
    /// counts one transmission for each; updates sent `limit` times leave the queue.
    pub fn fill(&mut self, mut budget: usize, limit: u32) -> Vec<Update> {
        const SMALLEST_UPDATE: usize = 24;
        const MAX_SKIPS: usize = 16;
        let mut taken: Vec<((u32, Reverse<u64>), Key)> = Vec::new();
        let mut skips = 0;
        for (&prio, &key) in &self.order {
            if budget < SMALLEST_UPDATE || skips > MAX_SKIPS {
                break;
            }
            let Some(entry) = self.entries.get(&key) else {
                continue;
            };
            if entry.encoded_len <= budget {
                budget -= entry.encoded_len;
                taken.push((prio, key));
            } else {
                skips += 1;
            }
        }
        let mut out = Vec::with_capacity(taken.len());
        for (prio, key) in taken {
            self.order.remove(&prio);
            let Some(entry) = self.entries.get_mut(&key) else {
                continue;
            };
            out.push(entry.update.clone());
            entry.transmits += 1;
            if entry.transmits >= limit {
                self.entries.remove(&key);
            } else {
                self.order
                    .insert((entry.transmits, Reverse(entry.seq)), key);
            }
        }
        out
    }

    /// True when nothing waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of queued updates.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
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
        assert_eq!(q.fill(1000, 10), vec![suspect(1, 2)]);
    }

    #[test]
    fn fill_respects_budget_and_transmit_limit() {
        let mut q = BroadcastQueue::new(1000);
        for n in 0..10 {
            q.push(suspect(n, 0));
        }
        let one = encode_value(&suspect(0, 0)).len();
        let first = q.fill(one * 3 + 1, 2);
        assert_eq!(first.len(), 3);
        // Newest first among the never-sent.
        assert_eq!(first[0], suspect(9, 0));
        // Least-sent first: the next fill takes the 7 never-sent ones before repeats.
        let second = q.fill(one * 7, 2);
        assert_eq!(second.len(), 7);
        assert!(second.iter().all(|u| !first.contains(u)));
        // Every update goes out exactly `limit` = 2 times, then the queue is empty.
        let mut total = first.len() + second.len();
        while !q.is_empty() {
            total += q.fill(10_000, 2).len();
        }
        assert_eq!(total, 20);
    }

    #[test]
    fn oversized_updates_are_refused() {
        let mut q = BroadcastQueue::new(10);
        q.push(suspect(1, 1));
        assert!(q.is_empty());
    }
}
