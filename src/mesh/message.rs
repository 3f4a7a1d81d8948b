//! The membership wire format: [`Message`] (what nodes send each other), [`Update`] (one
//! piggybacked membership change), [`PushPull`] (full-state sync) and their CBOR encoding.
//! How messages are carried (QUIC datagrams / streams) is the runtime's business; what they
//! mean is the state machine's.
//!
//! # Exchanges
//! ```text
//! probe:           A --Ping{seq}--> B          A <--Ack{seq}-- B
//! indirect probe:  A --PingReq{seq, B}--> C --Ping{seq'}--> B
//!                  A <--Ack{seq}-- C <--Ack{seq'}-- B      (or A <--Nack{seq}-- C on timeout)
//! dissemination:   A --Gossip{updates}--> random members (and updates ride on Ping/Ack)
//! join / sync:     A ==PushPull{join, all states}==> B   A <==PushPull{all states}== B  (stream)
//! ```
//! Field names are shortened on the wire (one or two letters) to fit more updates into a
//! datagram; the Rust names are the documentation.
//!
//! Pings and acks, the bulk of an idle mesh's traffic, do not carry their sender: it is
//! the node the datagram's connection authenticated (its certificate), and
//! [`Message::decode_from`] fills it in. Nor does a ping carry its target: the sender's
//! transport sends it only on a connection to the target (as the transport knows the
//! peer: from its certificate, or from its hello when this side dialed), and the
//! receiver fills in itself. The other kinds still name their sender (a push-pull also
//! travels by stream, and relayed probes name their original prober), and
//! `decode_from` refuses one that names anyone else. Empty update lists are left out.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::base::NodeId;
use crate::mesh::digest::StateDigest;
use crate::mesh::member::{HealthSummary, Peer, State, Tags};

/// Largest message [`Message::decode_from`] accepts (push-pull of ~100k members).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// One membership change, piggybacked on datagrams and re-gossiped a bounded number of
/// times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Update {
    /// The member is alive at this incarnation, at this address, with these tags.
    #[serde(rename = "A")]
    Alive {
        /// Who.
        #[serde(rename = "p")]
        peer: Peer,
        /// At which incarnation.
        #[serde(rename = "n")]
        incarnation: u64,
        /// Its tags.
        #[serde(rename = "t")]
        tags: Tags,
    },
    /// `by` suspects the member at this incarnation.
    #[serde(rename = "S")]
    Suspect {
        /// Who is suspected.
        #[serde(rename = "i")]
        id: NodeId,
        /// At which incarnation.
        #[serde(rename = "n")]
        incarnation: u64,
        /// The accuser.
        #[serde(rename = "b")]
        by: NodeId,
    },
    /// `by` declared the member dead at this incarnation.
    #[serde(rename = "D")]
    Dead {
        /// Who is dead.
        #[serde(rename = "i")]
        id: NodeId,
        /// At which incarnation.
        #[serde(rename = "n")]
        incarnation: u64,
        /// Who declared it.
        #[serde(rename = "b")]
        by: NodeId,
    },
    /// The member left (`by == id`) or was removed by `by` (`werify ctl del`).
    #[serde(rename = "L")]
    Left {
        /// Who left.
        #[serde(rename = "i")]
        id: NodeId,
        /// At which incarnation.
        #[serde(rename = "n")]
        incarnation: u64,
        /// The member itself, or the node that removed it.
        #[serde(rename = "b")]
        by: NodeId,
    },
    /// The member's health summary, published at this incarnation.
    #[serde(rename = "H")]
    Health {
        /// Whose.
        #[serde(rename = "i")]
        id: NodeId,
        /// The member's incarnation when it published it.
        #[serde(rename = "n")]
        incarnation: u64,
        /// The summary.
        #[serde(rename = "h")]
        summary: HealthSummary,
    },
}

impl Update {
    /// The member this update is about.
    pub fn subject(&self) -> NodeId {
        match self {
            Update::Alive { peer, .. } => peer.id,
            Update::Suspect { id, .. }
            | Update::Dead { id, .. }
            | Update::Left { id, .. }
            | Update::Health { id, .. } => *id,
        }
    }
}

/// One member's full state, as carried by [`PushPull`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberState {
    /// Who.
    #[serde(rename = "p")]
    pub peer: Peer,
    /// Its incarnation.
    #[serde(rename = "n")]
    pub incarnation: u64,
    /// Its state in the sender's view.
    #[serde(rename = "s")]
    pub state: State,
    /// Its tags.
    #[serde(rename = "t")]
    pub tags: Tags,
    /// Its health summary and the incarnation it was published at, if known.
    #[serde(rename = "h")]
    pub health: Option<(u64, HealthSummary)>,
    /// Who suspected / declared / removed it, for non-Alive states.
    #[serde(rename = "b")]
    pub by: Option<NodeId>,
}

impl MemberState {
    /// `peer` alive at incarnation 0, without tags or health: a member as first heard of.
    pub fn alive(peer: Peer) -> MemberState {
        MemberState {
            peer,
            incarnation: 0,
            state: State::Alive,
            tags: Tags::new(),
            health: None,
            by: None,
        }
    }
}

/// A full-state sync, sent over a request/response stream (never as a datagram).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushPull {
    /// The sender.
    #[serde(rename = "f")]
    pub from: Peer,
    /// True when the sender is joining (first contact or rejoin after a partition); a
    /// removed node accepts only joins, and is re-added by one.
    #[serde(rename = "j")]
    pub join: bool,
    /// Every member the sender knows, itself included; empty in a digest-only sync.
    #[serde(rename = "m")]
    pub members: Vec<MemberState>,
    /// The sender's [`StateDigest`], in periodic syncs only. A request with a digest and
    /// no members asks "are we in sync?"; the answer is the same digest and no members
    /// when both views are equal, else the full state with the responder's digest (the
    /// asker then sends its own full state if it still differs). Join and reply-to-join
    /// syncs carry none.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<StateDigest>,
}

/// Everything membership nodes send each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Direct probe of `target` (which must be the receiver's id, else it is ignored;
    /// after decoding it always is).
    #[serde(rename = "P")]
    Ping {
        /// The prober (the ack goes to its address): the sender, not on the wire.
        #[serde(skip, default = "unsent_peer")]
        from: Peer,
        /// Probe sequence number, echoed in the ack.
        #[serde(rename = "q")]
        seq: u32,
        /// Whom the prober means to reach: not on the wire (the sending transport checks
        /// it against the connection's certificate; the receiver is the target).
        #[serde(skip, default = "unsent_id")]
        target: NodeId,
        /// Piggybacked updates.
        #[serde(rename = "u", default, skip_serializing_if = "Vec::is_empty")]
        updates: Vec<Update>,
    },
    /// Answer to a ping (directly, or relayed by an indirect prober).
    #[serde(rename = "A")]
    Ack {
        /// The acking (or relaying) node: the sender, not on the wire.
        #[serde(skip, default = "unsent_id")]
        from: NodeId,
        /// The sequence number of the probe being answered.
        #[serde(rename = "q")]
        seq: u32,
        /// Piggybacked updates.
        #[serde(rename = "u", default, skip_serializing_if = "Vec::is_empty")]
        updates: Vec<Update>,
    },
    /// Ask the receiver to probe `target` on the sender's behalf.
    #[serde(rename = "R")]
    PingReq {
        /// The original prober.
        #[serde(rename = "f")]
        from: Peer,
        /// The original probe's sequence number (echoed in the relayed ack/nack).
        #[serde(rename = "q")]
        seq: u32,
        /// Whom to probe.
        #[serde(rename = "t")]
        target: Peer,
    },
    /// An indirect prober got no ack from the target in time (Lifeguard: tells the
    /// original prober that the relay path works, so the fault is not its own).
    #[serde(rename = "N")]
    Nack {
        /// The indirect prober.
        #[serde(rename = "f")]
        from: NodeId,
        /// The original probe's sequence number.
        #[serde(rename = "q")]
        seq: u32,
    },
    /// Dedicated dissemination round.
    #[serde(rename = "G")]
    Gossip {
        /// The sender.
        #[serde(rename = "f")]
        from: NodeId,
        /// The updates.
        #[serde(rename = "u")]
        updates: Vec<Update>,
    },
    /// Full-state sync request or reply (stream only).
    #[serde(rename = "S")]
    PushPull(PushPull),
}

/// Why bytes are not a membership message. Nothing was changed by a failed decode; drop the
/// datagram (and count it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// More bytes than any valid message has.
    #[error("membership message too large: {len} bytes, at most {max} accepted")]
    TooLarge {
        /// Received length.
        len: usize,
        /// The limit ([`MAX_MESSAGE_BYTES`]).
        max: usize,
    },
    /// Not valid CBOR for a [`Message`] (garbage, truncated, or another protocol version).
    #[error("invalid membership message: {0}")]
    Invalid(String),
    /// A valid message followed by extra bytes.
    #[error("invalid membership message: {0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// The message names a sender other than the node whose connection carried it.
    #[error("membership message claims to be from {claimed} but came from {sender}")]
    NotFromSender {
        /// Whom the message names.
        claimed: NodeId,
        /// Whom the connection's certificate names.
        sender: NodeId,
    },
}

/// Stands in for a ping's sender until [`Message::decode_from`] sets it (never seen
/// outside this module's decoding).
fn unsent_peer() -> Peer {
    Peer {
        id: unsent_id(),
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
    }
}

/// Stands in for an ack's sender and a ping's target until [`Message::decode_from`] sets
/// them.
fn unsent_id() -> NodeId {
    NodeId([0; 16])
}

impl Message {
    /// The node that sent this message.
    pub fn sender(&self) -> NodeId {
        match self {
            Message::Ping { from, .. } | Message::PingReq { from, .. } => from.id,
            Message::Ack { from, .. }
            | Message::Nack { from, .. }
            | Message::Gossip { from, .. } => *from,
            Message::PushPull(pp) => pp.from.id,
        }
    }

    /// True for the one kind that travels over a stream ([`Message::PushPull`]).
    pub fn is_stream(&self) -> bool {
        matches!(self, Message::PushPull(_))
    }

    /// CBOR encoding.
    pub fn encode(&self) -> Vec<u8> {
        encode_value(self)
    }

    /// Parses a datagram (or push-pull) that `sender` sent to `receiver`: the sender is
    /// the node its connection's certificate names, at the address the connection comes
    /// from. A ping gets `sender` as its sender and `receiver` as its target, an ack
    /// `sender` as its sender; any other kind must name `sender.id` itself
    /// ([`DecodeError::NotFromSender`] if not). Hostile input yields an error, never a
    /// panic; allocation is bounded by the input length.
    pub fn decode_from(
        bytes: &[u8],
        sender: Peer,
        receiver: NodeId,
    ) -> Result<Message, DecodeError> {
        let mut msg = Message::decode_unsent(bytes)?;
        match &mut msg {
            Message::Ping { from, target, .. } => {
                *from = sender;
                *target = receiver;
            }
            Message::Ack { from, .. } => *from = sender.id,
            other if other.sender() != sender.id => {
                return Err(DecodeError::NotFromSender {
                    claimed: other.sender(),
                    sender: sender.id,
                });
            }
            _ => {}
        }
        Ok(msg)
    }

    /// Parses CBOR, leaving a ping's sender and target and an ack's sender unset.
    fn decode_unsent(bytes: &[u8]) -> Result<Message, DecodeError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        let mut reader = bytes;
        let msg: Message =
            ciborium::from_reader(&mut reader).map_err(|e| DecodeError::Invalid(e.to_string()))?;
        if !reader.is_empty() {
            return Err(DecodeError::TrailingBytes(reader.len()));
        }
        Ok(msg)
    }
}

/// CBOR-encode any serializable value into a fresh buffer.
pub(crate) fn encode_value<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128);
    // Writing into a Vec cannot fail and our types have no failing Serialize impls; an
    // error here would be a bug, so it is logged and an empty buffer returned.
    if let Err(e) = ciborium::into_writer(value, &mut buf) {
        tracing::error!("BUG: cbor encoding failed: {e}");
        buf.clear();
    }
    buf
}

/// Encoded length of a CBOR array header for `n` items.
#[cfg(test)]
pub(crate) fn array_header_len(n: usize) -> usize {
    match n {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::member::HealthSummary;

    fn peer(n: u8) -> Peer {
        Peer::numbered(n, 30035)
    }

    /// The node decoding, where the test does not care which.
    const RECEIVER: NodeId = NodeId([8; 16]);

    #[test]
    fn every_message_kind_round_trips() {
        let updates = vec![
            Update::Alive {
                peer: peer(1),
                incarnation: 3,
                tags: [("role".to_string(), "db".to_string())].into(),
            },
            Update::Suspect {
                id: NodeId([2; 16]),
                incarnation: 1,
                by: NodeId([3; 16]),
            },
            Update::Dead {
                id: NodeId([2; 16]),
                incarnation: 1,
                by: NodeId([3; 16]),
            },
            Update::Left {
                id: NodeId([2; 16]),
                incarnation: 9,
                by: NodeId([2; 16]),
            },
            Update::Health {
                id: NodeId([4; 16]),
                incarnation: 0,
                summary: HealthSummary {
                    version: 7,
                    passing: 3,
                    failing: 1,
                    erroring: 0,
                    failing_names: vec!["disk".into()],
                    erroring_names: Vec::new(),
                    names_omitted: 0,
                    at_unix_ms: 1_700_000_000_000,
                    refresh_id: 0,
                },
            },
        ];
        let msgs = vec![
            Message::Ping {
                from: peer(1),
                seq: 7,
                target: NodeId([2; 16]),
                updates: updates.clone(),
            },
            Message::Ack {
                from: NodeId([2; 16]),
                seq: u32::MAX,
                updates,
            },
            Message::PingReq {
                from: peer(1),
                seq: 1,
                target: peer(5),
            },
            Message::Nack {
                from: NodeId([5; 16]),
                seq: 1,
            },
            Message::Gossip {
                from: NodeId([1; 16]),
                updates: vec![],
            },
            Message::PushPull(PushPull {
                from: peer(1),
                join: true,
                members: vec![MemberState {
                    peer: peer(1),
                    incarnation: 2,
                    state: State::Suspect,
                    tags: Tags::new(),
                    health: None,
                    by: Some(NodeId([9; 16])),
                }],
                digest: None,
            }),
            Message::PushPull(PushPull {
                from: peer(2),
                join: false,
                members: vec![],
                digest: Some(StateDigest([7; 16])),
            }),
        ];
        for msg in msgs {
            let bytes = msg.encode();
            assert_eq!(
                Message::decode_from(&bytes, sent_by(&msg), received_by(&msg)),
                Ok(msg.clone())
            );
        }
    }

    /// The node `msg` reaches: a ping's target, else any.
    fn received_by(msg: &Message) -> NodeId {
        match msg {
            Message::Ping { target, .. } => *target,
            _ => RECEIVER,
        }
    }

    /// The peer that sent `msg`: a ping's prober, else a peer with the id it names.
    fn sent_by(msg: &Message) -> Peer {
        match msg {
            Message::Ping { from, .. } => *from,
            other => Peer {
                id: other.sender(),
                ..peer(9)
            },
        }
    }

    #[test]
    fn pings_and_acks_take_their_ends_from_the_connection() {
        let ping = Message::Ping {
            from: peer(1),
            seq: 7,
            target: NodeId([2; 16]),
            updates: Vec::new(),
        };
        let bytes = ping.encode();
        // The sequence number only: naming the sender (id and address), the target and an
        // empty update list would take 72 bytes, the target alone 30.
        assert!(bytes.len() <= 12, "{} bytes", bytes.len());
        for n in [1u8, 2] {
            assert!(
                !bytes.windows(16).any(|w| w == [n; 16]),
                "sender or target id on the wire"
            );
        }
        let Ok(Message::Ping { from, target, .. }) =
            Message::decode_from(&bytes, peer(3), NodeId([4; 16]))
        else {
            panic!("not a ping");
        };
        assert_eq!((from, target), (peer(3), NodeId([4; 16])));

        let ack = Message::Ack {
            from: NodeId([2; 16]),
            seq: 7,
            updates: Vec::new(),
        };
        let bytes = ack.encode();
        assert!(bytes.len() <= 16, "{} bytes", bytes.len());
        let Ok(Message::Ack { from, .. }) = Message::decode_from(&bytes, peer(4), RECEIVER) else {
            panic!("not an ack");
        };
        assert_eq!(from, NodeId([4; 16]));
    }

    #[test]
    fn other_kinds_must_name_the_node_that_sent_them() {
        let nack = Message::Nack {
            from: NodeId([5; 16]),
            seq: 1,
        };
        assert_eq!(
            Message::decode_from(&nack.encode(), peer(6), RECEIVER),
            Err(DecodeError::NotFromSender {
                claimed: NodeId([5; 16]),
                sender: NodeId([6; 16]),
            })
        );
        assert_eq!(
            Message::decode_from(&nack.encode(), peer(5), RECEIVER),
            Ok(nack)
        );
    }

    #[test]
    fn garbage_bytes_are_an_error_not_a_panic() {
        // Deterministic pseudo-random garbage plus hand-made nasty inputs.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..400usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = Message::decode_from(&bytes, peer(5), RECEIVER);
        }
        assert!(Message::decode_from(&[], peer(5), RECEIVER).is_err());
        // Array claiming 2^32 elements, map claiming 2^64 entries, deep nesting.
        assert!(Message::decode_from(&[0x9a, 0xff, 0xff, 0xff, 0xff], peer(5), RECEIVER).is_err());
        assert!(
            Message::decode_from(
                &[0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                peer(5),
                RECEIVER
            )
            .is_err()
        );
        assert!(Message::decode_from(&[0x81; 10_000], peer(5), RECEIVER).is_err());
        // A valid message with a truncated tail / trailing junk.
        let good = Message::Nack {
            from: NodeId([5; 16]),
            seq: 1,
        }
        .encode();
        assert!(Message::decode_from(&good[..good.len() - 1], peer(5), RECEIVER).is_err());
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            Message::decode_from(&long, peer(5), RECEIVER),
            Err(DecodeError::TrailingBytes(1))
        );
        assert!(matches!(
            Message::decode_from(&vec![0u8; MAX_MESSAGE_BYTES + 1], peer(5), RECEIVER),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn array_header_len_matches_cbor() {
        for n in [0usize, 1, 23, 24, 255, 256, 300] {
            let v: Vec<u8> = vec![0; n];
            // Vec<u8> without serde_bytes encodes as an array of small ints (1 byte each).
            assert_eq!(encode_value(&v).len(), array_header_len(n) + n, "n={n}");
        }
    }
}
