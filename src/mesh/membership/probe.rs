//! Probing: the probe this node runs each tick (ping, then ping-reqs through other
//! members, then a verdict), the probes it runs for others (relays that answer with the
//! target's ack or a nack), refresh pings and introductions, and the acks that end them.
//! What a failed probe leads to (suspicion) is `suspect`'s business; which messages carry
//! piggybacked updates is `gossip`'s.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::RngExt;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;

use crate::mesh::NodeId;
use crate::mesh::member::{Peer, State};
use crate::mesh::message::{Message, Update};
use crate::mesh::record::Record;

use super::timer::Timer;
use super::{Membership, Mode, stamp, stamp_some};

/// Concurrent indirect probes this node runs for others, at most.
const MAX_RELAYS: usize = 1024;
/// Outstanding `probe_all` pings tracked, at most.
const MAX_REFRESH: usize = 1 << 16;

/// The probe this node currently runs.
#[derive(Clone, Debug)]
pub(super) struct Probe {
    pub(super) target: NodeId,
    /// The target's record slot when the probe started (see [`Membership::sender_slot`]).
    pub(super) slot: usize,
    pub(super) seq: u32,
    pub(super) sent: Instant,
    pub(super) ack_deadline: Instant,
    /// No ack by then (direct or relayed): the target is suspected.
    pub(super) verdict_at: Instant,
    pub(super) indirect_sent: bool,
    pub(super) expected_nacks: usize,
    pub(super) nacks: usize,
    pub(super) acked: bool,
    /// Its deadlines were moved once already because this node stalled (see
    /// [`Membership::notice_stall`]).
    pub(super) stall_grace_used: bool,
}

/// An indirect probe this node runs for another node.
#[derive(Clone, Debug)]
pub(super) struct Relay {
    pub(super) requester: SocketAddr,
    pub(super) requester_seq: u32,
    pub(super) seq: u32,
    pub(super) target: NodeId,
    /// No ack by then: the requester is sent a nack.
    pub(super) deadline: Instant,
    /// An ack that comes after the nack is still passed on until then (the requester's
    /// verdict may wait longer, see [`Membership::dial_allowance`]).
    pub(super) forward_until: Instant,
    pub(super) nacked: bool,
}

/// The shuffled round-robin order in which members are probed: record slots, and the
/// position of the next. Each step also reads the slot after it (`ahead`), so that
/// the next step, a probe interval later, knows its target without first reading
/// `order`: in a large mesh that read is a cache miss, and it would stand
/// before the miss on the target's record instead of beside it. Every change of
/// `order` or `pos` goes through these methods, which keep `ahead` equal to
/// `order[pos]` or `None`.
#[derive(Default)]
pub(super) struct ProbeRound {
    order: Vec<u32>,
    pos: usize,
    ahead: Option<u32>,
}

impl ProbeRound {
    #[cfg(any(test, feature = "sim"))]
    pub(super) fn reserve(&mut self, slots: usize) {
        self.order
            .reserve_exact(slots.saturating_sub(self.order.len()));
    }

    /// The slot at the current position, moving past it; `None` at the end of the
    /// round.
    pub(super) fn take_next(&mut self) -> Option<u32> {
        let slot = match self.ahead.take() {
            Some(slot) => slot,
            None => *self.order.get(self.pos)?,
        };
        self.pos += 1;
        self.ahead = self.order.get(self.pos).copied();
        Some(slot)
    }

    /// A new round over `slots`, shuffled.
    pub(super) fn restart(&mut self, slots: impl Iterator<Item = u32>, rng: &mut SmallRng) {
        self.order.clear();
        self.order.extend(slots);
        self.order.shuffle(rng);
        self.pos = 0;
        self.ahead = None;
    }

    /// Adds `slot` at a random position not yet passed in this round.
    pub(super) fn insert_randomly(&mut self, slot: u32, rng: &mut SmallRng) {
        self.order.push(slot);
        let last = self.order.len() - 1;
        let pos = rng.random_range(self.pos.min(last)..=last);
        self.order.swap(pos, last);
        self.ahead = None;
    }
}

impl Membership {
    /// A ping: take its updates, and unless it was meant for another node (or one of
    /// them removed this node), ack it with what the prober should hear first.
    pub(super) fn on_ping(
        &mut self,
        now: Instant,
        from: Peer,
        seq: u32,
        target: NodeId,
        updates: Vec<Update>,
    ) {
        let me = self.me.peer.id;
        let accused = updates.iter().any(
            |u| matches!(u, Update::Suspect { id, .. } | Update::Dead { id, .. } if *id == me),
        );
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

    /// A relay's nack for the probe in flight: the relay is reachable, so a missing ack
    /// says less about this node's own path.
    pub(super) fn on_nack(&mut self, seq: u32) {
        if let Some(p) = self.probe.as_mut()
            && p.seq == seq
        {
            p.nacks += 1;
        }
    }

    /// Pings `peer` outside the probe schedule: its ack updates `rtt` and `last_heard`,
    /// a missing one has no consequence.
    pub(super) fn refresh_ping(&mut self, now: Instant, peer: Peer) {
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

    /// Starts this tick's probe: fails the unanswered one, picks the target (a suspect due
    /// for a re-probe, a rumour to check, else the next of the round) and pings it.
    pub(super) fn probe_tick(&mut self, now: Instant) {
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
        let allowance = self.dial_allowance(member, now);
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
            verdict_at: now + self.awareness.scale(self.config.probe_span()) + allowance,
            indirect_sent: false,
            expected_nacks: 0,
            nacks: 0,
            acked: false,
            stall_grace_used: false,
        });
    }

    /// Brings the next probe tick forward to `now` (or to the verdict of the probe in
    /// flight), so that a volunteer checks a suspect at once instead of up to a whole
    /// probe interval later. The schedule goes on from that tick: no probe is added.
    pub(super) fn probe_soon(&mut self, now: Instant) {
        self.next_probe = self.next_probe.min(self.earliest_tick(now));
    }

    /// The stamp after which a member's `last_heard` means its link is open: heard from
    /// within [`Config::gossip_heard_within`] (a pair's QUIC connection outlives that).
    pub(super) fn linked_since(&self, now: Instant) -> u64 {
        stamp(self.epoch, now).saturating_sub(
            u64::try_from(self.config.gossip_heard_within.as_nanos()).unwrap_or(u64::MAX),
        )
    }

    /// Extra time a probe of `m` waits for an ack before its verdict (and a relay passes
    /// on a late ack after its nack): none over an open link, and
    /// [`Config::dial_allowance`] when the ping must wait for a QUIC handshake first (a
    /// member not heard from lately). The indirect probes still start after the usual
    /// direct timeout, and relays still nack on time, so the requester's local health
    /// reads the same. In a mass join most members are such; a verdict made for a round
    /// trip on an open link would suspect them for the time their handshakes take on a
    /// busy host, and the suspicions feed the load that slows the handshakes.
    pub(super) fn dial_allowance(&self, m: &Record, now: Instant) -> Duration {
        if m.last_heard > self.linked_since(now) {
            Duration::ZERO
        } else {
            self.config.dial_allowance()
        }
    }

    /// Called with every [`Membership::handle_timeout`]: a probe step (the next tick, the
    /// in-flight probe's indirect step or verdict) handled much later than it was due
    /// ([`Config::stall_after`]) means this node did not run in between (a host short of
    /// CPU, a paused process), and the ack its probe waits for may be sitting unread
    /// while the probe's deadlines passed. These deadlines are always set ahead of the
    /// time they are set at and the runtime is asked to wake for each, so only a stall
    /// makes one late (other timers may be due in the past when they are armed, as a
    /// gossip round when news comes after a quiet spell). Lifeguard's answer to a slow
    /// node applies: the local health score rises, stretching this node's probe interval
    /// and timeouts until its probes succeed again; and the probe in flight, if a
    /// deadline of it fell in the stall, gets a fresh window (its direct timeout, and the
    /// indirect one after it if not yet begun) instead of a verdict the target could not
    /// have avoided. Once per probe, so a node that stalls on every wake-up still reaches
    /// its verdicts.
    pub(super) fn notice_stall(&mut self, now: Instant) {
        let due = [Timer::IndirectProbe, Timer::ProbeVerdict, Timer::ProbeTick]
            .into_iter()
            .filter_map(|timer| self.deadline(timer))
            .map(|d| d.due)
            .min();
        let Some(due) = due else {
            return;
        };
        if now.saturating_duration_since(due) <= self.config.stall_after() {
            return;
        }
        self.awareness.apply(1);
        let direct = self.awareness.scale(self.config.probe_timeout);
        let span = self.awareness.scale(self.config.probe_span());
        if let Some(p) = self.probe.as_mut()
            && !p.acked
            && !p.stall_grace_used
            && (p.ack_deadline <= now || p.verdict_at <= now)
        {
            p.stall_grace_used = true;
            if p.indirect_sent {
                p.verdict_at = p.verdict_at.max(now + direct);
            } else {
                p.ack_deadline = p.ack_deadline.max(now + direct);
                p.verdict_at = p.verdict_at.max(now + span);
            }
        }
    }

    /// The earliest a probe tick may come: now, or once the probe in flight has its
    /// verdict (a tick fails an unanswered probe).
    pub(super) fn earliest_tick(&self, now: Instant) -> Instant {
        match &self.probe {
            Some(p) if !p.acked => p.verdict_at.max(now),
            _ => now,
        }
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
    pub(super) fn introduce(&mut self, now: Instant) {
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

    /// The probe in flight missed its direct ack: asks `indirect_checks` members to probe its
    /// target.
    pub(super) fn send_indirect_probes(&mut self, now: Instant) {
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

    /// No ack, direct or relayed, for probe `p`: raises the local health score by the nacks
    /// missing, and suspects the target.
    pub(super) fn probe_failed(&mut self, now: Instant, p: Probe) {
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

    /// An ack, which arrived at `received`: ends the probe in flight, or is relayed to the
    /// node that asked for this probe, or answers a refresh ping.
    pub(super) fn on_ack(&mut self, now: Instant, received: Instant, from: NodeId, seq: u32) {
        if let Some(p) = self.probe.as_mut()
            && p.seq == seq
            && !p.acked
        {
            p.acked = true;
            let (target, sent) = (p.target, p.sent);
            self.awareness.apply(-1);
            if from == target {
                self.record_rtt(target, received.saturating_duration_since(sent), now);
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
            self.record_rtt(id, received.saturating_duration_since(sent), now);
        }
    }

    /// Records the round-trip time of a probe of `id` (and that it was heard from).
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

    /// A ping-req: acks it if the target is this node, else pings the target for `from` (a
    /// relay) and nacks if no ack comes in time.
    pub(super) fn on_ping_req(&mut self, now: Instant, from: Peer, seq: u32, target: Peer) {
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
        let allowance = self
            .slot(&target.id)
            .and_then(|i| self.members.get(i))
            .map_or(self.config.dial_allowance(), |m| {
                self.dial_allowance(m, now)
            });
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
            forward_until: now + self.config.probe_timeout.mul_f64(0.8) + allowance,
            nacked: false,
        });
    }

    /// Nacks the requesters of the relayed probes whose target did not ack in time.
    pub(super) fn expire_relays(&mut self, now: Instant) {
        let me = self.me.peer.id;
        let mut i = 0;
        while i < self.relays.len() {
            let r = &mut self.relays[i];
            if !r.nacked && r.deadline <= now {
                r.nacked = true;
                let (to, seq) = (r.requester, r.requester_seq);
                self.send(to, Message::Nack { from: me, seq });
            }
            if self.relays[i].forward_until <= now {
                self.relays.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// The next probe sequence number.
    fn next_seq(&mut self) -> u32 {
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn the_round_trip_time_ends_when_the_ack_was_received() {
        let t0 = Instant::now();
        let mut m = node_1_knowing_2(t0);
        let mut now = t0;
        let seq = loop {
            now += Duration::from_millis(1);
            m.handle_timeout(now);
            let ping = transmits(&mut m).into_iter().find_map(|t| match t.msg {
                Message::Ping { seq, .. } => Some(seq),
                _ => None,
            });
            if let Some(seq) = ping {
                break seq;
            }
            assert!(now < t0 + Duration::from_secs(10), "no ping sent");
        };
        // The ack arrived 137 µs after the ping left; the node handles it 4 ms later.
        let received = now + Duration::from_micros(137);
        let ack = Message::Ack {
            from: peer_id(2),
            seq,
            updates: Vec::new(),
        };
        m.handle_datagram(
            received + Duration::from_millis(4),
            received,
            peer(2).addr,
            ack,
        );
        assert_eq!(
            m.member(peer_id(2)).and_then(|p| p.rtt),
            Some(Duration::from_micros(137))
        );
    }

    /// Drives `a` through its timers until it sends its first ping: when, and the ping's
    /// target address, target id and sequence number.
    fn until_first_ping(a: &mut Membership, t0: Instant) -> (Instant, SocketAddr, NodeId, u32) {
        while let Some(at) = a.poll_timeout() {
            assert!(at < t0 + Duration::from_secs(2), "no probe");
            a.handle_timeout(at);
            let ping = transmits(a).into_iter().find_map(|t| match t.msg {
                Message::Ping { target, seq, .. } => Some((t.to, target, seq)),
                _ => None,
            });
            if let Some((addr, target, seq)) = ping {
                return (at, addr, target, seq);
            }
        }
        panic!("no timer");
    }

    fn ping_reqs_about(sent: &[Transmit], target: NodeId) -> usize {
        sent.iter()
            .filter(|t| matches!(&t.msg, Message::PingReq { target: p, .. } if p.id == target))
            .count()
    }

    #[test]
    fn a_probe_that_must_dial_first_gets_the_dial_allowance() {
        // Node 1 learned 2..=5 from join answers and never heard from them: a ping to any
        // of them waits for a handshake.
        let t0 = Instant::now();
        let mut a = node_1_knowing(5, t0);
        let cfg = a.config().clone();
        let extra = cfg.dial_allowance();
        assert!(extra > Duration::ZERO);
        let (first, addr, target, _) = until_first_ping(&mut a, t0);
        let ms = Duration::from_millis;
        // Relays are asked after the usual direct timeout...
        let sent = run(&mut a, first + cfg.probe_timeout);
        assert_eq!(ping_reqs_about(&sent, target), 3);
        // ...and the verdict waits the allowance longer.
        run(&mut a, first + cfg.probe_span() + extra - ms(1));
        assert_eq!(a.member_by_addr(addr).map(|m| m.state), Some(State::Alive));
        run(&mut a, first + cfg.probe_span() + extra);
        assert_eq!(
            a.member_by_addr(addr).map(|m| m.state),
            Some(State::Suspect)
        );
    }

    /// Node 1 knowing 2..=5 and having heard from each (their links are open).
    fn node_1_linked_to_5(t0: Instant) -> Membership {
        let mut a = node_1_knowing(5, t0);
        for n in 2..=5 {
            a.handle_message(t0, gossip(n, Vec::new()));
        }
        transmits(&mut a);
        a
    }

    #[test]
    fn a_stall_past_a_probe_deadline_gives_the_probe_a_fresh_window_once() {
        let t0 = Instant::now();
        let cfg = Config::for_profile(crate::mesh::config::Profile::Lan);
        let ms = Duration::from_millis;
        // The node did not run from its first ping until well past the probe's verdict.
        let mut a = node_1_linked_to_5(t0);
        let (first, addr, target, seq) = until_first_ping(&mut a, t0);
        let woke = first + cfg.probe_span() + ms(400);
        assert!(woke - first - cfg.probe_span() > cfg.stall_after());
        a.handle_timeout(woke);
        transmits(&mut a);
        assert_eq!(a.local_health(), 1, "a stall raises local health");
        assert_eq!(a.member_by_addr(addr).map(|m| m.state), Some(State::Alive));
        // The ack that waited unread during the stall ends the probe well.
        let ack = Message::Ack {
            from: target,
            seq,
            updates: Vec::new(),
        };
        a.handle_datagram(woke + ms(1), first + ms(1), addr, ack);
        run(&mut a, woke + cfg.probe_span() * 2);
        assert_eq!(a.member_by_addr(addr).map(|m| m.state), Some(State::Alive));

        // Without an ack, the fresh window (scaled by the raised health) ends in a
        // suspicion, however late the node keeps waking: the grace is given once.
        let mut b = node_1_linked_to_5(t0);
        let (first, addr, _, _) = until_first_ping(&mut b, t0);
        let woke = first + cfg.probe_span() + ms(400);
        b.handle_timeout(woke);
        let window = cfg.probe_span() * (b.local_health() + 1);
        b.handle_timeout(woke + window + ms(400));
        assert_eq!(
            b.member_by_addr(addr).map(|m| m.state),
            Some(State::Suspect)
        );
    }

    /// Node 1, knowing 2..=5 but heard from none (a ping to 3 waits for a handshake),
    /// asked by node 2 to probe node 3: the relay, and the sequence number of its ping.
    fn relay_for_2_probing_3(t0: Instant) -> (Membership, u32) {
        let mut relay = node_1_knowing(5, t0);
        transmits(&mut relay);
        let req = Message::PingReq {
            from: peer(2),
            seq: 77,
            target: peer(3),
        };
        relay.handle_message(t0, req);
        let seq = transmits(&mut relay)
            .into_iter()
            .find_map(|t| match t.msg {
                Message::Ping { seq, target, .. } if target == peer_id(3) => Some(seq),
                _ => None,
            })
            .expect("the relay pings the target");
        (relay, seq)
    }

    /// The answers for node 2's ping-req (seq 77) among `sent`: acks and nacks.
    fn answers_to_2(sent: &[Transmit]) -> (usize, usize) {
        let to_2 = sent.iter().filter(|t| t.to == peer(2).addr);
        let acks = to_2
            .clone()
            .filter(|t| matches!(t.msg, Message::Ack { seq: 77, .. }));
        let nacks = to_2.filter(|t| matches!(t.msg, Message::Nack { seq: 77, .. }));
        (acks.count(), nacks.count())
    }

    #[test]
    fn a_relay_nacks_on_time_and_passes_on_an_ack_only_within_the_dial_allowance() {
        let t0 = Instant::now();
        let cfg = Config::for_profile(crate::mesh::config::Profile::Lan);
        let nack_at = t0 + cfg.probe_timeout.mul_f64(0.8);
        let forward_until = nack_at + cfg.dial_allowance();
        let ack_of = |seq| Message::Ack {
            from: peer_id(3),
            seq,
            updates: Vec::new(),
        };
        // The nack goes at 80 % of the probe timeout, as over an open link; an ack that
        // comes later is passed on while the requester's verdict may still wait for it.
        let (mut relay, seq) = relay_for_2_probing_3(t0);
        let sent = run(&mut relay, nack_at);
        assert_eq!(answers_to_2(&sent), (0, 1));
        let late = forward_until - Duration::from_millis(1);
        run(&mut relay, late);
        relay.handle_datagram(late, late, peer(3).addr, ack_of(seq));
        assert_eq!(answers_to_2(&transmits(&mut relay)), (1, 0));
        // Past the allowance it is not.
        let (mut relay, seq) = relay_for_2_probing_3(t0);
        run(&mut relay, forward_until);
        relay.handle_datagram(forward_until, forward_until, peer(3).addr, ack_of(seq));
        assert_eq!(answers_to_2(&transmits(&mut relay)), (0, 0));
    }

    #[test]
    fn wake_ups_on_time_leave_local_health_alone() {
        let t0 = Instant::now();
        let mut a = node_1_linked_to_5(t0);
        let (first, addr, target, seq) = until_first_ping(&mut a, t0);
        // Woken exactly at each deadline, the probe keeps its own times.
        let timeout = a.config().probe_timeout;
        let sent = run(&mut a, first + timeout);
        assert_eq!(ping_reqs_about(&sent, target), 3);
        assert_eq!(a.local_health(), 0);
        let ack = Message::Ack {
            from: target,
            seq,
            updates: Vec::new(),
        };
        let now = first + timeout + Duration::from_millis(1);
        a.handle_datagram(now, now, addr, ack);
        assert_eq!(a.local_health(), 0);
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

    #[test]
    fn unanswered_probe_goes_indirect_then_suspects_then_declares_dead() {
        let t0 = Instant::now();
        let mut a = node(1, t0);
        let others: Vec<Membership> = (2..=5).map(|n| node(n, t0)).collect();
        for (n, o) in (2..).zip(&others) {
            learn(&mut a, o, t0);
            // Heard from: the link is open, so the probe gets no dial allowance.
            a.handle_message(t0, gossip(n, Vec::new()));
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
}
