//! Changing this node's tags while it runs: the new tags replace the old under a raised
//! incarnation, so every member takes the new alive record over the one it holds, and
//! the announcement is gossiped at once. How the announcement is merged on arrival is
//! `apply`'s; how it travels is `gossip`'s.

use std::time::Instant;

use crate::mesh::member::{State, Tags, cap_tags};

use super::{Membership, Mode};

impl Membership {
    /// Replaces this node's tags (cut to
    /// [`MAX_TAGS_BYTES`](crate::mesh::member::MAX_TAGS_BYTES) if needed) and announces
    /// them: the incarnation is raised, the alive announcement queued and a gossip round
    /// run now. Returns false, changing nothing, when the tags are the ones in force. A
    /// node that has left or was removed keeps the new tags, announcing nothing: they
    /// travel with its next alive announcement, when it is active again.
    pub fn set_tags(&mut self, now: Instant, tags: Tags) -> bool {
        let tags = cap_tags(tags);
        if tags == self.me.tags {
            return false;
        }
        self.me.tags = tags;
        if self.mode != Mode::Active || self.me.state != State::Alive {
            return true;
        }
        self.me.incarnation = self.me.incarnation.saturating_add(1);
        self.queue_self_alive();
        self.gossip_round(now, self.config.gossip_fanout);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Hands every datagram `from` sent to `to`, if addressed to it.
    fn deliver(sent: Vec<Transmit>, to: &mut Membership, now: Instant) {
        let addr = to.me().peer.addr;
        for t in sent {
            if t.to == addr && !t.msg.is_stream() {
                to.handle_message(now, t.msg);
            }
        }
    }

    #[test]
    fn new_tags_raise_the_incarnation_and_are_gossiped_at_once() {
        let t0 = Instant::now();
        let (mut a, mut b) = nodes_1_and_2_knowing_each_other(t0);
        transmits(&mut a);
        transmits(&mut b);
        events(&mut b);
        let before = a.me().incarnation;
        // Spend what the joins queued, so the round below carries only the new tags.
        let t1 = t0 + Duration::from_secs(10);
        run(&mut a, t1);
        assert!(a.set_tags(t1, tags(&[("role", "db")])));
        assert_eq!(a.me().incarnation, before + 1);
        assert_eq!(a.me().tags, tags(&[("role", "db")]));
        // Sent now, without waiting for a timer.
        let sent = transmits(&mut a);
        let announced = sent.iter().any(|t| {
            t.to == peer(2).addr
                && matches!(&t.msg, Message::Gossip { updates, .. } if updates.iter().any(|u| matches!(
                    u,
                    Update::Alive { peer: p, incarnation, tags: tg }
                        if *p == peer(1) && *incarnation == before + 1 && *tg == tags(&[("role", "db")])
                )))
        });
        assert!(announced, "{sent:?}");
        // b takes them over the record it held: same member, alive, new tags.
        deliver(sent, &mut b, t1);
        let seen = b.member(peer(1).id).expect("b knows a");
        assert_eq!(seen.tags, tags(&[("role", "db")]));
        assert_eq!(seen.state, State::Alive);
        assert_eq!(seen.incarnation, before + 1);
        assert_eq!(events(&mut b), vec![Event::MemberUpdated(peer(1))]);
    }

    #[test]
    fn the_same_tags_change_nothing() {
        let t0 = Instant::now();
        let mut a = node_1_knowing_2(t0);
        assert!(a.set_tags(t0, tags(&[("dc", "ams1")])));
        transmits(&mut a);
        let incarnation = a.me().incarnation;
        let queued = a.queued_updates();
        assert!(!a.set_tags(t0, tags(&[("dc", "ams1")])));
        assert_eq!(a.me().incarnation, incarnation);
        assert_eq!(a.queued_updates(), queued);
        assert!(transmits(&mut a).is_empty());
    }

    #[test]
    fn tags_reach_a_member_that_missed_the_gossip_by_push_pull() {
        let t0 = Instant::now();
        let (mut a, mut b) = nodes_1_and_2_knowing_each_other(t0);
        transmits(&mut a);
        transmits(&mut b);
        assert!(a.set_tags(t0, tags(&[("role", "web")])));
        // The gossip is lost; b's next sync with a carries the new record.
        transmits(&mut a);
        let reply = a.handle_push_pull(t0, b.push_pull_request(false));
        b.handle_message(t0, Message::PushPull(reply));
        assert_eq!(
            b.member(peer(1).id).map(|m| m.tags),
            Some(tags(&[("role", "web")]))
        );
    }

    #[test]
    fn oversized_tags_are_cut_and_a_left_node_announces_nothing() {
        let t0 = Instant::now();
        let mut a = node_1_knowing_2(t0);
        let big: Tags = (0..100)
            .map(|i| (format!("key{i:03}"), "v".repeat(20)))
            .collect();
        assert!(a.set_tags(t0, big.clone()));
        assert!(a.me().tags.len() < big.len() && !a.me().tags.is_empty());
        a.leave(t0);
        transmits(&mut a);
        let incarnation = a.me().incarnation;
        assert!(a.set_tags(t0, tags(&[("role", "db")])));
        assert_eq!(a.me().incarnation, incarnation);
        assert!(transmits(&mut a).is_empty());
        // Joining again announces the tags set meanwhile.
        a.join(t0, &[peer(2).addr]);
        let sent = transmits(&mut a);
        let carries = sent.iter().any(|t| match &t.msg {
            Message::PushPull(pp) => pp
                .members
                .iter()
                .any(|m| m.peer == peer(1) && m.tags == tags(&[("role", "db")])),
            _ => false,
        });
        assert!(carries, "{sent:?}");
    }
}
