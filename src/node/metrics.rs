//! The node's Prometheus metrics: one [`Metrics`] per node, a `prometheus-client`
//! registry of counters, gauges and histograms named `werify_…`, and the Prometheus text
//! exposition of it for `GET /metrics` ([`Metrics::render`]).
//!
//! Where the numbers come from, all of it in the node layer:
//! - the mesh driver ([`crate::node::driver`]) counts the datagrams and push-pulls it sends
//!   and receives, the pings it sends and the acks that answer them ([`ProbeTracker`]),
//!   and the [`Event`]s the membership state machine emits (suspicions);
//! - request dispatch counts incoming datagrams, push-pulls, failed handshakes and the
//!   checks it runs for coordinators; the transport reports failed dials through a hook;
//! - the coordinator reports operations and the checks it runs on its own host through
//!   [`crate::ops::coordinator::Observer`];
//! - the health task reports the periodic checks;
//! - members by state, local health and open connections are read at scrape time from
//!   the mesh's view and the QUIC endpoint.
//!
//! Not here: serving HTTP ([`crate::node::http`]), and anything inside `crate::mesh`,
//! which stays free of metric plumbing.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::base::NodeId;
use crate::checks::spec::CheckSet;
use crate::checks::{CheckResult, Outcome};
use crate::mesh::member::{MeshView, State};
use crate::mesh::membership::Event;
use crate::ops::coordinator::{Observer, OperationOutcome};

/// The content type of [`Metrics::render`]'s output (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Pings the [`ProbeTracker`] follows at once; past this new pings are counted as sent
/// but not followed (a refresh of a mesh larger than this).
pub const MAX_TRACKED_PINGS: usize = 4096;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandshakeLabels {
    side: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    source: &'static str,
    r#type: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

/// Which side of a QUIC connection saw a handshake fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// A peer dialed this node.
    Accept,
    /// This node dialed a peer.
    Dial,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Accept => "accept",
            Side::Dial => "dial",
        }
    }
}

/// Why a handshake failed, as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// TLS refused a certificate or found no common protocol, on either side (another
    /// env, another secret or CA, a wrong role).
    Tls,
    /// Nothing answered in time.
    Timeout,
    /// Refused before the handshake: too many handshakes or connections at once.
    Busy,
    /// The peer speaks no QUIC version this build supports.
    Version,
    /// The peer reset or closed the connection during the handshake or the hello.
    Closed,
    /// Another QUIC protocol error.
    Protocol,
    /// This process closed it or ran out of connection ids.
    Local,
}

impl HandshakeFailure {
    const ALL: [HandshakeFailure; 7] = [
        HandshakeFailure::Tls,
        HandshakeFailure::Timeout,
        HandshakeFailure::Busy,
        HandshakeFailure::Version,
        HandshakeFailure::Closed,
        HandshakeFailure::Protocol,
        HandshakeFailure::Local,
    ];

    fn as_str(self) -> &'static str {
        match self {
            HandshakeFailure::Tls => "tls",
            HandshakeFailure::Timeout => "timeout",
            HandshakeFailure::Busy => "busy",
            HandshakeFailure::Version => "version",
            HandshakeFailure::Closed => "closed",
            HandshakeFailure::Protocol => "protocol",
            HandshakeFailure::Local => "local",
        }
    }

    /// The reason of a failed QUIC handshake. TLS alerts travel as QUIC crypto errors
    /// (codes 0x100–0x1ff), whichever side refused.
    pub fn of(err: &quinn::ConnectionError) -> HandshakeFailure {
        use quinn::ConnectionError as E;
        let crypto = |code: quinn::TransportErrorCode| (0x100..0x200).contains(&u64::from(code));
        match err {
            E::TransportError(e) if crypto(e.code) => HandshakeFailure::Tls,
            E::ConnectionClosed(c) if crypto(c.error_code) => HandshakeFailure::Tls,
            E::TransportError(_) => HandshakeFailure::Protocol,
            E::ConnectionClosed(_) | E::ApplicationClosed(_) | E::Reset => HandshakeFailure::Closed,
            E::TimedOut => HandshakeFailure::Timeout,
            E::VersionMismatch => HandshakeFailure::Version,
            E::LocallyClosed | E::CidsExhausted => HandshakeFailure::Local,
        }
    }
}

/// Where checks ran from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckSource {
    /// The node's `--checks` file, every `--check-interval` or for a refresh.
    Periodic,
    /// An operation (coordinated here or by another node).
    Operation,
}

impl CheckSource {
    fn as_str(self) -> &'static str {
        match self {
            CheckSource::Periodic => "periodic",
            CheckSource::Operation => "operation",
        }
    }
}

/// Every metric of one node.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    members: Family<StateLabels, Gauge>,
    local_health: Gauge,
    local_health_max: Gauge,
    quic_connections: Gauge,
    probes_sent: Counter,
    probes_failed: Counter,
    probe_rtt: Histogram,
    suspicions_raised: Counter,
    suspicions_refuted: Counter,
    suspicions_confirmed: Counter,
    self_refutations: Counter,
    gossip_sent: Counter,
    gossip_received: Counter,
    push_pull_sent: Counter,
    push_pull_received: Counter,
    handshake_failures: Family<HandshakeLabels, Counter>,
    operations: Family<OutcomeLabels, Counter>,
    check_executions: Family<CheckLabels, Counter>,
    check_runs: Family<SourceLabels, Histogram>,
    periodic_checks: Family<StateLabels, Gauge>,
}

const MEMBER_STATES: [State; 4] = [State::Alive, State::Suspect, State::Dead, State::Left];
const OPERATION_OUTCOMES: [&str; 4] = ["passed", "failed", "incomplete", "rejected"];
const PERIODIC_STATES: [&str; 3] = ["passing", "failing", "erroring"];

fn state_label(s: State) -> &'static str {
    match s {
        State::Alive => "alive",
        State::Suspect => "suspect",
        State::Dead => "dead",
        State::Left => "left",
    }
}

fn outcome_label(o: &Outcome) -> &'static str {
    match o {
        Outcome::Success(true) => "pass",
        Outcome::Success(false) => "fail",
        Outcome::Error(_) => "error",
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero; label sets known in advance are
    /// created now, so that their series exist before the first event.
    pub fn new() -> Metrics {
        let mut r = Registry::with_prefix("werify");
        let m = Metrics {
            registry: Registry::default(),
            members: Family::default(),
            local_health: Gauge::default(),
            local_health_max: Gauge::default(),
            quic_connections: Gauge::default(),
            probes_sent: Counter::default(),
            probes_failed: Counter::default(),
            // 100 µs (loopback) to 3.3 s (a congested WAN link), doubling.
            probe_rtt: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            suspicions_raised: Counter::default(),
            suspicions_refuted: Counter::default(),
            suspicions_confirmed: Counter::default(),
            self_refutations: Counter::default(),
            gossip_sent: Counter::default(),
            gossip_received: Counter::default(),
            push_pull_sent: Counter::default(),
            push_pull_received: Counter::default(),
            handshake_failures: Family::default(),
            operations: Family::default(),
            check_executions: Family::default(),
            // 1 ms to 65 s, ×4: a run of file checks up to one hitting its timeout.
            check_runs: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 4.0, 9))
            }),
            periodic_checks: Family::default(),
        };
        r.register(
            "build",
            "Build information: the werify version (always 1)",
            Info::new(VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        r.register(
            "members",
            "Members by state, as this node sees the mesh (itself included), read at scrape time",
            m.members.clone(),
        );
        r.register_with_unit(
            "local_health",
            "Lifeguard local health score of this node (0 = healthy); it stretches this node's probe interval and timeout",
            Unit::Other("score".into()),
            m.local_health.clone(),
        );
        r.register_with_unit(
            "local_health_max",
            "Lifeguard's awareness_max: the local health score stays below it (mesh status shows score/max)",
            Unit::Other("score".into()),
            m.local_health_max.clone(),
        );
        r.register(
            "quic_open_connections",
            "QUIC connections the node's endpoint has open, to peers and clients, either direction",
            m.quic_connections.clone(),
        );
        r.register(
            "probes_sent",
            "Pings this node sent: its own probes, refresh probes and pings relayed for other nodes' indirect probes",
            m.probes_sent.clone(),
        );
        r.register(
            "probes_failed",
            "Pings sent here that no ack (direct or relayed) answered within the probe's verdict time (twice the probe timeout, at most the probe interval, times local health + 1)",
            m.probes_failed.clone(),
        );
        r.register_with_unit(
            "probe_rtt",
            "Time from a ping this node sent to its target's own ack",
            Unit::Seconds,
            m.probe_rtt.clone(),
        );
        r.register(
            "suspicions_raised",
            "Members this node saw become suspect (accused here or by another node)",
            m.suspicions_raised.clone(),
        );
        r.register(
            "suspicions_refuted",
            "Suspects this node saw refute their suspicion and become alive again",
            m.suspicions_refuted.clone(),
        );
        r.register(
            "suspicions_confirmed",
            "Members this node saw declared dead (a suspicion that ran out, here or on another node)",
            m.suspicions_confirmed.clone(),
        );
        r.register(
            "self_refutations",
            "Accusations against this node that it refuted by raising its incarnation",
            m.self_refutations.clone(),
        );
        r.register_with_unit(
            "gossip_sent",
            "Bytes of membership datagrams (pings, acks, indirect probes, nacks, gossip) handed to the transport",
            Unit::Bytes,
            m.gossip_sent.clone(),
        );
        r.register_with_unit(
            "gossip_received",
            "Bytes of membership datagrams received from authenticated nodes",
            Unit::Bytes,
            m.gossip_received.clone(),
        );
        r.register_with_unit(
            "push_pull_sent",
            "Bytes of push-pull frames (full-state syncs and joins) sent, length prefix included",
            Unit::Bytes,
            m.push_pull_sent.clone(),
        );
        r.register_with_unit(
            "push_pull_received",
            "Bytes of push-pull frames (full-state syncs and joins) received, length prefix included",
            Unit::Bytes,
            m.push_pull_received.clone(),
        );
        r.register(
            "quic_handshake_failures",
            "QUIC connections that failed before they could be used, by side (accept: a peer dialed here; dial: this node dialed, hello included) and reason",
            m.handshake_failures.clone(),
        );
        r.register(
            "operations_coordinated",
            "Operations coordinated here, by outcome: passed (every host answered, every check held), failed (every host answered, a check did not hold or errored), incomplete (a host did not answer), rejected (refused at submission)",
            m.operations.clone(),
        );
        r.register(
            "check_executions",
            "Checks run on this host, by source (periodic, operation), check type and outcome (pass, fail, error)",
            m.check_executions.clone(),
        );
        r.register_with_unit(
            "check_run_duration",
            "Time one run of a set of checks took on this host, by source (the checks of a set run concurrently)",
            Unit::Seconds,
            m.check_runs.clone(),
        );
        r.register(
            "periodic_checks",
            "This node's periodic checks by result of their latest run (passing, failing, erroring)",
            m.periodic_checks.clone(),
        );
        for s in MEMBER_STATES {
            let _ = m.members.get_or_create(&StateLabels {
                state: state_label(s),
            });
        }
        for side in [Side::Accept, Side::Dial] {
            for reason in HandshakeFailure::ALL {
                if side == Side::Dial && reason == HandshakeFailure::Busy {
                    continue; // only an acceptor refuses for lack of room
                }
                let _ = m.handshake_failures.get_or_create(&HandshakeLabels {
                    side: side.as_str(),
                    reason: reason.as_str(),
                });
            }
        }
        for outcome in OPERATION_OUTCOMES {
            let _ = m.operations.get_or_create(&OutcomeLabels { outcome });
        }
        for state in PERIODIC_STATES {
            let _ = m.periodic_checks.get_or_create(&StateLabels { state });
        }
        for source in [CheckSource::Periodic, CheckSource::Operation] {
            let _ = m.check_runs.get_or_create(&SourceLabels {
                source: source.as_str(),
            });
        }
        Metrics { registry: r, ..m }
    }

    /// The Prometheus text exposition of every metric. `view` (the mesh now, `None` once
    /// the node is shutting down) and `connections` set the scrape-time gauges first.
    pub fn render(&self, view: Option<&MeshView>, connections: usize) -> String {
        if let Some(view) = view {
            for s in MEMBER_STATES {
                let n = view.members.iter().filter(|m| m.member.state == s).count();
                self.members
                    .get_or_create(&StateLabels {
                        state: state_label(s),
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            self.local_health.set(i64::from(view.local_health));
            self.local_health_max.set(i64::from(view.local_health_max));
        }
        self.quic_connections
            .set(i64::try_from(connections).unwrap_or(i64::MAX));
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail; an error here would be a bug in the encoder,
        // and then the output is what was written before it.
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::warn!("encoding the metrics failed: {e}");
        }
        out
    }

    /// A membership event the driver polled from the state machine.
    pub fn on_event(&self, ev: &Event) {
        match ev {
            Event::MemberSuspect { .. } => {
                self.suspicions_raised.inc();
            }
            Event::MemberRefuted(_) => {
                self.suspicions_refuted.inc();
            }
            Event::MemberDown { .. } => {
                self.suspicions_confirmed.inc();
            }
            Event::Refuted { .. } => {
                self.self_refutations.inc();
            }
            _ => {}
        }
    }

    /// A ping left for the transport.
    pub fn probe_sent(&self) {
        self.probes_sent.inc();
    }

    /// `n` pings went unanswered past their verdict time.
    pub fn probes_failed(&self, n: u64) {
        if n > 0 {
            self.probes_failed.inc_by(n);
        }
    }

    /// A ping's target acked it after `rtt`.
    pub fn probe_rtt(&self, rtt: Duration) {
        self.probe_rtt.observe(rtt.as_secs_f64());
    }

    /// A membership datagram of `bytes` was handed to the transport.
    pub fn gossip_sent(&self, bytes: usize) {
        self.gossip_sent.inc_by(bytes as u64);
    }

    /// A membership datagram of `bytes` arrived.
    pub fn gossip_received(&self, bytes: usize) {
        self.gossip_received.inc_by(bytes as u64);
    }

    /// A push-pull frame of `bytes` was sent.
    pub fn push_pull_sent(&self, bytes: u64) {
        self.push_pull_sent.inc_by(bytes);
    }

    /// A push-pull frame of `bytes` arrived.
    pub fn push_pull_received(&self, bytes: u64) {
        self.push_pull_received.inc_by(bytes);
    }

    /// A handshake failed on `side` for `reason`.
    pub fn handshake_failed(&self, side: Side, reason: HandshakeFailure) {
        self.handshake_failures
            .get_or_create(&HandshakeLabels {
                side: side.as_str(),
                reason: reason.as_str(),
            })
            .inc();
    }

    /// A submission was refused (invalid, rate-limited, too many running, …).
    pub fn operation_rejected(&self) {
        self.operations
            .get_or_create(&OutcomeLabels {
                outcome: "rejected",
            })
            .inc();
    }

    /// Checks of `set` ran on this host for `source`, with these results, in `took`.
    pub fn checks_ran(
        &self,
        source: CheckSource,
        set: &CheckSet,
        results: &BTreeMap<String, CheckResult>,
        took: Duration,
    ) {
        for (name, CheckResult { outcome, .. }) in results {
            let r#type = set.get(name).map_or("unknown", |c| c.kind.type_name());
            self.check_executions
                .get_or_create(&CheckLabels {
                    source: source.as_str(),
                    r#type,
                    outcome: outcome_label(outcome),
                })
                .inc();
        }
        self.check_runs
            .get_or_create(&SourceLabels {
                source: source.as_str(),
            })
            .observe(took.as_secs_f64());
    }

    /// The latest run of the periodic checks.
    pub fn periodic(&self, passing: u32, failing: u32, erroring: u32) {
        for (state, n) in PERIODIC_STATES
            .into_iter()
            .zip([passing, failing, erroring])
        {
            self.periodic_checks
                .get_or_create(&StateLabels { state })
                .set(i64::from(n));
        }
    }
}

impl Observer for Metrics {
    fn checks_ran(&self, set: &CheckSet, results: &BTreeMap<String, CheckResult>, took: Duration) {
        Metrics::checks_ran(self, CheckSource::Operation, set, results, took);
    }

    fn operation_ended(&self, outcome: OperationOutcome) {
        let outcome = match outcome {
            OperationOutcome::Passed => "passed",
            OperationOutcome::Failed => "failed",
            OperationOutcome::Incomplete => "incomplete",
        };
        self.operations
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }
}

/// The size of `msg` as a frame on a stream: the 4-byte length prefix and its CBOR
/// body, sized by the mesh's CBOR length walker without encoding it.
pub fn frame_len<T: serde::Serialize>(msg: &T) -> u64 {
    4 + crate::mesh::cbor_len::encoded_len(msg) as u64
}

/// A ping on its way: whom it probes and when it left.
#[derive(Clone, Copy, Debug)]
struct PendingPing {
    target: NodeId,
    sent: Instant,
}

/// Follows the pings the driver sends until an ack with the same sequence number
/// answers them (from the target, or relayed by an indirect prober) or their verdict
/// time passes. The membership state machine keeps its own books; this only watches
/// what goes out and comes in, so it needs nothing from `crate::mesh` but the messages.
#[derive(Debug, Default)]
pub struct ProbeTracker {
    pending: HashMap<u32, PendingPing>,
    /// Verdict times in the order pings were sent (acked ones stay until their time).
    order: VecDeque<(Instant, u32)>,
}

/// What an ack meant to the [`ProbeTracker`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acked {
    /// It answers no ping followed here (late, duplicate, or not ours).
    Unknown,
    /// It answers a ping through a relay: no round-trip time.
    Relayed,
    /// The ping's target answered after this long.
    Direct(Duration),
}

impl ProbeTracker {
    /// A ping with `seq` to `target` left at `now`; it fails unless acked within `verdict`.
    pub fn sent(&mut self, seq: u32, target: NodeId, now: Instant, verdict: Duration) {
        if self.order.len() >= MAX_TRACKED_PINGS {
            return;
        }
        self.pending.insert(seq, PendingPing { target, sent: now });
        self.order.push_back((now + verdict, seq));
    }

    /// An ack with `seq` from `from` arrived at `now`.
    pub fn acked(&mut self, seq: u32, from: NodeId, now: Instant) -> Acked {
        match self.pending.remove(&seq) {
            None => Acked::Unknown,
            Some(p) if p.target == from => Acked::Direct(now.saturating_duration_since(p.sent)),
            Some(_) => Acked::Relayed,
        }
    }

    /// Forgets pings whose verdict time passed by `now`; returns how many of them no ack
    /// answered.
    pub fn expire(&mut self, now: Instant) -> u64 {
        let mut failed = 0;
        while let Some(&(verdict, seq)) = self.order.front() {
            if verdict > now {
                break;
            }
            self.order.pop_front();
            if self.pending.remove(&seq).is_some() {
                failed += 1;
            }
        }
        failed
    }

    /// Pings followed now.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_are_acked_directly_relayed_or_fail_at_their_verdict() {
        let (a, b) = (NodeId([1; 16]), NodeId([2; 16]));
        let t0 = Instant::now();
        let verdict = Duration::from_millis(300);
        let mut t = ProbeTracker::default();
        t.sent(1, a, t0, verdict);
        t.sent(2, b, t0, verdict);
        t.sent(3, b, t0, verdict);
        let ms = Duration::from_millis;
        assert_eq!(t.acked(1, a, t0 + ms(5)), Acked::Direct(ms(5)));
        assert_eq!(t.acked(1, a, t0 + ms(6)), Acked::Unknown, "a duplicate ack");
        assert_eq!(t.acked(2, a, t0 + ms(200)), Acked::Relayed);
        assert_eq!(t.expire(t0 + ms(299)), 0);
        assert_eq!(t.in_flight(), 1);
        assert_eq!(t.expire(t0 + ms(300)), 1, "seq 3 went unanswered");
        assert_eq!(t.acked(3, b, t0 + ms(301)), Acked::Unknown, "too late");
        assert_eq!(t.in_flight(), 0);
        assert!(t.order.is_empty());
    }

    #[test]
    fn tracking_is_bounded() {
        let mut t = ProbeTracker::default();
        let now = Instant::now();
        for seq in 0..(MAX_TRACKED_PINGS as u32 + 10) {
            t.sent(seq, NodeId([1; 16]), now, Duration::from_secs(1));
        }
        assert_eq!(t.in_flight(), MAX_TRACKED_PINGS);
    }

    #[test]
    fn rendering_has_the_werify_names_and_units() {
        let m = Metrics::new();
        m.probe_sent();
        m.probe_rtt(Duration::from_micros(250));
        m.gossip_sent(100);
        m.handshake_failed(Side::Accept, HandshakeFailure::Tls);
        m.periodic(2, 1, 0);
        let text = m.render(None, 3);
        for line in [
            "werify_build_info{version=\"",
            "# TYPE werify_probes_sent_total counter",
            "werify_probes_sent_total 1",
            "werify_probe_rtt_seconds_bucket{le=\"0.0004\"} 1",
            "werify_gossip_sent_bytes_total 100",
            "werify_quic_handshake_failures_total{side=\"accept\",reason=\"tls\"} 1",
            "werify_quic_handshake_failures_total{side=\"dial\",reason=\"timeout\"} 0",
            "werify_periodic_checks{state=\"failing\"} 1",
            "werify_quic_open_connections 3",
            "werify_operations_coordinated_total{outcome=\"rejected\"} 0",
            "werify_local_health_score 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn frame_len_matches_the_frame_encoding() {
        let msg = crate::rpc::protocol::Request::Get {
            handle: "abc".into(),
            wait_ms: 5,
            known_answers: None,
        };
        let body = crate::rpc::frame::encode(&msg).expect("encodes");
        assert_eq!(frame_len(&msg), 4 + body.len() as u64);
    }
}
