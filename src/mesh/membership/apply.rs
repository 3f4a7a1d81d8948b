//! Applying what others say: updates (from pings, acks, gossip) and member states (from
//! push-pulls) merged into this node's records by incarnation and state precedence,
//! members added, updated, declared dead or left, and forgotten. Suspicions and claims
//! about this node are handed to `suspect`; what to announce in turn goes to `gossip`.

use std::time::{Duration, Instant};

use crate::mesh::NodeId;
use crate::mesh::config::Config;
use crate::mesh::member::{HealthSummary, Peer, State, Tags};
use crate::mesh::message::{MemberState, Update};
use crate::mesh::record::{Record, addr_hash, id_hash};

use super::{Event, Membership, Mode, stamp};

impl Membership {
    /// Applies the updates a datagram carried, in order, while this node is active.
    pub(super) fn apply_updates(&mut self, now: Instant, updates: Vec<Update>) {
        for update in updates {
            // An update may remove this node (or record its leave): the rest of the
            // datagram is about a mesh it is no longer part of, as in `merge`.
            if self.mode != Mode::Active {
                return;
            }
            self.apply_update(now, update);
        }
    }

    /// Applies one update.
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

    /// Merges the member states of a push-pull from `from`: a remote "dead" counts as a
    /// suspicion by `from`.
    pub(super) fn merge(&mut self, now: Instant, from: Peer, states: Vec<MemberState>) {
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

    /// `peer` is alive at `incarnation` with `tags`: a new member, a refutation, or a change
    /// of address or tags.
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

    /// A death of `id` at `incarnation`, declared by `by`.
    pub(super) fn on_dead(&mut self, now: Instant, id: NodeId, incarnation: u64, by: NodeId) {
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

    /// `id` left at `incarnation` (`by == id`), or was removed by `by`.
    pub(super) fn on_left(&mut self, now: Instant, id: NodeId, incarnation: u64, by: NodeId) {
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
        self.forget_contact(peer.addr);
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

    /// A health summary of `id`, kept if newer (by incarnation, then version) than the one
    /// held.
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
        self.push_event(Event::MemberHealth(peer));
        self.broadcasts.push(Update::Health {
            id,
            incarnation,
            summary,
        });
    }

    /// Moves the member in slot `i` to `state`, keeping `live_count`.
    pub(super) fn set_state(&mut self, i: usize, state: State, now: Instant) {
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

    /// Forgets the members dead or left for longer than `reap_after`.
    pub(super) fn reap(&mut self, now: Instant) {
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
}

/// How often dead/left members are checked for reaping.
pub(super) fn reap_check_interval(config: &Config) -> Duration {
    (config.reap_after / 20).max(Duration::from_millis(100))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use rand::rngs::SmallRng;
    use rand::{RngExt, SeedableRng};

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
            erroring_names: Vec::new(),
            names_omitted: 0,
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
            erroring_names: Vec::new(),
            names_omitted: 0,
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
}
