//! Full-state sync: push-pull answers (full state or digest), the replies to this
//! node's own syncs, the follow-ups with the contact that answered a join, syncs with
//! unknown senders, periodic push-pulls and rejoin attempts, and this node's state as a
//! push-pull carries it. Merging the states a sync brings is `apply`'s business.

use std::net::SocketAddr;
use std::time::Instant;

use rand::RngExt;

use crate::mesh::NodeId;
use crate::mesh::digest::{StateDigest, StateView};
use crate::mesh::member::{Peer, State};
use crate::mesh::message::{MemberState, Message, PushPull};

use super::{Membership, Mode, allow_once_per};

/// Unknown senders remembered for [`Config::unknown_sender_sync_every`] (a bound against
/// a flood of made-up ids).
///
/// [`Config::unknown_sender_sync_every`]: crate::mesh::Config::unknown_sender_sync_every
const MAX_UNKNOWN_SYNCS: usize = 1024;

/// Where the follow-up syncs with a join's contact stand (see
/// [`Config::contact_follow_ups`](crate::mesh::Config::contact_follow_ups)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ContactFollowUp {
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
    /// The answer to a push-pull this node started (a periodic sync, a join, a
    /// follow-up): merge what it brings, follow up a join's contact, and send everything
    /// back if the peer still lacks something of ours.
    pub(super) fn on_push_pull_reply(&mut self, now: Instant, pp: PushPull) {
        // A digest and no members: the peer holds what we hold.
        if pp.members.is_empty() {
            self.follow_up_answered(now, pp.from, false);
            return;
        }
        // If it taught us members we did not know, the mesh is still forming (a
        // mass join): sync again soon rather than wait a full push-pull interval
        // for what gossip missed.
        let known = self.members.len();
        let (peer, theirs) = (pp.from, pp.digest);
        self.quiet = self.contact_follow_up == ContactFollowUp::AwaitingJoinReply { alone: true };
        self.merge(now, pp.from, pp.members);
        self.quiet = false;
        let taught = self.members.len() > known;
        if taught {
            self.schedule_join_sync(now);
        }
        self.follow_up_answered(now, peer, taught);
        // The answer to our digest differed, and after taking its states we still
        // differ: the peer lacks something of ours, so send it everything.
        if theirs.is_some_and(|theirs| theirs != self.state_digest()) && peer.id != self.me.peer.id
        {
            let req = self.push_pull_request(false);
            self.send(peer.addr, Message::PushPull(req));
        }
    }

    /// The reply to a push-pull request from an active node: a digest alone when the
    /// request was a digest equal to ours, our states when it differed, and our states
    /// after merging theirs when it carried them.
    ///
    /// A node that knows no members and is asked to join (`werify ctl add` run on a member
    /// of a mesh, naming this node) learns that whole mesh from the request, and does not
    /// announce it: the asking node holds every member already and announces this one, as
    /// a contact does for a node that joins it (see [`Membership::join_request`]). Announcing
    /// would send the N members as news nobody lacks, each to random members this node has
    /// never met (a handshake each), for every host added. It then follows the requester
    /// up as a joining node follows up its contact (see [`ContactFollowUp`]).
    pub(super) fn answer_push_pull(&mut self, now: Instant, req: PushPull) -> PushPull {
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
        let added_alone = req.join && self.members.len() == 0;
        self.quiet = added_alone;
        self.merge(now, req.from, req.members);
        self.quiet = false;
        if added_alone && self.members.len() > 0 {
            // Added through the requester as if it had joined through it: the requester
            // hears of the hosts added after this one first, so ask it again (and sync
            // with a random member later), instead of waiting for their announcements to
            // find their way here through a mesh whose links are still few.
            self.schedule_join_sync(now);
            self.contact_follow_up = ContactFollowUp::Due {
                contact: req.from,
                at: now + self.config.contact_follow_up_gap(0),
                asked: 0,
                idle: 0,
            };
        }
        self.push_pull_request(false)
    }

    /// Syncs with `sender` at `addr`, which this node does not know (see
    /// [`Membership::handle_message_from`]), unless it did so lately.
    pub(super) fn sync_with_unknown_sender(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        sender: NodeId,
    ) {
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

    /// A follow-up with the join's contact is due: ask it again if it is still alive,
    /// otherwise stop following it up.
    pub(super) fn ask_contact_again(&mut self) {
        let ContactFollowUp::Due {
            contact,
            asked,
            idle,
            ..
        } = self.contact_follow_up
        else {
            return;
        };
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

    /// A push-pull answer from `from` arrived (`taught`: it brought members this node did
    /// not know): the first answer after a join request names the contact to follow up, and
    /// the contact's answer to a follow-up brings the next while any are left and the contact
    /// still has news now and then (see [`Config::contact_follow_ups_idle`]).
    fn follow_up_answered(&mut self, now: Instant, from: Peer, taught: bool) {
        self.contact_follow_up = match self.contact_follow_up {
            ContactFollowUp::AwaitingJoinReply { .. } => ContactFollowUp::Due {
                contact: from,
                at: now + self.config.contact_follow_up_gap(0),
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
                        at: now + self.config.contact_follow_up_gap(asked),
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

    /// The periodic sync: a digest to one random alive member.
    pub(super) fn push_pull_tick(&mut self) {
        let targets = self.random_members(1, |m| m.state() == State::Alive);
        if let Some(peer) = targets.first() {
            let req = self.sync_request();
            self.send(peer.addr, Message::PushPull(req));
        }
    }

    /// A rejoin attempt: a join request to one random dead member and one contact that is not
    /// a live member, so that a healed partition merges again.
    pub(super) fn rejoin_tick(&mut self) {
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

    /// This node's own state as a push-pull carries it (a removed node's says so).
    pub(super) fn own_state(&self) -> MemberState {
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

    /// Every member's state, this node's first, as a push-pull carries them.
    pub(super) fn member_states(&self) -> Vec<MemberState> {
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
    pub(super) fn state_digest(&self) -> StateDigest {
        let me = self.own_state();
        StateDigest::from_sum(
            StateView::of(&me)
                .digest_term()
                .wrapping_add(self.members.digest_sum()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use crate::mesh::digest::StateDigest;

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
    fn a_node_added_alone_learns_the_mesh_from_the_request_without_announcing_it() {
        let t0 = Instant::now();
        // Node 2 knows nodes 3..20 and adds node 1, which is alone (`ctl add` on node 2).
        let mut hub = node_knowing(2, 3..20, t0);
        let mut added = node(1, t0);
        let reply = added.handle_push_pull(t0, hub.join_request(t0));
        assert_eq!(added.known_members(), 18);
        assert_eq!(
            added.queued_updates(),
            0,
            "the members a join request taught are no news"
        );
        assert_eq!(events(&mut added).len(), 18, "each is still reported");
        // The adding node announces the newcomer.
        let before = hub.queued_updates();
        hub.handle_message(t0, Message::PushPull(reply));
        assert_eq!(hub.queued_updates(), before + 1);
        // It asks the adding node again, as a joining node asks its contact.
        let asked: Vec<_> = run(&mut added, t0 + Duration::from_millis(60))
            .into_iter()
            .filter(|t| matches!(t.msg, Message::PushPull(_)) && t.to == peer(2).addr)
            .collect();
        assert!(!asked.is_empty(), "no follow-up with the adding node");
        // A node that knows members (two meshes merging) announces what it learns.
        let mut other = node_knowing(30, 31..33, t0);
        transmits(&mut other);
        other.handle_push_pull(t0, hub.join_request(t0));
        assert!(other.queued_updates() >= 18, "{}", other.queued_updates());
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
            erroring_names: Vec::new(),
            names_omitted: 0,
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

    #[test]
    fn the_contact_that_answered_a_join_is_asked_again_a_few_times() {
        let t0 = Instant::now();
        let lan = Config::for_profile(Profile::Lan);
        let after = lan.gossip_interval / lan.contact_follow_ups_per_gossip;
        // The follow-ups span seconds: without probes (whose failures would mark the
        // members learned here dead, to be rejoined), the later sync with a random member
        // and the periodic one, every push-pull `a` sends is a follow-up.
        let mut only_follow_ups = lan.clone();
        only_follow_ups.join_sync_after_gossips = 100_000;
        only_follow_ups.push_pull_interval = Duration::from_secs(3600);
        only_follow_ups.rejoin_interval = Duration::from_secs(3600);
        only_follow_ups.probe_interval = Duration::from_secs(3600);
        let mut a = Membership::new(peer(1), Tags::new(), only_follow_ups, 1, t0);
        let mut contact = node(2, t0);
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
            // Not asked again before the gap is over, then asked.
            let gap = lan.contact_follow_up_gap(asked as u8);
            if gap > after {
                a.handle_timeout(now + gap - after);
                assert!(
                    push_pull_targets(&transmits(&mut a)).is_empty(),
                    "asked early"
                );
            }
            now += gap;
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
    fn a_contact_added_without_a_join_is_tried_each_rejoin_until_forgotten() {
        let t0 = Instant::now();
        let mut cfg = Config::for_profile(Profile::Lan);
        cfg.probe_interval = Duration::from_secs(3600);
        cfg.push_pull_interval = Duration::from_secs(3600);
        let every = cfg.rejoin_interval;
        let mut a = Membership::new(peer(1), Tags::new(), cfg, 1, t0);
        let slow = peer(2).addr;
        assert!(a.add_contact(slow));
        // Nothing is sent now: the add that found no answer just tried.
        assert!(push_pull_targets(&transmits(&mut a)).is_empty());
        assert!(a.snapshot().contacts.contains(&slow));
        // Each rejoin interval sends it a join request, while it is not a member.
        let mut now = t0;
        for _ in 0..3 {
            now += every;
            a.handle_timeout(now);
            assert_eq!(push_pull_targets(&transmits(&mut a)), vec![slow]);
        }
        // Forgotten, it is not tried again; forgetting twice finds nothing.
        assert!(a.forget_contact(slow));
        assert!(!a.forget_contact(slow));
        for _ in 0..3 {
            now += every;
            a.handle_timeout(now);
            assert!(push_pull_targets(&transmits(&mut a)).is_empty());
        }
        // This node's own address is never a contact.
        assert!(a.add_contact(peer(1).addr));
        assert!(!a.snapshot().contacts.contains(&peer(1).addr));
    }
}
