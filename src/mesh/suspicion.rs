//! Lifeguard suspicion bookkeeping: one [`Suspicion`] per suspected member (accuser,
//! independent confirmations, the shrinking deadline) and the [`SuspicionTable`] that
//! keeps them ordered by deadline. What happens when a deadline passes (declaring the
//! member dead) is decided by the state machine, not here.

use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasherDefault;
use std::time::{Duration, Instant};

use crate::base::NodeId;
use crate::mesh::config::suspicion_timeout;

/// Confirmers remembered per suspicion (for display); the timeout only needs `wanted`.
const MAX_CONFIRMERS: usize = 32;

/// An open suspicion of one member at one incarnation.
#[derive(Clone, Debug)]
pub(crate) struct Suspicion {
    /// The incarnation the member is suspected at.
    pub incarnation: u64,
    /// Who raised it first.
    pub accuser: NodeId,
    /// Distinct other accusers, at most [`MAX_CONFIRMERS`].
    pub confirmers: Vec<NodeId>,
    /// True once this node has its own evidence (it is the accuser, or its own probe of
    /// the suspect failed too). Only armed suspicions have a deadline: a node that merely
    /// heard the rumour waits for the verdict (Dead or a refutation) instead of issuing
    /// one, so a refutation only has to reach the few nodes with evidence in time.
    pub armed: bool,
    /// When an unarmed suspicion is due for this node's own probe: `start + min` by
    /// default, `start` for a node picked as an early verifier (see
    /// [`Suspicion::verify_now`]).
    verify_at: Instant,
    start: Instant,
    /// The deadline is never before this (see [`SuspicionTable::postpone`]).
    not_before: Instant,
    min: Duration,
    max: Duration,
    wanted: u32,
}

impl Suspicion {
    /// A suspicion starting `now` with timeout bounds `min..=max`, reaching `min` after
    /// `wanted` independent confirmations.
    pub fn new(
        incarnation: u64,
        accuser: NodeId,
        armed: bool,
        now: Instant,
        min: Duration,
        max: Duration,
        wanted: u32,
    ) -> Suspicion {
        Suspicion {
            incarnation,
            accuser,
            confirmers: Vec::new(),
            armed,
            verify_at: now + min,
            start: now,
            not_before: now,
            min,
            max,
            wanted,
        }
    }

    /// Makes this node check the suspect at its next probe instead of after the minimum
    /// timeout. A few nodes that only heard the rumour doing so is what brings the
    /// accuser its independent confirmations quickly (each must have failed a probe of
    /// its own), so the timeout shrinks to its minimum without waiting for round-robin
    /// probes to reach the suspect.
    pub fn verify_now(mut self) -> Suspicion {
        self.verify_at = self.start;
        self
    }

    /// Whether [`SuspicionTable::postpone`] put this suspicion back once already.
    pub fn was_postponed(&self) -> bool {
        self.not_before > self.start
    }

    /// When the member is declared dead unless it refutes first.
    pub fn deadline(&self) -> Instant {
        let n = u32::try_from(self.confirmers.len()).unwrap_or(u32::MAX);
        (self.start + suspicion_timeout(self.min, self.max, n, self.wanted)).max(self.not_before)
    }

    /// Records an accusation by `by`. Returns `(new, useful)`: `new` if `by` had not
    /// accused yet, `useful` if it also shortened the timeout (worth re-gossiping).
    pub fn confirm(&mut self, by: NodeId) -> (bool, bool) {
        if by == self.accuser || self.confirmers.contains(&by) {
            return (false, false);
        }
        if self.confirmers.len() >= MAX_CONFIRMERS {
            return (false, false);
        }
        self.confirmers.push(by);
        let useful = self.confirmers.len() <= self.wanted as usize;
        (true, useful)
    }
}

/// All open suspicions of one node, indexed by member and by deadline.
#[derive(Debug, Default)]
pub(crate) struct SuspicionTable {
    by_member: HashMap<NodeId, Suspicion, BuildHasherDefault<crate::mesh::index::IdHasher>>,
    /// Armed suspicions by deadline.
    deadlines: BTreeSet<(Instant, NodeId)>,
    /// Unarmed (rumour-only) suspicions by the time this node should check for itself
    /// (start + minimum timeout): a rumour whose refutation we missed is resolved by our
    /// own probe rather than lingering until the next push-pull.
    verify: BTreeSet<(Instant, NodeId)>,
}

impl SuspicionTable {
    /// Starts (or restarts) the suspicion of `id`.
    pub fn insert(&mut self, id: NodeId, suspicion: Suspicion) {
        self.remove(id);
        if suspicion.armed {
            self.deadlines.insert((suspicion.deadline(), id));
        } else {
            self.verify.insert((suspicion.verify_at, id));
        }
        self.by_member.insert(id, suspicion);
    }

    /// Ends the suspicion of `id` (refuted, dead, forgotten).
    pub fn remove(&mut self, id: NodeId) -> Option<Suspicion> {
        let s = self.by_member.remove(&id)?;
        if s.armed {
            self.deadlines.remove(&(s.deadline(), id));
        } else {
            self.verify.remove(&(s.verify_at, id));
        }
        Some(s)
    }

    /// Gives the suspicion of `id` at `incarnation` a deadline (this node now has its own
    /// evidence). The timeout counts from `now`, so the suspect gets the full window to
    /// refute even if the rumour is old (it may have refuted long ago, unheard here).
    pub fn arm(&mut self, id: NodeId, incarnation: u64, now: Instant) {
        let Some(s) = self.by_member.get_mut(&id) else {
            return;
        };
        if s.incarnation == incarnation && !s.armed {
            self.verify.remove(&(s.verify_at, id));
            s.armed = true;
            s.start = now;
            self.deadlines.insert((s.deadline(), id));
        }
    }

    /// Puts back an armed suspicion that `take_expired` returned, due no earlier than
    /// `until`.
    pub fn postpone(&mut self, id: NodeId, mut suspicion: Suspicion, until: Instant) {
        suspicion.not_before = until;
        self.insert(id, suspicion);
    }

    /// Adds an accusation by `by` to the suspicion of `id` at `incarnation`.
    /// Returns `(new, useful, confirmations)`, or `None` if there is no such suspicion.
    pub fn confirm(
        &mut self,
        id: NodeId,
        incarnation: u64,
        by: NodeId,
    ) -> Option<(bool, bool, usize)> {
        let s = self.by_member.get_mut(&id)?;
        if s.incarnation != incarnation {
            return None;
        }
        let before = s.deadline();
        let (new, useful) = s.confirm(by);
        let after = s.deadline();
        let count = s.confirmers.len();
        if s.armed && before != after {
            self.deadlines.remove(&(before, id));
            self.deadlines.insert((after, id));
        }
        Some((new, useful, count))
    }

    /// When the earliest rumour-only suspicion falls due for this node's own check.
    pub fn next_verification(&self) -> Option<Instant> {
        self.verify.first().map(|(at, _)| *at)
    }

    /// The next rumour-only suspicion due for this node's own check, if any is due.
    pub fn take_due_verification(&mut self, now: Instant) -> Option<NodeId> {
        let &(at, id) = self.verify.first()?;
        if at > now {
            return None;
        }
        self.verify.pop_first();
        Some(id)
    }

    /// Members with armed suspicions, earliest deadline first.
    pub fn armed_by_deadline(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.deadlines.iter().map(|(_, id)| *id)
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Removes and returns every suspicion whose deadline is at or before `now`, earliest
    /// first (ties by id, so the order is deterministic).
    pub fn take_expired(&mut self, now: Instant) -> Vec<(NodeId, Suspicion)> {
        let mut out = Vec::new();
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(s) = self.by_member.remove(&id) {
                out.push((id, s));
            }
        }
        out
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.by_member.clear();
        self.deadlines.clear();
        self.verify.clear();
    }

    /// Number of open suspicions.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_member.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> NodeId {
        NodeId([n; 16])
    }

    #[test]
    fn a_postponed_suspicion_is_due_no_earlier_than_asked_and_keeps_its_confirmations() {
        let now = Instant::now();
        let (min, max) = (Duration::from_secs(2), Duration::from_secs(12));
        let mut table = SuspicionTable::default();
        table.insert(id(1), Suspicion::new(4, id(9), true, now, min, max, 2));
        table.confirm(id(1), 4, id(8));
        let at = now + max;
        let expired = table.take_expired(at);
        assert_eq!(expired.len(), 1);
        let (who, s) = expired.into_iter().next().unwrap();
        table.postpone(who, s, at + Duration::from_secs(3));
        assert_eq!(table.next_deadline(), Some(at + Duration::from_secs(3)));
        assert!(table.take_expired(at + Duration::from_secs(2)).is_empty());
        let back = table.take_expired(at + Duration::from_secs(3));
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].1.confirmers, vec![id(8)]);
    }

    #[test]
    fn confirmations_shrink_the_deadline_down_to_min() {
        let now = Instant::now();
        let (min, max) = (Duration::from_secs(2), Duration::from_secs(12));
        let mut table = SuspicionTable::default();
        table.insert(id(1), Suspicion::new(4, id(9), true, now, min, max, 2));
        assert_eq!(table.next_deadline(), Some(now + max));
        // The original accuser repeating itself is not a confirmation.
        assert_eq!(table.confirm(id(1), 4, id(9)), Some((false, false, 0)));
        // A stale incarnation is not this suspicion.
        assert_eq!(table.confirm(id(1), 3, id(8)), None);
        assert_eq!(table.confirm(id(1), 4, id(8)), Some((true, true, 1)));
        let one = table.next_deadline().unwrap_or(now);
        assert!(one < now + max && one > now + min);
        assert_eq!(table.confirm(id(1), 4, id(7)), Some((true, true, 2)));
        assert_eq!(table.next_deadline(), Some(now + min));
        // Beyond `wanted`, confirmations are recorded but not worth re-gossiping.
        assert_eq!(table.confirm(id(1), 4, id(6)), Some((true, false, 3)));
        assert_eq!(table.next_deadline(), Some(now + min));
    }

    #[test]
    fn unarmed_suspicions_have_no_deadline_until_armed() {
        let now = Instant::now();
        let (min, max) = (Duration::from_secs(2), Duration::from_secs(12));
        let mut table = SuspicionTable::default();
        table.insert(id(1), Suspicion::new(4, id(9), false, now, min, max, 2));
        assert_eq!(table.confirm(id(1), 4, id(8)), Some((true, true, 1)));
        assert_eq!(table.next_deadline(), None);
        // A rumour is due for our own check after the minimum timeout, once.
        assert_eq!(table.take_due_verification(now), None);
        assert_eq!(table.take_due_verification(now + min), Some(id(1)));
        assert_eq!(table.take_due_verification(now + max), None);
        assert!(table.take_expired(now + max * 10).is_empty());
        table.arm(id(1), 3, now); // wrong incarnation: no effect
        assert_eq!(table.next_deadline(), None);
        let later = now + Duration::from_secs(60);
        table.arm(id(1), 4, later);
        let at = table.next_deadline().unwrap_or(now);
        assert!(at > later + min && at < later + max, "{at:?}");
        assert!(table.remove(id(1)).is_some());
        assert_eq!(table.next_deadline(), None);
    }

    #[test]
    fn take_expired_returns_due_suspicions_in_deadline_order() {
        let now = Instant::now();
        let s = |secs| {
            Suspicion::new(
                0,
                id(9),
                true,
                now,
                Duration::from_secs(secs),
                Duration::from_secs(secs),
                0,
            )
        };
        let mut table = SuspicionTable::default();
        table.insert(id(3), s(3));
        table.insert(id(1), s(1));
        table.insert(id(2), s(2));
        assert!(table.take_expired(now).is_empty());
        let due: Vec<NodeId> = table
            .take_expired(now + Duration::from_secs(2))
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(due, vec![id(1), id(2)]);
        assert_eq!(table.len(), 1);
        assert!(table.remove(id(3)).is_some());
        assert_eq!(table.next_deadline(), None);
    }
}
