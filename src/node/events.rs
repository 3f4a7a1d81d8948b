//! The node's event log: every membership change this node sees (a member joined, is
//! suspected, is alive again, is dead, left, was removed, changed its tags, changed its
//! health, was forgotten; this node refuted, was removed, was added again) as a typed
//! [`MeshEvent`] (its wire form is in [`crate::rpc::mesh_event`]) with a sequence number
//! and the wall-clock time, kept in a bounded ring
//! (the last [`EVENT_LOG_CAPACITY`]) and published to subscribers.
//!
//! Recording never waits: subscribers get events through a bounded broadcast queue, and one
//! that falls behind by more than [`SUBSCRIBER_QUEUE`] events loses the oldest and is told
//! how many it missed ([`Received::Missed`]); the mesh is never held up by a reader.
//!
//! Not here: deciding what happened ([`crate::mesh::membership`]), turning the state
//! machine's events into records ([`Recorder`], run by the mesh driver), serving them
//! (`GET /v1/events` in [`crate::node::http`], `werify mesh watch` in
//! [`crate::node::dispatch`]) or running `--on-event` scripts.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use crate::base::NodeId;
use crate::base::clock::unix_ms;
use crate::mesh::member::{HealthSummary, Member, Peer, State};
use crate::mesh::membership::{Event, Membership};
pub use crate::rpc::mesh_event::{EventHealth, EventKind, MeshEvent};

/// Events the ring keeps; older ones are dropped.
pub const EVENT_LOG_CAPACITY: usize = 1000;
/// Events a subscriber may fall behind by before it loses the oldest ones.
pub const SUBSCRIBER_QUEUE: usize = 1024;

/// A bounded, shared record of the latest events, with live subscribers.
pub struct EventLog {
    ring: Mutex<Ring>,
    tx: broadcast::Sender<Arc<MeshEvent>>,
}

struct Ring {
    events: VecDeque<Arc<MeshEvent>>,
    capacity: usize,
    next_seq: u64,
}

/// Events read from the ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backlog {
    /// The events after the asked-for sequence number that the ring still holds, oldest
    /// first.
    pub events: Vec<Arc<MeshEvent>>,
    /// Events after the asked-for sequence number that the ring no longer holds.
    pub missed: u64,
    /// The sequence number the next event will get.
    pub next_seq: u64,
}

impl EventLog {
    /// An empty log keeping the last `capacity` events (at least 1).
    pub fn new(capacity: usize) -> EventLog {
        let (tx, _) = broadcast::channel(SUBSCRIBER_QUEUE);
        EventLog {
            ring: Mutex::new(Ring {
                events: VecDeque::with_capacity(capacity.clamp(1, 64)),
                capacity: capacity.max(1),
                next_seq: 1,
            }),
            tx,
        }
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        // Nothing panics while holding the lock; a poisoned ring is still consistent.
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `event` with the next sequence number and the current time (whatever
    /// `seq` and `at_unix_ms` it had) and publishes it. Never waits for subscribers.
    pub fn record(&self, mut event: MeshEvent) -> Arc<MeshEvent> {
        let mut ring = self.ring();
        event.seq = ring.next_seq;
        event.at_unix_ms = unix_ms();
        ring.next_seq += 1;
        let event = Arc::new(event);
        if ring.events.len() >= ring.capacity {
            ring.events.pop_front();
        }
        ring.events.push_back(event.clone());
        // Sent under the lock, so that a subscriber's backlog and its live events
        // neither overlap nor leave a gap. No subscriber is not an error.
        let _ = self.tx.send(event.clone());
        event
    }

    /// The events after sequence number `after` (0: all the ring holds), oldest first.
    pub fn since(&self, after: u64) -> Backlog {
        backlog(&self.ring(), after)
    }

    /// The backlog after `after` (none for `None`) and a subscription to every event
    /// recorded from now on.
    pub fn subscribe(&self, after: Option<u64>) -> (Backlog, Subscription) {
        let ring = self.ring();
        let rx = self.tx.subscribe();
        let backlog = match after {
            Some(after) => backlog(&ring, after),
            None => Backlog {
                events: Vec::new(),
                missed: 0,
                next_seq: ring.next_seq,
            },
        };
        (backlog, Subscription { rx })
    }

    /// The sequence number the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.ring().next_seq
    }
}

fn backlog(ring: &Ring, after: u64) -> Backlog {
    let oldest = ring.events.front().map_or(ring.next_seq, |e| e.seq);
    let events: Vec<Arc<MeshEvent>> = ring
        .events
        .iter()
        .filter(|e| e.seq > after)
        .cloned()
        .collect();
    Backlog {
        events,
        missed: oldest.saturating_sub(after.saturating_add(1)),
        next_seq: ring.next_seq,
    }
}

/// What a subscriber gets next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// The next event.
    Event(Arc<MeshEvent>),
    /// The subscriber fell behind and this many events were dropped for it; the next
    /// [`Subscription::recv`] returns the oldest event still queued.
    Missed(u64),
}

/// A live feed of the events recorded after [`EventLog::subscribe`].
pub struct Subscription {
    rx: broadcast::Receiver<Arc<MeshEvent>>,
}

impl Subscription {
    /// The next event, or how many were missed; `None` once the log is gone (the node
    /// stopped).
    pub async fn recv(&mut self) -> Option<Received> {
        match self.rx.recv().await {
            Ok(e) => Some(Received::Event(e)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Received::Missed(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// What the recorder remembers of a member between events: enough to tell a rejoin from a
/// first join and a new verdict from a re-run with the same one.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Known {
    state: State,
    verdict: Option<Verdict>,
}

/// The part of a health summary whose change is news.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Verdict {
    passing: u32,
    failing: u32,
    erroring: u32,
    failing_names: Vec<String>,
    erroring_names: Vec<String>,
    names_omitted: u32,
}

impl From<&HealthSummary> for Verdict {
    fn from(h: &HealthSummary) -> Verdict {
        Verdict {
            passing: h.passing,
            failing: h.failing,
            erroring: h.erroring,
            failing_names: h.failing_names.clone(),
            erroring_names: h.erroring_names.clone(),
            names_omitted: h.names_omitted,
        }
    }
}

/// Turns the membership state machine's events into [`MeshEvent`]s in an [`EventLog`].
/// Owned by the mesh driver, which calls it right after each step of the state machine,
/// while the member records still say what the event did.
pub struct Recorder {
    log: Arc<EventLog>,
    known: HashMap<NodeId, Known>,
}

impl Recorder {
    /// A recorder writing into `log`.
    pub fn new(log: Arc<EventLog>) -> Recorder {
        Recorder {
            log,
            known: HashMap::new(),
        }
    }

    /// Records what `ev` says happened; returns the record, or `None` when it is not news
    /// (a health summary with the same verdict as before).
    pub fn on_mesh_event(&mut self, ev: &Event, membership: &Membership) -> Option<Arc<MeshEvent>> {
        self.forget_unknown(membership);
        let me = membership.me();
        let lookup = |peer: &Peer| membership.member(peer.id);
        let (kind, peer, state, accuser) = match ev {
            Event::MemberUp(p) => (EventKind::MemberJoined, *p, State::Alive, None),
            Event::MemberSuspect { peer, by } => {
                (EventKind::MemberSuspect, *peer, State::Suspect, Some(*by))
            }
            Event::MemberRefuted(p) => (EventKind::MemberAlive, *p, State::Alive, None),
            Event::MemberDown { peer, by } => {
                (EventKind::MemberDead, *peer, State::Dead, Some(*by))
            }
            Event::MemberLeft(p) => (EventKind::MemberLeft, *p, State::Left, None),
            Event::MemberRemoved { peer, by } => {
                (EventKind::MemberRemoved, *peer, State::Left, Some(*by))
            }
            Event::MemberUpdated(p) => {
                let state = lookup(p).map_or(State::Alive, |m| m.state);
                (EventKind::MemberUpdated, *p, state, None)
            }
            Event::MemberHealth(p) => {
                let member = lookup(p)?;
                return self.on_health(&member, false);
            }
            Event::MemberReaped(p) => {
                let state = self.known.get(&p.id).map_or(State::Dead, |k| k.state);
                (EventKind::MemberReaped, *p, state, None)
            }
            Event::Refuted { by, .. } => (EventKind::SelfRefuted, me.peer, me.state, *by),
            Event::SelfRemoved { by } => (EventKind::SelfRemoved, me.peer, State::Left, Some(*by)),
            Event::SelfReadded => (EventKind::SelfReadded, me.peer, State::Alive, None),
        };
        let member = lookup(&peer);
        let previous_state = self
            .known
            .get(&peer.id)
            .map(|k| k.state)
            .filter(|was| *was != state);
        match kind {
            EventKind::MemberReaped => {
                self.known.remove(&peer.id);
            }
            _ => {
                let verdict = member
                    .as_ref()
                    .and_then(|m| m.health.as_ref().map(Verdict::from));
                let known = self.known.entry(peer.id).or_insert(Known {
                    state,
                    verdict: None,
                });
                known.state = state;
                if known.verdict.is_none() {
                    known.verdict = verdict;
                }
            }
        }
        let confirmations = matches!(kind, EventKind::MemberSuspect | EventKind::MemberDead)
            .then(|| {
                member
                    .as_ref()
                    .map(|m| u32::try_from(m.confirmations).unwrap_or(u32::MAX))
            })
            .flatten();
        Some(
            self.log.record(MeshEvent {
                seq: 0,
                at_unix_ms: 0,
                event: kind,
                member_id: peer.id,
                member_addr: peer.addr,
                member_state: state,
                previous_state,
                member_incarnation: member.as_ref().map_or(0, |m| m.incarnation),
                member_tags: member.as_ref().map(|m| m.tags.clone()).unwrap_or_default(),
                is_self: peer.id == me.peer.id,
                accuser,
                confirmations,
                health: member
                    .as_ref()
                    .and_then(|m| m.health.as_ref().map(EventHealth::from)),
            }),
        )
    }

    /// Drops what it remembers of members the state machine no longer knows (forgotten
    /// without a reap, e.g. replaced by a new id at the same address), once they are as
    /// many as the members it knows: the memory stays proportional to the mesh.
    fn forget_unknown(&mut self, membership: &Membership) {
        if self.known.len() > 2 * (membership.known_members() + 1) + 64 {
            self.known
                .retain(|id, _| membership.state_of(*id).is_some());
        }
    }

    /// Records this node's own new health summary (the state machine reports only other
    /// members'); `None` when the verdict did not change.
    pub fn on_own_health(&mut self, membership: &Membership) -> Option<Arc<MeshEvent>> {
        let me = membership.me().clone();
        self.on_health(&me, true)
    }

    fn on_health(&mut self, member: &Member, is_self: bool) -> Option<Arc<MeshEvent>> {
        let health = member.health.as_ref()?;
        let verdict = Verdict::from(health);
        let known = self.known.entry(member.peer.id).or_insert(Known {
            state: member.state,
            verdict: None,
        });
        if known.verdict.as_ref() == Some(&verdict) {
            return None;
        }
        known.verdict = Some(verdict);
        Some(self.log.record(MeshEvent {
            seq: 0,
            at_unix_ms: 0,
            event: EventKind::MemberHealth,
            member_id: member.peer.id,
            member_addr: member.peer.addr,
            member_state: member.state,
            previous_state: None,
            member_incarnation: member.incarnation,
            member_tags: member.tags.clone(),
            is_self,
            accuser: None,
            confirmations: None,
            health: Some(EventHealth::from(health)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use std::net::SocketAddr;

    use super::*;
    use crate::mesh::config::{Config, Profile};
    use crate::mesh::member::Tags;

    fn event(n: u8, kind: EventKind) -> MeshEvent {
        MeshEvent {
            seq: 0,
            at_unix_ms: 0,
            event: kind,
            member_id: NodeId([n; 16]),
            member_addr: SocketAddr::from(([127, 0, 0, n], 32500)),
            member_state: State::Alive,
            previous_state: None,
            member_incarnation: 1,
            member_tags: Tags::new(),
            is_self: false,
            accuser: None,
            confirmations: None,
            health: None,
        }
    }

    #[test]
    fn the_ring_keeps_the_last_events_and_counts_the_ones_it_dropped() {
        let log = EventLog::new(3);
        for n in 1..=5 {
            let e = log.record(event(n, EventKind::MemberJoined));
            assert_eq!(e.seq, u64::from(n));
            assert!(e.at_unix_ms > 0);
        }
        let all = log.since(0);
        let seqs: Vec<u64> = all.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert_eq!(all.missed, 2);
        assert_eq!(all.next_seq, 6);
        let recent = log.since(3);
        assert_eq!(recent.events.len(), 2);
        assert_eq!(recent.missed, 0);
        let none = log.since(5);
        assert!(none.events.is_empty() && none.missed == 0);
        // Asking past the end is not an error: nothing yet.
        assert!(log.since(99).events.is_empty());
        assert_eq!(EventLog::new(10).since(0).missed, 0);
    }

    #[tokio::test]
    async fn a_subscriber_gets_the_backlog_then_live_events_without_gap_or_overlap() {
        let log = EventLog::new(100);
        for n in 1..=3 {
            log.record(event(n, EventKind::MemberJoined));
        }
        let (backlog, mut sub) = log.subscribe(Some(1));
        assert_eq!(
            backlog.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [2, 3]
        );
        log.record(event(4, EventKind::MemberDead));
        match sub.recv().await {
            Some(Received::Event(e)) => {
                assert_eq!(e.seq, 4);
                assert_eq!(e.event, EventKind::MemberDead);
            }
            other => panic!("{other:?}"),
        }
        let (backlog, _) = log.subscribe(None);
        assert!(backlog.events.is_empty());
        assert_eq!(backlog.next_seq, 5);
    }

    #[tokio::test]
    async fn a_slow_subscriber_loses_old_events_and_is_told_how_many() {
        let log = EventLog::new(10);
        let (_, mut slow) = log.subscribe(None);
        let extra = 7u64;
        for i in 0..(SUBSCRIBER_QUEUE as u64 + extra) {
            // Recording never waits for the subscriber that reads nothing.
            log.record(event((i % 200) as u8 + 1, EventKind::MemberHealth));
        }
        assert_eq!(slow.recv().await, Some(Received::Missed(extra)));
        match slow.recv().await {
            Some(Received::Event(e)) => assert_eq!(e.seq, extra + 1),
            other => panic!("{other:?}"),
        }
        drop(log);
        // The queued events are still delivered, then the end.
        let mut left = 0;
        while let Some(r) = slow.recv().await {
            assert!(matches!(r, Received::Event(_)));
            left += 1;
        }
        assert_eq!(left, SUBSCRIBER_QUEUE - 1);
    }

    fn peer(n: u8) -> Peer {
        Peer::numbered(n, 32500)
    }

    #[test]
    fn the_recorder_tells_rejoins_and_skips_health_reruns_with_the_same_verdict() {
        let now = Instant::now();
        let membership = Membership::new(
            peer(1),
            Tags::new(),
            Config::for_profile(Profile::Local),
            1,
            now,
        );
        let log = Arc::new(EventLog::new(100));
        let mut rec = Recorder::new(log.clone());
        let joined = rec
            .on_mesh_event(&Event::MemberUp(peer(2)), &membership)
            .expect("recorded");
        assert_eq!(joined.event, EventKind::MemberJoined);
        assert_eq!(joined.previous_state, None);
        let dead = rec
            .on_mesh_event(
                &Event::MemberDown {
                    peer: peer(2),
                    by: peer(3).id,
                },
                &membership,
            )
            .expect("recorded");
        assert_eq!(
            (dead.event, dead.member_state, dead.accuser),
            (EventKind::MemberDead, State::Dead, Some(peer(3).id))
        );
        assert_eq!(dead.previous_state, Some(State::Alive));
        let back = rec
            .on_mesh_event(&Event::MemberUp(peer(2)), &membership)
            .expect("recorded");
        assert_eq!(back.previous_state, Some(State::Dead));
        let removed = rec
            .on_mesh_event(&Event::SelfRemoved { by: peer(4).id }, &membership)
            .expect("recorded");
        assert!(removed.is_self);
        assert_eq!(removed.member_id, peer(1).id);
        assert_eq!(removed.accuser, Some(peer(4).id));
        // A health event of an unknown member records nothing.
        assert!(
            rec.on_mesh_event(&Event::MemberHealth(peer(9)), &membership)
                .is_none()
        );
        assert_eq!(log.since(0).events.len(), 4);
    }

    #[test]
    fn members_the_mesh_forgot_are_forgotten_here_too() {
        let membership = Membership::new(
            peer(1),
            Tags::new(),
            Config::for_profile(Profile::Local),
            1,
            Instant::now(),
        );
        let mut rec = Recorder::new(Arc::new(EventLog::new(10)));
        for n in 2..=200 {
            rec.on_mesh_event(&Event::MemberUp(peer(n)), &membership);
        }
        // None of them is in this state machine: what is remembered stays bounded.
        assert!(rec.known.len() <= 2 * 2 + 64 + 1, "{}", rec.known.len());
    }

    #[test]
    fn own_health_is_recorded_when_its_verdict_changes() {
        let now = Instant::now();
        let mut membership = Membership::new(
            peer(1),
            Tags::new(),
            Config::for_profile(Profile::Local),
            1,
            now,
        );
        let log = Arc::new(EventLog::new(100));
        let mut rec = Recorder::new(log.clone());
        assert!(rec.on_own_health(&membership).is_none(), "no summary yet");
        let failing = HealthSummary {
            passing: 1,
            failing: 1,
            failing_names: vec!["disk".into()],
            ..HealthSummary::default()
        };
        membership.set_health(now, failing.clone());
        let e = rec.on_own_health(&membership).expect("first verdict");
        assert_eq!(e.event, EventKind::MemberHealth);
        assert!(e.is_self);
        assert_eq!(
            e.health.as_ref().map(|h| h.failing_names.clone()),
            Some(vec!["disk".to_string()])
        );
        // The same verdict from a later run (a refresh): not news.
        membership.set_health(
            now,
            HealthSummary {
                refresh_id: 5,
                at_unix_ms: 99,
                ..failing
            },
        );
        assert!(rec.on_own_health(&membership).is_none());
        membership.set_health(
            now,
            HealthSummary {
                passing: 2,
                ..HealthSummary::default()
            },
        );
        assert!(rec.on_own_health(&membership).is_some());
        assert_eq!(log.since(0).events.len(), 2);
    }
}
