//! Suspicion and refutation: suspecting a member (Lifeguard's confirmations, early
//! verifiers, the armed timer only nodes with evidence run), declaring it dead when the
//! timeout passes, telling stale accusers, and answering claims about this node by
//! raising its incarnation (or going quiet when it was removed). The timer bookkeeping
//! itself is `crate::mesh::suspicion`'s; the probes that produce the evidence are
//! `probe`'s.

use std::collections::VecDeque;
use std::time::Instant;

use rand::RngExt;

use crate::mesh::NodeId;
use crate::mesh::member::State;
use crate::mesh::message::{Message, Update};
use crate::mesh::record::Record;
use crate::mesh::suspicion::Suspicion;

use super::probe::ProbeRound;
use super::{Event, Membership, Mode, allow_once_per, unstamp_some};

/// (member, accuser) pairs remembered for rate-limiting stale-accusation corrections.
const MAX_CORRECTIONS: usize = 4096;

impl Membership {
    /// A suspicion of `id` at `incarnation` by `by`: starts (or confirms) it, arms the timer
    /// when the evidence is this node's own, and may make this node an early verifier.
    pub(super) fn on_suspect(&mut self, now: Instant, id: NodeId, incarnation: u64, by: NodeId) {
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

    /// An armed suspicion reached its timeout: the member is declared dead, unless the
    /// suspect has not been told of it since this node came back from a silence.
    pub(super) fn suspicion_expired(&mut self, now: Instant, id: NodeId, suspicion: Suspicion) {
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

    /// A member whose suspicion this node holds an armed timer for and has not probed
    /// for two probe periods. Probing it again (the ping carries the suspicion) gives it
    /// another chance to refute, even if our accusation never spread (e.g. we were the
    /// ones cut off while we accused it). The gap is in unscaled probe periods: a node
    /// that was cut off comes back with a high awareness score (slow ticks), and a gap
    /// scaled by it would let a lone accusation made while cut off (whose gossip went
    /// nowhere) reach its timeout before the suspect was ever told. This only picks which member
    /// a tick probes; it adds no probes.
    pub(super) fn suspect_due_for_reprobe(&self, now: Instant) -> Option<NodeId> {
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
    pub(super) fn rumour_due_for_check(&mut self, now: Instant) -> Option<NodeId> {
        while let Some(id) = self.suspicions.take_due_verification(now) {
            if self.rec(id).is_some_and(|m| m.state() == State::Suspect) {
                return Some(id);
            }
        }
        None
    }

    /// An accusation by `by` about member `i` is older than the refutation we hold: tell
    /// the accuser directly (at most once per probe interval per pair). The accuser may
    /// hold an armed suspicion timer and have missed the refutation's gossip; the
    /// rumour-holders that relay its stale accusation are the ones that can tell it.
    pub(super) fn correct_accuser(&mut self, now: Instant, i: usize, by: NodeId) {
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
    pub(super) fn on_self_accused(&mut self, incarnation: u64, by: NodeId) {
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
    pub(super) fn on_self_left(&mut self, incarnation: u64, by: NodeId) {
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

    /// Raises this node's incarnation above `accused_incarnation` and announces it (with the
    /// health summary, if any).
    pub(super) fn refute(&mut self, accused_incarnation: u64, by: Option<NodeId>) {
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

    /// Queues this node's alive announcement at its current incarnation.
    pub(super) fn queue_self_alive(&mut self) {
        self.broadcasts.push(Update::Alive {
            peer: self.me.peer,
            incarnation: self.me.incarnation,
            tags: self.me.tags.clone(),
        });
    }

    /// Queues this node's health summary, if it has one.
    pub(super) fn queue_self_health(&mut self) {
        if let Some(summary) = &self.me.health {
            self.broadcasts.push(Update::Health {
                id: self.me.peer.id,
                incarnation: self.me.health_incarnation,
                summary: summary.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

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
                // Heard from: probes of it get no dial allowance.
                a.handle_message(t0, gossip(n, Vec::new()));
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
}
