//! The request/response protocol spoken on QUIC bidirectional streams: one request frame,
//! one response frame per stream. Gossip (SWIM datagrams) is not here: it is the mesh's
//! own [`crate::mesh::message::Message`]; framing is in [`crate::rpc::frame`].
//!
//! Who may send what is enforced by the node's request dispatch: `ctl` clients
//! (role `Client`) may send the user-facing requests; only nodes (role `Node`) may send
//! mesh requests (`PushPull`, `RunChecks`, `RunRefresh`).
//!
//! One request is a stream: [`Request::Watch`], answered by [`Response::Watching`] and
//! then one [`Response::Event`] (or [`Response::EventsMissed`]) frame per event until
//! either side closes the stream.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::base::NodeId;
use crate::checks::spec::CheckSet;
use crate::checks::{CheckResult, Observation, Outcome};
use crate::mesh::member::{HealthSummary, State, Tags};
use crate::mesh::message::PushPull;
use crate::rpc::fault::Fault;
use crate::rpc::mesh_event::MeshEvent;

pub use crate::base::clock::duration_ms;

/// The newest version of this protocol and of the mesh's gossip messages
/// ([`crate::mesh::message`]) this build speaks. Bump it whenever a message changes in a
/// way the previous version cannot decode, keep speaking the previous one to peers that
/// chose it (see [`crate::rpc::transport::Transport::peer_version`]), and raise
/// [`MIN_PROTOCOL_VERSION`] only once no supported peer needs it.
///
/// Version 5 over 4: the hello carries the range of versions the dialer speaks and the
/// answer names the version chosen; [`Request::Retire`] (sent only to peers at 5 or
/// above); operation reports name their submitter; status reports say why a node is not
/// joined and which version each member speaks (a version 4 peer ignores these fields).
pub const PROTOCOL_VERSION: u32 = 5;
/// The oldest version this build still speaks.
pub const MIN_PROTOCOL_VERSION: u32 = 4;

/// A range of protocol versions, both ends included: what a node speaks. Two nodes talk
/// at the highest version both ranges hold, and refuse each other when there is none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolRange {
    /// The oldest version spoken.
    pub min: u32,
    /// The newest version spoken.
    pub max: u32,
}

impl ProtocolRange {
    /// What this build speaks.
    pub const SUPPORTED: ProtocolRange = ProtocolRange {
        min: MIN_PROTOCOL_VERSION,
        max: PROTOCOL_VERSION,
    };

    /// The range a hello announces: `version` is the newest; `min_version`, the oldest, is
    /// missing from peers that speak only `version`.
    pub fn of_hello(version: u32, min_version: Option<u32>) -> ProtocolRange {
        ProtocolRange {
            min: min_version.unwrap_or(version).min(version),
            max: version,
        }
    }

    /// Whether `version` is in the range.
    pub fn contains(self, version: u32) -> bool {
        (self.min..=self.max).contains(&version)
    }

    /// The highest version both ranges hold, if any.
    pub fn highest_common(self, other: ProtocolRange) -> Option<u32> {
        let version = self.max.min(other.max);
        (version >= self.min.max(other.min)).then_some(version)
    }
}

impl Default for ProtocolRange {
    fn default() -> ProtocolRange {
        ProtocolRange::SUPPORTED
    }
}

impl fmt::Display for ProtocolRange {
    /// `5`, or `4 to 5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.max)
        } else {
            write!(f, "{} to {}", self.min, self.max)
        }
    }
}

impl FromStr for ProtocolRange {
    type Err = String;

    /// `5` or `4..5`.
    fn from_str(text: &str) -> Result<ProtocolRange, String> {
        let number = |t: &str| {
            t.trim()
                .parse::<u32>()
                .map_err(|_| format!("{text:?} is not a version or a range MIN..MAX"))
        };
        let (min, max) = match text.split_once("..") {
            Some((min, max)) => (number(min)?, number(max)?),
            None => {
                let v = number(text)?;
                (v, v)
            }
        };
        if min > max {
            return Err(format!("{text:?}: the oldest version comes first"));
        }
        Ok(ProtocolRange { min, max })
    }
}

/// Which hosts an operation targets. Empty filters target every member.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetFilter {
    /// Regexes matched against `IP:PORT` and the node id; a host must match at least one.
    pub nodes: Vec<String>,
    /// `(KEY, REGEX)` pairs; a host must carry every KEY with a value matching its REGEX.
    pub tags: Vec<(String, String)>,
}

impl TargetFilter {
    /// True when no filter is given: every member is targeted.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.tags.is_empty()
    }
}

/// A request, sent as the single frame of a fresh bidirectional stream.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// Application-level hello: proves the acceptor accepted our certificate (the dialer's
    /// handshake can complete before the acceptor rejects it) and tells us who it is.
    /// `version` is the newest protocol version the dialer speaks, `min_version` the
    /// oldest (absent: only `version`).
    Hello {
        version: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_version: Option<u32>,
    },
    /// Mesh: full-state exchange (periodic anti-entropy and join).
    PushPull(PushPull),
    /// Mesh: run these checks here and answer with the results (coordinator → host).
    RunChecks { checks: CheckSet, timeout_ms: u64 },
    /// Mesh: re-run the periodic checks now and gossip the summary tagged with `refresh_id`.
    RunRefresh { refresh_id: u64 },
    /// `ctl add HOST`: join HOST into the mesh through this node.
    Add { host: String },
    /// `ctl del HOST`: remove HOST from the mesh.
    Del { host: String },
    /// `ctl list` and `mesh status`: the mesh as this node sees it.
    Status,
    /// `ctl operation`: coordinate an operation from here.
    Submit {
        checks: CheckSet,
        filter: TargetFilter,
        deadline_ms: u64,
    },
    /// `ctl get`: an operation's results; with `wait_ms` > 0, answer once it ended or
    /// after at most `wait_ms` or, when `known_answers` is given, as soon as more than
    /// that many hosts have answered (so a client can show each answer as it arrives).
    /// `handle` is the operation's handle as the user typed it; the node validates it.
    /// A node that does not know `known_answers` ignores it and answers at the end or
    /// after `wait_ms`.
    Get {
        handle: String,
        wait_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        known_answers: Option<u64>,
    },
    /// `ctl refresh`: probe every member and have every alive node re-run its checks.
    Refresh,
    /// Mesh (version 5 on): this side no longer accepts the certificate the receiver
    /// presented on this connection (its CA was dropped): send nothing new over it; it
    /// closes once the requests on it are done. Answered with `Done`.
    Retire,
    /// `ctl health`: every member's periodic-check state, gathered by this node (each
    /// alive member is asked for its [`Request::PeriodicResults`]); with `failing_only`,
    /// only members whose gossiped summary shows a failing or erroring check are asked,
    /// and only those checks are reported.
    Health { failing_only: bool },
    /// This node's latest periodic-check results (what `ctl health` asks each member).
    PeriodicResults { failing_only: bool },
    /// `mesh watch`: this node's membership events as they happen, after the events
    /// after `since` it still holds (none for `None`).
    Watch { since: Option<u64> },
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Response {
    /// The acceptor's hello: `version` is the protocol version chosen for this
    /// connection.
    Hello {
        version: u32,
        node_id: NodeId,
        addr: String,
    },
    PushPull(PushPull),
    CheckResults {
        results: BTreeMap<String, Outcome>,
        took_ms: u64,
        /// What each check found (and expected, unless it passed), by check name; only
        /// checks that observed something. Absent from peers that do not send it; peers
        /// that do not know it skip it.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        observations: BTreeMap<String, Observation>,
    },
    Done,
    Status(StatusReport),
    Submitted {
        handle: String,
        coordinator: String,
        targeted: usize,
    },
    Operation(OperationReport),
    RefreshStarted {
        refresh_id: u64,
        targeted: usize,
    },
    Health(HealthReport),
    PeriodicResults(PeriodicChecks),
    /// The first frame of a watch stream: who is watched and the seq its next event gets.
    Watching {
        node_id: NodeId,
        addr: String,
        next_seq: u64,
    },
    /// One event of a watch stream.
    Event(Box<MeshEvent>),
    /// The watcher fell behind: this many events were dropped for it.
    EventsMissed {
        count: u64,
    },
    /// The request failed: what kind of failure, and one line that says what was wrong
    /// and what to do.
    Error {
        code: ErrorCode,
        message: String,
    },
}

impl Response {
    /// An error answer.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Response {
        Response::Error {
            code,
            message: message.into(),
        }
    }
}

/// Why a request failed, grouped by whose fault it is, so a client can act on it (retry,
/// fix its input, report a bug) without reading the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The caller's input is wrong (a bad host, handle, checks file or deadline): fix it.
    Invalid,
    /// The caller may not make this request (its certificate's role).
    Forbidden,
    /// What the request names does not exist (an unknown or expired handle).
    NotFound,
    /// The request's host filters (`--node`, `--tag`) match no alive member, so nothing
    /// was run: fix the filters.
    NoMatch,
    /// The request is refused for now (a rate limit, a busy node); try again later.
    RateLimited,
    /// This node, or a node it needed, cannot serve it now (shutting down, unreachable,
    /// store failure): try another node or later.
    Unavailable,
    /// Another node answered wrongly (a peer's fault).
    Peer,
    /// The two sides speak no protocol version in common: upgrade the older one.
    Incompatible,
    /// A code this build does not know (a newer peer): treat as unavailable.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// A short name for logs and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Invalid => "invalid",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::NoMatch => "no_match",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Peer => "peer",
            ErrorCode::Incompatible => "incompatible",
            ErrorCode::Unknown => "unknown",
        }
    }

    /// Whose fault it is, seen from the client that got the code.
    pub fn fault(self) -> Fault {
        match self {
            ErrorCode::Invalid
            | ErrorCode::Forbidden
            | ErrorCode::NotFound
            | ErrorCode::NoMatch => Fault::Caller,
            ErrorCode::RateLimited | ErrorCode::Unavailable | ErrorCode::Unknown => {
                Fault::Environment
            }
            ErrorCode::Peer | ErrorCode::Incompatible => Fault::Peer,
        }
    }
}

/// Who submitted an operation, as the coordinator saw it: kept with the operation and
/// shown by `get`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitter {
    /// The operator's name, when the client presented an operator certificate; `None` for
    /// a `ctl` client that minted its own certificate (derived mode, or a CA key holder).
    pub operator: Option<String>,
    /// `IP:PORT` the submission came from.
    pub from: String,
    /// SHA-256 of the client's certificate, lowercase hex.
    pub certificate: String,
}

impl fmt::Display for Submitter {
    /// `operator "alice" from 10.0.0.5:41234`, or `a ctl client at 10.0.0.5:41234`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.operator {
            Some(name) => write!(f, "operator {name:?} from {}", self.from),
            None => write!(f, "a ctl client at {}", self.from),
        }
    }
}

/// An operation as `ctl get` receives it: what was submitted and what each host answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationReport {
    /// The operation's handle.
    pub handle: String,
    /// `"IP:PORT"` of the coordinating node.
    pub coordinator: String,
    /// When the coordinator accepted the operation (Unix time, ms).
    pub submitted_unix_ms: u64,
    /// When the coordinator stops waiting for answers (Unix time, ms).
    pub deadline_unix_ms: u64,
    /// When the operation ended, `None` while it runs.
    pub ended_unix_ms: Option<u64>,
    /// The check names of the operation, in file order.
    pub check_names: Vec<String>,
    /// Per targeted host (`"IP:PORT"`), what it answered so far.
    pub hosts: BTreeMap<String, HostReport>,
    /// Who submitted it; `None` from a coordinator that does not record it.
    #[serde(default)]
    pub submitted_by: Option<Submitter>,
}

/// What one targeted host contributed to an operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostReport {
    /// Targeted, no answer yet.
    Pending,
    /// The host ran the checks: one outcome per check name, how long it took, and what
    /// each check observed (see [`Response::CheckResults`]).
    Answered {
        results: BTreeMap<String, Outcome>,
        took_ms: u64,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        observations: BTreeMap<String, Observation>,
    },
    /// The host gave no usable answer; one error for all checks.
    Failed(String),
}

impl HostReport {
    /// A host's answer from its check results and how long they took.
    pub fn answered(results: BTreeMap<String, CheckResult>, took_ms: u64) -> HostReport {
        let (results, observations) = split_results(results);
        HostReport::Answered {
            results,
            took_ms,
            observations,
        }
    }

    /// What check `name` observed on this host, if it answered and observed something.
    pub fn observation(&self, name: &str) -> Option<&Observation> {
        match self {
            HostReport::Answered { observations, .. } => observations.get(name),
            HostReport::Pending | HostReport::Failed(_) => None,
        }
    }
}

/// Splits check results into the two maps they travel as: every outcome, and the
/// observations that are not empty.
pub fn split_results(
    results: BTreeMap<String, CheckResult>,
) -> (BTreeMap<String, Outcome>, BTreeMap<String, Observation>) {
    let mut outcomes = BTreeMap::new();
    let mut observations = BTreeMap::new();
    for (
        name,
        CheckResult {
            outcome,
            observation,
        },
    ) in results
    {
        if !observation.is_empty() {
            observations.insert(name.clone(), observation);
        }
        outcomes.insert(name, outcome);
    }
    (outcomes, observations)
}

/// A node's periodic checks as it reports them itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeriodicChecks {
    /// The node runs no periodic checks (no `--checks`).
    Off,
    /// Its first run has not finished yet.
    NotRunYet,
    /// Its latest run: when it ended, how long it took, and the outcomes (all of them, or
    /// only the failing and erroring ones when those were asked for), with what those
    /// checks found and expected (as in [`Response::CheckResults`]; absent from nodes that
    /// do not send it).
    Ran {
        at_unix_ms: u64,
        took_ms: u64,
        results: BTreeMap<String, Outcome>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        observations: BTreeMap<String, Observation>,
    },
}

/// `ctl health`: every member's periodic-check state as the asked node gathered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// `"IP:PORT"` of the node that gathered it.
    pub gathered_by: String,
    /// Only failing and erroring checks were asked for.
    pub failing_only: bool,
    /// One entry per member that has not left, sorted by address.
    pub hosts: Vec<HostHealth>,
}

/// One member's entry of a [`HealthReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostHealth {
    /// `"IP:PORT"`.
    pub addr: String,
    pub node_id: NodeId,
    /// Its state as the gathering node sees it.
    pub state: State,
    /// The summary the member last gossiped, if any arrived.
    pub summary: Option<HealthSummary>,
    /// What the member answered for its latest run.
    pub checks: HostChecks,
}

impl PeriodicChecks {
    /// What check `name` observed in the latest run, if it ran and observed something.
    pub fn observation(&self, name: &str) -> Option<&Observation> {
        match self {
            PeriodicChecks::Ran { observations, .. } => observations.get(name),
            PeriodicChecks::Off | PeriodicChecks::NotRunYet => None,
        }
    }
}

/// What one member answered when asked for its periodic-check results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostChecks {
    /// Its answer.
    Answered(PeriodicChecks),
    /// Not asked: only failing checks were wanted and its gossiped summary shows none.
    NotAsked,
    /// Could not be asked or gave no usable answer (not alive, unreachable, too old to
    /// know the request): why, in one line.
    Unavailable(String),
}

/// The mesh as one node sees it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatusReport {
    pub env: String,
    pub node_id: NodeId,
    pub addr: String,
    pub profile: String,
    /// Lifeguard local-health score (0 = healthy) and its maximum.
    pub local_health: u32,
    pub local_health_max: u32,
    /// QUIC connections the node has open (to peers and clients, either direction).
    #[serde(default)]
    pub connections: usize,
    pub members: Vec<MemberReport>,
    /// Why this node is not part of a mesh although it was told to join one (a contact
    /// refused it, or none answered); `None` when it is joined or stands alone by choice.
    #[serde(default)]
    pub not_joined: Option<String>,
}

/// One row of [`StatusReport`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberReport {
    pub addr: String,
    pub node_id: NodeId,
    pub state: State,
    pub incarnation: u64,
    pub is_self: bool,
    #[serde(with = "opt_duration_ms")]
    pub last_heard_ago: Option<Duration>,
    /// Round-trip time of the member's last answered probe, in whole milliseconds on the
    /// wire (what clients that do not read `rtt_us` show).
    #[serde(with = "opt_duration_ms")]
    pub rtt: Option<Duration>,
    /// The same round-trip time in microseconds; absent from nodes that send only `rtt`.
    #[serde(default, with = "opt_duration_us")]
    pub rtt_us: Option<Duration>,
    #[serde(with = "opt_duration_ms")]
    pub state_for: Option<Duration>,
    pub tags: Tags,
    pub health: Option<HealthSummary>,
    pub suspected_by: Option<NodeId>,
    pub confirmations: usize,
    /// The protocol version this node talks with the member, when a connection set it.
    #[serde(default)]
    pub protocol: Option<u32>,
}

/// Durations as whole microseconds on the wire.
mod opt_duration_us {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        d.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_micros))
    }
}

/// Durations as whole milliseconds on the wire, so any client can read them.
mod opt_duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        d.map(super::duration_ms).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}
