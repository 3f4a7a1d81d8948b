//! A deterministic simulator that drives many [`Membership`] state machines in virtual
//! time over a simulated network (latency, jitter, loss, partitions, cut links), with
//! crashes, restarts and operator commands. Same [`SimConfig`] (seed included) ⇒ same run,
//! bit for bit. Used by `tests/sim.rs` and by benches; it does no real I/O and reads the
//! real clock once, for the base `Instant` that virtual time is added to.
//!
//! Mechanics: one event queue ordered by (virtual time, insertion number) holds timer
//! wake-ups, datagram deliveries and push-pull requests/replies. [`Sim::step`] pops the
//! earliest, feeds it to its node, then drains that node's transmits (each datagram's
//! CBOR length is measured for size accounting; with [`SimConfig::decode`] it is encoded
//! and decoded again on arrival) and events, and re-arms its timer from `poll_timeout`.
//!
//! Built only with the `sim` feature (tests and benches get it through the crate's self
//! dev-dependency) and for unit tests: a real node has no use for it.
#![cfg(any(test, feature = "sim"))]

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::base::NodeId;
use crate::mesh::cbor_len::encoded_len;
use crate::mesh::config::Config;
use crate::mesh::member::{Peer, State, Tags};
use crate::mesh::membership::{Event, Membership, RemoveError};
use crate::mesh::message::{MemberState, Message, PushPull};

/// How a simulation is set up.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seeds everything random: node ids, each node's RNG, loss, jitter.
    pub seed: u64,
    /// Number of nodes.
    pub nodes: usize,
    /// Membership tuning used by every node.
    pub config: Config,
    /// One-way latency of every link.
    pub latency: Duration,
    /// Extra one-way delay, uniform in `0..jitter`.
    pub jitter: Duration,
    /// Probability that a datagram is lost (push-pull streams are reliable unless cut).
    pub loss: f64,
    /// Decode every datagram from its bytes on arrival (slower; checks the codec).
    pub decode: bool,
    /// Node `i > 0` joins at `i × join_spread / nodes` through node 0 and one random
    /// earlier node (node 0 alone with [`SimConfig::one_contact`]).
    pub join_spread: Duration,
    /// Every node joins through node 0 alone, as a fleet pointed at one contact does.
    pub one_contact: bool,
    /// Start settled instead: every node already knows every other as alive at
    /// incarnation 0, as after a completed push-pull whose gossip has run its course
    /// (see [`Membership::preload_settled`]); nothing is queued and no joins are
    /// scheduled. Nodes have no join contacts then. `join_spread` is ignored.
    pub preconverged: bool,
    /// Every node starts alone and no joins are scheduled: the caller joins them one by
    /// one ([`Sim::join`], [`Sim::add`]). `join_spread` and `one_contact` are ignored.
    pub start_alone: bool,
    /// What a first contact costs: a node's first message to a peer (datagram or
    /// push-pull) waits this long for the link, and so does everything it sends that peer
    /// until then, as behind a QUIC handshake. Links stay up until a node crashes (a real
    /// one idles out after minutes). Zero (the default) models none.
    pub handshake: Duration,
}

impl SimConfig {
    /// `nodes` nodes with `config`, 1 ms ± 1 ms latency, no loss, joins spread over 1 s.
    pub fn new(seed: u64, nodes: usize, config: Config) -> SimConfig {
        SimConfig {
            seed,
            nodes,
            config,
            latency: Duration::from_millis(1),
            jitter: Duration::from_millis(1),
            loss: 0.0,
            decode: true,
            join_spread: Duration::from_secs(1),
            one_contact: false,
            preconverged: false,
            start_alone: false,
            handshake: Duration::ZERO,
        }
    }
}

/// Traffic counters of one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Datagrams sent.
    pub msgs_sent: u64,
    /// Encoded bytes of datagrams sent.
    pub bytes_sent: u64,
    /// Push-pull requests sent (attempts, delivered or not).
    pub push_pulls_sent: u64,
    /// Encoded bytes of push-pull requests and replies that reached their peer (a stream
    /// to a crashed or cut-off node carries no state).
    pub push_pull_bytes: u64,
    /// Largest datagram sent.
    pub max_datagram: usize,
}

/// Event counts over all nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventCounts {
    /// `MemberUp`.
    pub up: u64,
    /// `MemberSuspect`.
    pub suspect: u64,
    /// `MemberRefuted`.
    pub refuted: u64,
    /// `MemberDown`.
    pub down: u64,
    /// `MemberLeft` and `MemberRemoved`.
    pub left: u64,
    /// `Refuted` (a node raised its own incarnation).
    pub self_refuted: u64,
    /// Datagrams larger than `max_datagram_bytes` (must stay 0).
    pub oversized: u64,
    /// Datagrams whose bytes did not decode (must stay 0).
    pub undecodable: u64,
}

/// One `MemberDown` seen by one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownRecord {
    /// Virtual time.
    pub at: Duration,
    /// The node that saw it.
    pub observer: usize,
    /// The member declared dead.
    pub subject: NodeId,
    /// Who declared it.
    pub by: NodeId,
}

#[derive(Debug)]
enum Payload {
    Bytes(Vec<u8>),
    Decoded(Message),
}

#[derive(Debug)]
enum Item {
    Join {
        node: usize,
        contacts: Vec<usize>,
    },
    Datagram {
        from: usize,
        to: SocketAddr,
        payload: Payload,
    },
    PushPullRequest {
        from: usize,
        to: SocketAddr,
        req: PushPull,
    },
    PushPullReply {
        from: usize,
        to: usize,
        reply: PushPull,
    },
}

/// A queue entry: when (virtual nanoseconds), its insertion number, and what is due
/// then. Kept small because the queue moves entries around on every push and pop (24
/// bytes); items are up to ~150 bytes (a decoded message) and stay put.
#[derive(Clone, Copy)]
struct Scheduled {
    at_nanos: u64,
    seq: u64,
    due: Due,
}

impl Scheduled {
    /// Earlier first; insertion order among equal times.
    fn before(&self, other: &Scheduled) -> bool {
        (self.at_nanos, self.seq) < (other.at_nanos, other.seq)
    }

    fn at(&self) -> Duration {
        Duration::from_nanos(self.at_nanos)
    }
}

/// What a queue entry stands for.
#[derive(Clone, Copy)]
enum Due {
    /// Node `n`'s timer wake-up. Held in the entry itself: it is the most frequent kind,
    /// and an item waiting up to a probe interval in `Sim::items` is cold by then (a
    /// cache miss on every line of the ~150-byte slot at 10,000 nodes).
    Timer(u32),
    /// The item in this slot of `Sim::items`.
    Item(u32),
}

/// The event queue: a 4-ary min-heap of [`Scheduled`] entries by (time, insertion
/// number). Keys are unique, so entries come out in exactly one order whatever the
/// heap's shape. Four children per node instead of std's binary heap's two halves the
/// depth, and the four sit side by side: at 10,000 nodes the queue holds ~20,000
/// entries beyond the L2 cache, and a binary heap's pop walks ~15 levels of them.
#[derive(Default)]
struct EventQueue {
    heap: Vec<Scheduled>,
}

impl EventQueue {
    const ARITY: usize = 4;

    fn peek(&self) -> Option<&Scheduled> {
        self.heap.first()
    }

    fn push(&mut self, entry: Scheduled) {
        let mut hole = self.heap.len();
        self.heap.push(entry);
        while hole > 0 {
            let parent = (hole - 1) / Self::ARITY;
            if !entry.before(&self.heap[parent]) {
                break;
            }
            self.heap[hole] = self.heap[parent];
            hole = parent;
        }
        self.heap[hole] = entry;
    }

    fn pop(&mut self) -> Option<Scheduled> {
        let last = self.heap.pop()?;
        let Some(&top) = self.heap.first() else {
            return Some(last);
        };
        // Sift `last` down from the root.
        let len = self.heap.len();
        let mut hole = 0;
        loop {
            let first = hole * Self::ARITY + 1;
            if first >= len {
                break;
            }
            let end = (first + Self::ARITY).min(len);
            let mut least = first;
            for child in first + 1..end {
                if self.heap[child].before(&self.heap[least]) {
                    least = child;
                }
            }
            if !self.heap[least].before(&last) {
                break;
            }
            self.heap[hole] = self.heap[least];
            hole = least;
        }
        self.heap[hole] = last;
        Some(top)
    }
}

/// The simulator. See the module docs.
pub struct Sim {
    cfg: SimConfig,
    base: Instant,
    now: Duration,
    rng: SmallRng,
    /// Each node's identity. What the simulator touches per event (state machine,
    /// timer, group, traffic counters) lives in the per-node arrays below, each compact
    /// enough to stay cached at 10,000 nodes.
    peers: Vec<Peer>,
    /// Each node's state machine (`None` while crashed), boxed: every event reaches its
    /// node through this array, so it is kept to a pointer per node (80 KB at 10,000
    /// nodes) instead of ~1.3 KB of inline state machine per node, cold at every event.
    machines: Vec<Option<Box<Membership>>>,
    /// Each node's traffic counters.
    stats: Vec<NodeStats>,
    /// The pending timer wake-up of each node (a queue entry for another time is
    /// superseded); apart from `nodes` so that checking a wake-up touches 16 bytes.
    timers: Vec<Option<Duration>>,
    /// The partition group of each node (only nodes in the same group can talk); a
    /// 4-byte array because every datagram checks two of them.
    groups: Vec<u32>,
    queue: EventQueue,
    /// Items of `queue` entries, by slot; `free_items` lists empty slots.
    items: Vec<Option<Item>>,
    free_items: Vec<u32>,
    next_seq: u64,
    cut_links: HashSet<(usize, usize)>,
    /// When each link (lower node index first) is or was ready; only with
    /// [`SimConfig::handshake`].
    links: HashMap<(u32, u32), Duration>,
    counts: EventCounts,
    downs: Vec<DownRecord>,
    fingerprint: u64,
    record_events: bool,
    events: Vec<(Duration, usize, Event)>,
}

/// Serializes exactly like `Message::PushPull(pp)`, from a borrow (no clone of the state).
#[derive(Serialize)]
enum PushPullRef<'a> {
    #[serde(rename = "S")]
    PushPull(&'a PushPull),
}

/// Encoded length of `Message::PushPull(pp)`.
fn push_pull_len(pp: &PushPull) -> u64 {
    encoded_len(&PushPullRef::PushPull(pp)) as u64
}

/// Virtual time in nanoseconds (saturating; a u64 lasts 584 years).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The address the simulator gives node `i`.
pub fn sim_addr(i: usize) -> SocketAddr {
    let n = i + 1;
    let ip = Ipv4Addr::new(
        127,
        ((n >> 16) & 0xff) as u8,
        ((n >> 8) & 0xff) as u8,
        (n & 0xff) as u8,
    );
    SocketAddr::from((ip, 7946))
}

impl Sim {
    /// Builds the nodes and schedules their joins (node 0 starts alone).
    pub fn new(cfg: SimConfig) -> Sim {
        let mut rng = SmallRng::seed_from_u64(cfg.seed);
        let base = Instant::now();
        let mut peers = Vec::with_capacity(cfg.nodes);
        let mut machines = Vec::with_capacity(cfg.nodes);
        for i in 0..cfg.nodes {
            let peer = Peer {
                id: NodeId(rng.random()),
                addr: sim_addr(i),
            };
            let mut machine =
                Membership::new(peer, Tags::new(), cfg.config.clone(), rng.random(), base);
            machine.reserve_members(cfg.nodes);
            machines.push(Some(Box::new(machine)));
            peers.push(peer);
        }
        let mut sim = Sim {
            base,
            now: Duration::ZERO,
            rng,
            timers: vec![None; peers.len()],
            groups: vec![0; peers.len()],
            peers,
            machines,
            stats: vec![NodeStats::default(); cfg.nodes],
            queue: EventQueue::default(),
            items: Vec::new(),
            free_items: Vec::new(),
            next_seq: 0,
            cut_links: HashSet::new(),
            links: HashMap::new(),
            counts: EventCounts::default(),
            downs: Vec::new(),
            fingerprint: 0xcbf2_9ce4_8422_2325,
            record_events: false,
            events: Vec::new(),
            cfg,
        };
        let n = sim.peers.len();
        if sim.cfg.preconverged {
            sim.preload_all();
        }
        for i in 0..n {
            sim.rearm(i);
        }
        let joiners = if sim.cfg.preconverged || sim.cfg.start_alone {
            1..1
        } else {
            1..n
        };
        for i in joiners {
            let at = sim.cfg.join_spread.mul_f64(i as f64 / n as f64);
            let mut contacts = vec![0];
            let other = if sim.cfg.one_contact {
                0
            } else {
                sim.rng.random_range(0..i)
            };
            if other != 0 {
                contacts.push(other);
            }
            sim.schedule(at, Item::Join { node: i, contacts });
        }
        sim
    }

    /// Gives every node the full, all-alive member list (see [`SimConfig::preconverged`]).
    /// Node `i` learns it "from" node `i + 1` (any other node would do: a push-pull's
    /// sender only matters for suspicions, and there are none).
    fn preload_all(&mut self) {
        let states: Vec<MemberState> = self.peers.iter().map(|&p| MemberState::alive(p)).collect();
        let now = self.now_instant();
        let n = self.peers.len();
        for i in 0..n {
            let from = self.peers[(i + 1) % n];
            if let Some(m) = self.machine_mut(i) {
                m.preload_settled(now, from, states.clone());
            }
        }
    }

    // ----- inspection ----------------------------------------------------------------

    /// Links opened so far (pairs of nodes that have exchanged a message), counted only
    /// with [`SimConfig::handshake`]; a crash closes its node's links.
    pub fn links_open(&self) -> usize {
        self.links.len()
    }

    /// Virtual time elapsed since the start.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The `Instant` that stands for the current virtual time.
    pub fn now_instant(&self) -> Instant {
        self.base + self.now
    }

    /// Number of nodes (up or crashed).
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// True when there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Node `i`'s id and address.
    pub fn peer(&self, i: usize) -> Option<Peer> {
        self.peers.get(i).copied()
    }

    /// Node `i`'s state machine, mutable, unless it is crashed.
    fn machine_mut(&mut self, i: usize) -> Option<&mut Membership> {
        self.machines.get_mut(i).and_then(|m| m.as_deref_mut())
    }

    /// Node `i`'s state machine, unless it is crashed.
    pub fn node(&self, i: usize) -> Option<&Membership> {
        self.machines.get(i).and_then(|m| m.as_deref())
    }

    /// True unless node `i` is crashed.
    pub fn is_up(&self, i: usize) -> bool {
        self.node(i).is_some()
    }

    /// Node `i`'s traffic counters.
    pub fn stats(&self, i: usize) -> Option<&NodeStats> {
        self.stats.get(i)
    }

    /// Sum of all nodes' traffic counters (`max_datagram` is the overall maximum).
    pub fn total_stats(&self) -> NodeStats {
        let mut t = NodeStats::default();
        for n in &self.stats {
            t.msgs_sent += n.msgs_sent;
            t.bytes_sent += n.bytes_sent;
            t.push_pulls_sent += n.push_pulls_sent;
            t.push_pull_bytes += n.push_pull_bytes;
            t.max_datagram = t.max_datagram.max(n.max_datagram);
        }
        t
    }

    /// Event counts so far.
    pub fn counts(&self) -> &EventCounts {
        &self.counts
    }

    /// Every `MemberDown` seen so far, in order.
    pub fn downs(&self) -> &[DownRecord] {
        &self.downs
    }

    /// Keep every event (off by default: a 1000-node run produces millions).
    pub fn record_events(&mut self, on: bool) {
        self.record_events = on;
    }

    /// Recorded events (see [`Sim::record_events`]).
    pub fn events(&self) -> &[(Duration, usize, Event)] {
        &self.events
    }

    /// A hash of everything that happened (deliveries and events with their times);
    /// equal for equal runs.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Nodes (up ones) whose running state digest differs from the digest recomputed
    /// from their records (see `Membership::running_digest_is_exact`); empty when all
    /// agree. For tests: O(nodes × members).
    pub fn nodes_with_inexact_digest(&self) -> Vec<usize> {
        (0..self.peers.len())
            .filter(|&i| self.node(i).is_some_and(|m| !m.running_digest_is_exact()))
            .collect()
    }

    /// What node `observer` thinks of node `subject`.
    pub fn view(&self, observer: usize, subject: usize) -> Option<State> {
        let id = self.peer(subject)?.id;
        self.node(observer)?.state_of(id)
    }

    /// Does every up node other than `subject` see `subject` in `state`?
    pub fn all_see(&self, subject: usize, state: State) -> bool {
        (0..self.peers.len())
            .filter(|&i| i != subject && self.is_up(i))
            .all(|i| self.view(i, subject) == Some(state))
    }

    /// Does every up node see every up node (itself included) alive, and no other member
    /// as live?
    pub fn converged(&self) -> bool {
        let up: Vec<usize> = (0..self.peers.len()).filter(|&i| self.is_up(i)).collect();
        up.iter().all(|&i| {
            let Some(m) = self.node(i) else { return false };
            m.live_members() + 1 == up.len()
                && m.count_in_state(State::Alive) == up.len()
                && up.iter().all(|&j| self.view(i, j) == Some(State::Alive))
        })
    }

    /// Does every node see the nodes of its own partition group alive and all others
    /// dead (see [`Sim::partition`])?
    pub fn groups_see_each_other_dead(&self) -> bool {
        let n = self.groups.len();
        (0..n).all(|i| {
            (0..n).all(|j| {
                let same = self.groups[i] == self.groups[j];
                self.view(i, j) == Some(if same { State::Alive } else { State::Dead })
            })
        })
    }

    // ----- network control -----------------------------------------------------------

    /// Sets the datagram loss probability.
    pub fn set_loss(&mut self, loss: f64) {
        self.cfg.loss = loss;
    }

    /// Splits the nodes: node `i` goes to group `groups[i]` (missing entries: group 0).
    /// Only nodes in the same group can talk.
    pub fn partition(&mut self, groups: &[u32]) {
        for (i, group) in self.groups.iter_mut().enumerate() {
            *group = groups.get(i).copied().unwrap_or(0);
        }
    }

    /// Cuts node `i` off from everyone (its own group).
    pub fn isolate(&mut self, i: usize) {
        if let Some(group) = self.groups.get_mut(i) {
            *group = u32::MAX - 1;
        }
    }

    /// Cuts the link between `a` and `b` (both directions).
    pub fn cut(&mut self, a: usize, b: usize) {
        self.cut_links.insert((a.min(b), a.max(b)));
    }

    /// Removes every partition and cut link.
    pub fn heal(&mut self) {
        self.groups.fill(0);
        self.cut_links.clear();
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        let (Some(ga), Some(gb)) = (self.groups.get(a), self.groups.get(b)) else {
            return false;
        };
        ga == gb && (self.cut_links.is_empty() || !self.cut_links.contains(&(a.min(b), a.max(b))))
    }

    /// The node at `addr` ([`sim_addr`] inverted; no map lookup per datagram, and no
    /// read of the node: node `i`'s address is always `sim_addr(i)`, whose bytes give
    /// back `i` exactly).
    fn index_of(&self, addr: SocketAddr) -> Option<usize> {
        let SocketAddr::V4(v4) = addr else {
            return None;
        };
        let [a, b, c, d] = v4.ip().octets();
        if a != 127 || v4.port() != 7946 {
            return None;
        }
        let n = (usize::from(b) << 16) | (usize::from(c) << 8) | usize::from(d);
        let i = n.checked_sub(1)?;
        (i < self.peers.len()).then_some(i)
    }

    // ----- node control --------------------------------------------------------------

    /// Crashes node `i` (kill -9): its state is gone, messages to it are lost.
    pub fn crash(&mut self, i: usize) {
        if let Some(m) = self.machines.get_mut(i) {
            *m = None;
        }
        if !self.links.is_empty() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            self.links.retain(|&(a, b), _| a != i && b != i);
        }
        if let Some(timer) = self.timers.get_mut(i) {
            *timer = None;
        }
    }

    /// Restarts node `i` with the same id and address, incarnation 0, and joins it
    /// through `contacts`.
    pub fn restart(&mut self, i: usize, contacts: &[usize]) {
        let Some(peer) = self.peer(i) else { return };
        let seed = self.rng.random();
        let mut machine = Membership::new(
            peer,
            Tags::new(),
            self.cfg.config.clone(),
            seed,
            self.now_instant(),
        );
        machine.reserve_members(self.peers.len());
        if let Some(m) = self.machines.get_mut(i) {
            *m = Some(Box::new(machine));
        }
        if let Some(timer) = self.timers.get_mut(i) {
            *timer = None;
        }
        self.join(i, contacts);
    }

    /// Node `i` joins through the given nodes now.
    pub fn join(&mut self, i: usize, contacts: &[usize]) {
        let addrs: Vec<SocketAddr> = contacts
            .iter()
            .filter_map(|&s| self.peer(s))
            .map(|p| p.addr)
            .collect();
        self.with_node(i, |m, now| m.join(now, &addrs));
    }

    /// Node `i` adds node `target`, as `werify ctl add TARGET` run against node `i` does:
    /// `i` sends `target` a join request carrying its state (without making it a contact)
    /// and merges the answer.
    pub fn add(&mut self, i: usize, target: usize) {
        let Some(to) = self.peer(target).map(|p| p.addr) else {
            return;
        };
        let Some(req) = self.with_node(i, |m, now| m.join_request(now)) else {
            return;
        };
        if let Some(n) = self.stats.get_mut(i) {
            n.push_pulls_sent += 1;
        }
        if !self.is_up(target) || !self.connected(i, target) {
            return;
        }
        let at = self.arrival(i, to);
        self.schedule(at, Item::PushPullRequest { from: i, to, req });
    }

    /// Node `i` leaves gracefully.
    pub fn leave(&mut self, i: usize) {
        self.with_node(i, |m, now| m.leave(now));
    }

    /// Node `i` removes node `target` (`werify ctl del`).
    pub fn remove(&mut self, i: usize, target: usize) -> Option<Result<NodeId, RemoveError>> {
        let addr = self.peer(target)?.addr;
        self.with_node(i, |m, now| m.remove(now, addr))
    }

    /// Runs `f` on node `i`'s state machine at the current virtual time, then routes
    /// whatever it produced. `None` if the node is crashed.
    pub fn with_node<R>(
        &mut self,
        i: usize,
        f: impl FnOnce(&mut Membership, Instant) -> R,
    ) -> Option<R> {
        let now = self.now_instant();
        let machine = self.machine_mut(i)?;
        let r = f(machine, now);
        self.after_input(i);
        Some(r)
    }

    // ----- running -------------------------------------------------------------------

    /// Processes the earliest queued item. False when nothing is left.
    pub fn step(&mut self) -> bool {
        let Some(s) = self.queue.pop() else {
            return false;
        };
        self.now = self.now.max(s.at());
        match s.due {
            Due::Timer(node) => self.wake(node as usize, s.at()),
            Due::Item(slot) => {
                let item = self.items.get_mut(slot as usize).and_then(Option::take);
                self.free_items.push(slot);
                if let Some(item) = item {
                    self.process(item);
                }
            }
        }
        true
    }

    /// Runs until `d` more virtual time has passed.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.queue.peek().is_some_and(|s| s.at() <= end) {
            self.step();
        }
        self.now = end;
    }

    /// Runs until `pred` holds (checked every `check_every` of virtual time) or `max`
    /// more virtual time has passed. Returns the virtual time (since the start) at which
    /// `pred` was first seen true.
    pub fn run_until(
        &mut self,
        max: Duration,
        check_every: Duration,
        mut pred: impl FnMut(&Sim) -> bool,
    ) -> Option<Duration> {
        let end = self.now + max;
        let check_every = check_every.max(Duration::from_millis(1));
        loop {
            if pred(self) {
                return Some(self.now);
            }
            if self.now >= end {
                return None;
            }
            let next = (self.now + check_every).min(end);
            self.run_for(next - self.now);
        }
    }

    fn schedule(&mut self, at: Duration, item: Item) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = match self.free_items.pop() {
            Some(slot) => {
                if let Some(free) = self.items.get_mut(slot as usize) {
                    *free = Some(item);
                }
                slot
            }
            None => {
                self.items.push(Some(item));
                u32::try_from(self.items.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.queue.push(Scheduled {
            at_nanos: nanos(at),
            seq,
            due: Due::Item(slot),
        });
    }

    /// Queues node `i`'s timer wake-up at `at`.
    fn schedule_timer(&mut self, at: Duration, i: usize) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let node = u32::try_from(i).unwrap_or(u32::MAX);
        self.queue.push(Scheduled {
            at_nanos: nanos(at),
            seq,
            due: Due::Timer(node),
        });
    }

    /// Node `i`'s timer wake-up scheduled for `at`, unless superseded since.
    fn wake(&mut self, i: usize, at: Duration) {
        let Some(timer) = self.timers.get_mut(i) else {
            return;
        };
        if *timer != Some(at) {
            return; // superseded
        }
        *timer = None;
        let now = self.now_instant();
        let Some(m) = self.machine_mut(i) else {
            return;
        };
        m.handle_timeout(now);
        self.after_input(i);
    }

    /// When a message node `from` sends to `to` now arrives: after their link is up (see
    /// [`SimConfig::handshake`]), plus latency and jitter.
    fn arrival(&mut self, from: usize, to: SocketAddr) -> Duration {
        let mut start = self.now;
        if !self.cfg.handshake.is_zero()
            && let Some(to) = self.index_of(to)
        {
            let (a, b) = (from.min(to), from.max(to));
            let key = (
                u32::try_from(a).unwrap_or(u32::MAX),
                u32::try_from(b).unwrap_or(u32::MAX),
            );
            let ready = *self
                .links
                .entry(key)
                .or_insert(self.now + self.cfg.handshake);
            start = start.max(ready);
        }
        start + self.delay()
    }

    fn delay(&mut self) -> Duration {
        let jitter = if self.cfg.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.cfg.jitter.mul_f64(self.rng.random_range(0.0..1.0))
        };
        self.cfg.latency + jitter
    }

    fn mix(&mut self, values: &[u64]) {
        for v in values {
            for b in v.to_le_bytes() {
                self.fingerprint ^= u64::from(b);
                self.fingerprint = self.fingerprint.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
    }

    fn process(&mut self, item: Item) {
        let now = self.now_instant();
        match item {
            Item::Join { node, contacts } => self.join(node, &contacts),
            Item::Datagram { from, to, payload } => {
                let Some(dst) = self.index_of(to) else {
                    return;
                };
                if !self.connected(from, dst) {
                    return;
                }
                let Some(receiver) = self.peers.get(dst).map(|p| p.id) else {
                    return;
                };
                let msg = match payload {
                    Payload::Decoded(msg) => msg,
                    Payload::Bytes(bytes) => match self
                        .peers
                        .get(from)
                        .map(|&sender| Message::decode_from(&bytes, sender, receiver))
                    {
                        Some(Ok(msg)) => msg,
                        _ => {
                            self.counts.undecodable += 1;
                            return;
                        }
                    },
                };
                // As the node transport does: a ping leaves only on a connection to the
                // node it means (its target is not on the wire).
                if let Message::Ping { target, .. } = &msg
                    && *target != receiver
                {
                    return;
                }
                let nanos = self.now.as_nanos() as u64;
                self.mix(&[nanos, from as u64, dst as u64]);
                // Node `from`'s address, without reading its (cold) record.
                if from >= self.peers.len() {
                    return;
                }
                let from_addr = sim_addr(from);
                let Some(m) = self.machine_mut(dst) else {
                    return;
                };
                // As the node runtime does: the sender's address comes with the datagram.
                m.handle_message_from(now, from_addr, msg);
                self.after_input(dst);
            }
            Item::PushPullRequest { from, to, req } => {
                let Some(dst) = self.index_of(to) else {
                    return;
                };
                if !self.connected(from, dst) {
                    return;
                }
                let Some(m) = self.machine_mut(dst) else {
                    return;
                };
                let req_bytes = push_pull_len(&req);
                let reply = m.handle_push_pull(now, req);
                self.after_input(dst);
                if let Some(n) = self.stats.get_mut(from) {
                    n.push_pull_bytes += req_bytes;
                }
                let bytes = push_pull_len(&reply);
                if let Some(n) = self.stats.get_mut(dst) {
                    n.push_pull_bytes += bytes;
                }
                let at = self.now + self.delay();
                self.schedule(
                    at,
                    Item::PushPullReply {
                        from: dst,
                        to: from,
                        reply,
                    },
                );
            }
            Item::PushPullReply { from, to, reply } => {
                if !self.connected(from, to) {
                    return;
                }
                let nanos = self.now.as_nanos() as u64;
                self.mix(&[nanos, from as u64, to as u64, 1]);
                let Some(m) = self.machine_mut(to) else {
                    return;
                };
                m.handle_message(now, Message::PushPull(reply));
                self.after_input(to);
            }
        }
    }

    /// Drains node `i`'s transmits and events and re-arms its timer.
    fn after_input(&mut self, i: usize) {
        let max_datagram = self.cfg.config.max_datagram_bytes;
        while let Some(t) = self.machine_mut(i).and_then(|m| m.poll_transmit()) {
            if let Message::PushPull(req) = t.msg {
                // Bytes are counted on delivery: rejoin attempts to dead members are
                // frequent and their full state never leaves (the dial fails).
                if let Some(n) = self.stats.get_mut(i) {
                    n.push_pulls_sent += 1;
                }
                // A stream to a crashed or cut-off node fails at the dial: drop the state
                // now rather than keep it in flight. Every node's rejoin timer fires in
                // the same instant (they start together), so at 10,000 nodes one rejoin
                // round would put 10,000 full states (1.8 MB each) in flight at once,
                // gigabytes of memory in seconds.
                let reachable = self
                    .index_of(t.to)
                    .is_some_and(|dst| self.is_up(dst) && self.connected(i, dst));
                if !reachable {
                    continue;
                }
                let at = self.arrival(i, t.to);
                self.schedule(
                    at,
                    Item::PushPullRequest {
                        from: i,
                        to: t.to,
                        req,
                    },
                );
                continue;
            }
            // Encoded for real only when the receiver decodes it; otherwise just measured.
            let bytes = self.cfg.decode.then(|| t.msg.encode());
            let len = bytes.as_ref().map_or_else(|| encoded_len(&t.msg), Vec::len);
            if len > max_datagram {
                self.counts.oversized += 1;
            }
            if let Some(n) = self.stats.get_mut(i) {
                n.msgs_sent += 1;
                n.bytes_sent += len as u64;
                n.max_datagram = n.max_datagram.max(len);
            }
            if self.cfg.loss > 0.0 && self.rng.random_bool(self.cfg.loss.clamp(0.0, 1.0)) {
                continue;
            }
            let payload = match bytes {
                Some(bytes) => Payload::Bytes(bytes),
                None => Payload::Decoded(t.msg),
            };
            let at = self.arrival(i, t.to);
            self.schedule(
                at,
                Item::Datagram {
                    from: i,
                    to: t.to,
                    payload,
                },
            );
        }
        while let Some(e) = self.machine_mut(i).and_then(|m| m.poll_event()) {
            self.count_event(i, e);
        }
        let next = self.node(i).and_then(|m| m.poll_timeout());
        let Some(timer) = self.timers.get_mut(i) else {
            return;
        };
        let Some(next) = next else {
            *timer = None;
            return;
        };
        let at = next.saturating_duration_since(self.base).max(self.now);
        if *timer != Some(at) {
            *timer = Some(at);
            self.schedule_timer(at, i);
        }
    }

    fn rearm(&mut self, i: usize) {
        self.after_input(i);
    }

    fn count_event(&mut self, i: usize, e: Event) {
        let (kind, subject) = match &e {
            Event::MemberUp(p) => {
                self.counts.up += 1;
                (1, Some(p.id))
            }
            Event::MemberSuspect { peer, .. } => {
                self.counts.suspect += 1;
                (2, Some(peer.id))
            }
            Event::MemberRefuted(p) => {
                self.counts.refuted += 1;
                (3, Some(p.id))
            }
            Event::MemberDown { peer, by } => {
                self.counts.down += 1;
                self.downs.push(DownRecord {
                    at: self.now,
                    observer: i,
                    subject: peer.id,
                    by: *by,
                });
                (4, Some(peer.id))
            }
            Event::MemberLeft(p) | Event::MemberRemoved { peer: p, .. } => {
                self.counts.left += 1;
                (5, Some(p.id))
            }
            Event::Refuted { .. } => {
                self.counts.self_refuted += 1;
                (6, None)
            }
            Event::MemberUpdated(p) | Event::MemberHealth(p) => (7, Some(p.id)),
            Event::MemberReaped(p) => (8, Some(p.id)),
            Event::SelfRemoved { .. } => (9, None),
            Event::SelfReadded => (10, None),
        };
        let id_bits = subject.map(|id| {
            u64::from_le_bytes([
                id.0[0], id.0[1], id.0[2], id.0[3], id.0[4], id.0[5], id.0[6], id.0[7],
            ])
        });
        let nanos = self.now.as_nanos() as u64;
        self.mix(&[nanos, i as u64, kind, id_bits.unwrap_or(0)]);
        if self.record_events {
            self.events.push((self.now, i, e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::config::Profile;
    use std::collections::BTreeSet;

    #[test]
    fn the_event_queue_pops_in_time_then_insertion_order() {
        // Random pushes (many equal times) interleaved with pops, against a sorted set.
        let mut rng = SmallRng::seed_from_u64(5);
        let mut queue = EventQueue::default();
        let mut model = BTreeSet::new();
        for seq in 0..20_000u64 {
            let at_nanos = rng.random_range(0..500u64);
            queue.push(Scheduled {
                at_nanos,
                seq,
                due: Due::Item(seq as u32),
            });
            model.insert((at_nanos, seq));
            while rng.random_bool(0.45) {
                let popped = queue.pop().map(|s| (s.at_nanos, s.seq));
                assert_eq!(popped, model.pop_first());
            }
        }
        while let Some(s) = queue.pop() {
            assert_eq!(Some((s.at_nanos, s.seq)), model.pop_first());
        }
        assert!(model.is_empty());
    }

    #[test]
    fn small_mesh_converges_and_datagrams_fit() {
        let mut sim = Sim::new(SimConfig::new(7, 8, Config::for_profile(Profile::Lan)));
        let t = sim.run_until(
            Duration::from_secs(30),
            Duration::from_millis(100),
            Sim::converged,
        );
        assert!(t.is_some(), "8 nodes did not converge in 30 s");
        assert_eq!(sim.counts().oversized, 0);
        assert_eq!(sim.counts().undecodable, 0);
        assert!(sim.total_stats().msgs_sent > 0);
    }

    #[test]
    fn a_first_contact_waits_for_the_handshake_and_later_messages_do_not() {
        let mut cfg = SimConfig::new(3, 2, Config::for_profile(Profile::Lan));
        cfg.join_spread = Duration::ZERO;
        cfg.handshake = Duration::from_secs(1);
        let mut sim = Sim::new(cfg);
        // The join (node 1 to node 0) waits for its link: nothing is known before 1 s.
        sim.run_for(Duration::from_millis(990));
        assert!(!sim.converged(), "the join did not wait for the handshake");
        assert_eq!(sim.links_open(), 1);
        // Then the answer comes back over the open link within a few milliseconds.
        sim.run_for(Duration::from_millis(20));
        assert!(sim.converged(), "the answer waited for a second handshake");
        assert_eq!(sim.links_open(), 1);
        // A crash closes the node's links.
        sim.crash(1);
        assert_eq!(sim.links_open(), 0);
    }

    #[test]
    fn a_preconverged_mesh_starts_settled_and_stays_so() {
        let run = || {
            let mut cfg = SimConfig::new(11, 50, Config::for_profile(Profile::Lan));
            cfg.preconverged = true;
            let mut sim = Sim::new(cfg);
            assert!(sim.converged(), "not converged at the start");
            for i in 0..sim.len() {
                let m = sim.node(i).map(|m| (m.queued_updates(), m.live_members()));
                assert_eq!(m, Some((0, 49)), "node {i}: (queued, live)");
            }
            sim.run_for(Duration::from_secs(30));
            assert!(sim.converged(), "not converged after 30 s");
            assert_eq!(sim.counts().down + sim.counts().suspect, 0);
            // Nobody learned anyone new (no MemberUp), but the mesh did talk.
            assert_eq!(sim.counts().up, 0);
            assert!(sim.total_stats().msgs_sent > 50 * 30);
            sim.fingerprint()
        };
        assert_eq!(run(), run(), "same seed, different runs");
    }

    #[test]
    fn measured_lengths_equal_encoded_lengths() {
        let peer = |n: u8| Peer {
            id: NodeId([n; 16]),
            addr: sim_addr(usize::from(n)),
        };
        let pp = PushPull {
            from: peer(1),
            join: true,
            members: (1..=40)
                .map(|n| crate::mesh::message::MemberState {
                    peer: peer(n),
                    incarnation: u64::from(n) * 1000,
                    state: State::Alive,
                    tags: [("role".to_string(), "db".to_string())].into(),
                    health: None,
                    by: None,
                })
                .collect(),
            digest: None,
        };
        let msg = Message::PushPull(pp.clone());
        assert_eq!(push_pull_len(&pp), msg.encode().len() as u64);
        let ping = Message::Ping {
            from: peer(2),
            seq: 77,
            target: NodeId([3; 16]),
            updates: vec![crate::mesh::message::Update::Suspect {
                id: NodeId([3; 16]),
                incarnation: 5,
                by: NodeId([2; 16]),
            }],
        };
        assert_eq!(encoded_len(&ping), ping.encode().len());
    }

    #[test]
    fn addresses_are_distinct() {
        let addrs: HashSet<SocketAddr> = (0..70_000).map(sim_addr).collect();
        assert_eq!(addrs.len(), 70_000);
    }
}
