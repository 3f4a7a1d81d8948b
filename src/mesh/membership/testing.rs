//! Fixtures shared by the membership tests: numbered nodes, draining their outputs,
//! messages from numbered senders, small meshes built by push-pull, and a timer loop.

pub(super) use std::net::SocketAddr;
pub(super) use std::time::{Duration, Instant};

pub(super) use crate::mesh::NodeId;
pub(super) use crate::mesh::config::{Config, Profile};
pub(super) use crate::mesh::member::{HealthSummary, Peer, State, Tags};
pub(super) use crate::mesh::message::{MemberState, Message, PushPull, Update};

pub(super) use super::{Event, Membership, RemoveError, Snapshot, Transmit};

pub(super) fn peer(n: u8) -> Peer {
    Peer::numbered(n, 7946)
}

pub(super) fn node(n: u8, now: Instant) -> Membership {
    Membership::new(
        peer(n),
        Tags::new(),
        Config::for_profile(Profile::Lan),
        u64::from(n),
        now,
    )
}

pub(super) fn transmits(m: &mut Membership) -> Vec<Transmit> {
    std::iter::from_fn(|| m.poll_transmit()).collect()
}

pub(super) fn events(m: &mut Membership) -> Vec<Event> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

/// `a` learns everything `b` knows (as after a join reply from `b`).
pub(super) fn learn(a: &mut Membership, b: &Membership, now: Instant) {
    a.handle_message(now, Message::PushPull(b.push_pull_request(false)));
}

pub(super) fn gossip(from: u8, updates: Vec<Update>) -> Message {
    Message::Gossip {
        from: NodeId([from; 16]),
        updates,
    }
}

/// Gossip from `by` saying it suspects member `of` at incarnation 0.
pub(super) fn suspicion_from(by: u8, of: u8) -> Message {
    gossip(
        by,
        vec![Update::Suspect {
            id: peer(of).id,
            incarnation: 0,
            by: peer(by).id,
        }],
    )
}

/// Node 1 after learning nodes 2..=29 from node 2's join answer, then hearing from
/// the members in `heard` (gossip without updates).
pub(super) fn node_1_through_hub(t0: Instant, heard: &[u8]) -> Membership {
    let hub = node_knowing(2, 3..30, t0);
    let mut a = node(1, t0);
    learn(&mut a, &hub, t0);
    for &n in heard {
        a.handle_message(t0, gossip(n, Vec::new()));
    }
    a
}

/// Drives `m` through its timers until `until`, returning everything it sent.
pub(super) fn run(m: &mut Membership, until: Instant) -> Vec<Transmit> {
    let mut out = Vec::new();
    while let Some(at) = m.poll_timeout() {
        if at > until {
            break;
        }
        m.handle_timeout(at);
        out.extend(transmits(m));
    }
    out
}

/// Node 1 after learning nodes 2..=`last` (as from join replies), its resulting sends
/// drained.
pub(super) fn node_1_knowing(last: u8, t0: Instant) -> Membership {
    let mut m = node(1, t0);
    for n in 2..=last {
        learn(&mut m, &node(n, t0), t0);
    }
    transmits(&mut m);
    m
}

/// Node 1 after learning node 2 (as from a join reply), its resulting sends drained.
pub(super) fn node_1_knowing_2(t0: Instant) -> Membership {
    let mut a = node(1, t0);
    learn(&mut a, &node(2, t0), t0);
    transmits(&mut a);
    a
}

/// Nodes 1 and 2, each having learned the other (their resulting sends not drained).
pub(super) fn nodes_1_and_2_knowing_each_other(t0: Instant) -> (Membership, Membership) {
    let (mut a, mut b) = (node(1, t0), node(2, t0));
    learn(&mut a, &b, t0);
    learn(&mut b, &a, t0);
    (a, b)
}

pub(super) fn push_pull_targets(sent: &[Transmit]) -> Vec<SocketAddr> {
    sent.iter()
        .filter(|t| matches!(t.msg, Message::PushPull(_)))
        .map(|t| t.to)
        .collect()
}

/// Node `n`, having learned nodes `others` from their push-pulls.
pub(super) fn node_knowing(n: u8, others: std::ops::Range<u8>, t0: Instant) -> Membership {
    let mut m = node(n, t0);
    for o in others {
        learn(&mut m, &node(o, t0), t0);
    }
    m
}

/// Answers the push-pull `m` sent last with `contact`'s state, as the contact would.
pub(super) fn answer_last_push_pull(m: &mut Membership, contact: &mut Membership, now: Instant) {
    let req = transmits(m).into_iter().rev().find_map(|t| match t.msg {
        Message::PushPull(req) if t.to == contact.me().peer.addr => Some(req),
        _ => None,
    });
    let Some(req) = req else {
        panic!("no push-pull to the contact was sent");
    };
    let reply = contact.handle_push_pull(now, req);
    m.handle_message(now, Message::PushPull(reply));
}

pub(super) fn peer_id(n: u8) -> NodeId {
    peer(n).id
}
