//! The SWIM + Lifeguard membership state machine, [`Membership`]: sans-IO and
//! deterministic. Time comes in as `now`, messages come in decoded, randomness comes from
//! an RNG seeded by the caller; out come [`Transmit`]s, [`Event`]s and the next timer
//! deadline. Carrying messages (QUIC datagrams and streams) is the runtime's job; the
//! formulas live in `config`, suspicion bookkeeping in `suspicion`, the local health score
//! in `awareness`, the piggyback queue in `broadcast`, and the per-member records (with
//! the running state digest a periodic sync opens with) in `record`.
//!
//! # Method groups
//! - getters: [`Membership::me`], [`Membership::config`], [`Membership::members`],
//!   [`Membership::member_by_addr`], [`Membership::local_health`],
//!   [`Membership::is_removed`], [`Membership::snapshot`];
//! - inputs: [`Membership::handle_message`], [`Membership::handle_push_pull`],
//!   [`Membership::handle_timeout`];
//! - commands: [`Membership::join`], [`Membership::leave`], [`Membership::remove`],
//!   [`Membership::set_health`], [`Membership::probe_all`], [`Membership::restore`];
//! - outputs: [`Membership::poll_transmit`], [`Membership::poll_event`],
//!   [`Membership::poll_timeout`].
//!
//! After every input or command the driver drains `poll_transmit` and `poll_event`, then
//! sleeps until `poll_timeout` and calls `handle_timeout`.
//!
//! # Rules, in short
//! - Every probe period one member (round-robin over a shuffled list) gets a `Ping`; no
//!   ack within the probe timeout → `PingReq` through `indirect_checks` members, who
//!   answer with the relayed `Ack` or a `Nack`; no ack by the end of the period → the
//!   member is suspected. Missing nacks and missed acks raise the local health score,
//!   acks lower it; the score stretches probe interval and timeout.
//! - A suspicion expires after a timeout that shrinks with independent confirmations;
//!   then the member is declared dead. Pings to a suspect carry the suspicion (buddy).
//!   Only nodes with their own evidence (the accuser, and nodes whose own probe failed
//!   too) run that timer; nodes that merely heard the rumour wait for the verdict and,
//!   if none comes within the minimum timeout, probe the suspect themselves. Accusers
//!   re-probe their suspects every other probe period. This departs from memberlist
//!   (where every node runs a timer) so that a refutation only has to reach the few
//!   accusers in time, and they are told directly: the suspect answers each accusation
//!   (and each buddy ping) to the accuser, and nodes holding the refutation answer a
//!   stale accusation to its accuser.
//! - An update about this node that is not "alive at my incarnation" is refuted by
//!   raising the incarnation above it (a restarted node with incarnation 0 wins so).
//! - Updates ride on pings, acks and gossip rounds, each at most
//!   `retransmit_mult × ceil(log10(N+1))` times per node, packed under the datagram cap.
//! - Full state is exchanged by push-pull at join and periodically; dead members and
//!   contacts get periodic join attempts so healed partitions merge; dead and left members
//!   are forgotten after `reap_after`.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::mesh::awareness::Awareness;
use crate::mesh::broadcast::BroadcastQueue;
use crate::mesh::cbor_len::encoded_len;
use crate::mesh::config::Config;
use crate::mesh::digest::{StateDigest, StateView};
use crate::mesh::id::NodeId;
use crate::mesh::index::SlotIndex;
use crate::mesh::member::{HealthSummary, Member, Peer, State, Tags, cap_tags};
use crate::mesh::message::{MemberState, Message, PushPull, Update};
use crate::mesh::record::{Record, Records, addr_hash, id_hash};
use crate::mesh::suspicion::{Suspicion, SuspicionTable};

/// Unknown senders remembered for [`Config::unknown_sender_sync_every`] (a bound against
/// a flood of made-up ids).
const MAX_UNKNOWN_SYNCS: usize = 1024;
/// Pending events kept at most; older ones are dropped (with a warning) if the driver
/// does not drain them.
const MAX_EVENTS: usize = 1 << 16;
/// Concurrent indirect probes this node runs for others, at most.
const MAX_RELAYS: usize = 1024;
/// Contact addresses remembered, at most.
const MAX_CONTACTS: usize = 1024;
/// Outstanding `probe_all` pings tracked, at most.
const MAX_REFRESH: usize = 1 << 16;
/// (member, accuser) pairs remembered for rate-limiting stale-accusation corrections.
const MAX_CORRECTIONS: usize = 4096;
/// Room kept free in a datagram for the growth of the update array header.
const ARRAY_HEADER_SLACK: usize = 4;

/// Hasher for maps keyed by [`NodeId`]s: ids are 16 random bytes bound to certificates
/// of authenticated peers, so a fast multiply-rotate mix is enough, and cheaper than
/// SipHash on the hot paths that look members up by id.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (self.0.rotate_left(5) ^ n as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by node ids (or pairs of them).
type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A message the runtime must send. `PushPull` goes over a request/response stream (its
/// reply is fed back through [`Membership::handle_message`]); everything else is a
/// datagram.
#[derive(Clone, Debug, PartialEq)]
pub struct Transmit {
    /// Destination address.
    pub to: SocketAddr,
    /// What to send.
    pub msg: Message,
}

/// Something the application may want to know about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A member appeared, or came back after being dead / left.
    MemberUp(Peer),
    /// A member is suspected (`by` = the accuser).
    MemberSuspect {
        /// The suspect.
        peer: Peer,
        /// Who accused it.
        by: NodeId,
    },
    /// A suspect refuted and is alive again.
    MemberRefuted(Peer),
    /// A member was declared dead (`by` = the node that declared it).
    MemberDown {
        /// The dead member.
        peer: Peer,
        /// Who declared it.
        by: NodeId,
    },
    /// A member left gracefully.
    MemberLeft(Peer),
    /// A member was removed by an operator on node `by`.
    MemberRemoved {
        /// The removed member.
        peer: Peer,
        /// Where `werify ctl del` ran.
        by: NodeId,
    },
    /// A member's tags, address or health summary changed.
    MemberUpdated(Peer),
    /// A dead or left member was forgotten after `reap_after`.
    MemberReaped(Peer),
    /// This node refuted an accusation by raising its incarnation.
    Refuted {
        /// The new incarnation.
        incarnation: u64,
        /// The accuser, when known.
        by: Option<NodeId>,
    },
    /// This node was removed from the mesh (by `by`); it has gone quiet.
    SelfRemoved {
        /// Where `werify ctl del` ran.
        by: NodeId,
    },
    /// This node was joined again after a removal and is active.
    SelfReadded,
}

/// Why [`Membership::remove`] did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoveError {
    /// No member has that address. Nothing changed; check the address with `mesh status`.
    #[error("no mesh member has address {0}; check the address with `werify ctl list`")]
    UnknownAddress(SocketAddr),
    /// The address is this node's own. Nothing changed; stop the node (graceful leave)
    /// or run the removal on another node.
    #[error("{0} is this node itself; run the removal on another node or stop this node")]
    IsSelf(SocketAddr),
    /// This node has itself been removed and knows no mesh. Nothing changed.
    #[error("this node has been removed from the mesh; join it again first")]
    SelfRemoved,
}

/// What is worth persisting to rejoin after a restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// This node.
    pub me: Peer,
    /// Its incarnation (restoring it avoids one refutation round).
    pub incarnation: u64,
    /// True if the node was removed: it then stays quiet after a restart.
    pub removed: bool,
    /// Alive, suspect and dead members (left ones are not worth rejoining).
    pub peers: Vec<Peer>,
    /// Contact addresses given to `join`. Stored under the name `seeds`, which snapshot
    /// files carry.
    #[serde(rename = "seeds")]
    pub contacts: Vec<SocketAddr>,
}

impl Snapshot {
    /// Addresses to join through: every peer and contact, without duplicates.
    pub fn join_addrs(&self) -> Vec<SocketAddr> {
        let mut out: Vec<SocketAddr> = Vec::new();
        for addr in self
            .peers
            .iter()
            .map(|p| p.addr)
            .chain(self.contacts.iter().copied())
        {
            if addr != self.me.addr && !out.contains(&addr) {
                out.push(addr);
            }
        }
        out
    }
}

/// Whether this node takes part in the mesh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Probing, gossiping, answering.
    Active,
    /// Left gracefully: only finishes spreading its leave.
    Left,
    /// Removed by `by` at `incarnation`: silent until an incoming join re-adds it.
    Removed {
        incarnation: u64,
        by: Option<NodeId>,
    },
}

/// The probe this node currently runs.
#[derive(Clone, Debug)]
struct Probe {
    target: NodeId,
    /// The target's record slot when the probe started (see [`Membership::sender_slot`]).
    slot: usize,
    seq: u32,
    sent: Instant,
    ack_deadline: Instant,
    /// No ack by then (direct or relayed): the target is suspected.
    verdict_at: Instant,
    indirect_sent: bool,
    expected_nacks: usize,
    nacks: usize,
    acked: bool,
}

/// An indirect probe this node runs for another node.
#[derive(Clone, Debug)]
struct Relay {
    requester: SocketAddr,
    requester_seq: u32,
    seq: u32,
    target: NodeId,
    deadline: Instant,
}

fn stamp(epoch: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

fn unstamp(epoch: Instant, nanos: u64) -> Instant {
    epoch + Duration::from_nanos(nanos)
}

/// [`stamp`] for an optional time kept as a plain `u64`: `0` means never, so the time
/// is stored plus one.
fn stamp_some(epoch: Instant, at: Instant) -> u64 {
    stamp(epoch, at).saturating_add(1)
}

/// Reads back what [`stamp_some`] stored (`None` for never).
fn unstamp_some(epoch: Instant, stored: u64) -> Option<Instant> {
    stored.checked_sub(1).map(|nanos| unstamp(epoch, nanos))
}

/// The shuffled round-robin order in which members are probed: record slots, and the
/// position of the next. Each step also reads the slot after it (`ahead`), so that
/// the next step, a probe interval later, knows its target without first reading
/// `order`: in a large mesh that read is a cache miss, and it would stand
/// before the miss on the target's record instead of beside it. Every change of
/// `order` or `pos` goes through these methods, which keep `ahead` equal to
/// `order[pos]` or `None`.
#[derive(Default)]
struct ProbeRound {
    order: Vec<u32>,
    pos: usize,
    ahead: Option<u32>,
}

impl ProbeRound {
    #[cfg(any(test, feature = "sim"))]
    fn reserve(&mut self, slots: usize) {
        self.order
            .reserve_exact(slots.saturating_sub(self.order.len()));
    }

    /// The slot at the current position, moving past it; `None` at the end of the
    /// round.
    fn take_next(&mut self) -> Option<u32> {
        let slot = match self.ahead.take() {
            Some(slot) => slot,
            None => *self.order.get(self.pos)?,
        };
        self.pos += 1;
        self.ahead = self.order.get(self.pos).copied();
        Some(slot)
    }

    /// A new round over `slots`, shuffled.
    fn restart(&mut self, slots: impl Iterator<Item = u32>, rng: &mut SmallRng) {
        self.order.clear();
        self.order.extend(slots);
        self.order.shuffle(rng);
        self.pos = 0;
        self.ahead = None;
    }

    /// Adds `slot` at a random position not yet passed in this round.
    fn insert_randomly(&mut self, slot: u32, rng: &mut SmallRng) {
        self.order.push(slot);
        let last = self.order.len() - 1;
        let pos = rng.random_range(self.pos.min(last)..=last);
        self.order.swap(pos, last);
        self.ahead = None;
    }
}

/// The membership state machine of one node. See the module docs.
pub struct Membership {
    config: Config,
    me: Member,
    mode: Mode,
    rng: SmallRng,
    /// Everyone but this node.
    members: Records,
    /// Slots by member id.
    index: SlotIndex,
    /// Slots by address (the latest member to claim an address).
    by_addr: SlotIndex,
    /// Base of the records' timestamps.
    epoch: Instant,
    /// Members in Alive or Suspect state.
    live_count: usize,
    /// The shuffled probe round.
    probe_round: ProbeRound,
    probe: Option<Probe>,
    next_seq: u32,
    relays: Vec<Relay>,
    refresh: VecDeque<(u32, NodeId, Instant)>,
    suspicions: SuspicionTable,
    /// Last time we told an accuser its accusation of a member was stale.
    corrections: IdMap<(NodeId, NodeId), Instant>,
    /// Last time we synced with a sender we did not know (see
    /// [`Membership::handle_message_from`]).
    unknown_syncs: IdMap<NodeId, Instant>,
    awareness: Awareness,
    broadcasts: BroadcastQueue,
    contacts: Vec<SocketAddr>,
    next_probe: Instant,
    next_gossip: Instant,
    /// When the last gossip round ran (see [`Config::fresh_gossip_interval`]).
    last_gossip: Instant,
    /// Record slots of members that were never heard from when they came (each costs a
    /// handshake to reach), in no order; some may have been heard from since, and are
    /// dropped when `introduce` comes to them.
    unmet: VecDeque<u32>,
    /// When the last new member came.
    last_new_member: Instant,
    /// When this node last received a message from anyone.
    last_heard_any: Instant,
    /// When it last heard from someone after a silence longer than a probe interval: it
    /// may have been cut off until then, and what it sent before may not have arrived
    /// (see `suspect_told`).
    reconnected_at: Instant,
    next_push_pull: Instant,
    /// Asking a join's contact again (see [`Config::contact_follow_ups`]).
    contact_follow_up: ContactFollowUp,
    next_rejoin: Instant,
    next_reap: Instant,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// Set only inside [`Membership::preload_settled`]: members learned are neither
    /// announced by gossip nor reported as events.
    preloading: bool,
    /// Set while merging what a contact taught a node that joined alone: members learned
    /// are reported but not announced by gossip.
    quiet: bool,
}

/// Where the follow-up syncs with a join's contact stand (see
/// [`Config::contact_follow_ups`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ContactFollowUp {
    /// No join in progress, or its follow-ups are over.
    Idle,
    /// A join request left; the first contact to answer is the one followed up. `alone`:
    /// this node knew no members when it asked, so what the answer teaches is the contact's
    /// to announce (see [`Membership::join_request`]).
    AwaitingJoinReply { alone: bool },
    /// Ask `contact` again at `at`; it was asked `asked` times since the join, and its last
    /// `idle` answers taught nothing.
    Due {
        contact: Peer,
        at: Instant,
        asked: u8,
        idle: u8,
    },
    /// Asked `contact` (`asked` times in all); its answer decides whether to ask again.
    Asked {
        contact: NodeId,
        asked: u8,
        idle: u8,
    },
}

impl Membership {
    /// A node alone in its mesh, at incarnation 0. `tags` are cut to
    /// [`MAX_TAGS_BYTES`](crate::mesh::member::MAX_TAGS_BYTES) if needed.
    pub fn new(me: Peer, tags: Tags, config: Config, rng_seed: u64, now: Instant) -> Membership {
        let config = config.sanitized();
        let mut rng = SmallRng::seed_from_u64(rng_seed);
        let first_probe = config.probe_interval.mul_f64(rng.random_range(0.0..1.0));
        // Random phases, so that nodes started together do not rejoin (each attempt a
        // full member list) in step.
        let first_rejoin = config.rejoin_interval.mul_f64(rng.random_range(0.5..1.0));
        let first_push_pull = config
            .push_pull_interval
            .mul_f64(rng.random_range(0.5..1.0));
        let max_item = config.datagram_budget().saturating_sub(64);
        Membership {
            me: Member::new(me, 0, cap_tags(tags), now),
            mode: Mode::Active,
            rng,
            members: Records::default(),
            index: SlotIndex::default(),
            by_addr: SlotIndex::default(),
            epoch: now,
            live_count: 0,
            probe_round: ProbeRound::default(),
            probe: None,
            next_seq: 0,
            relays: Vec::new(),
            refresh: VecDeque::new(),
            suspicions: SuspicionTable::default(),
            corrections: IdMap::default(),
            unknown_syncs: IdMap::default(),
            awareness: Awareness::new(config.awareness_max),
            broadcasts: BroadcastQueue::new(max_item),
            contacts: Vec::new(),
            next_probe: now + first_probe,
            next_gossip: now + config.gossip_interval,
            last_gossip: now,
            unmet: VecDeque::new(),
            last_new_member: now,
            last_heard_any: now,
            reconnected_at: now,
            next_push_pull: now + first_push_pull,
            contact_follow_up: ContactFollowUp::Idle,
            next_rejoin: now + first_rejoin,
            next_reap: now + reap_check_interval(&config),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            preloading: false,
            quiet: false,
            config,
        }
    }

    // ----- getters -------------------------------------------------------------------

    /// This node's own record.
    pub fn me(&self) -> &Member {
        &self.me
    }

    /// The tuning in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Everyone known, this node first (views built from the records).
    pub fn members(&self) -> impl Iterator<Item = Member> + '_ {
        std::iter::once(self.me.clone()).chain(self.members.iter().map(|r| self.view(r)))
    }

    /// The member (or this node) at `addr`.
    pub fn member_by_addr(&self, addr: SocketAddr) -> Option<Member> {
        if addr == self.me.peer.addr {
            return Some(self.me.clone());
        }
        self.rec_by_addr(&addr).map(|r| self.view(r))
    }

    /// The member (or this node) with this id.
    pub fn member(&self, id: NodeId) -> Option<Member> {
        if id == self.me.peer.id {
            return Some(self.me.clone());
        }
        self.rec(id).map(|r| self.view(r))
    }

    /// The state of member (or this node) `id`; cheaper than [`Membership::member`].
    pub fn state_of(&self, id: NodeId) -> Option<State> {
        if id == self.me.peer.id {
            return Some(self.me.state);
        }
        self.rec(id).map(|r| r.state())
    }

    /// Number of known members (this node included) in `state`.
    pub fn count_in_state(&self, state: State) -> usize {
        usize::from(self.me.state == state)
            + self.members.iter().filter(|r| r.state() == state).count()
    }

    /// Total number of member records (this node excluded), whatever their state.
    pub fn known_members(&self) -> usize {
        self.members.len()
    }

    fn view(&self, r: &Record) -> Member {
        Member {
            peer: r.peer(),
            incarnation: r.incarnation(),
            state: r.state(),
            tags: r.tags(),
            health: r.health().map(|(_, h)| h.clone()),
            state_since: unstamp(self.epoch, r.state_since),
            last_heard: unstamp_some(self.epoch, r.last_heard),
            rtt: r
                .rtt_us
                .checked_sub(1)
                .map(|us| Duration::from_micros(u64::from(us))),
            suspected_by: r.suspected_by(),
            confirmations: r.confirmations(),
            health_incarnation: r.health().map_or(0, |(n, _)| n),
        }
    }

    fn slot(&self, id: &NodeId) -> Option<usize> {
        self.members.find(&self.index, id)
    }

    /// [`Membership::slot`] for the sender of a message. Half of all datagrams are acks
    /// from the member this node is probing, whose slot the probe remembers: checking
    /// that record's id saves the index lookup (a cache miss in a large mesh).
    fn sender_slot(&self, sender: &NodeId) -> Option<usize> {
        if let Some(p) = &self.probe
            && p.target == *sender
            && self.members.get(p.slot).is_some_and(|m| m.id() == *sender)
        {
            return Some(p.slot);
        }
        self.slot(sender)
    }

    fn rec(&self, id: NodeId) -> Option<&Record> {
        self.slot(&id).and_then(|i| self.members.get(i))
    }

    /// The record indexed under `addr` (the latest member to claim it).
    fn rec_by_addr(&self, addr: &SocketAddr) -> Option<&Record> {
        self.members
            .find_addr(&self.by_addr, addr)
            .and_then(|i| self.members.get(i))
    }

    /// Lifeguard local health score: 0 is healthy; each point stretches this node's probe
    /// interval and timeout by one more multiple.
    pub fn local_health(&self) -> u32 {
        self.awareness.score()
    }

    /// True after this node was removed (`werify ctl del` elsewhere) until a join re-adds it.
    pub fn is_removed(&self) -> bool {
        matches!(self.mode, Mode::Removed { .. })
    }

    /// True after [`Membership::leave`].
    pub fn has_left(&self) -> bool {
        self.mode == Mode::Left
    }

    /// Number of Alive or Suspect members, this node excluded.
    pub fn live_members(&self) -> usize {
        self.live_count
    }

    /// Updates waiting to be piggybacked (a measure of gossip backlog).
    pub fn queued_updates(&self) -> usize {
        self.broadcasts.len()
    }

    /// What to persist to rejoin after a restart.
    pub fn snapshot(&self) -> Snapshot {
        let removed = self.is_removed();
        Snapshot {
            me: self.me.peer,
            incarnation: match self.mode {
                Mode::Removed { incarnation, .. } => incarnation.max(self.me.incarnation),
                _ => self.me.incarnation,
            },
            removed,
            peers: if removed {
                Vec::new()
            } else {
                self.members
                    .iter()
                    .filter(|m| m.state() != State::Left)
                    .map(|m| m.peer())
                    .collect()
            },
            contacts: if removed {
                Vec::new()
            } else {
                self.contacts.clone()
            },
        }
    }

    // ----- commands ------------------------------------------------------------------

    /// Joins through these addresses: sends each a push-pull join request and remembers
    /// them as contacts for periodic rejoin attempts. A node that has left becomes active
    /// again; a removed node ignores this (only an incoming join re-adds it).
    pub fn join(&mut self, now: Instant, contacts: &[SocketAddr]) {
        match self.mode {
            Mode::Removed { .. } => {
                tracing::info!(
                    "removed from the mesh: ignoring join; another node must join this one"
                );
                return;
            }
            Mode::Left => {
                self.mode = Mode::Active;
                self.me.state = State::Alive;
                self.me.state_since = now;
                self.me.incarnation = self.me.incarnation.saturating_add(1);
                self.queue_self_alive();
            }
            Mode::Active => {}
        }
        for &contact in contacts {
            if contact == self.me.peer.addr {
                continue;
            }
            if !self.contacts.contains(&contact) && self.contacts.len() < MAX_CONTACTS {
                self.contacts.push(contact);
            }
            let req = self.join_request(now);
            self.send(contact, Message::PushPull(req));
        }
    }

    /// A join request carrying this node's full state, for a contact. Brings the next
    /// push-pull forward (see [`Membership::schedule_join_sync`]), and the first contact to
    /// answer is asked again soon after (see [`Config::contact_follow_ups`]).
    ///
    /// A node that knows no members yet does not announce the members the contact's answers
    /// teach it: the contact holds them all and spreads its own news, and joining a settled
    /// mesh of N would otherwise send N announcements of what everyone knows, to random
    /// members, most of them first contacts (a handshake each). A node that already
    /// knows members (two meshes merging) announces as usual.
    pub fn join_request(&mut self, now: Instant) -> PushPull {
        self.schedule_join_sync(now);
        self.contact_follow_up = ContactFollowUp::AwaitingJoinReply {
            alone: self.members.len() == 0,
        };
        self.push_pull_request(true)
    }

    /// Brings the next push-pull (with a random member) forward to
    /// [`Config::join_sync_after_gossips`] gossip intervals from `now`; called when this
    /// node sends a join request, and when the answer to a sync brought members this node
    /// did not know. When many nodes join at once, each contact's reply lacks the nodes
    /// that join after it, and their Alive gossip may be spent before anyone knows to send
    /// it here: without this sync such a node would miss members until a periodic
    /// push-pull.
    pub fn schedule_join_sync(&mut self, now: Instant) {
        let at = now + self.config.gossip_interval * self.config.join_sync_after_gossips;
        self.next_push_pull = self.next_push_pull.min(at);
    }

    /// A push-pull answer from `from` arrived (`taught`: it brought members this node did
    /// not know): the first answer after a join request names the contact to follow up, and
    /// the contact's answer to a follow-up brings the next while any are left and the contact
    /// still has news now and then (see [`Config::contact_follow_ups_idle`]).
    fn follow_up_answered(&mut self, now: Instant, from: Peer, taught: bool) {
        let at = now + self.config.gossip_interval / self.config.contact_follow_ups_per_gossip;
        self.contact_follow_up = match self.contact_follow_up {
            ContactFollowUp::AwaitingJoinReply { .. } => ContactFollowUp::Due {
                contact: from,
                at,
                asked: 0,
                idle: 0,
            },
            ContactFollowUp::Asked {
                contact,
                asked,
                idle,
            } if contact == from.id => {
                let idle = if taught { 0 } else { idle.saturating_add(1) };
                if asked < self.config.contact_follow_ups
                    && idle < self.config.contact_follow_ups_idle
                {
                    ContactFollowUp::Due {
                        contact: from,
                        at,
                        asked,
                        idle,
                    }
                } else {
                    ContactFollowUp::Idle
                }
            }
            other => other,
        };
    }

    /// Restores what [`Membership::snapshot`] saved: the incarnation, the removed flag,
    /// and joins through the saved peers and contacts.
    pub fn restore(&mut self, now: Instant, snapshot: &Snapshot) {
        if snapshot.me.id != self.me.peer.id {
            tracing::warn!(
                "snapshot belongs to node {}, not to this node; ignored",
                snapshot.me.id
            );
            return;
        }
        self.me.incarnation = self.me.incarnation.max(snapshot.incarnation);
        if snapshot.removed {
            self.mode = Mode::Removed {
                incarnation: snapshot.incarnation,
                by: None,
            };
            self.me.state = State::Left;
            return;
        }
        self.join(now, &snapshot.join_addrs());
    }

    /// A push-pull request carrying this node's full state (`join` marks a join).
    pub fn push_pull_request(&self, join: bool) -> PushPull {
        PushPull {
            from: self.me.peer,
            join,
            members: self.member_states(),
            digest: None,
        }
    }

    /// A periodic sync's opening: this node's digest and no members (see
    /// [`PushPull::digest`]); a settled mesh answers it with a digest too, so its periodic
    /// syncs cost two small messages instead of two full member lists.
    pub fn sync_request(&self) -> PushPull {
        PushPull {
            from: self.me.peer,
            join: false,
            members: Vec::new(),
            digest: Some(self.state_digest()),
        }
    }

    /// Leaves gracefully: the leave is gossiped right away and for a few more rounds,
    /// after which the node is silent. Probing stops at once.
    pub fn leave(&mut self, now: Instant) {
        if self.mode != Mode::Active {
            return;
        }
        self.mode = Mode::Left;
        self.me.state = State::Left;
        self.me.state_since = now;
        self.probe = None;
        self.relays.clear();
        self.broadcasts.push(Update::Left {
            id: self.me.peer.id,
            incarnation: self.me.incarnation,
            by: self.me.peer.id,
        });
        let fanout = self.config.gossip_fanout.saturating_mul(2).max(1);
        self.gossip_round(now, fanout);
    }

    /// Removes the member at `addr` (`werify ctl del`): it is marked Left, the removal is
    /// gossiped and the member is told directly; it then goes quiet until a node joins it
    /// again. The address is also dropped from this node's contacts.
    pub fn remove(&mut self, now: Instant, addr: SocketAddr) -> Result<NodeId, RemoveError> {
        if self.is_removed() {
            return Err(RemoveError::SelfRemoved);
        }
        if addr == self.me.peer.addr {
            return Err(RemoveError::IsSelf(addr));
        }
        let Some(id) = self.rec_by_addr(&addr).map(|r| r.id()) else {
            return Err(RemoveError::UnknownAddress(addr));
        };
        let incarnation = self.rec(id).map(|m| m.incarnation()).unwrap_or(0);
        let me = self.me.peer.id;
        self.on_left(now, id, incarnation, me);
        self.contacts.retain(|s| *s != addr);
        let notice = Update::Left {
            id,
            incarnation,
            by: me,
        };
        self.send_with_updates(addr, vec![notice], |updates| Message::Gossip {
            from: me,
            updates,
        });
        Ok(id)
    }

    /// Publishes this node's health summary (capped; its version is raised above the
    /// previous one if needed) by gossip.
    pub fn set_health(&mut self, _now: Instant, summary: HealthSummary) {
        let mut summary = summary.capped();
        if let Some(prev) = &self.me.health
            && summary.version <= prev.version
        {
            summary.version = prev.version.saturating_add(1);
        }
        self.me.health = Some(summary);
        self.me.health_incarnation = self.me.incarnation;
        self.queue_self_health();
    }

    /// Probes every live member now (refresh): their acks update `rtt` and `last_heard`.
    /// Missing acks have no consequence beyond the regular probing.
    pub fn probe_all(&mut self, now: Instant) {
        if self.mode != Mode::Active {
            return;
        }
        let targets: Vec<Peer> = self
            .members
            .iter()
            .filter(|m| m.is_live())
            .map(|m| m.peer())
            .collect();
        for peer in targets {
            self.refresh_ping(now, peer);
        }
    }

    /// Pings `peer` outside the probe schedule: its ack updates `rtt` and `last_heard`,
    /// a missing one has no consequence.
    fn refresh_ping(&mut self, now: Instant, peer: Peer) {
        let seq = self.next_seq();
        if self.refresh.len() >= MAX_REFRESH {
            self.refresh.pop_front();
        }
        self.refresh.push_back((seq, peer.id, now));
        let from = self.me.peer;
        self.send_with_updates(peer.addr, Vec::new(), |updates| Message::Ping {
            from,
            seq,
            target: peer.id,
            updates,
        });
    }

    // ----- inputs --------------------------------------------------------------------

    /// Handles a datagram message, or the reply to a push-pull this node requested.
    pub fn handle_message(&mut self, now: Instant, msg: Message) {
        let sender = msg.sender();
        if sender == self.me.peer.id || self.mode != Mode::Active {
            return;
        }
        if now.saturating_duration_since(self.last_heard_any) > self.config.probe_interval {
            self.reconnected_at = now;
        }
        self.last_heard_any = self.last_heard_any.max(now);
        let heard = stamp_some(self.epoch, now);
        if let Some(i) = self.sender_slot(&sender)
            && let Some(m) = self.members.get_mut(i)
        {
            m.last_heard = heard;
        }
        match msg {
            Message::Ping {
                from,
                seq,
                target,
                updates,
            } => {
                let me = self.me.peer.id;
                let accused = updates.iter().any(|u| {
                    matches!(u, Update::Suspect { id, .. } | Update::Dead { id, .. } if *id == me)
                });
                self.apply_updates(now, updates);
                if target != me || self.mode != Mode::Active {
                    return;
                }
                let mut first = Vec::new();
                if accused {
                    // Buddy ping: the prober suspects us; answer with our (refuted) state.
                    first.push(self.update_for_me());
                }
                // Tell a sender we consider suspect/dead/removed what we think, so it
                // can refute (or learn it was removed).
                if let Some(m) = self.rec(from.id)
                    && m.state() != State::Alive
                {
                    first.push(self.update_for(m));
                }
                self.send_with_updates(from.addr, first, |updates| Message::Ack {
                    from: me,
                    seq,
                    updates,
                });
            }
            Message::Ack { from, seq, updates } => {
                self.apply_updates(now, updates);
                self.on_ack(now, from, seq);
            }
            Message::PingReq { from, seq, target } => self.on_ping_req(now, from, seq, target),
            Message::Nack { seq, .. } => {
                if let Some(p) = self.probe.as_mut()
                    && p.seq == seq
                {
                    p.nacks += 1;
                }
            }
            Message::Gossip { updates, .. } => self.apply_updates(now, updates),
            Message::PushPull(pp) => {
                // The answer to a sync this node started. A digest and no members: the
                // peer holds what we hold.
                if pp.members.is_empty() {
                    self.follow_up_answered(now, pp.from, false);
                    return;
                }
                // If it taught us members we did not know, the mesh is still forming (a
                // mass join): sync again soon rather than wait a full push-pull interval
                // for what gossip missed.
                let known = self.members.len();
                let (peer, theirs) = (pp.from, pp.digest);
                self.quiet =
                    self.contact_follow_up == ContactFollowUp::AwaitingJoinReply { alone: true };
                self.merge(now, pp.from, pp.members);
                self.quiet = false;
                let taught = self.members.len() > known;
                if taught {
                    self.schedule_join_sync(now);
                }
                self.follow_up_answered(now, peer, taught);
                // The answer to our digest differed, and after taking its states we still
                // differ: the peer lacks something of ours, so send it everything.
                if theirs.is_some_and(|theirs| theirs != self.state_digest())
                    && peer.id != self.me.peer.id
                {
                    let req = self.push_pull_request(false);
                    self.send(peer.addr, Message::PushPull(req));
                }
            }
        }
    }

    /// [`Membership::handle_message`] for a datagram that arrived from `addr` (the
    /// sending node's address as the transport saw it). A sender that is still unknown
    /// after its message is handled knows of us while we do not know of it: an update
    /// about it went past us (typically in a mass join, before anyone knew to gossip to
    /// us). We sync with it (a push-pull, not a join), at most once per
    /// [`Config::unknown_sender_sync_every`] per sender, instead of waiting for a periodic
    /// push-pull (a minute at 64 nodes).
    pub fn handle_message_from(&mut self, now: Instant, addr: SocketAddr, msg: Message) {
        let sender = msg.sender();
        self.handle_message(now, msg);
        if self.mode != Mode::Active
            || sender == self.me.peer.id
            || self.sender_slot(&sender).is_some()
        {
            return;
        }
        if !allow_once_per(
            &mut self.unknown_syncs,
            sender,
            now,
            self.config.unknown_sender_sync_every,
            MAX_UNKNOWN_SYNCS,
        ) {
            return;
        }
        let req = self.push_pull_request(false);
        self.send(addr, Message::PushPull(req));
    }

    /// Handles an incoming push-pull request (stream) and returns the reply. A removed
    /// node answers only with its removal, unless the request is a join, which re-adds it.
    pub fn handle_push_pull(&mut self, now: Instant, req: PushPull) -> PushPull {
        if req.from.id == self.me.peer.id {
            return self.push_pull_request(false);
        }
        match self.mode {
            Mode::Removed { incarnation, .. } => {
                if !req.join {
                    return PushPull {
                        from: self.me.peer,
                        join: false,
                        members: vec![self.own_state()],
                        digest: None,
                    };
                }
                self.mode = Mode::Active;
                self.me.incarnation = self.me.incarnation.max(incarnation).saturating_add(1);
                self.me.state = State::Alive;
                self.me.state_since = now;
                self.queue_self_alive();
                self.push_event(Event::SelfReadded);
                tracing::info!(incarnation = self.me.incarnation, by = %req.from, "re-added to the mesh");
            }
            Mode::Left => return self.push_pull_request(false),
            Mode::Active => {}
        }
        if let Some(theirs) = req.digest
            && req.members.is_empty()
        {
            let mine = self.state_digest();
            return PushPull {
                from: self.me.peer,
                join: false,
                members: if mine == theirs {
                    Vec::new()
                } else {
                    self.member_states()
                },
                digest: Some(mine),
            };
        }
        self.merge(now, req.from, req.members);
        self.push_pull_request(false)
    }

    /// Runs whatever is due at `now`: probe steps, nacks for relayed probes, suspicion
    /// timeouts, gossip, push-pull, rejoin attempts and reaping.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.mode {
            Mode::Removed { .. } => return,
            Mode::Left => {
                if now >= self.gossip_due() {
                    self.gossip_round(now, self.config.gossip_fanout);
                }
                return;
            }
            Mode::Active => {}
        }
        // Direct ack overdue: ask others to probe.
        let indirect_due = self
            .probe
            .as_ref()
            .is_some_and(|p| !p.acked && !p.indirect_sent && now >= p.ack_deadline);
        if indirect_due {
            self.send_indirect_probes(now);
        }
        let verdict_due = self
            .probe
            .as_ref()
            .is_some_and(|p| !p.acked && now >= p.verdict_at);
        if verdict_due && let Some(p) = self.probe.take() {
            self.probe_failed(now, p);
        }
        // A rumour outlived the minimum timeout: check the suspect at the next tick
        // possible rather than when the schedule comes round to it.
        if self
            .suspicions
            .next_verification()
            .is_some_and(|at| at <= now)
        {
            self.probe_soon(now);
        }
        if now >= self.next_probe {
            self.probe_tick(now);
            self.introduce(now);
        }
        self.expire_relays(now);
        for (id, suspicion) in self.suspicions.take_expired(now) {
            self.suspicion_expired(now, id, suspicion);
        }
        if now >= self.gossip_due() {
            self.gossip_round(now, self.config.gossip_fanout);
        }
        if now >= self.next_push_pull {
            self.push_pull_tick();
            self.next_push_pull = now + self.config.push_pull_interval_for(self.live_count + 1);
        }
        if let ContactFollowUp::Due {
            contact,
            at,
            asked,
            idle,
        } = self.contact_follow_up
            && now >= at
        {
            self.contact_follow_up = if self.rec(contact.id).is_some_and(|m| m.is_live()) {
                let req = self.sync_request();
                self.send(contact.addr, Message::PushPull(req));
                ContactFollowUp::Asked {
                    contact: contact.id,
                    asked: asked.saturating_add(1),
                    idle,
                }
            } else {
                ContactFollowUp::Idle
            };
        }
        if now >= self.next_rejoin {
            self.rejoin_tick();
            self.next_rejoin = now + self.config.rejoin_interval;
        }
        if now >= self.next_reap {
            self.reap(now);
            self.next_reap = now + reap_check_interval(&self.config);
        }
    }

    // ----- outputs -------------------------------------------------------------------

    /// The next time [`Membership::handle_timeout`] has work, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.mode {
            Mode::Removed { .. } => None,
            Mode::Left => (!self.broadcasts.is_empty()).then(|| self.gossip_due()),
            Mode::Active => {
                let mut next = self
                    .next_probe
                    .min(self.next_push_pull)
                    .min(self.next_rejoin)
                    .min(self.next_reap);
                if let Some(p) = &self.probe
                    && !p.acked
                {
                    next = next.min(if p.indirect_sent {
                        p.verdict_at
                    } else {
                        p.ack_deadline
                    });
                }
                if let Some(at) = self.relays.iter().map(|r| r.deadline).min() {
                    next = next.min(at);
                }
                if let Some(at) = self.suspicions.next_deadline() {
                    next = next.min(at);
                }
                if let Some(at) = self.suspicions.next_verification() {
                    // Not before the probe in flight ends: nothing could be done sooner.
                    next = next.min(self.earliest_tick(at));
                }
                if let ContactFollowUp::Due { at, .. } = self.contact_follow_up {
                    next = next.min(at);
                }
                if !self.broadcasts.is_empty() {
                    next = next.min(self.gossip_due());
                }
                Some(next)
            }
        }
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front();
        if t.is_none() {
            shrink_drained(&mut self.transmits);
        }
        t
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.pop_front();
        if e.is_none() {
            shrink_drained(&mut self.events);
        }
        e
    }

    // ----- probing -------------------------------------------------------------------

    fn probe_tick(&mut self, now: Instant) {
        if let Some(p) = self.probe.take()
            && !p.acked
        {
            self.probe_failed(now, p);
        }
        let scale_refresh = self.awareness.scale(self.config.probe_interval) * 2;
        while let Some(&(_, _, at)) = self.refresh.front() {
            if now.saturating_duration_since(at) <= scale_refresh {
                break;
            }
            self.refresh.pop_front();
        }
        self.next_probe = now + self.awareness.scale(self.config.probe_interval);
        // The round-robin pick comes with its slot: one index lookup less per probe
        // (in a large mesh each is a cache miss).
        let due = self
            .suspect_due_for_reprobe(now)
            .or_else(|| self.rumour_due_for_check(now));
        let target = match due {
            Some(id) => self.slot(&id).map(|i| (id, i)),
            None => self.next_probe_target(),
        };
        let Some((target, slot)) = target else {
            return;
        };
        self.note_probed_slot(slot, now);
        let Some(member) = self.members.get(slot) else {
            return;
        };
        let addr = member.addr();
        let mut first = Vec::new();
        if member.state() == State::Suspect {
            // Buddy system: make sure the suspect hears about its suspicion.
            first.push(self.update_for(member));
        }
        let seq = self.next_seq();
        let from = self.me.peer;
        self.send_with_updates(addr, first, |updates| Message::Ping {
            from,
            seq,
            target,
            updates,
        });
        self.probe = Some(Probe {
            target,
            slot,
            seq,
            sent: now,
            ack_deadline: now + self.awareness.scale(self.config.probe_timeout),
            verdict_at: now + self.awareness.scale(self.config.probe_span()),
            indirect_sent: false,
            expected_nacks: 0,
            nacks: 0,
            acked: false,
        });
    }

    /// Brings the next probe tick forward to `now` (or to the verdict of the probe in
    /// flight), so that a volunteer checks a suspect at once instead of up to a whole
    /// probe interval later. The schedule goes on from that tick: no probe is added.
    fn probe_soon(&mut self, now: Instant) {
        self.next_probe = self.next_probe.min(self.earliest_tick(now));
    }

    /// The earliest a probe tick may come: now, or once the probe in flight has its
    /// verdict (a tick fails an unanswered probe).
    fn earliest_tick(&self, now: Instant) -> Instant {
        match &self.probe {
            Some(p) if !p.acked => p.verdict_at.max(now),
            _ => now,
        }
    }

    /// A member whose suspicion this node holds an armed timer for and has not probed
    /// for two probe periods. Probing it again (the ping carries the suspicion) gives it
    /// another chance to refute, even if our accusation never spread (e.g. we were the
    /// ones cut off while we accused it). The gap is in unscaled probe periods: a node
    /// that was cut off comes back with a high awareness score (slow ticks), and a gap
    /// scaled by it would let a lone accusation made while cut off (whose gossip went
    /// nowhere) reach its timeout before the suspect was ever told. This only picks which member
    /// a tick probes; it adds no probes.
    fn suspect_due_for_reprobe(&self, now: Instant) -> Option<NodeId> {
        let gap = self.config.probe_interval * 2;
        self.suspicions.armed_by_deadline().take(8).find(|id| {
            self.rec(*id).is_some_and(|m| {
                m.state() == State::Suspect
                    && (!self.suspect_told(m)
                        || unstamp_some(self.epoch, m.last_probed())
                            .is_some_and(|at| now.saturating_duration_since(at) >= gap))
            })
        })
    }

    /// Whether this node pinged suspect `m` (the ping carries the suspicion) since it
    /// last came back from a silence: a ping sent while cut off told nobody.
    fn suspect_told(&self, m: &Record) -> bool {
        unstamp_some(self.epoch, m.last_probed()).is_some_and(|at| at >= self.reconnected_at)
    }

    /// A member we only heard is suspect, whose suspicion outlived the minimum timeout
    /// without a verdict: probe it ourselves (see `SuspicionTable::verify`).
    fn rumour_due_for_check(&mut self, now: Instant) -> Option<NodeId> {
        while let Some(id) = self.suspicions.take_due_verification(now) {
            if self.rec(id).is_some_and(|m| m.state() == State::Suspect) {
                return Some(id);
            }
        }
        None
    }

    /// The next live member of the shuffled round, with its slot.
    fn next_probe_target(&mut self) -> Option<(NodeId, usize)> {
        let mut rebuilt = false;
        loop {
            let Some(slot) = self.probe_round.take_next() else {
                if rebuilt {
                    return None;
                }
                self.probe_round
                    .restart(self.members.live_slots(), &mut self.rng);
                rebuilt = true;
                continue;
            };
            let slot = slot as usize;
            if let Some(m) = self.members.get(slot)
                && m.is_live()
            {
                return Some((m.id(), slot));
            }
        }
    }

    /// Once no new member came for [`Config::introduce_after_quiet`], each probe tick also pings
    /// one member this node never heard from, picked at random (an ack is recorded as a
    /// refresh's; a missing one means nothing). After a mass join every pair of nodes has
    /// to meet once, a QUIC handshake; by probes alone, in random order, a pair meets
    /// when either side's round comes to the other, which for the last pairs takes most
    /// of a probe round. Introductions bring that forward, and start after the joins
    /// have settled, so they do not compete with them for the host. The probe order is
    /// left alone: probing the not-yet-met first would delay every node's probes of the
    /// others alike, and with them the detection of a crash in a young mesh.
    fn introduce(&mut self, now: Instant) {
        if self.unmet.is_empty()
            || now.saturating_duration_since(self.last_new_member)
                < self.config.introduce_after_quiet
        {
            return;
        }
        while !self.unmet.is_empty() {
            let pick = self.rng.random_range(0..self.unmet.len());
            let Some(slot) = self.unmet.swap_remove_back(pick) else {
                return;
            };
            let Some(m) = self.members.get(slot as usize) else {
                continue;
            };
            if !m.is_live() || m.last_heard != 0 {
                continue;
            }
            let peer = m.peer();
            self.refresh_ping(now, peer);
            return;
        }
        // All met: give the memory back (it held a slot per member of a mass join).
        self.unmet = VecDeque::new();
    }

    fn send_indirect_probes(&mut self, now: Instant) {
        let Some(p) = self.probe.as_ref() else {
            return;
        };
        let target_id = p.target;
        let seq = p.seq;
        let Some(target) = self.rec(target_id).map(|m| m.peer()) else {
            return;
        };
        // Relays this node heard from lately: a missing nack from one then says more
        // about our own path (Lifeguard raises the awareness score for each), and in a
        // partition relays on the far side would keep every node's score up, stretching
        // its probe period, for as long as the far side is believed alive. Others fill
        // in when too few were heard from.
        let k = self.config.indirect_checks;
        let heard_since = stamp(self.epoch, now).saturating_sub(
            u64::try_from(
                (self.config.probe_interval * self.config.relay_heard_within_probes).as_nanos(),
            )
            .unwrap_or(u64::MAX),
        );
        let mut relays = self.random_members(k, |m| {
            m.state() == State::Alive && m.id() != target_id && m.last_heard > heard_since
        });
        if relays.len() < k {
            let more = self.random_members(k - relays.len(), |m| {
                m.state() == State::Alive && m.id() != target_id && m.last_heard <= heard_since
            });
            relays.extend(more);
        }
        let from = self.me.peer;
        for relay in &relays {
            self.send(relay.addr, Message::PingReq { from, seq, target });
        }
        if let Some(p) = self.probe.as_mut() {
            p.indirect_sent = true;
            p.expected_nacks = relays.len();
        }
    }

    fn probe_failed(&mut self, now: Instant, p: Probe) {
        // Lifeguard: a missing nack means our own path may be the problem.
        let delta = if p.expected_nacks > 0 {
            p.expected_nacks.saturating_sub(p.nacks)
        } else {
            1
        };
        self.awareness
            .apply(i64::try_from(delta).unwrap_or(i64::MAX));
        let Some(m) = self.rec(p.target) else {
            return;
        };
        if !m.is_live() {
            return;
        }
        tracing::debug!(target = %m.peer(), "no ack, direct or indirect: suspecting");
        let incarnation = m.incarnation();
        let me = self.me.peer.id;
        self.on_suspect(now, p.target, incarnation, me);
        // The failed probe is the latest probe of the new suspect.
        self.note_probed(p.target, p.sent);
    }

    /// Records that a probe of `id` started at `at`; kept only for suspects, the only
    /// members whose last probe time is consulted.
    fn note_probed(&mut self, id: NodeId, at: Instant) {
        if let Some(i) = self.slot(&id) {
            self.note_probed_slot(i, at);
        }
    }

    /// [`Membership::note_probed`] for the member in slot `i`.
    fn note_probed_slot(&mut self, i: usize, at: Instant) {
        let probed = stamp_some(self.epoch, at);
        if let Some(m) = self.members.get_mut(i)
            && m.state() == State::Suspect
        {
            m.set_last_probed(probed);
        }
    }

    fn on_ack(&mut self, now: Instant, from: NodeId, seq: u32) {
        if let Some(p) = self.probe.as_mut()
            && p.seq == seq
            && !p.acked
        {
            p.acked = true;
            let (target, sent) = (p.target, p.sent);
            self.awareness.apply(-1);
            if from == target {
                self.record_rtt(target, now.saturating_duration_since(sent), now);
            }
            return;
        }
        if let Some(pos) = self
            .relays
            .iter()
            .position(|r| r.seq == seq && r.target == from)
        {
            let relay = self.relays.swap_remove(pos);
            let me = self.me.peer.id;
            let requester_seq = relay.requester_seq;
            self.send_with_updates(relay.requester, Vec::new(), |updates| Message::Ack {
                from: me,
                seq: requester_seq,
                updates,
            });
            return;
        }
        if let Some(pos) = self
            .refresh
            .iter()
            .position(|&(s, id, _)| s == seq && id == from)
            && let Some((_, id, sent)) = self.refresh.remove(pos)
        {
            self.record_rtt(id, now.saturating_duration_since(sent), now);
        }
    }

    fn record_rtt(&mut self, id: NodeId, rtt: Duration, now: Instant) {
        let heard = stamp_some(self.epoch, now);
        if let Some(i) = self.sender_slot(&id)
            && let Some(m) = self.members.get_mut(i)
        {
            m.rtt_us = u32::try_from(rtt.as_micros())
                .unwrap_or(u32::MAX - 1)
                .saturating_add(1);
            m.last_heard = heard;
        }
    }

    fn on_ping_req(&mut self, now: Instant, from: Peer, seq: u32, target: Peer) {
        let me = self.me.peer.id;
        if target.id == me {
            self.send_with_updates(from.addr, Vec::new(), |updates| Message::Ack {
                from: me,
                seq,
                updates,
            });
            return;
        }
        if self.relays.len() >= MAX_RELAYS {
            return;
        }
        let my_seq = self.next_seq();
        let me_peer = self.me.peer;
        self.send_with_updates(target.addr, Vec::new(), |updates| Message::Ping {
            from: me_peer,
            seq: my_seq,
            target: target.id,
            updates,
        });
        // memberlist sends the nack at 80% of its probe timeout, so it arrives in time.
        self.relays.push(Relay {
            requester: from.addr,
            requester_seq: seq,
            seq: my_seq,
            target: target.id,
            deadline: now + self.config.probe_timeout.mul_f64(0.8),
        });
    }

    fn expire_relays(&mut self, now: Instant) {
        let me = self.me.peer.id;
        let mut i = 0;
        while i < self.relays.len() {
            if self.relays[i].deadline <= now {
                let r = self.relays.swap_remove(i);
                self.send(
                    r.requester,
                    Message::Nack {
                        from: me,
                        seq: r.requester_seq,
                    },
                );
            } else {
                i += 1;
            }
        }
    }

    fn suspicion_expired(&mut self, now: Instant, id: NodeId, suspicion: Suspicion) {
        let Some(i) = self.slot(&id) else {
            return;
        };
        let me = self.me.peer.id;
        let Some(m) = self.members.get(i) else {
            return;
        };
        if m.state() != State::Suspect || m.incarnation() != suspicion.incarnation {
            return;
        }
        // The verdict needs the suspect to have had a chance to answer: a ping carrying
        // the accusation (see `suspect_due_for_reprobe`), sent since this node last came
        // back from a silence. A node cut off while it accused has slow probe
        // ticks when it comes back (local health), and its pings and gossip of the
        // accusation went nowhere: without this the suspect may never hear of it before
        // the timeout, and every other node then lists a healthy member dead. So ping it
        // at the next tick and decide a probe span or two later. Once: a node that hears
        // from few members (the small side of a partition) ends a quiet spell every few
        // probe intervals, and re-checking each time would postpone the verdict on the
        // far side for good.
        if !self.suspect_told(m) && !suspicion.was_postponed() {
            let until = now + self.awareness.scale(self.config.probe_span()) * 2;
            self.suspicions.postpone(id, suspicion, until);
            self.probe_soon(now);
            return;
        }
        tracing::debug!(
            member = %m.peer(),
            confirmations = suspicion.confirmers.len(),
            "suspicion timeout reached: declaring dead"
        );
        let incarnation = m.incarnation();
        self.on_dead(now, id, incarnation, me);
    }

    // ----- dissemination -------------------------------------------------------------

    /// When the next gossip round is due: `gossip_interval` after the last one, or
    /// `fresh_gossip_interval` after it while news (a full update) waits that was never
    /// sent.
    fn gossip_due(&self) -> Instant {
        if self.broadcasts.has_unsent_news() {
            self.next_gossip
                .min(self.last_gossip + self.config.fresh_gossip_interval)
        } else {
            self.next_gossip
        }
    }

    /// One gossip round to `fanout` random members (nothing when no update waits); the
    /// next is scheduled from `now`.
    fn gossip_round(&mut self, now: Instant, fanout: usize) {
        self.last_gossip = now;
        self.next_gossip = now + self.config.gossip_interval;
        if self.broadcasts.is_empty() {
            return;
        }
        let to_dead = u64::try_from(self.config.gossip_to_dead.as_nanos()).unwrap_or(u64::MAX);
        let now_stamp = stamp(self.epoch, now);
        let eligible = |m: &Record| {
            m.is_live()
                || (m.state() == State::Dead && now_stamp.saturating_sub(m.state_since) < to_dead)
        };
        // All but one target are members heard from lately, whose link is open. The last
        // may be a member never heard from, which costs a QUIC handshake before the
        // gossip, only while the round carries membership news (a suspicion, a death, a
        // leave, a refutation): that news must reach every corner of a young mesh whose
        // links a partition may have cut. Alive announcements and health results keep to
        // open links: after a mass join the queues hold nothing else, and one unmet target
        // per round and node would mean hundreds of handshakes a second while every other
        // task on the host waits; the joins themselves travel by the contact's answers
        // (see `ContactFollowUp`).
        let heard_since = now_stamp.saturating_sub(
            u64::try_from(self.config.gossip_heard_within.as_nanos()).unwrap_or(u64::MAX),
        );
        let linked = |m: &Record| eligible(m) && m.last_heard > heard_since;
        let mut targets = self.random_members(fanout.saturating_sub(1), linked);
        let new_link_ok = self.broadcasts.has_membership_news() || targets.is_empty();
        let any = self.random_members(1, |m| {
            (if new_link_ok { eligible(m) } else { linked(m) })
                && !targets.iter().any(|p| p.id == m.id())
        });
        targets.extend(any);
        let me = self.me.peer.id;
        for peer in targets {
            if self.broadcasts.is_empty() {
                break;
            }
            self.send_with_updates(peer.addr, Vec::new(), |updates| Message::Gossip {
                from: me,
                updates,
            });
        }
    }

    fn push_pull_tick(&mut self) {
        let targets = self.random_members(1, |m| m.state() == State::Alive);
        if let Some(peer) = targets.first() {
            let req = self.sync_request();
            self.send(peer.addr, Message::PushPull(req));
        }
    }

    fn rejoin_tick(&mut self) {
        // Without dead (or left) members, `random_members` would find none only after
        // scanning every member: O(N) per node every rejoin interval, the largest cost of
        // a settled large mesh. `live_count` counts exactly the Alive/Suspect
        // members (maintained by `set_state`, `forget` and insertion).
        let dead = if self.members.len() > self.live_count {
            self.random_members(1, |m| m.state() == State::Dead)
        } else {
            Vec::new()
        };
        let mut targets: Vec<SocketAddr> = dead.iter().map(|p| p.addr).collect();
        let eligible: Vec<SocketAddr> = self
            .contacts
            .iter()
            .copied()
            .filter(|s| self.rec_by_addr(s).is_none_or(|m| m.state() == State::Dead))
            .collect();
        if !eligible.is_empty() {
            let pick = eligible[self.rng.random_range(0..eligible.len())];
            if !targets.contains(&pick) {
                targets.push(pick);
            }
        }
        for addr in targets {
            let req = self.push_pull_request(true);
            self.send(addr, Message::PushPull(req));
        }
    }

    fn reap(&mut self, now: Instant) {
        // Only Dead and Left members are reaped, and without any (`live_count` counts the
        // others) the scan below would find none after reading every record: O(members)
        // per node every `reap_after / 20`, for nothing in a settled mesh.
        if self.members.len() == self.live_count {
            return;
        }
        let after = u64::try_from(self.config.reap_after.as_nanos()).unwrap_or(u64::MAX);
        let now_stamp = stamp(self.epoch, now);
        let expired: Vec<NodeId> = self
            .members
            .iter()
            .filter(|m| {
                matches!(m.state(), State::Dead | State::Left)
                    && now_stamp.saturating_sub(m.state_since) >= after
            })
            .map(|m| m.id())
            .collect();
        for id in expired {
            if let Some(peer) = self.forget(id) {
                self.push_event(Event::MemberReaped(peer));
            }
        }
    }

    /// Sends a datagram that carries `first` plus as many queued updates as fit.
    fn send_with_updates(
        &mut self,
        to: SocketAddr,
        first: Vec<Update>,
        make: impl Fn(Vec<Update>) -> Message,
    ) {
        let base = encoded_len(&make(Vec::new()));
        let mut budget = self
            .config
            .datagram_budget()
            .saturating_sub(base + ARRAY_HEADER_SLACK);
        let mut updates = Vec::new();
        for u in first {
            let len = encoded_len(&u);
            if len <= budget {
                budget -= len;
                updates.push(u);
            }
        }
        let limit = self.config.retransmit_limit(self.live_count + 1);
        let members = &self.members;
        updates.extend(self.broadcasts.fill(budget, limit, |slot| {
            members
                .get(slot as usize)
                .filter(|m| m.state() == State::Alive)
                .map(|m| Update::Alive {
                    peer: m.peer(),
                    incarnation: m.incarnation(),
                    tags: m.tags(),
                })
        }));
        self.send(to, make(updates));
    }

    fn send(&mut self, to: SocketAddr, msg: Message) {
        self.transmits.push_back(Transmit { to, msg });
    }

    fn push_event(&mut self, event: Event) {
        if self.preloading && matches!(event, Event::MemberUp(_)) {
            return;
        }
        if self.events.len() >= MAX_EVENTS {
            tracing::warn!("membership event queue full: dropping the oldest event");
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    // ----- state changes -------------------------------------------------------------

    fn apply_updates(&mut self, now: Instant, updates: Vec<Update>) {
        for update in updates {
            // An update may remove this node (or record its leave): the rest of the
            // datagram is about a mesh it is no longer part of, as in `merge`.
            if self.mode != Mode::Active {
                return;
            }
            self.apply_update(now, update);
        }
    }

    fn apply_update(&mut self, now: Instant, update: Update) {
        match update {
            Update::Alive {
                peer,
                incarnation,
                tags,
            } => self.on_alive(now, peer, incarnation, tags),
            Update::Suspect {
                id,
                incarnation,
                by,
            } => self.on_suspect(now, id, incarnation, by),
            Update::Dead {
                id,
                incarnation,
                by,
            } => self.on_dead(now, id, incarnation, by),
            Update::Left {
                id,
                incarnation,
                by,
            } => self.on_left(now, id, incarnation, by),
            Update::Health {
                id,
                incarnation,
                summary,
            } => self.on_health(id, incarnation, summary),
        }
    }

    fn merge(&mut self, now: Instant, from: Peer, states: Vec<MemberState>) {
        if self.mode != Mode::Active {
            return;
        }
        for s in states {
            if self.mode != Mode::Active {
                return;
            }
            let id = s.peer.id;
            match s.state {
                State::Alive => self.on_alive(now, s.peer, s.incarnation, s.tags),
                State::Suspect | State::Dead => {
                    if id == self.me.peer.id {
                        self.on_self_accused(s.incarnation, s.by.unwrap_or(from.id));
                    } else {
                        // Learn unknown suspects (they may well be alive), and treat a
                        // remote "dead" as a suspicion by the sender, as memberlist does: a
                        // partition's verdict must not kill members instantly on merge.
                        if s.state == State::Suspect && self.slot(&id).is_none() {
                            self.on_alive(now, s.peer, s.incarnation, s.tags);
                        }
                        self.on_suspect(now, id, s.incarnation, from.id);
                    }
                }
                State::Left => self.on_left(now, id, s.incarnation, s.by.unwrap_or(id)),
            }
            if let Some((incarnation, summary)) = s.health {
                self.on_health(id, incarnation, summary);
            }
        }
    }

    fn on_alive(&mut self, now: Instant, peer: Peer, incarnation: u64, tags: Tags) {
        if peer.id == self.me.peer.id {
            let differs = peer.addr != self.me.peer.addr || tags != self.me.tags;
            if incarnation > self.me.incarnation || (incarnation == self.me.incarnation && differs)
            {
                self.refute(incarnation, None);
            }
            return;
        }
        // Fast path (the common case in a converged mesh): nothing new.
        let known = self.slot(&peer.id);
        if let Some(i) = known
            && self
                .members
                .get(i)
                .is_some_and(|m| incarnation <= m.incarnation())
        {
            return;
        }
        if peer.addr == self.me.peer.addr {
            tracing::debug!(claimant = %peer, "another id claims this node's address; ignored");
            return;
        }
        if let Some(holder) = self.rec_by_addr(&peer.addr).map(|r| (r.id(), r.state()))
            && holder.0 != peer.id
        {
            if holder.1 == State::Alive {
                tracing::debug!(claimant = %peer, holder = %holder.0, "address held by a live member; ignored");
                return;
            }
            // A new id at the address of a member that is not alive replaces it.
            self.forget(holder.0);
        }
        let Some(i) = self.slot(&peer.id) else {
            if self.members.len() >= self.config.max_members {
                return;
            }
            let record = Record::new(peer, incarnation, tags, stamp(self.epoch, now));
            let i = self.members.insert(record);
            let members = &self.members;
            self.index
                .insert(id_hash(&peer.id), i as u32, |s| members.hash_id_of(s));
            self.by_addr
                .insert(addr_hash(&peer.addr), i as u32, |s| members.hash_addr_of(s));
            self.live_count += 1;
            self.unmet.push_back(i as u32);
            self.last_new_member = now;
            // Insert at a random position of the probe round (memberlist does the same)
            // so a newcomer is probed within one round.
            self.probe_round.insert_randomly(i as u32, &mut self.rng);
            self.push_event(Event::MemberUp(peer));
            self.queue_alive(i);
            return;
        };
        let Some(m) = self.members.get(i) else {
            return;
        };
        if incarnation <= m.incarnation() {
            return;
        }
        let old_state = m.state();
        let old_addr = m.addr();
        let changed = old_addr != peer.addr || !m.tags_eq(&tags);
        if old_addr != peer.addr {
            let members = &self.members;
            if members.find_addr(&self.by_addr, &old_addr) == Some(i) {
                self.by_addr
                    .remove(addr_hash(&old_addr), i as u32, |s| members.hash_addr_of(s));
            }
            if let Some(holder) = members.find_addr(&self.by_addr, &peer.addr) {
                self.by_addr
                    .remove(addr_hash(&peer.addr), holder as u32, |s| {
                        members.hash_addr_of(s)
                    });
            }
        }
        let Some(mut m) = self.members.edit(i) else {
            return;
        };
        if old_addr != peer.addr {
            m.set_addr(peer.addr);
        }
        m.set_incarnation(incarnation);
        m.set_tags(tags);
        drop(m);
        if old_addr != peer.addr {
            let members = &self.members;
            self.by_addr
                .insert(addr_hash(&peer.addr), i as u32, |s| members.hash_addr_of(s));
        }
        if old_state != State::Alive {
            if let Some(mut m) = self.members.edit(i) {
                m.set_suspicion(None, 0);
            }
            self.set_state(i, State::Alive, now);
            self.suspicions.remove(peer.id);
            match old_state {
                State::Suspect => self.push_event(Event::MemberRefuted(peer)),
                _ => self.push_event(Event::MemberUp(peer)),
            }
        } else if changed {
            self.push_event(Event::MemberUpdated(peer));
        }
        self.queue_alive(i);
    }

    /// Queues the alive announcement of the member in slot `i` (by reference: it is
    /// built from the record when sent).
    fn queue_alive(&mut self, i: usize) {
        if self.preloading || self.quiet {
            return;
        }
        let Some(m) = self.members.get(i) else {
            return;
        };
        let update = Update::Alive {
            peer: m.peer(),
            incarnation: m.incarnation(),
            tags: m.tags(),
        };
        let len = encoded_len(&update);
        self.broadcasts.push_alive_ref(i as u32, m.id(), len);
    }

    /// Queues a membership update about the member in slot `i`, replacing its queued
    /// alive announcement.
    fn queue_about(&mut self, i: usize, update: Update) {
        self.broadcasts.cancel_ref(i as u32);
        self.broadcasts.push(update);
    }

    fn on_suspect(&mut self, now: Instant, id: NodeId, incarnation: u64, by: NodeId) {
        if id == self.me.peer.id {
            self.on_self_accused(incarnation, by);
            return;
        }
        let Some(i) = self.slot(&id) else {
            return;
        };
        let live = self.live_count + 1;
        let Some(m) = self.members.get_mut(i) else {
            return;
        };
        if incarnation < m.incarnation() && m.state() == State::Alive {
            self.correct_accuser(now, i, by);
            return;
        }
        if incarnation < m.incarnation() || matches!(m.state(), State::Dead | State::Left) {
            return;
        }
        let me = self.me.peer.id;
        if m.state() == State::Suspect && incarnation == m.incarnation() {
            if let Some((new, useful, count)) = self.suspicions.confirm(id, incarnation, by) {
                m.set_confirmations(count);
                // Our own accusation always goes out, even when it no longer shortens
                // anyone's timer: the suspect must learn that we hold an armed timer, so
                // that it answers us directly.
                if useful || (new && by == me) {
                    self.queue_about(
                        i,
                        Update::Suspect {
                            id,
                            incarnation,
                            by,
                        },
                    );
                }
            }
            if by == me {
                self.suspicions.arm(id, incarnation, now);
            }
            return;
        }
        let Some(mut m) = self.members.edit(i) else {
            return;
        };
        m.set_incarnation(incarnation);
        m.set_suspicion(Some(by), 0);
        let peer = m.peer();
        drop(m);
        self.set_state(i, State::Suspect, now);
        let wanted = if live.saturating_sub(2) < self.config.suspicion_confirmations as usize {
            0
        } else {
            self.config.suspicion_confirmations
        };
        let mut suspicion = Suspicion::new(
            incarnation,
            by,
            by == me,
            now,
            self.config.suspicion_min(live),
            self.config.suspicion_max(live),
            wanted,
        );
        // Each hearer (everyone but the accuser and the suspect) volunteers with the
        // probability that makes `wanted + spare` volunteers expected mesh-wide.
        if by != me && wanted > 0 {
            let hearers = live.saturating_sub(2).max(1) as f64;
            let p = f64::from(wanted + self.config.early_verifiers_spare) / hearers;
            if self.rng.random_bool(p.min(1.0)) {
                suspicion = suspicion.verify_now();
                self.probe_soon(now);
            }
        }
        self.suspicions.insert(id, suspicion);
        self.push_event(Event::MemberSuspect { peer, by });
        self.queue_about(
            i,
            Update::Suspect {
                id,
                incarnation,
                by,
            },
        );
    }

    fn on_dead(&mut self, now: Instant, id: NodeId, incarnation: u64, by: NodeId) {
        if id == self.me.peer.id {
            self.on_self_accused(incarnation, by);
            return;
        }
        let Some(i) = self.slot(&id) else {
            return;
        };
        let Some(m) = self.members.get_mut(i) else {
            return;
        };
        if incarnation < m.incarnation() && m.state() == State::Alive {
            self.correct_accuser(now, i, by);
            return;
        }
        if incarnation < m.incarnation() || matches!(m.state(), State::Dead | State::Left) {
            return;
        }
        let Some(mut m) = self.members.edit(i) else {
            return;
        };
        m.set_incarnation(incarnation);
        if m.suspected_by().is_none() {
            m.set_accuser(by);
        }
        let peer = m.peer();
        drop(m);
        self.set_state(i, State::Dead, now);
        self.suspicions.remove(id);
        self.push_event(Event::MemberDown { peer, by });
        self.queue_about(
            i,
            Update::Dead {
                id,
                incarnation,
                by,
            },
        );
    }

    fn on_left(&mut self, now: Instant, id: NodeId, incarnation: u64, by: NodeId) {
        if id == self.me.peer.id {
            self.on_self_left(incarnation, by);
            return;
        }
        let Some(i) = self.slot(&id) else {
            return;
        };
        let Some(m) = self.members.get_mut(i) else {
            return;
        };
        if incarnation < m.incarnation() || m.state() == State::Left {
            return;
        }
        let Some(mut m) = self.members.edit(i) else {
            return;
        };
        m.set_incarnation(incarnation);
        if by != id {
            m.set_accuser(by);
        }
        let peer = m.peer();
        drop(m);
        self.set_state(i, State::Left, now);
        self.suspicions.remove(id);
        self.contacts.retain(|s| *s != peer.addr);
        self.push_event(if by == id {
            Event::MemberLeft(peer)
        } else {
            Event::MemberRemoved { peer, by }
        });
        self.queue_about(
            i,
            Update::Left {
                id,
                incarnation,
                by,
            },
        );
    }

    fn on_health(&mut self, id: NodeId, incarnation: u64, summary: HealthSummary) {
        if id == self.me.peer.id {
            return;
        }
        let Some(i) = self.slot(&id) else {
            return;
        };
        let Some(m) = self.members.get(i) else {
            return;
        };
        let newer = match m.health() {
            Some((health_incarnation, h)) => {
                (incarnation, summary.version) > (health_incarnation, h.version)
            }
            None => true,
        };
        if !newer {
            return;
        }
        let summary = summary.capped();
        let Some(mut m) = self.members.edit(i) else {
            return;
        };
        m.set_health(incarnation, summary.clone());
        let peer = m.peer();
        drop(m);
        self.push_event(Event::MemberUpdated(peer));
        self.broadcasts.push(Update::Health {
            id,
            incarnation,
            summary,
        });
    }

    /// An accusation by `by` about member `i` is older than the refutation we hold: tell
    /// the accuser directly (at most once per probe interval per pair). The accuser may
    /// hold an armed suspicion timer and have missed the refutation's gossip; the
    /// rumour-holders that relay its stale accusation are the ones that can tell it.
    fn correct_accuser(&mut self, now: Instant, i: usize, by: NodeId) {
        let me = self.me.peer.id;
        let Some(m) = self.members.get(i) else {
            return;
        };
        if by == me || by == m.id() {
            return;
        }
        let key = (m.id(), by);
        let Some(addr) = self.rec(by).filter(|a| a.is_live()).map(|a| a.addr()) else {
            return;
        };
        let update = self.update_for(m);
        let every = self.config.probe_interval;
        if !allow_once_per(&mut self.corrections, key, now, every, MAX_CORRECTIONS) {
            return;
        }
        self.send_with_updates(addr, vec![update], |updates| Message::Gossip {
            from: me,
            updates,
        });
    }

    /// Someone says this node is suspect or dead.
    fn on_self_accused(&mut self, incarnation: u64, by: NodeId) {
        if self.mode != Mode::Active {
            return;
        }
        if incarnation >= self.me.incarnation {
            self.refute(incarnation, Some(by));
        } else {
            // Stale news: repeat our current incarnation so the sender catches up.
            self.queue_self_alive();
        }
        // The accuser holds the only running suspicion timer that matters (see
        // `Suspicion::armed`): tell it directly, not only by gossip. Every copy of the
        // accusation that reaches us triggers one such datagram, so loss is retried.
        if by != self.me.peer.id
            && let Some(addr) = self.rec(by).filter(|m| m.is_live()).map(|m| m.addr())
        {
            let me = self.me.peer.id;
            let alive = Update::Alive {
                peer: self.me.peer,
                incarnation: self.me.incarnation,
                tags: self.me.tags.clone(),
            };
            self.send_with_updates(addr, vec![alive], |updates| Message::Gossip {
                from: me,
                updates,
            });
        }
    }

    /// Someone says this node left or was removed.
    fn on_self_left(&mut self, incarnation: u64, by: NodeId) {
        if self.mode != Mode::Active {
            return;
        }
        if incarnation < self.me.incarnation {
            self.queue_self_alive();
            return;
        }
        if by == self.me.peer.id {
            // An old leave of ours (we restarted since): we are back.
            self.refute(incarnation, None);
            return;
        }
        tracing::info!(%by, incarnation, "removed from the mesh: going quiet until joined again");
        self.mode = Mode::Removed {
            incarnation,
            by: Some(by),
        };
        self.me.state = State::Left;
        self.members.clear();
        self.index.clear();
        self.by_addr.clear();
        self.live_count = 0;
        self.unmet = VecDeque::new();
        self.probe_round = ProbeRound::default();
        self.probe = None;
        self.relays.clear();
        self.refresh.clear();
        self.suspicions.clear();
        self.broadcasts.clear();
        self.contacts.clear();
        self.push_event(Event::SelfRemoved { by });
    }

    fn refute(&mut self, accused_incarnation: u64, by: Option<NodeId>) {
        self.me.incarnation = accused_incarnation
            .max(self.me.incarnation)
            .saturating_add(1);
        self.awareness.apply(1);
        self.queue_self_alive();
        if self.me.health.is_some() {
            self.me.health_incarnation = self.me.incarnation;
            self.queue_self_health();
        }
        tracing::debug!(incarnation = self.me.incarnation, ?by, "refuting");
        self.push_event(Event::Refuted {
            incarnation: self.me.incarnation,
            by,
        });
    }

    fn queue_self_alive(&mut self) {
        self.broadcasts.push(Update::Alive {
            peer: self.me.peer,
            incarnation: self.me.incarnation,
            tags: self.me.tags.clone(),
        });
    }

    fn queue_self_health(&mut self) {
        if let Some(summary) = &self.me.health {
            self.broadcasts.push(Update::Health {
                id: self.me.peer.id,
                incarnation: self.me.health_incarnation,
                summary: summary.clone(),
            });
        }
    }

    fn set_state(&mut self, i: usize, state: State, now: Instant) {
        let Some(mut m) = self.members.edit(i) else {
            return;
        };
        let was_live = m.is_live();
        m.set_state(state);
        m.state_since = stamp(self.epoch, now);
        let is_live = m.is_live();
        if was_live && !is_live {
            self.live_count = self.live_count.saturating_sub(1);
        } else if !was_live && is_live {
            self.live_count += 1;
        }
    }

    /// Drops a member entirely (reaped, or replaced by a new id at its address).
    fn forget(&mut self, id: NodeId) -> Option<Peer> {
        let i = self.slot(&id)?;
        let members = &self.members;
        self.index
            .remove(id_hash(&id), i as u32, |s| members.hash_id_of(s));
        let addr = members.get(i)?.addr();
        if members.find_addr(&self.by_addr, &addr) == Some(i) {
            self.by_addr
                .remove(addr_hash(&addr), i as u32, |s| members.hash_addr_of(s));
        }
        self.broadcasts.cancel_ref(i as u32);
        let m = self.members.remove(i)?;
        if m.is_live() {
            self.live_count = self.live_count.saturating_sub(1);
        }
        self.suspicions.remove(id);
        Some(m.peer())
    }

    // ----- helpers -------------------------------------------------------------------

    fn next_seq(&mut self) -> u32 {
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_seq
    }

    /// Up to `k` distinct random members matching `filter` (bounded random tries, then
    /// a scan, so it is cheap in big meshes and exact in small ones).
    fn random_members(&mut self, k: usize, filter: impl Fn(&Record) -> bool) -> Vec<Peer> {
        let n = self.members.slot_count();
        let mut chosen: Vec<usize> = Vec::with_capacity(k);
        if n == 0 || k == 0 {
            return Vec::new();
        }
        for _ in 0..(4 * k).min(4 * n) {
            if chosen.len() >= k {
                break;
            }
            let i = self.rng.random_range(0..n);
            if !chosen.contains(&i) && self.members.get(i).is_some_and(&filter) {
                chosen.push(i);
            }
        }
        if chosen.len() < k {
            let start = self.rng.random_range(0..n);
            for step in 0..n {
                if chosen.len() >= k {
                    break;
                }
                let i = (start + step) % n;
                if !chosen.contains(&i) && self.members.get(i).is_some_and(&filter) {
                    chosen.push(i);
                }
            }
        }
        chosen
            .into_iter()
            .filter_map(|i| self.members.get(i).map(|m| m.peer()))
            .collect()
    }

    /// The update that states what this node believes about `m`.
    fn update_for(&self, m: &Record) -> Update {
        self.update_of(
            m.peer(),
            m.incarnation(),
            m.state(),
            m.suspected_by(),
            || m.tags(),
        )
    }

    fn update_for_me(&self) -> Update {
        let me = &self.me;
        self.update_of(me.peer, me.incarnation, me.state, me.suspected_by, || {
            me.tags.clone()
        })
    }

    fn update_of(
        &self,
        peer: Peer,
        incarnation: u64,
        state: State,
        suspected_by: Option<NodeId>,
        tags: impl FnOnce() -> Tags,
    ) -> Update {
        let id = peer.id;
        let by = suspected_by.unwrap_or(self.me.peer.id);
        match state {
            State::Alive => Update::Alive {
                peer,
                incarnation,
                tags: tags(),
            },
            State::Suspect => Update::Suspect {
                id,
                incarnation,
                by,
            },
            State::Dead => Update::Dead {
                id,
                incarnation,
                by,
            },
            State::Left => Update::Left {
                id,
                incarnation,
                by,
            },
        }
    }

    fn own_state(&self) -> MemberState {
        let by = match self.mode {
            Mode::Removed { by, .. } => by.or(Some(self.me.peer.id)),
            _ => Some(self.me.peer.id),
        };
        MemberState {
            peer: self.me.peer,
            incarnation: match self.mode {
                Mode::Removed { incarnation, .. } => incarnation.max(self.me.incarnation),
                _ => self.me.incarnation,
            },
            state: self.me.state,
            tags: self.me.tags.clone(),
            health: self
                .me
                .health
                .clone()
                .map(|h| (self.me.health_incarnation, h)),
            by: if self.me.state == State::Alive {
                None
            } else {
                by
            },
        }
    }

    fn member_states(&self) -> Vec<MemberState> {
        let mut out = Vec::with_capacity(self.members.len() + 1);
        out.push(self.own_state());
        out.extend(self.members.iter().map(|r| {
            let v = r.state_view();
            MemberState {
                peer: v.peer,
                incarnation: v.incarnation,
                state: v.state,
                tags: v.tags.cloned().unwrap_or_default(),
                health: v.health.map(|(n, h)| (n, h.clone())),
                by: v.by,
            }
        }));
        out
    }

    /// The digest of what [`Membership::member_states`] would return, without building
    /// it: this node's own term plus the running sum of the records' terms.
    fn state_digest(&self) -> StateDigest {
        let me = self.own_state();
        StateDigest::from_sum(
            StateView::of(&me)
                .digest_term()
                .wrapping_add(self.members.digest_sum()),
        )
    }
}

/// Hooks for the simulator (`sim` feature) and tests: not part of a real node's API.
#[cfg(any(test, feature = "sim"))]
impl Membership {
    /// Simulator bootstrap: learns `members` (the state `from` sent in a push-pull) by
    /// the same rules as a push-pull reply, as if that sync had happened long ago and its
    /// gossip had run its course: alive news it teaches is not queued for
    /// re-announcement and new members raise no `MemberUp` event. Nothing already queued
    /// is dropped, and anything else (a claim about this node, a suspicion, a death) is
    /// handled exactly as in a push-pull, events and gossip included.
    ///
    /// A real node cannot get here by itself (it learns its mesh by joining); the
    /// simulator uses it to start thousands of nodes that already know each other, so
    /// that a settled mesh can be measured without first simulating the mass join and
    /// the minutes its announcement backlog takes to drain.
    pub fn preload_settled(&mut self, now: Instant, from: Peer, members: Vec<MemberState>) {
        self.preloading = true;
        self.merge(now, from, members);
        self.preloading = false;
        // In a settled mesh every pair has met (the probe round saw to it): each member
        // counts as heard from, with its link open (see `gossip_round`).
        let heard = stamp_some(self.epoch, now);
        for i in 0..self.members.slot_count() {
            if let Some(m) = self.members.get_mut(i)
                && m.last_heard == 0
            {
                m.last_heard = heard;
            }
        }
        self.unmet = VecDeque::new();
    }

    /// Capacity hint: room for `members` member records (and their index and queue
    /// entries) up front, so that a node that will learn that many does not regrow its
    /// arrays step by step (each step leaves a freed block behind in the allocator).
    pub fn reserve_members(&mut self, members: usize) {
        self.members.reserve_slots(members);
        let members_ref = &self.members;
        self.index.reserve(members, |s| members_ref.hash_id_of(s));
        self.by_addr
            .reserve(members, |s| members_ref.hash_addr_of(s));
        self.probe_round.reserve(members);
        self.broadcasts.reserve_refs(members);
    }

    /// Whether the running digest (see `record.rs`) equals the digest recomputed from
    /// every record. Every change of a member's synced fields goes through one path that
    /// keeps the sum; this checks that none was missed. O(members).
    pub fn running_digest_is_exact(&self) -> bool {
        let me = self.own_state();
        let recomputed = StateDigest::of(
            std::iter::once(StateView::of(&me)).chain(self.members.iter().map(Record::state_view)),
        );
        self.members.digest_sum() == self.members.recomputed_digest_sum()
            && self.state_digest() == recomputed
    }
}

/// Gives back the memory of a drained output queue that once held a burst (a join
/// reply yields one `MemberUp` per member); without this every node would keep room
/// for a whole mesh's worth of events, ~60 bytes per member.
fn shrink_drained<T>(queue: &mut VecDeque<T>) {
    if queue.is_empty() && queue.capacity() > 64 {
        queue.shrink_to(16);
    }
}

/// How often dead/left members are checked for reaping.
fn reap_check_interval(config: &Config) -> Duration {
    (config.reap_after / 20).max(Duration::from_millis(100))
}

/// Records `key` at `now` and returns true, unless it was recorded less than `every` ago
/// or `map` holds `cap` keys recorded that recently: a per-key rate with bounded memory.
fn allow_once_per<K: std::hash::Hash + Eq>(
    map: &mut IdMap<K, Instant>,
    key: K,
    now: Instant,
    every: Duration,
    cap: usize,
) -> bool {
    let recent = |at: &Instant| now.saturating_duration_since(*at) < every;
    if map.get(&key).is_some_and(recent) {
        return false;
    }
    if map.len() >= cap {
        map.retain(|_, at| recent(at));
        if map.len() >= cap {
            return false;
        }
    }
    map.insert(key, now);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::config::Profile;
    use rand::rngs::SmallRng;

    fn peer(n: u8) -> Peer {
        Peer::numbered(n, 7946)
    }

    fn node(n: u8, now: Instant) -> Membership {
        Membership::new(
            peer(n),
            Tags::new(),
            Config::for_profile(Profile::Lan),
            u64::from(n),
            now,
        )
    }

    fn transmits(m: &mut Membership) -> Vec<Transmit> {
        std::iter::from_fn(|| m.poll_transmit()).collect()
    }

    fn events(m: &mut Membership) -> Vec<Event> {
        std::iter::from_fn(|| m.poll_event()).collect()
    }

    /// `a` learns everything `b` knows (as after a join reply from `b`).
    fn learn(a: &mut Membership, b: &Membership, now: Instant) {
        a.handle_message(now, Message::PushPull(b.push_pull_request(false)));
    }

    fn gossip(from: u8, updates: Vec<Update>) -> Message {
        Message::Gossip {
            from: NodeId([from; 16]),
            updates,
        }
    }

    /// Gossip from `by` saying it suspects member `of` at incarnation 0.
    fn suspicion_from(by: u8, of: u8) -> Message {
        gossip(
            by,
            vec![Update::Suspect {
                id: peer(of).id,
                incarnation: 0,
                by: peer(by).id,
            }],
        )
    }

    /// Node 1 after learning nodes 2..=29 from node 2's join answer, then hearing from
    /// the members in `heard` (gossip without updates).
    fn node_1_through_hub(t0: Instant, heard: &[u8]) -> Membership {
        let hub = node_knowing(2, 3..30, t0);
        let mut a = node(1, t0);
        learn(&mut a, &hub, t0);
        for &n in heard {
            a.handle_message(t0, gossip(n, Vec::new()));
        }
        a
    }

    /// Drives `m` through its timers until `until`, returning everything it sent.
    fn run(m: &mut Membership, until: Instant) -> Vec<Transmit> {
        let mut out = Vec::new();
        while let Some(at) = m.poll_timeout() {
            if at > until {
                break;
            }
            m.handle_timeout(at);
            out.extend(transmits(m));
        }
        out
    }

    #[test]
    fn a_settled_preload_queues_no_alive_news_but_handles_the_rest_as_a_push_pull() {
        let t0 = Instant::now();
        let mut m = node(1, t0);
        let state = |n: u8, state: State| MemberState {
            peer: peer(n),
            incarnation: 0,
            state,
            tags: Tags::new(),
            health: None,
            by: (state != State::Alive).then_some(NodeId([2; 16])),
        };
        let mut states: Vec<MemberState> = (1..=5).map(|n| state(n, State::Alive)).collect();
        states.push(state(6, State::Suspect));
        m.preload_settled(t0, peer(2), states);
        // Every member is known (itself skipped) and alive but the suspect, which is
        // suspected as a push-pull would have it: an event and a queued suspicion, the
        // only queued update. No MemberUp for anyone.
        assert_eq!(m.known_members(), 5);
        assert_eq!(m.live_members(), 5);
        assert_eq!(m.state_of(NodeId([3; 16])), Some(State::Alive));
        assert_eq!(m.state_of(NodeId([6; 16])), Some(State::Suspect));
        assert_eq!(m.queued_updates(), 1);
        let ev = events(&mut m);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!(
            matches!(ev[0], Event::MemberSuspect { peer: p, .. } if p == peer(6)),
            "{ev:?}"
        );
        // Later news is announced as usual.
        m.handle_message(
            t0,
            gossip(
                3,
                vec![Update::Alive {
                    peer: peer(7),
                    incarnation: 0,
                    tags: Tags::new(),
                }],
            ),
        );
        assert_eq!(m.queued_updates(), 2);
        assert_eq!(events(&mut m), vec![Event::MemberUp(peer(7))]);
    }

    #[test]
    fn unsent_news_is_gossiped_after_the_short_interval_and_resent_at_the_normal_pace() {
        let t0 = Instant::now();
        let mut m = node_1_knowing(5, t0);
        let fresh = m.config.fresh_gossip_interval;
        let normal = m.config.gossip_interval;
        assert!(fresh < normal);
        // Everything the joins queued has been sent as often as it will be.
        let t1 = t0 + Duration::from_secs(10);
        run(&mut m, t1);
        assert_eq!(m.queued_updates(), 0);
        let left = |n: u8| Update::Left {
            id: NodeId([n; 16]),
            incarnation: 0,
            by: NodeId([n; 16]),
        };
        let gossip_rounds = |sent: &[Transmit]| {
            sent.iter()
                .filter_map(|t| match &t.msg {
                    Message::Gossip { updates, .. } => Some(updates.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        // News (here: members leaving) after a quiet spell goes out at once.
        m.handle_message(t1, gossip(3, vec![left(3)]));
        m.handle_timeout(t1);
        let first = gossip_rounds(&transmits(&mut m));
        assert!(!first.is_empty() && first.iter().all(|u| u.contains(&left(3))));
        // Sent once, it waits the normal interval for its next round...
        let sent = run(&mut m, t1 + normal - Duration::from_millis(1));
        assert!(gossip_rounds(&sent).is_empty(), "{sent:?}");
        // ...unless newer news arrives: that one leaves `fresh` after the last round.
        let t2 = t1 + normal;
        run(&mut m, t2);
        m.handle_message(t2 + Duration::from_millis(1), gossip(4, vec![left(4)]));
        let sent = run(&mut m, t2 + fresh - Duration::from_millis(1));
        assert!(gossip_rounds(&sent).is_empty(), "{sent:?}");
        let sent = run(&mut m, t2 + fresh);
        let rounds = gossip_rounds(&sent);
        assert!(!rounds.is_empty(), "{sent:?}");
        assert!(rounds.iter().all(|u| u.contains(&left(4))), "{rounds:?}");
    }

    #[test]
    fn indirect_probes_go_first_through_members_heard_from_lately() {
        let t0 = Instant::now();
        let mut m = node_1_knowing(8, t0);
        // From 10 s on, only 2, 3 and 4 are heard from (they answer pings and gossip);
        // 5..8 went silent long ago, as the far side of a partition.
        let heard = |n: u8| (2..=4).contains(&n);
        let addr_of = |a: SocketAddr| match a.ip() {
            std::net::IpAddr::V4(v4) => v4.octets()[3],
            std::net::IpAddr::V6(_) => 0,
        };
        let mut relays = Vec::new();
        let step = Duration::from_millis(50);
        let mut now = t0 + Duration::from_secs(10);
        while now < t0 + Duration::from_secs(16) {
            if (now - t0).subsec_millis() == 0 {
                for n in (2..=8).filter(|&n| heard(n)) {
                    m.handle_message(now, gossip(n, Vec::new()));
                }
            }
            m.handle_timeout(now);
            for t in transmits(&mut m) {
                match t.msg {
                    Message::Ping { seq, .. } if heard(addr_of(t.to)) => {
                        let ack = Message::Ack {
                            from: NodeId([addr_of(t.to); 16]),
                            seq,
                            updates: Vec::new(),
                        };
                        m.handle_message(now, ack);
                    }
                    Message::PingReq { .. } => relays.push(addr_of(t.to)),
                    _ => {}
                }
            }
            now += step;
        }
        assert!(
            relays.len() >= 6,
            "too few indirect probes to judge: {relays:?}"
        );
        assert!(relays.iter().all(|&r| heard(r)), "{relays:?}");
    }

    #[test]
    fn members_never_heard_from_are_introduced_once_the_joins_settle() {
        let t0 = Instant::now();
        // a heard from the hub and the other even members; the 14 odd ones are unmet.
        let even: Vec<u8> = (2..30).step_by(2).collect();
        let mut a = node_1_through_hub(t0, &even);
        let unmet: Vec<NodeId> = (3..30).step_by(2).map(|n| peer(n).id).collect();
        // Pings of each tick, every ping answered.
        let mut ticks: Vec<(Instant, Vec<NodeId>)> = Vec::new();
        let mut now = t0;
        while now < t0 + a.config.probe_interval * 28 {
            now += Duration::from_millis(10);
            a.handle_timeout(now);
            let mut pinged = Vec::new();
            for t in transmits(&mut a) {
                if let Message::Ping { seq, target, .. } = t.msg {
                    pinged.push(target);
                    let ack = Message::Ack {
                        from: target,
                        seq,
                        updates: Vec::new(),
                    };
                    a.handle_message(now, ack);
                }
            }
            if !pinged.is_empty() {
                ticks.push((now, pinged));
            }
        }
        let quiet = t0 + a.config.introduce_after_quiet;
        assert!(
            ticks
                .iter()
                .filter(|(at, _)| *at < quiet)
                .all(|(_, p)| p.len() == 1),
            "introductions before the joins settled: {ticks:?}"
        );
        let introduced: Vec<NodeId> = ticks
            .iter()
            .filter(|(_, p)| p.len() == 2)
            .map(|(_, p)| p[1])
            .collect();
        assert!(
            introduced.iter().all(|id| unmet.contains(id)),
            "introduced a member already met: {introduced:?}"
        );
        let mut once = introduced.clone();
        once.sort_by_key(|id| id.0);
        once.dedup();
        assert_eq!(
            once.len(),
            introduced.len(),
            "introduced twice: {introduced:?}"
        );
        // Those the regular probes met first need no introduction; all are met now.
        assert!(
            introduced.len() >= 5,
            "only {} introductions",
            introduced.len()
        );
        let never_heard = a.members.iter().filter(|m| m.last_heard == 0).count();
        assert_eq!(never_heard, 0, "members still never heard from");
    }

    /// Node 1 after learning nodes 2..=`last` (as from join replies), its resulting sends
    /// drained.
    fn node_1_knowing(last: u8, t0: Instant) -> Membership {
        let mut m = node(1, t0);
        for n in 2..=last {
            learn(&mut m, &node(n, t0), t0);
        }
        transmits(&mut m);
        m
    }

    /// Node 1 after learning node 2 (as from a join reply), its resulting sends drained.
    fn node_1_knowing_2(t0: Instant) -> Membership {
        let mut a = node(1, t0);
        learn(&mut a, &node(2, t0), t0);
        transmits(&mut a);
        a
    }

    /// Nodes 1 and 2, each having learned the other (their resulting sends not drained).
    fn nodes_1_and_2_knowing_each_other(t0: Instant) -> (Membership, Membership) {
        let (mut a, mut b) = (node(1, t0), node(2, t0));
        learn(&mut a, &b, t0);
        learn(&mut b, &a, t0);
        (a, b)
    }

    fn push_pull_targets(sent: &[Transmit]) -> Vec<SocketAddr> {
        sent.iter()
            .filter(|t| matches!(t.msg, Message::PushPull(_)))
            .map(|t| t.to)
            .collect()
    }

    /// Answers `req` on `responder` and hands the reply to `asker` (one periodic sync);
    /// returns the reply and whatever the asker sent next.
    fn sync(
        asker: &mut Membership,
        responder: &mut Membership,
        now: Instant,
    ) -> (PushPull, Vec<Transmit>) {
        let reply = responder.handle_push_pull(now, asker.sync_request());
        asker.handle_message(now, Message::PushPull(reply.clone()));
        (reply, transmits(asker))
    }

    #[test]
    fn updates_behind_this_nodes_removal_in_one_datagram_are_not_applied() {
        let t0 = Instant::now();
        let mut a = node_1_knowing_2(t0);
        a.handle_message(
            t0,
            gossip(
                2,
                vec![
                    Update::Left {
                        id: peer(1).id,
                        incarnation: 0,
                        by: peer(2).id,
                    },
                    Update::Alive {
                        peer: peer(3),
                        incarnation: 0,
                        tags: Tags::new(),
                    },
                ],
            ),
        );
        assert!(a.is_removed());
        assert_eq!(
            a.state_of(peer(3).id),
            None,
            "a removed node learned a member"
        );
        assert_eq!(a.members().count(), 1, "only itself");
    }

    #[test]
    fn a_periodic_sync_between_equal_views_carries_no_members() {
        let t0 = Instant::now();
        let (mut a, mut b) = nodes_1_and_2_knowing_each_other(t0);
        transmits(&mut a);
        transmits(&mut b);
        let req = a.sync_request();
        assert!(req.members.is_empty() && req.digest.is_some());
        let (reply, sent) = sync(&mut a, &mut b, t0);
        assert!(reply.members.is_empty(), "equal views: no member list");
        assert_eq!(reply.digest, req.digest);
        assert!(sent.is_empty(), "nothing more to exchange: {sent:?}");
    }

    #[test]
    fn the_digest_is_that_of_the_states_a_push_pull_would_send() {
        let t0 = Instant::now();
        let health = HealthSummary {
            version: 3,
            passing: 4,
            failing: 1,
            erroring: 0,
            failing_names: vec!["disk".into()],
            at_unix_ms: 1,
            refresh_id: 0,
        };
        let mut tags = Tags::new();
        tags.insert("role".into(), "db".into());
        let mut b = Membership::new(peer(2), tags, Config::for_profile(Profile::Lan), 2, t0);
        b.set_health(t0, health.clone());
        let mut a = node(1, t0);
        a.set_health(t0, health);
        learn(&mut a, &b, t0);
        learn(&mut a, &node(3, t0), t0);
        a.handle_message(t0, suspicion_from(4, 3));
        assert_eq!(a.state_of(peer(3).id), Some(State::Suspect));
        let states = a.push_pull_request(false).members;
        assert_eq!(states.len(), 3);
        assert_eq!(a.state_digest(), StateDigest::of_states(&states));
    }

    #[test]
    fn a_periodic_sync_between_different_views_exchanges_both_ways() {
        let t0 = Instant::now();
        let (mut a, mut b) = nodes_1_and_2_knowing_each_other(t0);
        let (c, d) = (node(3, t0), node(4, t0));
        learn(&mut b, &c, t0); // only b knows c
        learn(&mut a, &d, t0); // only a knows d
        transmits(&mut a);
        transmits(&mut b);

        let (reply, sent) = sync(&mut a, &mut b, t0);
        assert_eq!(
            reply.members.len(),
            3,
            "b answers a differing digest with its states"
        );
        assert_eq!(
            a.state_of(c.me().peer.id),
            Some(State::Alive),
            "a learned c"
        );
        let full: Vec<&Transmit> = sent
            .iter()
            .filter(|t| matches!(&t.msg, Message::PushPull(pp) if !pp.members.is_empty()))
            .collect();
        assert_eq!(
            full.len(),
            1,
            "a still differs (d), so it sends b its states: {sent:?}"
        );
        assert_eq!(full[0].to, b.me().peer.addr);
        if let Message::PushPull(pp) = &full[0].msg {
            b.handle_push_pull(t0, pp.clone());
        }
        assert_eq!(
            b.state_of(d.me().peer.id),
            Some(State::Alive),
            "b learned d"
        );
        transmits(&mut a);
        transmits(&mut b);

        let (reply, sent) = sync(&mut a, &mut b, t0);
        assert!(reply.members.is_empty(), "views are equal now");
        assert!(sent.is_empty());
    }

    #[test]
    fn a_join_and_a_sync_that_teaches_new_members_are_followed_by_an_early_sync() {
        let t0 = Instant::now();
        let lan = Config::for_profile(Profile::Lan);
        let gossip = lan.gossip_interval;
        let early = gossip * lan.join_sync_after_gossips;
        let (mut a, mut b, c) = (node(1, t0), node(2, t0), node(3, t0));
        assert!(
            a.next_push_pull - t0 > early,
            "the first periodic sync is 15-30 s away"
        );
        a.join(t0, &[peer(2).addr]);
        assert_eq!(push_pull_targets(&transmits(&mut a)), vec![peer(2).addr]);
        assert_eq!(
            a.next_push_pull,
            t0 + early,
            "a join brings the next sync forward"
        );
        // b answers, and its follow-ups (see the contact follow-up tests) teach nothing new.
        learn(&mut a, &b, t0);
        let step = gossip / lan.contact_follow_ups_per_gossip;
        for k in 1..=u32::from(lan.contact_follow_ups_idle) {
            a.handle_timeout(t0 + step * k);
            assert_eq!(push_pull_targets(&transmits(&mut a)), vec![peer(2).addr]);
            learn(&mut a, &b, t0 + step * k);
        }
        // The sync runs at that time (to b, the only member; one timer call, so that b
        // has not missed an ack yet)...
        a.handle_timeout(t0 + early);
        assert_eq!(push_pull_targets(&transmits(&mut a)), vec![peer(2).addr]);
        let periodic = a.config.push_pull_interval_for(2);
        assert_eq!(a.next_push_pull, t0 + early + periodic);
        // ...and an answer that brings a member a did not know (c) brings it forward again.
        learn(&mut b, &c, t0);
        let t1 = t0 + early;
        learn(&mut a, &b, t1);
        assert_eq!(a.next_push_pull, t1 + early);
        // An answer with nothing new leaves the schedule alone.
        let t2 = t1 + early;
        a.handle_timeout(t2);
        let scheduled = a.next_push_pull;
        learn(&mut a, &b, t2);
        assert_eq!(a.next_push_pull, scheduled);
        assert!(scheduled - t2 > early);
    }

    /// Node `n`, having learned nodes `others` from their push-pulls.
    fn node_knowing(n: u8, others: std::ops::Range<u8>, t0: Instant) -> Membership {
        let mut m = node(n, t0);
        for o in others {
            learn(&mut m, &node(o, t0), t0);
        }
        m
    }

    /// Answers the push-pull `m` sent last with `contact`'s state, as the contact would.
    fn answer_last_push_pull(m: &mut Membership, contact: &mut Membership, now: Instant) {
        let req = transmits(m).into_iter().rev().find_map(|t| match t.msg {
            Message::PushPull(req) if t.to == contact.me().peer.addr => Some(req),
            _ => None,
        });
        let Some(req) = req else {
            panic!("no push-pull to the contact was sent");
        };
        let reply = contact.handle_push_pull(now, req);
        m.handle_message(now, Message::PushPull(reply));
    }

    #[test]
    fn the_contact_that_answered_a_join_is_asked_again_a_few_times() {
        let t0 = Instant::now();
        let lan = Config::for_profile(Profile::Lan);
        let after = lan.gossip_interval / lan.contact_follow_ups_per_gossip;
        let (mut a, mut contact) = (node(1, t0), node(2, t0));
        a.join(t0, &[peer(2).addr]);
        answer_last_push_pull(&mut a, &mut contact, t0);
        // Not before its time...
        a.handle_timeout(t0 + after - Duration::from_millis(1));
        assert!(push_pull_targets(&transmits(&mut a)).is_empty());
        // ...then a sync with the contact after each answer: the joins that reach the contact
        // after ours come back with it, and an answer with nothing new (the contact's digest
        // alone) does not end the asks.
        let mut now = t0 + after;
        let mut asked = 0;
        for n in 3..20 {
            a.handle_timeout(now);
            let sent = transmits(&mut a);
            if push_pull_targets(&sent).is_empty() {
                break;
            }
            assert_eq!(push_pull_targets(&sent), vec![peer(2).addr]);
            asked += 1;
            let joins_meanwhile = n % 2 == 1;
            if joins_meanwhile {
                learn(&mut contact, &node(n, t0), now);
            }
            let reply = contact.handle_push_pull(now, a.sync_request());
            assert_eq!(reply.members.is_empty(), !joins_meanwhile);
            a.handle_message(now, Message::PushPull(reply));
            assert_eq!(a.rec(peer(n).id).is_some(), joins_meanwhile);
            now += after;
        }
        assert_eq!(
            asked,
            usize::from(lan.contact_follow_ups),
            "follow-ups are bounded"
        );
        // Once the joins stop reaching the contact, the asks end early: the answers that
        // teach nothing in a row end them.
        let (mut c, mut contact) = (node(1, t0), node(2, t0));
        c.join(t0, &[peer(2).addr]);
        answer_last_push_pull(&mut c, &mut contact, t0);
        let mut now = t0 + after;
        let mut asked = 0;
        for n in 3..20 {
            c.handle_timeout(now);
            if push_pull_targets(&transmits(&mut c)).is_empty() {
                break;
            }
            asked += 1;
            if n < 6 {
                learn(&mut contact, &node(n, t0), now);
            }
            let reply = contact.handle_push_pull(now, c.sync_request());
            c.handle_message(now, Message::PushPull(reply));
            now += after;
        }
        assert!(
            asked < usize::from(lan.contact_follow_ups),
            "the asks ended early"
        );
        assert_eq!(
            asked,
            3 + usize::from(lan.contact_follow_ups_idle),
            "three answers with a join each, then {} with none",
            lan.contact_follow_ups_idle
        );
        assert!((3..6).all(|n| c.rec(peer(n).id).is_some()));
        // A contact that stopped answering is not asked again.
        let (mut b, mut contact) = (node(1, t0), node(2, t0));
        b.join(t0, &[peer(2).addr]);
        answer_last_push_pull(&mut b, &mut contact, t0);
        b.handle_timeout(t0 + after);
        assert_eq!(push_pull_targets(&transmits(&mut b)), vec![peer(2).addr]);
        for k in 2..10 {
            b.handle_timeout(t0 + after * k);
        }
        assert!(
            push_pull_targets(&transmits(&mut b)).is_empty(),
            "asked again before the last ask was answered"
        );
    }

    #[test]
    fn gossip_meets_a_member_not_heard_from_only_for_membership_news() {
        let t0 = Instant::now();
        // a learns 28 members (alive announcements to gossip) but has heard from two only.
        let mut a = node_1_through_hub(t0, &[2, 3]);
        let heard = [peer(2).addr, peer(3).addr];
        // Gossip rounds from `from` on: (rounds that sent, sends to heard members, most
        // members not heard from in one round, rounds with one).
        let rounds = |a: &mut Membership, from: Instant| {
            let step = a.config.fresh_gossip_interval;
            let (mut sent, mut to_heard, mut most_new, mut with_new) = (0, 0, 0, 0);
            for k in 1..=40 {
                a.handle_timeout(from + step * k);
                let targets: Vec<SocketAddr> = transmits(a)
                    .into_iter()
                    .filter(|t| matches!(t.msg, Message::Gossip { .. }))
                    .map(|t| t.to)
                    .collect();
                if targets.is_empty() {
                    continue;
                }
                sent += 1;
                let new = targets.iter().filter(|t| !heard.contains(t)).count();
                to_heard += targets.len() - new;
                most_new = most_new.max(new);
                with_new += usize::from(new > 0);
            }
            (sent, to_heard, most_new, with_new)
        };
        let (sent, to_heard, most_new, _) = rounds(&mut a, t0);
        assert!(sent >= 5, "only {sent} gossip rounds ran");
        assert_eq!(
            most_new, 0,
            "alive announcements went to a member not heard from"
        );
        assert!(
            to_heard >= 2 * sent,
            "the heard-from members were not gossiped to: {to_heard} in {sent} rounds"
        );
        // A suspicion is news the whole mesh must get: one member not heard from at most
        // joins each round's targets.
        let t1 = t0 + Duration::from_secs(5);
        a.handle_message(t1, suspicion_from(2, 20));
        let (sent, _, most_new, with_new) = rounds(&mut a, t1);
        assert!(
            sent >= 2,
            "only {sent} gossip rounds ran with a suspicion queued"
        );
        assert_eq!(most_new, 1, "members not heard from in one round");
        assert!(
            with_new >= sent / 2,
            "{with_new} of {sent} rounds met a new member"
        );
    }

    /// Ids of the members whose Alive news `m` gossips over the next `rounds` rounds.
    fn announced(m: &mut Membership, from: Instant, rounds: u32) -> Vec<NodeId> {
        let mut ids = Vec::new();
        let step = m.config.gossip_interval;
        for k in 1..=rounds {
            m.handle_timeout(from + step * k);
            for t in transmits(m) {
                if let Message::Gossip { updates, .. } = t.msg {
                    for u in updates {
                        if let Update::Alive { peer, .. } = u
                            && !ids.contains(&peer.id)
                        {
                            ids.push(peer.id);
                        }
                    }
                }
            }
        }
        ids
    }

    #[test]
    fn a_node_joining_alone_leaves_announcing_the_contacts_members_to_the_contact() {
        let t0 = Instant::now();
        let mut contact = node_knowing(2, 3..6, t0);
        // Alone: it learns the contact's members (and reports them), but gossips none of
        // them, however many rounds run.
        let mut alone = node(1, t0);
        alone.join(t0, &[peer(2).addr]);
        answer_last_push_pull(&mut alone, &mut contact, t0);
        let ups = events(&mut alone)
            .into_iter()
            .filter(|e| matches!(e, Event::MemberUp(_)))
            .count();
        assert_eq!(ups, 4, "the contact and its three members are reported up");
        let said = announced(&mut alone, t0, 3);
        assert!(
            (2..6).all(|n| !said.contains(&peer(n).id)),
            "a lone joiner announced the contact's members: {said:?}"
        );
        // A member the contact learns later and teaches in a follow-up (asked during those
        // rounds) is news: announced.
        learn(&mut contact, &node(6, t0), t0);
        let at = t0 + alone.config.gossip_interval * 3;
        let reply = contact.handle_push_pull(at, alone.sync_request());
        alone.handle_message(at, Message::PushPull(reply));
        assert!(announced(&mut alone, at, 3).contains(&peer(6).id));

        // A node that knew a member before joining (two meshes merging) announces the
        // contact's members to its side as usual.
        let mut merging = node(1, t0);
        learn(&mut merging, &node(7, t0), t0);
        let _ = announced(&mut merging, t0, 20);
        let t1 = t0 + merging.config.gossip_interval * 20;
        merging.join(t1, &[peer(2).addr]);
        answer_last_push_pull(&mut merging, &mut contact, t1);
        let said = announced(&mut merging, t1, 3);
        assert!(
            (3..6).all(|n| said.contains(&peer(n).id)),
            "a merging node did not announce the contact's members: {said:?}"
        );
    }

    #[test]
    fn a_node_that_only_heard_a_suspicion_may_check_the_suspect_at_once() {
        // In a mesh of 5, the 3 members that only hear a suspicion are asked for 2
        // confirmations + 1 spare: each checks the suspect at once (its next probe is
        // brought forward) instead of after the minimum timeout or a probe interval
        // later. (With 4 candidates, a ping to the suspect by chance in all 8 runs would
        // be a 1-in-65,536 fluke.)
        let t0 = Instant::now();
        let cfg = Config::for_profile(Profile::Lan);
        for seed in 0..8 {
            let mut others = [node(2, t0), node(3, t0), node(4, t0), node(5, t0)];
            let hub = others[0].push_pull_request(false);
            for o in &mut others[1..] {
                o.handle_message(t0, Message::PushPull(hub.clone()));
            }
            let mut a = Membership::new(peer(1), Tags::new(), cfg.clone(), seed, t0);
            for o in &others {
                learn(&mut a, o, t0);
            }
            assert_eq!(a.live_members(), 4, "a knows the 4 others");
            let suspect = peer(3).id;
            a.handle_message(t0, suspicion_from(2, 3));
            let pings: Vec<NodeId> = run(&mut a, t0 + Duration::from_millis(1))
                .into_iter()
                .filter_map(|t| match t.msg {
                    Message::Ping { target, .. } => Some(target),
                    _ => None,
                })
                .collect();
            assert_eq!(pings.first(), Some(&suspect), "seed {seed}: {pings:?}");
        }
    }

    #[test]
    fn a_rumour_outliving_the_minimum_timeout_is_checked_within_one_probe_span() {
        // In a mesh of 41 only ~3 of the 39 hearers volunteer at once. The others check
        // the suspect when the minimum timeout passes: at the next tick possible (once
        // the probe in flight has its verdict), not when the schedule comes round to it.
        let t0 = Instant::now();
        let cfg = Config::for_profile(Profile::Lan);
        let mut checked_late = 0;
        for seed in 0..6 {
            let mut a = Membership::new(peer(1), Tags::new(), cfg.clone(), seed, t0);
            for n in 2..=41 {
                learn(&mut a, &node(n, t0), t0);
            }
            let suspect = peer(3).id;
            a.handle_message(t0, suspicion_from(2, 3));
            let min = cfg.suspicion_min(a.live_members() + 1);
            let mut first_ping = None;
            while let Some(at) = a.poll_timeout() {
                if at > t0 + min + cfg.probe_interval * 2 {
                    break;
                }
                a.handle_timeout(at);
                let pinged = transmits(&mut a)
                    .iter()
                    .any(|t| matches!(t.msg, Message::Ping { target, .. } if target == suspect));
                if pinged {
                    first_ping = Some(at);
                    break;
                }
            }
            let Some(at) = first_ping else {
                panic!("seed {seed}: the suspect was never checked");
            };
            if at < t0 + min {
                continue; // a volunteer, or its regular turn came first
            }
            checked_late += 1;
            assert!(
                at <= t0 + min + cfg.probe_span(),
                "seed {seed}: checked {:?} after the minimum timeout",
                at - (t0 + min)
            );
        }
        assert!(checked_late >= 3, "only {checked_late} of 6 seeds waited");
    }

    #[test]
    fn a_datagram_from_an_unknown_sender_starts_one_sync_with_it() {
        let t0 = Instant::now();
        let mut a = node_1_knowing_2(t0);
        // Node 3 gossips to a, which has never heard of it (nothing about 3 itself inside).
        let from3 = peer(3).addr;
        a.handle_message_from(t0, from3, gossip(3, Vec::new()));
        assert_eq!(push_pull_targets(&transmits(&mut a)), vec![from3]);
        // Not again for the same sender within `unknown_sender_sync_every`...
        let every = a.config.unknown_sender_sync_every;
        let t1 = t0 + every / 2;
        a.handle_message_from(t1, from3, gossip(3, Vec::new()));
        assert!(push_pull_targets(&transmits(&mut a)).is_empty());
        // ...but after it, if 3 is still unknown.
        let t2 = t0 + every;
        a.handle_message_from(t2, from3, gossip(3, Vec::new()));
        assert_eq!(push_pull_targets(&transmits(&mut a)), vec![from3]);
        // A known sender starts no sync.
        a.handle_message_from(t2, peer(2).addr, gossip(2, Vec::new()));
        assert!(push_pull_targets(&transmits(&mut a)).is_empty());
        // Nor does one whose message introduces itself.
        let alive4 = Update::Alive {
            peer: peer(4),
            incarnation: 0,
            tags: Tags::new(),
        };
        a.handle_message_from(t2, peer(4).addr, gossip(4, vec![alive4]));
        assert!(push_pull_targets(&transmits(&mut a)).is_empty());
        assert!(a.member(peer(4).id).is_some());
    }

    #[test]
    fn the_running_digest_stays_exact_through_every_kind_of_change() {
        // Random updates about a dozen members (this node among them), syncs, timers
        // (probes, suspicion timeouts, reaping), commands, removal and re-adding: after
        // each, the running digest must equal the one recomputed from scratch.
        let t0 = Instant::now();
        let mut config = Config::for_profile(Profile::Lan);
        config.reap_after = Duration::from_secs(3);
        let mut a = Membership::new(peer(1), Tags::new(), config, 1, t0);
        let mut rng = SmallRng::seed_from_u64(11);
        let summary = |version: u64| HealthSummary {
            version,
            passing: 1,
            failing: 1,
            erroring: 0,
            failing_names: vec!["disk".into()],
            at_unix_ms: version,
            refresh_id: 0,
        };
        let mut now = t0;
        for step in 0..20_000u32 {
            now += Duration::from_millis(rng.random_range(0..40));
            let n = rng.random_range(1..=12u8);
            let id = NodeId([n; 16]);
            let incarnation = rng.random_range(0..6u64);
            let by = NodeId([rng.random_range(1..=12u8); 16]);
            let mut member = peer(n);
            if rng.random_bool(0.1) {
                member
                    .addr
                    .set_port(8000 + u16::from(rng.random_range(0..3u8)));
            }
            let mut tags = Tags::new();
            if rng.random_bool(0.3) {
                tags.insert("zone".into(), format!("z{}", rng.random_range(0..3u8)));
            }
            let update = match rng.random_range(0..5u8) {
                0 => Update::Alive {
                    peer: member,
                    incarnation,
                    tags: tags.clone(),
                },
                1 => Update::Suspect {
                    id,
                    incarnation,
                    by,
                },
                2 => Update::Dead {
                    id,
                    incarnation,
                    by,
                },
                3 => Update::Left {
                    id,
                    incarnation,
                    by,
                },
                _ => Update::Health {
                    id,
                    incarnation,
                    summary: summary(rng.random_range(0..4)),
                },
            };
            match rng.random_range(0..20u8) {
                0 => {
                    let state = [State::Alive, State::Suspect, State::Dead, State::Left]
                        [rng.random_range(0..4usize)];
                    let states = vec![MemberState {
                        peer: member,
                        incarnation,
                        state,
                        tags,
                        health: rng.random_bool(0.5).then(|| (incarnation, summary(3))),
                        by: Some(by),
                    }];
                    let req = PushPull {
                        from: peer(2),
                        join: rng.random_bool(0.5),
                        members: states,
                        digest: None,
                    };
                    a.handle_push_pull(now, req);
                }
                1 => a.handle_timeout(now),
                2 => {
                    let _ = a.remove(now, member.addr);
                }
                3 => a.set_health(now, summary(u64::from(step))),
                4 if step % 7 == 0 => a.leave(now),
                5 => a.join(now, &[peer(2).addr]),
                _ => a.handle_message_from(now, member.addr, gossip(n, vec![update])),
            }
            transmits(&mut a);
            events(&mut a);
            assert!(a.running_digest_is_exact(), "step {step}");
        }
    }

    #[test]
    fn suspicion_about_self_is_refuted_with_a_higher_incarnation_sent_to_the_accuser() {
        let t0 = Instant::now();
        let mut a = node_1_knowing_2(t0);
        events(&mut a);
        let accusation = Update::Suspect {
            id: peer(1).id,
            incarnation: 0,
            by: peer(2).id,
        };
        a.handle_message(t0, gossip(2, vec![accusation.clone()]));
        assert_eq!(a.me().incarnation, 1);
        assert_eq!(
            events(&mut a),
            vec![Event::Refuted {
                incarnation: 1,
                by: Some(peer(2).id)
            }]
        );
        assert_eq!(
            a.local_health(),
            1,
            "refuting raises the local health score"
        );
        let sent = transmits(&mut a);
        let to_accuser = sent.iter().find(|t| t.to == peer(2).addr).map(|t| &t.msg);
        let Some(Message::Gossip { updates, .. }) = to_accuser else {
            panic!("no direct refutation to the accuser: {sent:?}");
        };
        assert!(updates.contains(&Update::Alive {
            peer: peer(1),
            incarnation: 1,
            tags: Tags::new()
        }));
        // The same (now stale) accusation again does not bump the incarnation.
        a.handle_message(t0, gossip(2, vec![accusation]));
        assert_eq!(a.me().incarnation, 1);
    }

    #[test]
    fn restarted_node_with_incarnation_zero_wins_over_its_old_death() {
        let t0 = Instant::now();
        let mut a = node(1, t0);
        let reply = PushPull {
            from: peer(2),
            join: false,
            members: vec![
                MemberState {
                    peer: peer(2),
                    incarnation: 0,
                    state: State::Alive,
                    tags: Tags::new(),
                    health: None,
                    by: None,
                },
                MemberState {
                    peer: peer(1),
                    incarnation: 5,
                    state: State::Dead,
                    tags: Tags::new(),
                    health: None,
                    by: Some(peer(2).id),
                },
            ],
            digest: None,
        };
        a.handle_message(t0, Message::PushPull(reply));
        assert_eq!(a.me().incarnation, 6);
        assert_eq!(a.me().state, State::Alive);
        // An Alive about us from someone else at a higher incarnation is refuted too.
        a.handle_message(
            t0,
            gossip(
                2,
                vec![Update::Alive {
                    peer: peer(1),
                    incarnation: 9,
                    tags: Tags::new(),
                }],
            ),
        );
        assert_eq!(a.me().incarnation, 10);
    }

    #[test]
    fn unanswered_probe_goes_indirect_then_suspects_then_declares_dead() {
        let t0 = Instant::now();
        let mut a = node(1, t0);
        let others: Vec<Membership> = (2..=5).map(|n| node(n, t0)).collect();
        for o in &others {
            learn(&mut a, o, t0);
        }
        transmits(&mut a);
        events(&mut a);
        // Run until the first probe, then never answer anything.
        let mut probe = None;
        let mut first = t0;
        while probe.is_none() {
            let Some(at) = a.poll_timeout() else {
                panic!("no timer")
            };
            assert!(
                at < t0 + Duration::from_secs(1),
                "no probe within a probe interval"
            );
            a.handle_timeout(at);
            first = at;
            probe = transmits(&mut a).iter().find_map(|t| match t.msg {
                Message::Ping { target, .. } => Some((t.to, target)),
                _ => None,
            });
        }
        let Some((target_addr, target)) = probe else {
            return;
        };
        let cfg = a.config().clone();
        let ms = Duration::from_millis;
        // After the probe timeout: ping-reqs to (up to) 3 other members.
        let sent = run(&mut a, first + cfg.probe_timeout + ms(1));
        let reqs: Vec<_> = sent
            .iter()
            .filter(|t| matches!(&t.msg, Message::PingReq { target: p, .. } if p.id == target))
            .collect();
        assert_eq!(reqs.len(), 3);
        assert!(reqs.iter().all(|t| t.to != target_addr));
        // Still alive until the probe's span ends (the relayed acks' time)...
        run(&mut a, first + cfg.probe_span() - ms(1));
        assert_eq!(
            a.member_by_addr(target_addr).map(|m| m.state),
            Some(State::Alive)
        );
        // ...then suspected by us, before the next probe would have started.
        assert!(cfg.probe_span() < cfg.probe_interval);
        run(&mut a, first + cfg.probe_span() + ms(1));
        let m = a
            .member_by_addr(target_addr)
            .map(|m| (m.state, m.suspected_by));
        assert_eq!(m, Some((State::Suspect, Some(peer(1).id))));
        assert!(
            events(&mut a)
                .iter()
                .any(|e| matches!(e, Event::MemberSuspect { peer, .. } if peer.id == target))
        );
        // With 5 live members and no confirmations it is dead after the maximum timeout
        // (probes of other members keep failing too, but that is fine here).
        let max = a.config().suspicion_max(5);
        run(&mut a, first + max + Duration::from_secs(2));
        assert_eq!(
            a.member_by_addr(target_addr).map(|m| m.state),
            Some(State::Dead)
        );
        assert!(events(&mut a).iter().any(|e| matches!(
            e,
            Event::MemberDown { peer, by } if peer.id == target && *by == peer_id(1)
        )));
    }

    fn peer_id(n: u8) -> NodeId {
        peer(n).id
    }

    #[test]
    fn datagrams_stay_under_the_cap_with_a_big_backlog() {
        let t0 = Instant::now();
        let mut a = node(1, t0);
        let mut tags = Tags::new();
        tags.insert("role".into(), "x".repeat(100));
        let members: Vec<MemberState> = (0..600u16)
            .map(|i| {
                let mut id = [7u8; 16];
                id[..2].copy_from_slice(&i.to_le_bytes());
                MemberState {
                    peer: Peer {
                        id: NodeId(id),
                        addr: SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 7946)),
                    },
                    incarnation: u64::from(i) * 1_000_000,
                    state: State::Alive,
                    tags: tags.clone(),
                    health: None,
                    by: None,
                }
            })
            .collect();
        a.handle_message(
            t0,
            Message::PushPull(PushPull {
                from: peer(2),
                join: false,
                members,
                digest: None,
            }),
        );
        assert_eq!(a.live_members(), 600);
        let sent = run(&mut a, t0 + Duration::from_secs(3));
        let datagrams: Vec<_> = sent.iter().filter(|t| !t.msg.is_stream()).collect();
        assert!(datagrams.len() > 10);
        let mut most = 0;
        for t in &datagrams {
            let len = t.msg.encode().len();
            assert!(
                len <= a.config().max_datagram_bytes,
                "{len} bytes: {:?}",
                t.msg
            );
            if let Message::Gossip { updates, .. } = &t.msg {
                most = most.max(updates.len());
            }
        }
        assert!(most >= 5, "gossip should pack several updates, got {most}");
    }

    #[test]
    fn removed_member_goes_quiet_and_is_readded_only_by_a_join() {
        let t0 = Instant::now();
        let (mut a, mut b) = (node(1, t0), node(2, t0));
        let reply = b.handle_push_pull(t0, a.push_pull_request(true));
        a.handle_message(t0, Message::PushPull(reply));
        transmits(&mut a);
        transmits(&mut b);
        events(&mut b);
        assert_eq!(
            a.remove(t0, peer(1).addr),
            Err(RemoveError::IsSelf(peer(1).addr))
        );
        let nowhere = SocketAddr::from(([127, 0, 0, 99], 1));
        assert_eq!(
            a.remove(t0, nowhere),
            Err(RemoveError::UnknownAddress(nowhere))
        );
        assert_eq!(a.remove(t0, peer(2).addr), Ok(peer(2).id));
        assert_eq!(
            a.member_by_addr(peer(2).addr).map(|m| m.state),
            Some(State::Left)
        );
        // The removed node is told directly.
        for t in transmits(&mut a) {
            if t.to == peer(2).addr {
                b.handle_message(t0, t.msg);
            }
        }
        assert!(b.is_removed());
        assert_eq!(events(&mut b), vec![Event::SelfRemoved { by: peer(1).id }]);
        assert_eq!(b.members().count(), 1);
        assert_eq!(b.poll_timeout(), None);
        assert!(b.snapshot().removed);
        // Quiet: ignores pings, its own join attempts and non-join syncs.
        b.handle_message(
            t0,
            Message::Ping {
                from: peer(1),
                seq: 1,
                target: peer(2).id,
                updates: vec![],
            },
        );
        b.join(t0, &[peer(1).addr]);
        assert!(transmits(&mut b).is_empty());
        let reply = b.handle_push_pull(t0, a.push_pull_request(false));
        assert_eq!(reply.members.len(), 1);
        assert!(b.is_removed());
        // An incoming join re-adds it above the removal's incarnation.
        let reply = b.handle_push_pull(t0, a.push_pull_request(true));
        assert!(!b.is_removed());
        assert!(events(&mut b).contains(&Event::SelfReadded));
        assert!(b.me().incarnation > 0);
        a.handle_message(t0, Message::PushPull(reply));
        assert_eq!(
            a.member_by_addr(peer(2).addr).map(|m| m.state),
            Some(State::Alive)
        );
    }

    #[test]
    fn a_new_id_replaces_a_dead_member_at_the_same_address_but_not_a_live_one() {
        let t0 = Instant::now();
        let (mut a, b) = (node(1, t0), node(2, t0));
        learn(&mut a, &b, t0);
        let newcomer = Peer {
            id: NodeId([42; 16]),
            addr: peer(2).addr,
        };
        let alive = Update::Alive {
            peer: newcomer,
            incarnation: 0,
            tags: Tags::new(),
        };
        a.handle_message(t0, gossip(3, vec![alive.clone()]));
        assert_eq!(
            a.member_by_addr(peer(2).addr).map(|m| m.peer.id),
            Some(peer(2).id)
        );
        a.handle_message(
            t0,
            gossip(
                3,
                vec![Update::Dead {
                    id: peer(2).id,
                    incarnation: 0,
                    by: NodeId([3; 16]),
                }],
            ),
        );
        a.handle_message(t0, gossip(3, vec![alive]));
        assert_eq!(
            a.member_by_addr(peer(2).addr).map(|m| m.peer.id),
            Some(newcomer.id)
        );
        assert!(a.members().all(|m| m.peer.id != peer(2).id));
    }

    #[test]
    fn health_summaries_are_versioned_and_capped() {
        let t0 = Instant::now();
        let (mut a, mut b) = (node(1, t0), node(2, t0));
        learn(&mut a, &b, t0);
        let summary = |version| HealthSummary {
            version,
            passing: 1,
            failing: 30,
            erroring: 0,
            failing_names: (0..30).map(|i| format!("check-{i}")).collect(),
            at_unix_ms: 0,
            refresh_id: 0,
        };
        b.set_health(t0, summary(5));
        b.set_health(t0, summary(3)); // older version: raised above the previous one
        assert_eq!(b.me().health.as_ref().map(|h| h.version), Some(6));
        assert_eq!(
            b.me().health.as_ref().map(|h| h.failing_names.len()),
            Some(8)
        );
        let h = |inc, v| Update::Health {
            id: peer(2).id,
            incarnation: inc,
            summary: summary(v),
        };
        a.handle_message(t0, gossip(2, vec![h(0, 6)]));
        a.handle_message(t0, gossip(2, vec![h(0, 4)]));
        let seen = |a: &Membership| {
            a.member(peer(2).id)
                .and_then(|m| m.health)
                .map(|h| h.version)
        };
        assert_eq!(seen(&a), Some(6));
        // After a restart (higher incarnation) a lower version wins.
        a.handle_message(t0, gossip(2, vec![h(1, 1)]));
        assert_eq!(seen(&a), Some(1));
        assert!(
            a.member(peer(2).id)
                .and_then(|m| m.health)
                .is_some_and(|h| h.failing_names.len() <= 8)
        );
    }

    #[test]
    fn graceful_leave_spreads_and_then_goes_silent() {
        let t0 = Instant::now();
        let (mut a, mut b) = nodes_1_and_2_knowing_each_other(t0);
        events(&mut b);
        a.leave(t0);
        assert!(a.has_left());
        let sent = transmits(&mut a);
        assert!(!sent.is_empty());
        for t in sent {
            b.handle_message(t0, t.msg);
        }
        assert_eq!(b.member(peer(1).id).map(|m| m.state), Some(State::Left));
        assert!(events(&mut b).contains(&Event::MemberLeft(peer(1))));
        run(&mut a, t0 + Duration::from_secs(60));
        assert_eq!(a.poll_timeout(), None);
    }

    #[test]
    fn nonsense_inputs_change_nothing_and_do_not_panic() {
        let t0 = Instant::now();
        let mut a = node(1, t0);
        let stranger = NodeId([77; 16]);
        let inputs = vec![
            // From ourselves.
            gossip(
                1,
                vec![Update::Dead {
                    id: peer(1).id,
                    incarnation: 99,
                    by: peer(1).id,
                }],
            ),
            // About members nobody knows.
            gossip(
                2,
                vec![
                    Update::Suspect {
                        id: stranger,
                        incarnation: 1,
                        by: peer(2).id,
                    },
                    Update::Dead {
                        id: stranger,
                        incarnation: 1,
                        by: peer(2).id,
                    },
                    Update::Left {
                        id: stranger,
                        incarnation: 1,
                        by: peer(2).id,
                    },
                    Update::Health {
                        id: stranger,
                        incarnation: 1,
                        summary: HealthSummary {
                            version: 1,
                            passing: 0,
                            failing: 0,
                            erroring: 0,
                            failing_names: vec![],
                            at_unix_ms: 0,
                            refresh_id: 0,
                        },
                    },
                ],
            ),
            // Acks and nacks for probes never sent.
            Message::Ack {
                from: peer(2).id,
                seq: 12345,
                updates: vec![],
            },
            Message::Nack {
                from: peer(2).id,
                seq: 7,
            },
            // A ping for someone else.
            Message::Ping {
                from: peer(2),
                seq: 1,
                target: stranger,
                updates: vec![],
            },
            // An empty push-pull.
            Message::PushPull(PushPull {
                from: peer(2),
                join: true,
                members: vec![],
                digest: None,
            }),
        ];
        for msg in inputs {
            a.handle_message(t0, msg);
        }
        assert_eq!(a.me().incarnation, 0);
        assert_eq!(a.members().count(), 1);
        assert!(transmits(&mut a).is_empty());
        // An empty mesh runs its timers without sending anything but nothing breaks.
        let sent = run(&mut a, t0 + Duration::from_secs(30));
        assert!(sent.iter().all(|t| t.msg.is_stream()), "{sent:?}");
        // A ping-req about ourselves is simply acked; an accusation at u64::MAX saturates.
        a.handle_message(
            t0,
            Message::PingReq {
                from: peer(2),
                seq: 3,
                target: peer(1),
            },
        );
        assert!(matches!(
            transmits(&mut a).as_slice(),
            [Transmit {
                msg: Message::Ack { seq: 3, .. },
                ..
            }]
        ));
        a.handle_message(
            t0,
            gossip(
                2,
                vec![Update::Suspect {
                    id: peer(1).id,
                    incarnation: u64::MAX,
                    by: peer(2).id,
                }],
            ),
        );
        assert_eq!(a.me().incarnation, u64::MAX);
    }

    #[test]
    fn snapshot_of_a_removed_node_keeps_it_quiet_after_restart() {
        let t0 = Instant::now();
        let mut a = node(1, t0);
        let snap = Snapshot {
            me: peer(1),
            incarnation: 4,
            removed: true,
            peers: vec![peer(2)],
            contacts: vec![],
        };
        a.restore(t0, &snap);
        assert!(a.is_removed());
        assert!(transmits(&mut a).is_empty());
        let mut b = node(1, t0);
        let snap = Snapshot {
            removed: false,
            ..snap
        };
        b.restore(t0, &snap);
        assert_eq!(b.me().incarnation, 4);
        let sent = transmits(&mut b);
        assert!(matches!(
            sent.as_slice(),
            [Transmit {
                msg: Message::PushPull(PushPull { join: true, .. }),
                ..
            }]
        ));
        assert_eq!(snap.join_addrs(), vec![peer(2).addr]);
    }
}
