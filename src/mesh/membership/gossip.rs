//! Dissemination: when gossip rounds run and to whom, packing queued updates into
//! every datagram this node sends (piggyback), and what this node says about a member.
//! The queue itself (priorities, transmit counts) is `crate::mesh::broadcast`'s; what an
//! update does on arrival is `apply`'s.

use std::net::SocketAddr;
use std::time::Instant;

use rand::RngExt;

use crate::mesh::NodeId;
use crate::mesh::cbor_len::encoded_len;
use crate::mesh::member::{Peer, State, Tags};
use crate::mesh::message::{Message, Update};
use crate::mesh::record::Record;

use super::{Membership, stamp};

/// Room kept free in a datagram for the growth of the update array header.
const ARRAY_HEADER_SLACK: usize = 4;

impl Membership {
    /// When the next gossip round is due: `gossip_interval` after the last one, or
    /// `fresh_gossip_interval` after it while news (a full update) waits that was never
    /// sent and this node's local health is good. A node whose local health score is up
    /// (it missed acks, had to refute, or stalled) keeps the normal pace: on a host short
    /// of CPU the hurried rounds would add to the load behind the missed acks, and the
    /// suspicions they carry would bring more news to hurry.
    pub(super) fn gossip_due(&self) -> Instant {
        if self.broadcasts.has_unsent_news() && self.awareness.score() == 0 {
            self.next_gossip
                .min(self.last_gossip + self.config.fresh_gossip_interval)
        } else {
            self.next_gossip
        }
    }

    /// One gossip round to `fanout` random members (nothing when no update waits); the
    /// next is scheduled from `now`.
    pub(super) fn gossip_round(&mut self, now: Instant, fanout: usize) {
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
        let heard_since = self.linked_since(now);
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

    /// Sends a datagram that carries `first` plus as many queued updates as fit.
    pub(super) fn send_with_updates(
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

    /// Queues the alive announcement of the member in slot `i` (by reference: it is
    /// built from the record when sent).
    pub(super) fn queue_alive(&mut self, i: usize) {
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
    pub(super) fn queue_about(&mut self, i: usize, update: Update) {
        self.broadcasts.cancel_ref(i as u32);
        self.broadcasts.push(update);
    }

    /// Up to `k` distinct random members matching `filter` (bounded random tries, then
    /// a scan, so it is cheap in big meshes and exact in small ones).
    pub(super) fn random_members(
        &mut self,
        k: usize,
        filter: impl Fn(&Record) -> bool,
    ) -> Vec<Peer> {
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
    pub(super) fn update_for(&self, m: &Record) -> Update {
        self.update_of(
            m.peer(),
            m.incarnation(),
            m.state(),
            m.suspected_by(),
            || m.tags(),
        )
    }

    pub(super) fn update_for_me(&self) -> Update {
        let me = &self.me;
        self.update_of(me.peer, me.incarnation, me.state, me.suspected_by, || {
            me.tags.clone()
        })
    }

    /// The update stating `state` about `peer` at `incarnation`.
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
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

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
        // Nobody answered its probes, which raised its local health score; the short
        // pace is a healthy node's (see the next test).
        assert!(m.local_health() > 0);
        m.awareness.apply(-i64::from(m.local_health()));
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
        m.awareness.apply(-i64::from(m.local_health()));
        m.handle_message(t2 + Duration::from_millis(1), gossip(4, vec![left(4)]));
        let sent = run(&mut m, t2 + fresh - Duration::from_millis(1));
        assert!(gossip_rounds(&sent).is_empty(), "{sent:?}");
        let sent = run(&mut m, t2 + fresh);
        let rounds = gossip_rounds(&sent);
        assert!(!rounds.is_empty(), "{sent:?}");
        assert!(rounds.iter().all(|u| u.contains(&left(4))), "{rounds:?}");
    }

    fn left(n: u8) -> Update {
        Update::Left {
            id: NodeId([n; 16]),
            incarnation: 0,
            by: NodeId([n; 16]),
        }
    }

    fn gossip_rounds(sent: &[Transmit]) -> Vec<Vec<Update>> {
        sent.iter()
            .filter_map(|t| match &t.msg {
                Message::Gossip { updates, .. } => Some(updates.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_node_in_poor_local_health_sends_news_at_the_normal_pace() {
        let t0 = Instant::now();
        let mut m = node_1_knowing(5, t0);
        let normal = m.config.gossip_interval;
        let t1 = t0 + Duration::from_secs(10);
        run(&mut m, t1);
        assert_eq!(m.queued_updates(), 0);
        assert!(m.local_health() > 0, "unanswered probes raise local health");
        // The news waits for the next round of the normal pace, not `fresh` after the
        // last round...
        m.handle_message(t1, gossip(3, vec![left(3)]));
        assert_eq!(m.next_gossip, m.last_gossip + normal);
        assert_eq!(m.gossip_due(), m.next_gossip);
        // ...and goes out with it.
        let due = m.gossip_due().max(t1);
        m.handle_timeout(due);
        let sent = transmits(&mut m);
        let rounds = gossip_rounds(&sent);
        assert!(!rounds.is_empty(), "{sent:?}");
        assert!(rounds.iter().all(|u| u.contains(&left(3))), "{rounds:?}");
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
}
