//! The state machine's timers: one [`Timer`] per kind of deadline, where its deadline
//! comes from ([`Membership::deadline`]) and what firing it does ([`Membership::fire`]).
//! [`Membership::poll_timeout`] is the earliest wake-up over [`Timer::ALL`], and
//! [`Membership::handle_timeout`] fires, in that order, every kind whose deadline has
//! passed. Both read this one table, so a deadline cannot be polled and never fired, or
//! fired and never polled. The work each timer does lives with its protocol part
//! (probing, suspicion, dissemination, sync, records), not here.

use std::time::Instant;

use super::apply::reap_check_interval;
use super::sync::ContactFollowUp;
use super::{Membership, Mode};

/// A kind of deadline; each has at most one pending deadline at a time. A new kind goes
/// into [`Timer::ALL`] too, at its place in the firing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    /// The probe in flight missed its direct ack: ask `indirect_checks` members to probe.
    IndirectProbe,
    /// The probe in flight got no ack, direct or relayed, within its span: suspect the
    /// target.
    ProbeVerdict,
    /// A suspicion this node only heard of outlived the minimum timeout: bring the next
    /// probe tick forward, so that this node checks the suspect itself.
    RumourCheck,
    /// Start the next probe (and introduce a member never heard from).
    ProbeTick,
    /// An indirect probe run for another node got no ack: send the requester a nack; or
    /// one past its forwarding time is forgotten.
    RelayNack,
    /// An armed suspicion timed out: declare the member dead.
    SuspicionTimeout,
    /// A gossip round.
    Gossip,
    /// A periodic push-pull sync with a random member.
    PushPull,
    /// Ask the contact that answered a join for its state again.
    ContactFollowUp,
    /// A rejoin attempt to a dead member and a contact.
    Rejoin,
    /// Forget members dead or left for longer than `reap_after`.
    Reap,
}

impl Timer {
    /// Every kind, in the order [`Membership::handle_timeout`] fires them. The order
    /// matters where one changes what a later one reads: a verdict ends the probe in
    /// flight before a rumour check brings the probe tick forward, which the tick then
    /// sees in the same call; a gossip round carries what the probe steps and suspicion
    /// timeouts before it queued.
    pub(super) const ALL: [Timer; 11] = [
        Timer::IndirectProbe,
        Timer::ProbeVerdict,
        Timer::RumourCheck,
        Timer::ProbeTick,
        Timer::RelayNack,
        Timer::SuspicionTimeout,
        Timer::Gossip,
        Timer::PushPull,
        Timer::ContactFollowUp,
        Timer::Rejoin,
        Timer::Reap,
    ];
}

/// When a timer is due, and when the driver must wake for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Deadline {
    /// [`Membership::handle_timeout`] fires the timer when called at or after this.
    pub(super) due: Instant,
    /// When [`Membership::poll_timeout`] asks to be woken for it: at `due`; later, when
    /// firing sooner can do nothing that firing then would not; or never (`None`), when
    /// firing only moves the timer's own schedule on.
    pub(super) wake: Option<Instant>,
}

impl Deadline {
    /// Due at `at`, and worth waking for then.
    fn at(at: Instant) -> Deadline {
        Deadline {
            due: at,
            wake: Some(at),
        }
    }
}

impl Membership {
    /// The pending deadline of `timer`, read from the state it belongs to; `None` when
    /// nothing of that kind is pending. A removed node has no timers, and one that left
    /// only gossips (its leave).
    pub(super) fn deadline(&self, timer: Timer) -> Option<Deadline> {
        match self.mode {
            Mode::Removed { .. } => return None,
            Mode::Left if timer != Timer::Gossip => return None,
            Mode::Left | Mode::Active => {}
        }
        match timer {
            Timer::IndirectProbe => self
                .probe
                .as_ref()
                .filter(|p| !p.acked && !p.indirect_sent)
                .map(|p| Deadline::at(p.ack_deadline)),
            Timer::ProbeVerdict => self
                .probe
                .as_ref()
                .filter(|p| !p.acked)
                .map(|p| Deadline::at(p.verdict_at)),
            // Acted on once due (the tick comes forward to the verdict of the probe in
            // flight), but no wake-up before that verdict: nothing could be done sooner.
            Timer::RumourCheck => self.suspicions.next_verification().map(|at| Deadline {
                due: at,
                wake: Some(self.earliest_tick(at)),
            }),
            // A probe given longer than its span (a dial allowance, a stall's fresh
            // window) keeps it: the next tick waits for its verdict.
            Timer::ProbeTick => Some(Deadline::at(self.earliest_tick(self.next_probe))),
            Timer::RelayNack => self
                .relays
                .iter()
                .map(|r| {
                    if r.nacked {
                        r.forward_until
                    } else {
                        r.deadline
                    }
                })
                .min()
                .map(Deadline::at),
            Timer::SuspicionTimeout => self.suspicions.next_deadline().map(Deadline::at),
            // With nothing queued a round only moves the schedule on: it runs when due,
            // but is not worth a wake-up.
            Timer::Gossip => {
                let due = self.gossip_due();
                Some(Deadline {
                    due,
                    wake: (!self.broadcasts.is_empty()).then_some(due),
                })
            }
            Timer::PushPull => Some(Deadline::at(self.next_push_pull)),
            Timer::ContactFollowUp => match self.contact_follow_up {
                ContactFollowUp::Due { at, .. } => Some(Deadline::at(at)),
                _ => None,
            },
            Timer::Rejoin => Some(Deadline::at(self.next_rejoin)),
            Timer::Reap => Some(Deadline::at(self.next_reap)),
        }
    }

    /// Does what `timer` is for, at `now` (it is due), and schedules its next deadline
    /// where the timer keeps one of its own.
    pub(super) fn fire(&mut self, timer: Timer, now: Instant) {
        match timer {
            Timer::IndirectProbe => self.send_indirect_probes(now),
            Timer::ProbeVerdict => {
                if let Some(p) = self.probe.take() {
                    self.probe_failed(now, p);
                }
            }
            Timer::RumourCheck => self.probe_soon(now),
            Timer::ProbeTick => {
                self.probe_tick(now);
                self.introduce(now);
            }
            Timer::RelayNack => self.expire_relays(now),
            Timer::SuspicionTimeout => {
                for (id, suspicion) in self.suspicions.take_expired(now) {
                    self.suspicion_expired(now, id, suspicion);
                }
            }
            Timer::Gossip => self.gossip_round(now, self.config.gossip_fanout),
            Timer::PushPull => {
                self.push_pull_tick();
                self.next_push_pull = now + self.config.push_pull_interval_for(self.live_count + 1);
            }
            Timer::ContactFollowUp => self.ask_contact_again(),
            Timer::Rejoin => {
                self.rejoin_tick();
                self.next_rejoin = now + self.config.rejoin_interval;
            }
            Timer::Reap => {
                self.reap(now);
                self.next_reap = now + reap_check_interval(&self.config);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    /// Every deadline of `m` (kind, due, wake), as the table holds it.
    fn table(m: &Membership) -> Vec<(Timer, Deadline)> {
        Timer::ALL
            .into_iter()
            .filter_map(|t| m.deadline(t).map(|d| (t, d)))
            .collect()
    }

    #[test]
    fn the_table_lists_every_kind_once() {
        for (i, a) in Timer::ALL.iter().enumerate() {
            assert!(
                Timer::ALL[i + 1..].iter().all(|b| a != b),
                "{a:?} is listed twice"
            );
        }
    }

    #[test]
    fn poll_timeout_is_the_earliest_wake_up_and_handle_timeout_fires_what_is_due() {
        // Given a node that knows four members and has run for a while,
        let t0 = Instant::now();
        let mut a = node_1_knowing(5, t0);
        let mut now = t0;
        for _ in 0..200 {
            // the wake-up it asks for is the earliest of its table,
            let wake = a.poll_timeout();
            let earliest = table(&a).into_iter().filter_map(|(_, d)| d.wake).min();
            assert_eq!(wake, earliest);
            let Some(at) = wake else {
                panic!("an active node always has a timer");
            };
            // and at that time every kind then due is fired: none is left due after.
            now = now.max(at);
            a.handle_timeout(now);
            transmits(&mut a);
            let still_due: Vec<Timer> = table(&a)
                .into_iter()
                .filter(|(_, d)| d.wake.is_some_and(|w| w <= now) && d.due <= now)
                .map(|(t, _)| t)
                .collect();
            assert!(
                still_due.iter().all(|t| *t == Timer::RumourCheck),
                "still due after handle_timeout: {still_due:?}"
            );
        }
    }

    #[test]
    fn a_removed_node_has_no_timers_and_one_that_left_only_gossips() {
        let t0 = Instant::now();
        let (mut a, _) = nodes_1_and_2_knowing_each_other(t0);
        a.leave(t0);
        let kinds: Vec<Timer> = table(&a).into_iter().map(|(t, _)| t).collect();
        assert_eq!(kinds, vec![Timer::Gossip]);
        let mut b = node(3, t0);
        b.restore(
            t0,
            &Snapshot {
                me: peer(3),
                incarnation: 1,
                removed: true,
                peers: Vec::new(),
                contacts: Vec::new(),
            },
        );
        assert!(table(&b).is_empty());
        assert_eq!(b.poll_timeout(), None);
    }
}
