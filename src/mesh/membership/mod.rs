//! The SWIM + Lifeguard membership state machine, [`Membership`]: sans-IO and
//! deterministic. Time comes in as `now`, messages come in decoded, randomness comes from
//! an RNG seeded by the caller; out come [`Transmit`]s, [`Event`]s and the next timer
//! deadline. Carrying messages (QUIC datagrams and streams) is the runtime's job.
//!
//! # Layout
//! This file holds the [`Membership`] struct, its public API and the record lookups the
//! protocol parts share. Each protocol part has its own file:
//! - `probe`: pings, ping-reqs, acks and nacks, relayed probes, introductions;
//! - `suspect`: suspecting, suspicion timeouts, and refuting claims about this node;
//! - `gossip`: the piggyback queue's use, gossip rounds and their targets;
//! - `sync`: push-pull (full state and digest), joins and the follow-ups with a join's
//!   contact, rejoin attempts;
//! - `apply`: merging updates and member states into the records, forgetting members;
//! - `tags`: changing this node's tags while it runs;
//! - `timer`: the deadline table behind [`Membership::handle_timeout`] and
//!   [`Membership::poll_timeout`].
//!
//! The tuning numbers and formulas live in [`Config`]; the helpers that keep no protocol
//! rules live beside this module: suspicion bookkeeping in `suspicion`, the local health
//! score in `awareness`, the piggyback queue in `broadcast`, and the per-member records
//! (with the running state digest a periodic sync opens with) in `record`.
//!
//! # Method groups
//! - getters: [`Membership::me`], [`Membership::config`], [`Membership::members`],
//!   [`Membership::member_by_addr`], [`Membership::local_health`],
//!   [`Membership::is_removed`], [`Membership::snapshot`];
//! - inputs: [`Membership::handle_message`], [`Membership::handle_push_pull`],
//!   [`Membership::handle_timeout`];
//! - commands: [`Membership::join`], [`Membership::leave`], [`Membership::remove`],
//!   [`Membership::set_health`], [`Membership::set_tags`], [`Membership::probe_all`],
//!   [`Membership::restore`];
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
//!   join contacts get periodic join attempts so healed partitions merge; dead and left
//!   members are forgotten after `reap_after`.

mod apply;
mod gossip;
mod probe;
mod suspect;
mod sync;
mod tags;
#[cfg(test)]
mod testing;
mod timer;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::mesh::NodeId;
use crate::mesh::awareness::Awareness;
use crate::mesh::broadcast::BroadcastQueue;
use crate::mesh::config::Config;
use crate::mesh::index::{IdMap, SlotIndex};
use crate::mesh::member::{HealthSummary, Member, Peer, State, Tags, cap_tags};
use crate::mesh::message::{Message, PushPull, Update};
use crate::mesh::record::{Record, Records};
use crate::mesh::suspicion::SuspicionTable;
#[cfg(any(test, feature = "sim"))]
use crate::mesh::{digest::StateDigest, digest::StateView, message::MemberState};

use probe::{Probe, ProbeRound, Relay};
use sync::ContactFollowUp;
use timer::Timer;

/// Pending events kept at most; older ones are dropped (with a warning) if the driver
/// does not drain them.
const MAX_EVENTS: usize = 1 << 16;
/// Join contacts remembered, at most.
const MAX_CONTACTS: usize = 1024;

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
    /// A member's tags or address changed.
    MemberUpdated(Peer),
    /// A newer health summary of a member arrived (see [`Membership::member`] for it).
    MemberHealth(Peer),
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

/// `at` as nanoseconds since `epoch` (the form records keep times in).
fn stamp(epoch: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

/// Reads back what [`stamp`] stored.
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
    /// Addresses given to `join`, for rejoin attempts.
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
    /// Set only inside `preload_settled` (simulator): members learned are neither
    /// announced by gossip nor reported as events.
    preloading: bool,
    /// Set while merging what a contact taught a node that joined alone, or what a join
    /// request taught a node that was alone: members learned are reported but not
    /// announced by gossip.
    quiet: bool,
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
            next_reap: now + apply::reap_check_interval(&config),
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

    // ----- record lookups --------------------------------------------------------------

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
            self.add_contact(contact);
            let req = self.join_request(now);
            self.send(contact, Message::PushPull(req));
        }
    }

    /// Remembers `addr` as a contact for the periodic join attempts, without an attempt
    /// now (for an add that just found no answer there); false if the list is full.
    pub fn add_contact(&mut self, addr: SocketAddr) -> bool {
        if addr == self.me.peer.addr || self.contacts.contains(&addr) {
            return true;
        }
        if self.contacts.len() >= MAX_CONTACTS {
            return false;
        }
        self.contacts.push(addr);
        true
    }

    /// Stops periodic join attempts to `addr`; false if it was not a contact.
    pub fn forget_contact(&mut self, addr: SocketAddr) -> bool {
        let before = self.contacts.len();
        self.contacts.retain(|s| *s != addr);
        self.contacts.len() != before
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
        self.forget_contact(addr);
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

    // ----- push-pull requests --------------------------------------------------------

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

    // ----- inputs --------------------------------------------------------------------

    /// Handles a datagram message, or the reply to a push-pull this node requested.
    pub fn handle_message(&mut self, now: Instant, msg: Message) {
        self.handle_received(now, now, msg);
    }

    /// [`Membership::handle_message`] for a message that arrived at `received` (stamped by
    /// the runtime when it read the datagram, at or before `now`): an ack's round-trip
    /// time is measured to then, not to when the node came to handle it.
    fn handle_received(&mut self, now: Instant, received: Instant, msg: Message) {
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
            } => self.on_ping(now, from, seq, target, updates),
            Message::Ack { from, seq, updates } => {
                self.apply_updates(now, updates);
                self.on_ack(now, received.min(now), from, seq);
            }
            Message::PingReq { from, seq, target } => self.on_ping_req(now, from, seq, target),
            Message::Nack { seq, .. } => self.on_nack(seq),
            Message::Gossip { updates, .. } => self.apply_updates(now, updates),
            Message::PushPull(pp) => self.on_push_pull_reply(now, pp),
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
        self.handle_datagram(now, now, addr, msg);
    }

    /// [`Membership::handle_message_from`] for a datagram the runtime read at `received`
    /// (its own clock reading, at or before `now`): round-trip times end there.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        received: Instant,
        addr: SocketAddr,
        msg: Message,
    ) {
        let sender = msg.sender();
        self.handle_received(now, received, msg);
        if self.mode != Mode::Active
            || sender == self.me.peer.id
            || self.sender_slot(&sender).is_some()
        {
            return;
        }
        self.sync_with_unknown_sender(now, addr, sender);
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
        self.answer_push_pull(now, req)
    }

    /// Runs whatever is due at `now`: every timer whose deadline has passed (probe
    /// steps, nacks for relayed probes, suspicion timeouts, gossip, push-pull, follow-ups
    /// with a join's contact, rejoin attempts and reaping), in a fixed order.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.notice_stall(now);
        for timer in Timer::ALL {
            if self.deadline(timer).is_some_and(|d| d.due <= now) {
                self.fire(timer, now);
            }
        }
    }

    // ----- outputs -------------------------------------------------------------------

    /// The next time [`Membership::handle_timeout`] has work, if any: the earliest
    /// wake-up over every timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Timer::ALL
            .into_iter()
            .filter_map(|timer| self.deadline(timer)?.wake)
            .min()
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
/// reply yields one `MemberUp` per member); without this every node would keep room for
/// a whole mesh's worth of events, ~60 bytes per member.
fn shrink_drained<T>(queue: &mut VecDeque<T>) {
    if queue.is_empty() && queue.capacity() > 64 {
        queue.shrink_to(16);
    }
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
    use super::testing::*;

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
                            erroring_names: Vec::new(),
                            names_omitted: 0,
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
