//! The wire form of one membership event a node saw: [`MeshEvent`] and its [`EventKind`],
//! as `werify mesh watch` receives them (CBOR frames) and `GET /v1/events` serves them
//! (JSON). Node ids are written as their hex digits and member states by name, so the
//! JSON reads without a decoder ring. Recording events is the node's event log
//! (`crate::node::events`), not this module's.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::base::NodeId;
use crate::mesh::member::{HealthSummary, State, Tags};

/// What happened. The names (`member-joined`, …) are what JSON, `werify mesh watch` and
/// `WERIFY_EVENT` of `--on-event` scripts carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A member appeared, or came back after being dead or gone
    /// ([`MeshEvent::previous_state`] says which).
    MemberJoined,
    /// A member missed its probes and is suspected ([`MeshEvent::accuser`] accused it).
    MemberSuspect,
    /// A suspected member refuted the suspicion and is alive again.
    MemberAlive,
    /// A member was declared dead ([`MeshEvent::accuser`] declared it).
    MemberDead,
    /// A member left gracefully.
    MemberLeft,
    /// A member was removed by an operator (`werify ctl del` on [`MeshEvent::accuser`]).
    MemberRemoved,
    /// A member's tags or address changed.
    MemberUpdated,
    /// A member's periodic checks changed verdict: counts or failing names.
    MemberHealth,
    /// A dead or gone member was forgotten.
    MemberReaped,
    /// This node was accused ([`MeshEvent::accuser`], when known) and refuted it.
    SelfRefuted,
    /// This node was removed from the mesh; it stays out until added again.
    SelfRemoved,
    /// This node was added to the mesh again after a removal.
    SelfReadded,
    /// A kind this build does not know (sent by a newer node).
    #[serde(other)]
    Unknown,
}

impl EventKind {
    /// The kind's name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MemberJoined => "member-joined",
            EventKind::MemberSuspect => "member-suspect",
            EventKind::MemberAlive => "member-alive",
            EventKind::MemberDead => "member-dead",
            EventKind::MemberLeft => "member-left",
            EventKind::MemberRemoved => "member-removed",
            EventKind::MemberUpdated => "member-updated",
            EventKind::MemberHealth => "member-health",
            EventKind::MemberReaped => "member-reaped",
            EventKind::SelfRefuted => "self-refuted",
            EventKind::SelfRemoved => "self-removed",
            EventKind::SelfReadded => "self-readded",
            EventKind::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member's periodic-check verdict as an event carries it (the gossiped
/// [`HealthSummary`] under readable names).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventHealth {
    pub passing: u32,
    pub failing: u32,
    pub erroring: u32,
    /// Failing check names (bounded, see [`HealthSummary::capped`]).
    pub failing_names: Vec<String>,
    /// Erroring check names (bounded likewise).
    #[serde(default)]
    pub erroring_names: Vec<String>,
    /// Failing or erroring names the summary left out.
    #[serde(default)]
    pub names_omitted: u32,
    /// When the member last ran its checks with a new verdict (Unix time, ms).
    pub at_unix_ms: u64,
}

impl From<&HealthSummary> for EventHealth {
    fn from(h: &HealthSummary) -> EventHealth {
        EventHealth {
            passing: h.passing,
            failing: h.failing,
            erroring: h.erroring,
            failing_names: h.failing_names.clone(),
            erroring_names: h.erroring_names.clone(),
            names_omitted: h.names_omitted,
            at_unix_ms: h.at_unix_ms,
        }
    }
}

/// One thing this node saw happen to the mesh. The same document travels as CBOR to
/// `werify mesh watch` and as JSON from `GET /v1/events`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshEvent {
    /// Position in this node's log: 1 for the first event since the node started, one
    /// more for each event after it.
    pub seq: u64,
    /// When this node recorded it (Unix time, ms).
    pub at_unix_ms: u64,
    /// What happened.
    pub event: EventKind,
    /// The member it happened to (this node itself for the `self-*` kinds).
    #[serde(with = "hex_id")]
    pub member_id: NodeId,
    pub member_addr: SocketAddr,
    /// The member's state after the event.
    #[serde(with = "state_name")]
    pub member_state: State,
    /// Its state before, when the event changed it and this node knew it (tells a rejoin
    /// from a first join).
    #[serde(default, with = "opt_state_name")]
    pub previous_state: Option<State>,
    pub member_incarnation: u64,
    pub member_tags: Tags,
    /// True when the member is the node that recorded the event.
    pub is_self: bool,
    /// Who suspected, declared dead, removed, or accused this node, when known.
    #[serde(default, with = "opt_hex_id")]
    pub accuser: Option<NodeId>,
    /// Independent confirmations of the suspicion behind a `member-suspect` or
    /// `member-dead`, as this node counted them.
    #[serde(default)]
    pub confirmations: Option<u32>,
    /// The member's latest periodic-check verdict, when one has arrived.
    #[serde(default)]
    pub health: Option<EventHealth>,
}

/// A node id as its 32 hex digits (readable in JSON, the same in CBOR).
mod hex_id {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::base::NodeId;

    pub fn serialize<S: Serializer>(id: &NodeId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NodeId, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

mod opt_hex_id {
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    use crate::base::NodeId;

    pub fn serialize<S: Serializer>(id: &Option<NodeId>, s: S) -> Result<S::Ok, S::Error> {
        id.map(|id| id.to_string()).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NodeId>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| s.parse().map_err(D::Error::custom))
            .transpose()
    }
}

/// A member state by its name (`alive`, `suspect`, `dead`, `left`).
mod state_name {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::mesh::member::State;

    pub fn serialize<S: Serializer>(state: &State, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(state)
    }

    pub fn parse(name: &str) -> Option<State> {
        [State::Alive, State::Suspect, State::Dead, State::Left]
            .into_iter()
            .find(|s| s.to_string() == name)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<State, D::Error> {
        let name = String::deserialize(d)?;
        parse(&name).ok_or_else(|| D::Error::custom(format!("unknown member state {name:?}")))
    }
}

mod opt_state_name {
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    use crate::mesh::member::State;

    pub fn serialize<S: Serializer>(state: &Option<State>, s: S) -> Result<S::Ok, S::Error> {
        state.map(|st| st.to_string()).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<State>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|name| {
                super::state_name::parse(&name)
                    .ok_or_else(|| D::Error::custom(format!("unknown member state {name:?}")))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_json_with_names_and_round_trip_through_cbor() {
        let mut tags = Tags::new();
        tags.insert("role".into(), "db".into());
        let e = MeshEvent {
            seq: 3,
            at_unix_ms: 1_764_000_000_000,
            event: EventKind::MemberDead,
            member_id: NodeId([7; 16]),
            member_addr: SocketAddr::from(([127, 0, 0, 7], 32500)),
            member_state: State::Dead,
            previous_state: Some(State::Suspect),
            member_incarnation: 2,
            member_tags: tags,
            is_self: false,
            accuser: Some(NodeId([9; 16])),
            confirmations: Some(2),
            health: None,
        };
        let json = serde_json::to_value(&e).expect("json");
        assert_eq!(json["event"], "member-dead");
        assert_eq!(json["member_id"], "07".repeat(16));
        assert_eq!(json["member_addr"], "127.0.0.7:32500");
        assert_eq!(json["member_state"], "dead");
        assert_eq!(json["previous_state"], "suspect");
        assert_eq!(json["accuser"], "09".repeat(16));
        assert_eq!(json["member_tags"]["role"], "db");
        let back: MeshEvent = serde_json::from_value(json).expect("from json");
        assert_eq!(back, e);
        let mut cbor = Vec::new();
        ciborium::into_writer(&e, &mut cbor).expect("cbor");
        let back: MeshEvent = ciborium::from_reader(&cbor[..]).expect("from cbor");
        assert_eq!(back, e);
        // A kind from a newer node reads as unknown, not as an error; a bad id or state
        // is an error.
        let mut json = serde_json::to_value(&e).expect("json");
        json["event"] = "member-teleported".into();
        let newer: MeshEvent = serde_json::from_value(json.clone()).expect("newer kind");
        assert_eq!(newer.event, EventKind::Unknown);
        json["member_state"] = "asleep".into();
        assert!(serde_json::from_value::<MeshEvent>(json.clone()).is_err());
        json["member_state"] = "alive".into();
        json["accuser"] = "xyz".into();
        assert!(serde_json::from_value::<MeshEvent>(json).is_err());
    }
}
