//! What one node keeps about each member: the compact [`Record`], the slab of records
//! ([`Records`]) and the running sum behind this node's state digest.
//!
//! A periodic sync opens with the digest of everything this node would send in a
//! push-pull (see `digest.rs`): a wrapping sum of one hash per member state. Recomputing
//! it costs O(members) per sync, twice per sync; instead [`Records`] keeps
//! the sum of its records' terms up to date. The fields a push-pull carries (address,
//! incarnation, state, tags, health, accuser) are private to this file and change only
//! through [`Edit`], which takes the record's term out of the sum when it is opened and
//! puts the new term in when it is dropped; inserting, removing and clearing records
//! keep the sum too. The rest of a record (timestamps, round-trip time, confirmations,
//! last probe) is local bookkeeping, changed freely through `&mut Record`.
//! `Records::recomputed_digest_sum` recomputes the sum from scratch, for tests.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};

use crate::base::NodeId;
use crate::mesh::digest::StateView;
use crate::mesh::index::IdHasher;
use crate::mesh::index::{SlotIndex, mix};
use crate::mesh::member::{HealthSummary, Peer, State, Tags};

/// What this node keeps about one member. [`Member`](crate::mesh::Member) is the public
/// view, built from it on demand; this is kept compact because a node holds one per
/// member (10⁸ of them in a 10,000-node simulation): times are nanoseconds since the
/// machine's epoch, empty tags take no allocation, and the rarely set fields (suspicion
/// provenance, health) live in a box that exists only while one of them is set.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    id: NodeId,
    addr: CompactAddr,
    incarnation: u64,
    /// When `state` last changed (nanoseconds since `Membership::epoch`).
    pub(crate) state_since: u64,
    /// Last direct message from the member (nanoseconds since the epoch + 1; 0: never).
    pub(crate) last_heard: u64,
    /// `None` when the member has no tags.
    tags: Option<Box<Tags>>,
    extra: Option<Box<Extra>>,
    /// Round-trip time of the latest direct probe, microseconds + 1 (0: none).
    pub(crate) rtt_us: u32,
    state: State,
}

/// A socket address in 16 bytes instead of `SocketAddr`'s 32: IPv4 inline, IPv6 boxed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CompactAddr {
    V4([u8; 4], u16),
    V6(Box<std::net::SocketAddrV6>),
}

impl CompactAddr {
    pub(crate) fn new(addr: SocketAddr) -> CompactAddr {
        match addr {
            SocketAddr::V4(a) => CompactAddr::V4(a.ip().octets(), a.port()),
            SocketAddr::V6(a) => CompactAddr::V6(Box::new(a)),
        }
    }

    pub(crate) fn get(&self) -> SocketAddr {
        match self {
            CompactAddr::V4(ip, port) => SocketAddr::from((*ip, *port)),
            CompactAddr::V6(a) => SocketAddr::V6(**a),
        }
    }
}

/// The rarely set part of a [`Record`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Extra {
    health: Option<HealthSummary>,
    health_incarnation: u64,
    suspected_by: Option<NodeId>,
    confirmations: usize,
    /// Last time this node started a probe of the member while it was suspect
    /// (nanoseconds since the epoch + 1; 0: not since it was last alive). Only read for
    /// suspects (`suspect_due_for_reprobe`).
    last_probed: u64,
}

impl Record {
    /// A fresh Alive record (no tags, health or suspicion; never heard from).
    pub(crate) fn new(peer: Peer, incarnation: u64, tags: Tags, state_since: u64) -> Record {
        Record {
            id: peer.id,
            addr: CompactAddr::new(peer.addr),
            incarnation,
            state_since,
            last_heard: 0,
            tags: (!tags.is_empty()).then(|| Box::new(tags)),
            extra: None,
            rtt_us: 0,
            state: State::Alive,
        }
    }

    pub(crate) fn id(&self) -> NodeId {
        self.id
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr.get()
    }

    pub(crate) fn peer(&self) -> Peer {
        Peer {
            id: self.id,
            addr: self.addr(),
        }
    }

    pub(crate) fn incarnation(&self) -> u64 {
        self.incarnation
    }

    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// True for Alive and Suspect.
    pub(crate) fn is_live(&self) -> bool {
        matches!(self.state, State::Alive | State::Suspect)
    }

    /// The member's tags (a copy; empty when it has none).
    pub(crate) fn tags(&self) -> Tags {
        self.tags.as_deref().cloned().unwrap_or_default()
    }

    pub(crate) fn tags_eq(&self, tags: &Tags) -> bool {
        match &self.tags {
            None => tags.is_empty(),
            Some(t) => **t == *tags,
        }
    }

    /// The member's latest health summary and the incarnation it was published at.
    pub(crate) fn health(&self) -> Option<(u64, &HealthSummary)> {
        self.extra
            .as_deref()
            .and_then(|e| e.health.as_ref().map(|h| (e.health_incarnation, h)))
    }

    /// Who first suspected it in the current suspicion, or declared it dead / removed it.
    pub(crate) fn suspected_by(&self) -> Option<NodeId> {
        self.extra.as_ref().and_then(|e| e.suspected_by)
    }

    /// Independent confirmations of the current suspicion.
    pub(crate) fn confirmations(&self) -> usize {
        self.extra.as_ref().map_or(0, |e| e.confirmations)
    }

    /// When this node last started a probe of it while it was suspect (stored as
    /// nanoseconds since the epoch + 1; 0: not since it was last alive).
    pub(crate) fn last_probed(&self) -> u64 {
        self.extra.as_ref().map_or(0, |e| e.last_probed)
    }

    /// Sets the confirmations counted, keeping the accuser (not part of the digest).
    /// Without an accuser the last probe time is cleared too, as
    /// [`Edit::set_suspicion`] does.
    pub(crate) fn set_confirmations(&mut self, confirmations: usize) {
        let by = self.suspected_by();
        self.set_suspicion_fields(by, confirmations);
    }

    /// The suspicion provenance, allocating the extra part only when needed; without an
    /// accuser the last probe time goes too. Only [`Edit::set_suspicion`] may change the
    /// accuser (it is part of the digest).
    fn set_suspicion_fields(&mut self, by: Option<NodeId>, confirmations: usize) {
        if by.is_none() && confirmations == 0 && self.extra.is_none() {
            return;
        }
        let e = self.extra_mut();
        e.suspected_by = by;
        e.confirmations = confirmations;
        if by.is_none() {
            e.last_probed = 0;
        }
        self.tidy();
    }

    /// Records the start of a probe (see [`Record::last_probed`]).
    pub(crate) fn set_last_probed(&mut self, probed: u64) {
        self.extra_mut().last_probed = probed;
    }

    /// What this node would send of this member in a push-pull.
    pub(crate) fn state_view(&self) -> StateView<'_> {
        StateView {
            peer: self.peer(),
            incarnation: self.incarnation,
            state: self.state,
            tags: self.tags.as_deref(),
            health: self.health(),
            by: if self.state == State::Alive {
                None
            } else {
                self.suspected_by()
            },
        }
    }

    /// This record's term of the digest sum.
    fn digest_term(&self) -> u128 {
        self.state_view().digest_term()
    }

    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Drops the extra part when nothing in it is set.
    fn tidy(&mut self) {
        if self
            .extra
            .as_deref()
            .is_some_and(|e| *e == Extra::default())
        {
            self.extra = None;
        }
    }
}

/// A record opened for a change of the fields a push-pull carries; see the module doc.
/// Reads and local bookkeeping go through `Deref`/`DerefMut` to the [`Record`].
pub(crate) struct Edit<'a> {
    record: &'a mut Record,
    digest_sum: &'a mut u128,
}

impl Deref for Edit<'_> {
    type Target = Record;

    fn deref(&self) -> &Record {
        self.record
    }
}

impl DerefMut for Edit<'_> {
    fn deref_mut(&mut self) -> &mut Record {
        self.record
    }
}

impl Drop for Edit<'_> {
    fn drop(&mut self) {
        *self.digest_sum = self.digest_sum.wrapping_add(self.record.digest_term());
    }
}

impl Edit<'_> {
    pub(crate) fn set_addr(&mut self, addr: SocketAddr) {
        self.record.addr = CompactAddr::new(addr);
    }

    pub(crate) fn set_incarnation(&mut self, incarnation: u64) {
        self.record.incarnation = incarnation;
    }

    /// Sets the state only (`state_since` is the caller's).
    pub(crate) fn set_state(&mut self, state: State) {
        self.record.state = state;
    }

    pub(crate) fn set_tags(&mut self, tags: Tags) {
        self.record.tags = (!tags.is_empty()).then(|| Box::new(tags));
    }

    /// Sets the suspicion provenance, allocating the extra part only when needed.
    pub(crate) fn set_suspicion(&mut self, by: Option<NodeId>, confirmations: usize) {
        self.record.set_suspicion_fields(by, confirmations);
    }

    /// Names the accuser, keeping the confirmations counted so far.
    pub(crate) fn set_accuser(&mut self, by: NodeId) {
        let confirmations = self.record.confirmations();
        self.set_suspicion(Some(by), confirmations);
    }

    /// Sets the health summary and the incarnation it was published at.
    pub(crate) fn set_health(&mut self, incarnation: u64, summary: HealthSummary) {
        let e = self.record.extra_mut();
        e.health = Some(summary);
        e.health_incarnation = incarnation;
    }
}

/// The hash a member id is indexed under.
pub(crate) fn id_hash(id: &NodeId) -> u64 {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&id.0[..8]);
    hi.copy_from_slice(&id.0[8..]);
    mix(u64::from_le_bytes(lo) ^ u64::from_le_bytes(hi).rotate_left(29))
}

/// The hash an address is indexed under.
pub(crate) fn addr_hash(addr: &SocketAddr) -> u64 {
    let mut h = IdHasher::default();
    std::hash::Hash::hash(addr, &mut h);
    mix(std::hash::Hasher::finish(&h))
}

/// Record slots: a slab whose slots stay put while the member is known (the indexes,
/// the probe order and the broadcast queue refer to them), and the running digest sum
/// of the records held (see the module doc).
#[derive(Default)]
pub(crate) struct Records {
    slots: Vec<Option<Record>>,
    free: Vec<u32>,
    /// Wrapping sum of the digest terms of every record held.
    digest_sum: u128,
}

impl Records {
    pub(crate) fn get(&self, i: usize) -> Option<&Record> {
        self.slots.get(i).and_then(Option::as_ref)
    }

    /// The record in slot `i`, for local bookkeeping (the synced fields are not
    /// reachable through it; see [`Records::edit`]).
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut Record> {
        self.slots.get_mut(i).and_then(Option::as_mut)
    }

    /// The record in slot `i`, opened for a change of what a push-pull carries: the
    /// digest sum follows when the [`Edit`] is dropped.
    pub(crate) fn edit(&mut self, i: usize) -> Option<Edit<'_>> {
        let record = self.slots.get_mut(i).and_then(Option::as_mut)?;
        self.digest_sum = self.digest_sum.wrapping_sub(record.digest_term());
        Some(Edit {
            record,
            digest_sum: &mut self.digest_sum,
        })
    }

    /// Number of records held.
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Number of slots, used or free (slot numbers are below it).
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Room for `slots` slots in all without growing.
    #[cfg(any(test, feature = "sim"))]
    pub(crate) fn reserve_slots(&mut self, slots: usize) {
        let more = slots.saturating_sub(self.slots.len());
        self.slots.reserve_exact(more);
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Record> {
        self.slots.iter().filter_map(Option::as_ref)
    }

    /// Slots holding a live (Alive or Suspect) member, in slot order.
    pub(crate) fn live_slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, r)| r.as_ref().is_some_and(Record::is_live))
            .map(|(i, _)| i as u32)
    }

    pub(crate) fn insert(&mut self, r: Record) -> usize {
        self.digest_sum = self.digest_sum.wrapping_add(r.digest_term());
        if let Some(i) = self.free.pop() {
            self.slots[i as usize] = Some(r);
            return i as usize;
        }
        if self.slots.len() == self.slots.capacity() {
            // Grow by an eighth rather than doubling: one slot per member.
            let extra = (self.slots.len() / 8).max(16);
            self.slots.reserve_exact(extra);
        }
        self.slots.push(Some(r));
        self.slots.len() - 1
    }

    pub(crate) fn remove(&mut self, i: usize) -> Option<Record> {
        let r = self.slots.get_mut(i)?.take()?;
        self.free.push(i as u32);
        self.digest_sum = self.digest_sum.wrapping_sub(r.digest_term());
        Some(r)
    }

    pub(crate) fn clear(&mut self) {
        self.slots = Vec::new();
        self.free = Vec::new();
        self.digest_sum = 0;
    }

    /// Wrapping sum of the digest terms of every record held, kept up to date.
    pub(crate) fn digest_sum(&self) -> u128 {
        self.digest_sum
    }

    /// [`Records::digest_sum`] recomputed from the records (for tests).
    #[cfg(any(test, feature = "sim"))]
    pub(crate) fn recomputed_digest_sum(&self) -> u128 {
        self.iter()
            .fold(0u128, |sum, r| sum.wrapping_add(r.digest_term()))
    }

    /// Slot of member `id`.
    pub(crate) fn find(&self, index: &SlotIndex, id: &NodeId) -> Option<usize> {
        index
            .find(id_hash(id), |s| {
                self.get(s as usize).is_some_and(|r| r.id == *id)
            })
            .map(|s| s as usize)
    }

    /// Slot of the member indexed under `addr`.
    pub(crate) fn find_addr(&self, by_addr: &SlotIndex, addr: &SocketAddr) -> Option<usize> {
        by_addr
            .find(addr_hash(addr), |s| {
                self.get(s as usize).is_some_and(|r| r.addr() == *addr)
            })
            .map(|s| s as usize)
    }

    pub(crate) fn hash_id_of(&self, s: u32) -> u64 {
        self.get(s as usize).map_or(0, |r| id_hash(&r.id))
    }

    pub(crate) fn hash_addr_of(&self, s: u32) -> u64 {
        self.get(s as usize).map_or(0, |r| addr_hash(&r.addr()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> Peer {
        Peer::numbered(n, 7946)
    }

    fn summary(version: u64) -> HealthSummary {
        HealthSummary {
            version,
            passing: 1,
            failing: 0,
            erroring: 0,
            failing_names: vec![],
            erroring_names: Vec::new(),
            names_omitted: 0,
            at_unix_ms: 0,
            refresh_id: 0,
        }
    }

    #[test]
    fn the_running_sum_follows_every_kind_of_change() {
        let mut records = Records::default();
        let check = |records: &Records| {
            assert_eq!(records.digest_sum(), records.recomputed_digest_sum());
        };
        let slots: Vec<usize> = (1..=20)
            .map(|n| records.insert(Record::new(peer(n), 0, Tags::new(), 0)))
            .collect();
        check(&records);
        for (k, &i) in slots.iter().enumerate() {
            let Some(mut e) = records.edit(i) else {
                panic!("slot {i} is empty");
            };
            match k % 7 {
                0 => e.set_incarnation(3),
                1 => e.set_state(State::Suspect),
                2 => {
                    e.set_state(State::Dead);
                    e.set_accuser(NodeId([99; 16]));
                }
                3 => e.set_tags(Tags::from([("role".to_string(), "db".to_string())])),
                4 => e.set_health(1, summary(2)),
                5 => e.set_addr(SocketAddr::from(([10, 0, 0, 1], 1))),
                _ => e.set_suspicion(Some(NodeId([7; 16])), 2),
            }
            drop(e);
            check(&records);
        }
        // Local bookkeeping leaves the sum alone (and is not part of it).
        if let Some(r) = records.get_mut(slots[0]) {
            r.last_heard = 5;
            r.rtt_us = 7;
            r.set_confirmations(4);
        }
        check(&records);
        records.remove(slots[3]);
        check(&records);
        records.insert(Record::new(peer(50), 1, Tags::new(), 0));
        check(&records);
        records.clear();
        assert_eq!(records.digest_sum(), 0);
        check(&records);
    }

    #[test]
    fn records_stay_compact() {
        // A node holds one per member: 10,000 nodes hold 10^8 of them.
        assert!(
            std::mem::size_of::<Record>() <= 80,
            "{}",
            std::mem::size_of::<Record>()
        );
        assert!(std::mem::size_of::<Option<Record>>() <= 80);
        let v6: SocketAddr = "[fe80::1%2]:7946".parse().unwrap_or(peer(1).addr);
        assert_eq!(CompactAddr::new(v6).get(), v6);
        assert_eq!(CompactAddr::new(peer(3).addr).get(), peer(3).addr);
    }
}
