//! Membership tuning: the [`Profile`] presets (`lan`, `wan`, `local`), the [`Config`] they
//! produce, and the pure formulas (suspicion timeout, retransmit limit, push-pull scaling)
//! that turn a config plus a cluster size into numbers. No state and no I/O live here.
//!
//! The formulas follow HashiCorp memberlist (`util.go`, `suspicion.go`) and the Lifeguard
//! paper (Dadgar et al., DSN-W 2018); the numbers are tuned for werify's targets (see
//! [`Profile::Lan`]). Every number the state machine uses is a [`Config`] field; what
//! is left as a constant there bounds memory, not behaviour.
//!
//! # How the numbers are used
//!
//! A probe's verdict comes after twice its timeout (the direct ack's wait, then as long
//! again for the indirect probers' relayed acks), or at the next probe if that is sooner
//! ([`Config::probe_span`]). The suspicion timeout is counted in those verdict times
//! (`lan`: 300 ms), since it is the suspect's time to hear of the suspicion and refute
//! it, which does not depend on how often probes start.
//!
//! Lifeguard's refinements are always on:
//! - nacks from indirect probers, picked first among members heard from lately
//!   ([`Config::relay_heard_within_probes`]), so that a missing nack points at this
//!   node's own path and not at a partition's far side;
//! - a local health score that stretches a slow node's own probe interval and timeout
//!   ([`Config::awareness_max`]);
//! - suspicion timeouts that shrink as independent confirmations arrive
//!   ([`Config::suspicion_confirmations`], [`suspicion_timeout`]);
//! - suspicions piggybacked on pings to the suspect, so that it can refute at once.
//!
//! Only nodes with their own evidence (the accuser, and nodes whose own probe failed)
//! run a suspicion timer; the others re-probe the suspect themselves, which keeps false
//! "dead" verdicts away under packet loss. A few of them, picked at random (about
//! [`Config::early_verifiers_spare`] more than the confirmations wanted), do so at once
//! (their next probe is brought forward), so that a crashed node's accuser has its
//! confirmations before the minimum timeout runs out; the others check when that
//! timeout passes, again without waiting for their turn. A node that was cut off
//! (nothing heard for a probe interval) holds back the verdict of a suspicion it
//! raised, once, until it has pinged the suspect again after coming back: its earlier
//! pings told nobody.
//!
//! The periodic push-pull (anti-entropy, [`Config::push_pull_interval`]) opens with a
//! 128-bit digest of the sender's member states; a peer holding the same states answers
//! with its digest alone, so a settled mesh's syncs cost two small messages, and full
//! member lists travel only between views that differ (and on joins).
//!
//! News (a suspicion, a death, a leave, a refutation) is gossiped at once and passed on
//! at a short pace ([`Config::fresh_gossip_interval`]) until every holder has sent it
//! once; alive announcements and health results keep the normal pace
//! ([`Config::gossip_interval`]). Gossip goes to members heard from within
//! [`Config::gossip_heard_within`], whose link is open; only while a round carries news
//! may one target be a member never met, since that costs a QUIC handshake first.
//!
//! A node that joins through a contact asks that contact again, 50 ms apart on `lan`
//! ([`Config::contact_follow_ups_per_gossip`]) for the first few asks and then twice as
//! far apart each time ([`Config::contact_follow_ups_rapid`]), over the link it already
//! holds (a digest, answered with the contact's state only when it changed): in a mass
//! join the contact hears of every joiner first. It stops after
//! [`Config::contact_follow_ups`] asks, or after [`Config::contact_follow_ups_idle`] in a
//! row that brought nothing new.
//! A node that knew nobody when it joined does not re-announce what the contact taught
//! it; the contact spreads its own news. Some gossip intervals after a join
//! ([`Config::join_sync_after_gossips`]) the node syncs once more, with a random member.
//!
//! Pairs of nodes meet by probes, and once no new member came for
//! [`Config::introduce_after_quiet`], each probe tick also pings one member never heard
//! from ("introductions"), so that all pairs of a fresh mesh have met in about half a
//! probe round.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A named set of tuning numbers. `lan` is the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Hosts on one LAN or data centre (sub-millisecond to few-millisecond RTT).
    ///
    /// Tuned so that, on 64 nodes, a `kill -9` is noticed by everyone within a few seconds
    /// while 10% packet loss marks no healthy node dead, at fewer idle bytes than Serf's
    /// one probe a second (a ping, an ack and a QUIC ACK are ~230 bytes). Stated bounds,
    /// checked in the simulator (`tests/sim.rs`, 1–2 ms links): a crashed node is seen
    /// dead by all 64 within 10 s (median ≤ 3 s); 128 nodes at 10% loss for 5 min see
    /// zero false deaths; a healed 50/50 partition of 100 nodes is whole again within
    /// 30 s. Numbers: probe every 800 ms, timeout 150 ms (verdict
    /// after 300 ms), 3 indirect probers, suspicion 1.5 × max(1, log10 N) × 300 ms
    /// (0.81 s at N = 64), stretched up to 6× for a lone accuser and shrunk back by 2
    /// independent confirmations (which ~3 randomly chosen nodes that heard the suspicion
    /// go and seek at once by probing the suspect themselves); each update gossiped 5 ×
    /// ceil(log10(N + 1)) times per node; gossip every 100 ms to 3 members; push-pull
    /// every 30 s (scaled up above 32 members); rejoin attempts every 5 s; reap after
    /// 10 min. The join and gossip-target numbers are the same in every profile.
    #[default]
    Lan,
    /// Hosts across data centres or the internet: memberlist's `DefaultWANConfig` numbers
    /// (probe 5 s / timeout 3 s, suspicion mult 6, gossip 500 ms to 4, push-pull 60 s).
    Wan,
    /// Many nodes on one machine (tests, demos): everything about twice as fast as `lan`.
    Local,
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Lan => "lan",
            Profile::Wan => "wan",
            Profile::Local => "local",
        })
    }
}

/// Why a string is not a profile name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mesh profile {0:?}: expected one of lan, wan, local")]
pub struct ParseProfileError(pub String);

impl FromStr for Profile {
    type Err = ParseProfileError;

    fn from_str(s: &str) -> Result<Profile, ParseProfileError> {
        match s {
            "lan" => Ok(Profile::Lan),
            "wan" => Ok(Profile::Wan),
            "local" => Ok(Profile::Local),
            other => Err(ParseProfileError(other.to_string())),
        }
    }
}

/// Every tuning number of the membership state machine.
///
/// Build one with [`Config::for_profile`] and adjust fields if needed. Durations scale with
/// the Lifeguard local-health multiplier where noted ("× awareness").
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Time between two probes started by this node (× awareness). Shorter detects failures
    /// sooner but costs one ping + ack per interval per node.
    /// A crashed node waits for its first probe about one interval (every other node
    /// probes it once per round of N − 1 intervals). lan 800 ms, wan 5 s, local 200 ms.
    pub probe_interval: Duration,
    /// How long to wait for a direct ack before asking `indirect_checks` members to probe
    /// (× awareness). Must stay below `probe_interval` (the rest of the interval is left for
    /// indirect acks). Rule of thumb: a few times the 99th-percentile RTT.
    /// lan 150 ms, wan 3 s, local 100 ms.
    pub probe_timeout: Duration,
    /// How many members are asked to probe a target that missed its direct ack (SWIM `k`).
    /// More means fewer false suspicions under loss, more messages. lan 3, wan 3, local 2.
    pub indirect_checks: usize,
    /// Indirect-probe relays are picked first among members heard from directly within
    /// this many probe intervals; others fill in only when too few were. A missing nack
    /// from a relay heard from lately says more about this node's own path (Lifeguard
    /// raises the local health score for each), while relays on the far side of a
    /// partition would keep every node's score up, and its probes slow, for as long as
    /// the far side is believed alive. Lower: relays heard from a little while ago count
    /// as unknown; higher: relays not heard from for long count as reachable. 0 picks
    /// relays at random. lan/wan/local 10.
    pub relay_heard_within_probes: u32,
    /// Introductions start once no new member came for this long: each probe tick then
    /// also pings one member this node never heard from, picked at random, so that after
    /// a mass join every pair of nodes meets (a QUIC handshake) sooner than by probes
    /// alone. Shorter: introductions compete with the joins themselves for the host;
    /// longer: pairs meet later, each first contact then costing a handshake in the
    /// middle of protocol work (a ping-req, a gossip round). lan/wan/local 2 s.
    pub introduce_after_quiet: Duration,
    /// Each update is piggybacked at most `retransmit_mult × ceil(log10(N + 1))` times by
    /// each node. A node misses an update with probability about e^(−limit) (every node
    /// sends it `limit` times to random members): lower it and, after a mass join, some
    /// pairs wait for the next push-pull to learn of each other; raise it and every
    /// update costs more datagram room. lan 5, wan 4, local 3.
    pub retransmit_mult: u32,
    /// Minimum suspicion timeout = `suspicion_mult × max(1, log10 N) × probe_span`
    /// (see [`Config::probe_span`]).
    /// lan 1.5, wan 6, local 2.
    pub suspicion_mult: f64,
    /// Maximum suspicion timeout (lone accuser, no confirmation) = this × the minimum.
    /// lan 6, wan 6, local 5.
    pub suspicion_max_mult: u32,
    /// Independent confirmations after which the suspicion timeout has shrunk to its
    /// minimum (Lifeguard's `k`; memberlist uses `suspicion_mult − 2`). Ignored (treated
    /// as 0) when the mesh has fewer than `k + 2` live members. lan 2, wan 4, local 2.
    pub suspicion_confirmations: u32,
    /// Nodes that only heard a suspicion and check the suspect at their next probe (on
    /// average, mesh-wide), on top of the `suspicion_confirmations` the accuser waits for:
    /// each node that hears it does so with probability `(confirmations + this) /
    /// hearers`. Higher: the wanted confirmations more surely arrive before the minimum
    /// timeout, so a crash is declared sooner, but more nodes probe the suspect at once;
    /// lower: fewer probes, more suspicions waiting out a longer timeout. Not used when no
    /// confirmations are wanted. lan/wan/local 1.
    pub early_verifiers_spare: u32,
    /// Upper bound of the Lifeguard local-health multiplier: probe interval and timeout are
    /// multiplied by (score + 1), score in `0..awareness_max`. lan/wan/local 8.
    pub awareness_max: u32,
    /// Time between two dedicated gossip rounds (only sent when updates are queued).
    /// lan 100 ms, wan 500 ms, local 50 ms.
    pub gossip_interval: Duration,
    /// Time between gossip rounds while news waits that has not been sent at all: a
    /// suspicion, a death, a leave, a refutation. It then reaches
    /// `gossip_fanout` members at once, each of them passes it on as fast, and it is
    /// everywhere after a few short rounds; its further sends (up to the retransmit
    /// limit) keep the `gossip_interval` pace, so the same updates go out in the same
    /// number of messages, only sooner. Alive announcements of members and health
    /// results keep the normal pace: after a mass join every node holds dozens of each,
    /// and hurrying them makes every node dial new peers at once, slowing the joins
    /// themselves on a small host. Never longer than
    /// `gossip_interval`. lan 20 ms, wan 100 ms, local 10 ms.
    pub fresh_gossip_interval: Duration,
    /// Members gossiped to per round. lan 3, wan 4, local 3.
    pub gossip_fanout: usize,
    /// Gossip goes to members heard from within this long, whose link is most likely
    /// still open: keep it below a node link's idle timeout (180 s). All targets of a
    /// round but one are such members; the last may be any member only while the round
    /// carries membership news (a suspicion, a death, a leave, a refutation), which must
    /// reach every corner of a young mesh whose links a partition may have cut. Alive
    /// announcements and health results keep to open links: after a mass join the queues
    /// hold nothing else, and one member never met per round and node would mean
    /// hundreds of handshakes a second. Longer: more targets whose link idled out (a
    /// handshake each); shorter: gossip keeps to fewer members. lan/wan/local 150 s.
    pub gossip_heard_within: Duration,
    /// Dead members keep receiving gossip this long after they were declared dead, so a
    /// falsely declared node hears about it and refutes. lan 15 s, wan 60 s, local 10 s.
    pub gossip_to_dead: Duration,
    /// Time between two full-state push-pull syncs with one random member, scaled up for
    /// big meshes: × (ceil(log2 N − 5) + 1) once N > 32. lan 30 s (as memberlist's LAN default), wan 60 s, local 10 s.
    pub push_pull_interval: Duration,
    /// A joining node syncs again with a random member this many gossip intervals after
    /// its join request, and after any sync that taught it members it did not know: time
    /// for the joins around its own to reach its contacts. Lower: the second look may
    /// come before the other joins have landed; higher: a node that missed members in a
    /// mass join waits longer for them. lan/wan/local 12 (1.2 s on lan).
    pub join_sync_after_gossips: u32,
    /// The contact that answered a join is asked again for its state this many times per
    /// gossip interval (every 50 ms on lan), up to `contact_follow_ups` times. In a mass
    /// join every joiner reaches the contact first, so the contact knows of the joins
    /// after ours long before gossip brings them here, and the link to it is open. Each
    /// ask is a digest: a contact with nothing new answers with its digest alone, one
    /// with news with its state. Higher: a joiner is complete sooner after the last join
    /// reached the contact, at more syncs; lower: fewer syncs, later. At least 1.
    /// lan/wan/local 2.
    pub contact_follow_ups_per_gossip: u32,
    /// Most follow-up syncs with the contact after one join (13.1 s of them on lan, see
    /// `contact_follow_ups_rapid`): the bound on what one join costs the contact. 0 turns
    /// the follow-ups off. lan/wan/local 15.
    pub contact_follow_ups: u8,
    /// The first this many follow-ups are spaced as `contact_follow_ups_per_gossip` says;
    /// after them each gap is twice the one before (on lan: 50 ms eight times, then 100 ms,
    /// 200 ms, … up to 6.4 s). Joins that keep reaching the contact for longer than the
    /// rapid asks last (a batch of `add` lines paced by the node, hosts joining one seed
    /// over seconds) are still brought by a later ask, at a few asks more per join instead
    /// of one every 50 ms. Lower: fewer asks while a mass join lasts, each later; higher:
    /// the joins of a short mass join are learned sooner, at more asks.
    /// lan/wan/local 8.
    pub contact_follow_ups_rapid: u8,
    /// The follow-ups end early after this many answers in a row that taught nothing: no
    /// join reached the contact for that long (150 ms on lan while the asks are rapid), so
    /// the mass join is over or has slowed to where gossip and the early sync keep up.
    /// Lower: fewer empty asks, but joins that reach the contact after a lull are left to
    /// gossip; higher: more empty asks. lan/wan/local 3.
    pub contact_follow_ups_idle: u8,
    /// Shortest time between two syncs with the same sender this node does not know (one
    /// whose announcement went past it, typically in a mass join). Lower: such a sender
    /// is learned sooner when a sync fails; higher: fewer syncs with a sender that keeps
    /// talking. Senders remembered for this are bounded. lan/wan/local 5 s.
    pub unknown_sender_sync_every: Duration,
    /// Dead and left members are forgotten this long after they entered that state.
    /// lan 10 min, wan 1 h, local 2 min.
    pub reap_after: Duration,
    /// Time between two rejoin attempts (a push-pull join to one random dead member and one
    /// contact that is not a live member) so that a healed partition merges again.
    /// lan 5 s, wan 30 s, local 2 s.
    pub rejoin_interval: Duration,
    /// Largest encoded datagram message (ping, ack, gossip, …). 1100 fits any QUIC path
    /// (1162 bytes of datagram payload are guaranteed). Values below 300 are raised to 300.
    pub max_datagram_bytes: usize,
    /// Largest number of members kept; updates about further unknown members are dropped.
    /// Bounds memory against a misbehaving peer. Default 65 536.
    pub max_members: usize,
}

/// Floor for [`Config::max_datagram_bytes`]: room for a ping plus one full-size update.
pub const MIN_DATAGRAM_BYTES: usize = 300;

impl Default for Config {
    fn default() -> Config {
        Config::for_profile(Profile::default())
    }
}

impl Config {
    /// The numbers of one profile (see [`Profile`] and each field's doc).
    pub fn for_profile(profile: Profile) -> Config {
        let ms = Duration::from_millis;
        let secs = Duration::from_secs;
        match profile {
            Profile::Lan => Config {
                probe_interval: ms(800),
                probe_timeout: ms(150),
                indirect_checks: 3,
                relay_heard_within_probes: 10,
                introduce_after_quiet: secs(2),
                retransmit_mult: 5,
                suspicion_mult: 1.5,
                suspicion_max_mult: 6,
                suspicion_confirmations: 2,
                early_verifiers_spare: 1,
                awareness_max: 8,
                gossip_interval: ms(100),
                fresh_gossip_interval: ms(20),
                gossip_fanout: 3,
                gossip_heard_within: secs(150),
                gossip_to_dead: secs(15),
                push_pull_interval: secs(30),
                join_sync_after_gossips: 12,
                contact_follow_ups_per_gossip: 2,
                contact_follow_ups: 15,
                contact_follow_ups_rapid: 8,
                contact_follow_ups_idle: 3,
                unknown_sender_sync_every: secs(5),
                reap_after: secs(600),
                rejoin_interval: secs(5),
                max_datagram_bytes: 1100,
                max_members: 65_536,
            },
            Profile::Wan => Config {
                probe_interval: secs(5),
                probe_timeout: secs(3),
                indirect_checks: 3,
                relay_heard_within_probes: 10,
                introduce_after_quiet: secs(2),
                retransmit_mult: 4,
                suspicion_mult: 6.0,
                suspicion_max_mult: 6,
                suspicion_confirmations: 4,
                early_verifiers_spare: 1,
                awareness_max: 8,
                gossip_interval: ms(500),
                fresh_gossip_interval: ms(100),
                gossip_fanout: 4,
                gossip_heard_within: secs(150),
                gossip_to_dead: secs(60),
                push_pull_interval: secs(60),
                join_sync_after_gossips: 12,
                contact_follow_ups_per_gossip: 2,
                contact_follow_ups: 15,
                contact_follow_ups_rapid: 8,
                contact_follow_ups_idle: 3,
                unknown_sender_sync_every: secs(5),
                reap_after: secs(3600),
                rejoin_interval: secs(30),
                max_datagram_bytes: 1100,
                max_members: 65_536,
            },
            Profile::Local => Config {
                probe_interval: ms(200),
                probe_timeout: ms(100),
                indirect_checks: 2,
                relay_heard_within_probes: 10,
                introduce_after_quiet: secs(2),
                retransmit_mult: 3,
                suspicion_mult: 2.0,
                suspicion_max_mult: 5,
                suspicion_confirmations: 2,
                early_verifiers_spare: 1,
                awareness_max: 8,
                gossip_interval: ms(50),
                fresh_gossip_interval: ms(10),
                gossip_fanout: 3,
                gossip_heard_within: secs(150),
                gossip_to_dead: secs(10),
                push_pull_interval: secs(10),
                join_sync_after_gossips: 12,
                contact_follow_ups_per_gossip: 2,
                contact_follow_ups: 15,
                contact_follow_ups_rapid: 8,
                contact_follow_ups_idle: 3,
                unknown_sender_sync_every: secs(5),
                reap_after: secs(120),
                rejoin_interval: secs(2),
                max_datagram_bytes: 1100,
                max_members: 65_536,
            },
        }
    }

    /// The same config with every number brought into a range the state machine can
    /// use without overflowing timers: durations between 1 ms and 1 day (`reap_after` up
    /// to 30 days), `probe_timeout` below `probe_interval`, multipliers at least 1
    /// (`suspicion_mult` at least 0.5, and 2 if it is not a number), counts of nodes
    /// and follow-ups per gossip interval at most 64.
    /// [`Membership::new`](crate::mesh::Membership::new) applies it.
    pub fn sanitized(mut self) -> Config {
        let ms = Duration::from_millis(1);
        let day = Duration::from_secs(86_400);
        let clamp = |d: Duration| d.clamp(ms, day);
        self.probe_interval = clamp(self.probe_interval).max(Duration::from_millis(2));
        self.probe_timeout = clamp(self.probe_timeout).min(self.probe_interval - ms);
        self.gossip_interval = clamp(self.gossip_interval);
        self.fresh_gossip_interval = clamp(self.fresh_gossip_interval).min(self.gossip_interval);
        self.gossip_to_dead = clamp(self.gossip_to_dead);
        self.push_pull_interval = clamp(self.push_pull_interval);
        self.rejoin_interval = clamp(self.rejoin_interval);
        self.introduce_after_quiet = clamp(self.introduce_after_quiet);
        self.gossip_heard_within = clamp(self.gossip_heard_within);
        self.unknown_sender_sync_every = clamp(self.unknown_sender_sync_every);
        self.reap_after = self.reap_after.clamp(ms, day * 30);
        self.retransmit_mult = self.retransmit_mult.clamp(1, 64);
        self.suspicion_mult = if self.suspicion_mult.is_finite() {
            self.suspicion_mult.clamp(0.5, 64.0)
        } else {
            2.0
        };
        self.suspicion_max_mult = self.suspicion_max_mult.clamp(1, 64);
        self.suspicion_confirmations = self.suspicion_confirmations.min(64);
        self.early_verifiers_spare = self.early_verifiers_spare.min(64);
        self.contact_follow_ups_per_gossip = self.contact_follow_ups_per_gossip.clamp(1, 64);
        self.awareness_max = self.awareness_max.clamp(1, 64);
        self.indirect_checks = self.indirect_checks.min(64);
        self.gossip_fanout = self.gossip_fanout.clamp(1, 64);
        self.max_members = self.max_members.max(1);
        self
    }

    /// Time from the answer to follow-up number `asked` (counted from 1; 0: the join's own
    /// answer) to the next ask: `gossip_interval / contact_follow_ups_per_gossip` for the
    /// first `contact_follow_ups_rapid` asks, then twice the gap before (see
    /// [`Config::contact_follow_ups_rapid`]), at most a day.
    pub fn contact_follow_up_gap(&self, asked: u8) -> Duration {
        let base = self.gossip_interval / self.contact_follow_ups_per_gossip.max(1);
        let doublings = asked
            .saturating_add(1)
            .saturating_sub(self.contact_follow_ups_rapid)
            .min(20);
        base.saturating_mul(1u32 << doublings)
            .min(Duration::from_secs(86_400))
    }

    /// The datagram budget actually used (never below [`MIN_DATAGRAM_BYTES`]).
    pub fn datagram_budget(&self) -> usize {
        self.max_datagram_bytes.max(MIN_DATAGRAM_BYTES)
    }

    /// How many times each node piggybacks one update, for a mesh of `members` live nodes:
    /// `retransmit_mult × ceil(log10(members + 1))`, at least 1.
    pub fn retransmit_limit(&self, members: usize) -> u32 {
        let scale = ((members as f64) + 1.0).log10().ceil().max(1.0) as u32;
        self.retransmit_mult.saturating_mul(scale).max(1)
    }

    /// How much longer a ping gets for its ack when it must wait for a QUIC handshake
    /// first (the target is not heard from lately, see `Membership::dial_allowance`):
    /// one probe interval (0.8 s on lan). A handshake on an idle network takes a few
    /// round trips; on a host busy with a mass join, hundreds of milliseconds.
    pub fn dial_allowance(&self) -> Duration {
        self.probe_interval
    }

    /// How late a wake-up may come before the state machine takes it for a stall of its
    /// own (see `Membership::notice_stall`): half a probe timeout (75 ms on lan). A
    /// runtime on an idle host wakes within a millisecond or two.
    pub fn stall_after(&self) -> Duration {
        self.probe_timeout / 2
    }

    /// How long one probe takes to reach its verdict: the direct timeout plus as long
    /// again for the indirect probes' relayed acks (`2 × probe_timeout`), never longer
    /// than `probe_interval`. An unanswered probe suspects its target this long after it
    /// started (× awareness), however long the pause until the next probe.
    pub fn probe_span(&self) -> Duration {
        self.probe_timeout
            .saturating_mul(2)
            .min(self.probe_interval)
    }

    /// Minimum suspicion timeout for `members` live nodes:
    /// `suspicion_mult × max(1, log10 members) × probe_span`. It is the time a suspect
    /// has to hear of the suspicion and refute it, so it follows how fast news and
    /// verdicts travel (gossip and one probe's span), not how often probes start.
    pub fn suspicion_min(&self, members: usize) -> Duration {
        let scale = (members as f64).log10().max(1.0);
        self.probe_span().mul_f64(self.suspicion_mult * scale)
    }

    /// Maximum suspicion timeout (lone accuser): `suspicion_max_mult × suspicion_min`.
    pub fn suspicion_max(&self, members: usize) -> Duration {
        self.suspicion_min(members)
            .saturating_mul(self.suspicion_max_mult.max(1))
    }

    /// The push-pull interval for `members` live nodes: the base interval, multiplied by
    /// `ceil(log2 members − log2 32) + 1` once there are more than 32 members, so the
    /// cluster-wide push-pull load grows only logarithmically.
    pub fn push_pull_interval_for(&self, members: usize) -> Duration {
        if members <= 32 {
            return self.push_pull_interval;
        }
        let mult = ((members as f64).log2() - 32f64.log2()).ceil() + 1.0;
        self.push_pull_interval.mul_f64(mult)
    }
}

/// The Lifeguard dynamic suspicion timeout: starts at `max`, shrinks logarithmically with
/// each independent confirmation and reaches `min` after `wanted` of them:
/// `max − (max − min) × ln(confirmations + 1) / ln(wanted + 1)`, never below `min`.
/// With `wanted == 0` it is `min`.
pub fn suspicion_timeout(
    min: Duration,
    max: Duration,
    confirmations: u32,
    wanted: u32,
) -> Duration {
    if wanted == 0 || max <= min {
        return min;
    }
    let frac = f64::from(confirmations + 1).ln() / f64::from(wanted + 1).ln();
    let shrink = (max - min).mul_f64(frac.clamp(0.0, 1.0));
    max.saturating_sub(shrink).max(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_parses_and_displays() {
        for p in [Profile::Lan, Profile::Wan, Profile::Local] {
            assert_eq!(p.to_string().parse::<Profile>(), Ok(p));
        }
        assert_eq!(Profile::default(), Profile::Lan);
        assert!("LAN2".parse::<Profile>().is_err());
    }

    #[test]
    fn local_is_faster_than_lan_and_lan_faster_than_wan() {
        let (lan, wan, local) = (
            Config::for_profile(Profile::Lan),
            Config::for_profile(Profile::Wan),
            Config::for_profile(Profile::Local),
        );
        assert!(local.probe_interval < lan.probe_interval);
        assert!(lan.probe_interval < wan.probe_interval);
        for c in [&lan, &wan, &local] {
            assert!(c.probe_timeout < c.probe_interval);
        }
    }

    #[test]
    fn suspicion_min_follows_memberlist_formula() {
        let lan = Config::for_profile(Profile::Lan);
        // The unit is one probe's span: 2 x 150 ms, below the 800 ms probe interval.
        assert_eq!(lan.probe_span(), Duration::from_millis(300));
        // N <= 10: log10 clamps to 1 -> 1.5 * 300 ms.
        assert_eq!(lan.suspicion_min(5), Duration::from_millis(450));
        assert_eq!(lan.suspicion_min(10), Duration::from_millis(450));
        // N = 1000: 1.5 * 3 * 300 ms = 1.35 s.
        let min = lan.suspicion_min(1000).as_secs_f64();
        assert!((min - 1.35).abs() < 1e-9, "{min}");
        // wan: 2 x 3 s would outlast its 5 s probe interval, so the span is the interval.
        assert_eq!(
            Config::for_profile(Profile::Wan).probe_span(),
            Duration::from_secs(5)
        );
        assert_eq!(lan.suspicion_max(1000), lan.suspicion_min(1000) * 6);
    }

    #[test]
    fn suspicion_timeout_shrinks_with_confirmations() {
        let min = Duration::from_secs(2);
        let max = Duration::from_secs(12);
        assert_eq!(suspicion_timeout(min, max, 0, 3), max);
        let one = suspicion_timeout(min, max, 1, 3);
        let two = suspicion_timeout(min, max, 2, 3);
        assert!(one < max && two < one && two > min, "{one:?} {two:?}");
        // ln(2)/ln(4) = 0.5 -> halfway.
        assert!((one.as_secs_f64() - 7.0).abs() < 1e-6);
        assert_eq!(suspicion_timeout(min, max, 3, 3), min);
        assert_eq!(suspicion_timeout(min, max, 9, 3), min);
        assert_eq!(suspicion_timeout(min, max, 0, 0), min);
    }

    #[test]
    fn retransmit_limit_scales_with_log10() {
        let lan = Config::for_profile(Profile::Lan);
        assert_eq!(lan.retransmit_limit(0), 5);
        assert_eq!(lan.retransmit_limit(9), 5);
        assert_eq!(lan.retransmit_limit(64), 10);
        assert_eq!(lan.retransmit_limit(1000), 20);
    }

    #[test]
    fn absurd_configs_are_sanitized_into_usable_ones() {
        let mut c = Config::for_profile(Profile::Lan);
        c.probe_interval = Duration::MAX;
        c.probe_timeout = Duration::MAX;
        c.gossip_interval = Duration::ZERO;
        c.fresh_gossip_interval = Duration::from_secs(60);
        c.suspicion_mult = f64::MAX;
        c.awareness_max = 0;
        let c = c.sanitized();
        assert!(c.probe_timeout < c.probe_interval);
        assert!(c.gossip_interval > Duration::ZERO);
        assert!(c.fresh_gossip_interval <= c.gossip_interval);
        // The formulas stay finite for any member count.
        let _ = c.suspicion_max(usize::MAX);
        let _ = c.push_pull_interval_for(usize::MAX);
        assert_eq!(
            Config::for_profile(Profile::Wan).sanitized(),
            Config::for_profile(Profile::Wan)
        );
    }

    #[test]
    fn the_join_and_gossip_target_numbers_are_the_same_in_every_profile() {
        for p in [Profile::Lan, Profile::Wan, Profile::Local] {
            let c = Config::for_profile(p);
            let joins = (
                c.join_sync_after_gossips,
                c.contact_follow_ups_per_gossip,
                c.contact_follow_ups,
                c.contact_follow_ups_rapid,
                c.contact_follow_ups_idle,
            );
            assert_eq!(joins, (12, 2, 15, 8, 3), "{p}");
            let targets = (c.relay_heard_within_probes, c.early_verifiers_spare);
            assert_eq!(targets, (10, 1), "{p}");
            let secs = Duration::from_secs;
            let times = (
                c.introduce_after_quiet,
                c.gossip_heard_within,
                c.unknown_sender_sync_every,
            );
            assert_eq!(times, (secs(2), secs(150), secs(5)), "{p}");
        }
    }

    #[test]
    fn follow_ups_are_rapid_then_twice_as_far_apart_each_time() {
        let lan = Config::for_profile(Profile::Lan);
        let gaps: Vec<u128> = (0..lan.contact_follow_ups)
            .map(|asked| lan.contact_follow_up_gap(asked).as_millis())
            .collect();
        assert_eq!(
            gaps,
            [
                50, 50, 50, 50, 50, 50, 50, 50, 100, 200, 400, 800, 1600, 3200, 6400
            ]
        );
        assert_eq!(
            lan.contact_follow_up_gap(u8::MAX),
            Duration::from_millis(50) * (1 << 20)
        );
    }

    #[test]
    fn follow_ups_per_gossip_interval_are_at_least_one() {
        let mut c = Config::for_profile(Profile::Lan);
        c.contact_follow_ups_per_gossip = 0;
        assert_eq!(c.sanitized().contact_follow_ups_per_gossip, 1);
    }

    #[test]
    fn push_pull_interval_scales_above_32() {
        let lan = Config::for_profile(Profile::Lan);
        assert_eq!(lan.push_pull_interval_for(32), Duration::from_secs(30));
        assert_eq!(lan.push_pull_interval_for(64), Duration::from_secs(60));
        assert_eq!(lan.push_pull_interval_for(1000), Duration::from_secs(180));
    }
}
