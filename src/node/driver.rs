//! The thin tokio driver of one [`Membership`]: the only place where the wall clock, the
//! QUIC transport and the membership state machine meet. One task owns the state
//! machine; everything else talks to it through [`MeshClient`]. It also counts, for
//! [`crate::node::metrics`], what it sends and receives and the events it polls, and
//! records those events in the node's [`EventLog`].
//! Serving requests is in [`crate::node::dispatch`]; the protocol logic is in
//! [`crate::mesh::membership`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::base::NodeId;
use crate::mesh::member::{HealthSummary, MemberView, MeshView, Tags};
use crate::mesh::membership::{Event, Membership, RemoveError};
use crate::mesh::message::{Message, PushPull};
use crate::node::events::{EVENT_LOG_CAPACITY, EventLog, Recorder};
use crate::node::metrics::{Acked, Metrics, ProbeTracker, frame_len};
use crate::node::snapshot;
use crate::ops::coordinator::{MeshAccess, ShuttingDown};
use crate::rpc::protocol::{Request, Response};
use crate::rpc::transport::Transport;

/// How long a push-pull exchange may take.
const PUSH_PULL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often, at most, the membership snapshot is written when it changed.
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);
/// Most queued inputs handled before due timers run (see `Driver::handle_queued`): the
/// queue holds up to 4,096; a flood must not hold the timers off that long.
const MAX_INPUTS_BEFORE_TIMERS: usize = 512;

enum Input {
    /// A gossip datagram, the address of the connection it came on, and when it was read.
    Datagram(Message, SocketAddr, Instant),
    PushPullRequest(PushPull, oneshot::Sender<PushPull>),
    PushPullReply(PushPull),
    MakePushPull(oneshot::Sender<PushPull>),
    Join(Vec<SocketAddr>),
    Remove(SocketAddr, oneshot::Sender<Result<NodeId, RemoveError>>),
    AddContact(SocketAddr, oneshot::Sender<bool>),
    ForgetContact(SocketAddr, oneshot::Sender<bool>),
    View(oneshot::Sender<MeshView>),
    SetHealth(HealthSummary),
    SetTags(Tags),
    ProbeAll,
    Leave(oneshot::Sender<()>),
}

/// A cheap, cloneable way to talk to the task that owns the membership.
#[derive(Clone)]
pub struct MeshClient {
    tx: mpsc::Sender<Input>,
    events: Arc<EventLog>,
}

impl MeshClient {
    /// The log of the membership events this node has seen, to read or subscribe to.
    pub fn events(&self) -> &Arc<EventLog> {
        &self.events
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Input,
    ) -> Result<T, ShuttingDown> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| ShuttingDown)?;
        rx.await.map_err(|_| ShuttingDown)
    }

    /// Feeds a gossip datagram whose sender's certificate was already checked, with the
    /// remote address of the connection it came on and the time it was read (an ack's
    /// round-trip time ends there, not when the mesh task gets to it). Drops it if the
    /// mesh task is overloaded: gossip tolerates loss.
    pub fn datagram(&self, msg: Message, from: SocketAddr, received: Instant) {
        let _ = self.tx.try_send(Input::Datagram(msg, from, received));
    }

    /// Answers an incoming push-pull with this node's state.
    pub async fn push_pull(&self, req: PushPull) -> Result<PushPull, ShuttingDown> {
        self.ask(|tx| Input::PushPullRequest(req, tx)).await
    }

    /// Merges the answer of a push-pull this node started.
    pub async fn push_pull_reply(&self, reply: PushPull) -> Result<(), ShuttingDown> {
        self.tx
            .send(Input::PushPullReply(reply))
            .await
            .map_err(|_| ShuttingDown)
    }

    /// A join request carrying this node's state (for `ctl add`; see
    /// [`Membership::join_request`]).
    pub async fn join_request(&self) -> Result<PushPull, ShuttingDown> {
        self.ask(Input::MakePushPull).await
    }

    /// Joins through these contacts (retried periodically by the state machine).
    pub async fn join(&self, contacts: Vec<SocketAddr>) -> Result<(), ShuttingDown> {
        self.tx
            .send(Input::Join(contacts))
            .await
            .map_err(|_| ShuttingDown)
    }

    /// `ctl del`.
    pub async fn remove(
        &self,
        addr: SocketAddr,
    ) -> Result<Result<NodeId, RemoveError>, ShuttingDown> {
        self.ask(|tx| Input::Remove(addr, tx)).await
    }

    /// Adds a contact for the periodic join attempts; false if the contact list is full.
    pub async fn add_contact(&self, addr: SocketAddr) -> Result<bool, ShuttingDown> {
        self.ask(|tx| Input::AddContact(addr, tx)).await
    }

    /// Stops join attempts to a contact that is not a member; false if it was none.
    pub async fn forget_contact(&self, addr: SocketAddr) -> Result<bool, ShuttingDown> {
        self.ask(|tx| Input::ForgetContact(addr, tx)).await
    }

    /// The mesh as this node sees it now.
    pub async fn view(&self) -> Result<MeshView, ShuttingDown> {
        self.ask(Input::View).await
    }

    /// Publishes this node's health summary.
    pub async fn set_health(&self, summary: HealthSummary) -> Result<(), ShuttingDown> {
        self.tx
            .send(Input::SetHealth(summary))
            .await
            .map_err(|_| ShuttingDown)
    }

    /// Replaces this node's tags and gossips them at once (see [`Membership::set_tags`]).
    pub async fn set_tags(&self, tags: Tags) -> Result<(), ShuttingDown> {
        self.tx
            .send(Input::SetTags(tags))
            .await
            .map_err(|_| ShuttingDown)
    }

    /// Probes every member now (refresh).
    pub async fn probe_all(&self) -> Result<(), ShuttingDown> {
        self.tx
            .send(Input::ProbeAll)
            .await
            .map_err(|_| ShuttingDown)
    }

    /// Leaves gracefully; returns once the leave was handed to the transport.
    pub async fn leave(&self) -> Result<(), ShuttingDown> {
        self.ask(Input::Leave).await
    }
}

impl MeshAccess for MeshClient {
    async fn view(&self) -> Result<MeshView, ShuttingDown> {
        MeshClient::view(self).await
    }

    async fn probe_all(&self) -> Result<(), ShuttingDown> {
        MeshClient::probe_all(self).await
    }
}

/// Starts the task that drives `membership` over `transport`.
pub fn spawn(
    membership: Membership,
    transport: Transport,
    snapshot_path: Option<PathBuf>,
    metrics: Arc<Metrics>,
) -> MeshClient {
    let (tx, rx) = mpsc::channel(4096);
    let events = Arc::new(EventLog::new(EVENT_LOG_CAPACITY));
    let handle = MeshClient {
        tx,
        events: events.clone(),
    };
    let driver = Driver {
        membership,
        transport,
        rx,
        me: handle.clone(),
        snapshot_path,
        snapshot_dirty: true,
        last_snapshot: Instant::now(),
        snapshot_write: None,
        metrics,
        probes: ProbeTracker::default(),
        recorder: Recorder::new(events),
    };
    tokio::spawn(driver.run());
    handle
}

struct Driver {
    membership: Membership,
    transport: Transport,
    rx: mpsc::Receiver<Input>,
    me: MeshClient,
    snapshot_path: Option<PathBuf>,
    snapshot_dirty: bool,
    last_snapshot: Instant,
    /// The snapshot write in flight on the blocking pool, if any: one at a time, so an
    /// older snapshot never lands after a newer one.
    snapshot_write: Option<tokio::task::JoinHandle<()>>,
    metrics: Arc<Metrics>,
    /// The pings sent and not yet answered, for the probe metrics.
    probes: ProbeTracker,
    /// Writes the events polled from the state machine into the node's event log.
    recorder: Recorder,
}

impl Driver {
    async fn run(mut self) {
        loop {
            self.flush();
            let deadline = self
                .membership
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1))
                .min(Instant::now() + SNAPSHOT_EVERY);
            tokio::select! {
                input = self.rx.recv() => {
                    let Some(input) = input else { break };
                    if !self.handle(input) {
                        self.flush();
                        break;
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    if !self.handle_queued() {
                        break;
                    }
                    self.membership.handle_timeout(Instant::now());
                }
            }
            // Compare against the wall clock ourselves: a sleep can return late, and
            // more timers may have expired meanwhile.
            let now = Instant::now();
            if self.membership.poll_timeout().is_some_and(|t| t <= now) {
                self.membership.handle_timeout(now);
            }
            self.metrics.probes_failed(self.probes.expire(now));
            self.maybe_snapshot();
        }
        if let Some(write) = self.snapshot_write.take() {
            let _ = write.await;
        }
        if let Some(write) = self.write_snapshot() {
            let _ = write.await;
        }
    }

    /// Handles the inputs already queued (at most [`MAX_INPUTS_BEFORE_TIMERS`]) before
    /// timers run: after this task waited for a core, an ack or a refutation may sit in
    /// the queue while the deadline it answers passed, and it arrived first. Returns
    /// false when the driver should stop.
    fn handle_queued(&mut self) -> bool {
        for _ in 0..MAX_INPUTS_BEFORE_TIMERS {
            match self.rx.try_recv() {
                Ok(input) => {
                    if !self.handle(input) {
                        self.flush();
                        return false;
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => return true,
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
            }
        }
        true
    }

    /// Returns false when the driver should stop.
    fn handle(&mut self, input: Input) -> bool {
        let now = Instant::now();
        match input {
            Input::Datagram(msg, from, received) => {
                let received = received.min(now);
                if let Message::Ack { from: id, seq, .. } = &msg
                    && let Acked::Direct(rtt) = self.probes.acked(*seq, *id, received)
                {
                    self.metrics.probe_rtt(rtt);
                }
                self.membership.handle_datagram(now, received, from, msg)
            }
            Input::PushPullReply(pp) => self.membership.handle_message(now, Message::PushPull(pp)),
            Input::PushPullRequest(req, reply) => {
                let _ = reply.send(self.membership.handle_push_pull(now, req));
            }
            Input::MakePushPull(reply) => {
                // Only `ctl add` asks for one: it is a join.
                let _ = reply.send(self.membership.join_request(now));
            }
            Input::Join(contacts) => self.membership.join(now, &contacts),
            Input::Remove(addr, reply) => {
                let _ = reply.send(self.membership.remove(now, addr));
            }
            Input::AddContact(addr, reply) => {
                let _ = reply.send(self.membership.add_contact(addr));
            }
            Input::ForgetContact(addr, reply) => {
                let _ = reply.send(self.membership.forget_contact(addr));
            }
            Input::View(reply) => {
                let _ = reply.send(self.view(now));
            }
            Input::SetHealth(summary) => {
                self.membership.set_health(now, summary);
                self.recorder.on_own_health(&self.membership);
            }
            Input::SetTags(tags) => {
                // The raised incarnation is worth keeping across a restart.
                self.snapshot_dirty |= self.membership.set_tags(now, tags);
            }
            Input::ProbeAll => self.membership.probe_all(now),
            Input::Leave(reply) => {
                self.membership.leave(now);
                self.flush();
                let _ = reply.send(());
                return false;
            }
        }
        true
    }

    fn view(&self, now: Instant) -> MeshView {
        let me = self.membership.me().peer.id;
        let members = self
            .membership
            .members()
            .map(|m| MemberView {
                member: m.clone(),
                is_self: m.peer.id == me,
                last_heard_ago: m.last_heard.map(|t| now.saturating_duration_since(t)),
                state_for: now.saturating_duration_since(m.state_since),
            })
            .collect();
        MeshView {
            members,
            local_health: self.membership.local_health(),
            local_health_max: self.membership.config().awareness_max,
            removed: self.membership.is_removed(),
        }
    }

    /// Hands every pending output of the state machine to the transport and the log.
    fn flush(&mut self) {
        let now = Instant::now();
        while let Some(t) = self.membership.poll_transmit() {
            match t.msg {
                Message::PushPull(pp) => self.spawn_push_pull(t.to, pp),
                msg => {
                    // A ping's target is not on the wire: the transport checks it
                    // against the connection's certificate instead.
                    let meant_for = match &msg {
                        Message::Ping { target, seq, .. } => {
                            self.metrics.probe_sent();
                            // The state machine's verdict time for a probe.
                            let verdict = self
                                .membership
                                .config()
                                .probe_span()
                                .saturating_mul(self.membership.local_health() + 1);
                            self.probes.sent(*seq, *target, now, verdict);
                            Some(*target)
                        }
                        _ => None,
                    };
                    let bytes = Bytes::from(msg.encode());
                    self.metrics.gossip_sent(bytes.len());
                    self.transport.send_datagram(t.to, meant_for, bytes)
                }
            }
        }
        while let Some(ev) = self.membership.poll_event() {
            self.snapshot_dirty = true;
            self.metrics.on_event(&ev);
            log_event(&ev);
            self.recorder.on_mesh_event(&ev, &self.membership);
        }
    }

    fn spawn_push_pull(&self, to: SocketAddr, pp: PushPull) {
        let transport = self.transport.clone();
        let me = self.me.clone();
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let req = Request::PushPull(pp);
            metrics.push_pull_sent(frame_len(&req));
            let answer = transport.call(to, &req, PUSH_PULL_TIMEOUT).await;
            if let Ok(resp) = &answer {
                metrics.push_pull_received(frame_len(resp));
            }
            match answer {
                Ok(Response::PushPull(reply)) => {
                    let _ = me.push_pull_reply(reply).await;
                }
                Ok(Response::Error { message, .. }) => {
                    tracing::debug!(%to, "push-pull refused: {message}")
                }
                Ok(_) => tracing::debug!(%to, "push-pull answered with something else"),
                Err(e) => tracing::debug!(%to, "push-pull failed: {e}"),
            }
        });
    }

    fn maybe_snapshot(&mut self) {
        let writing = self
            .snapshot_write
            .as_ref()
            .is_some_and(|w| !w.is_finished());
        if self.snapshot_dirty && !writing && self.last_snapshot.elapsed() >= SNAPSHOT_EVERY {
            self.snapshot_write = self.write_snapshot();
        }
    }

    /// Starts writing the current snapshot on the blocking pool: the write ends with an
    /// fsync (milliseconds on a busy disk), which must not hold up the node's single
    /// runtime thread and with it every probe and request.
    fn write_snapshot(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        self.last_snapshot = Instant::now();
        self.snapshot_dirty = false;
        let path = self.snapshot_path.clone()?;
        let snap = self.membership.snapshot();
        Some(tokio::task::spawn_blocking(move || {
            if let Err(e) = snapshot::save(&path, &snap) {
                tracing::warn!("could not write the membership snapshot: {e}");
            }
        }))
    }
}

fn log_event(ev: &Event) {
    match ev {
        Event::MemberUp(p) => tracing::info!("member {} ({}) is alive", p.addr, p.id.short()),
        Event::MemberSuspect { peer, by } => {
            tracing::info!(
                "member {} ({}) is suspected by {}",
                peer.addr,
                peer.id.short(),
                by.short()
            )
        }
        Event::MemberDown { peer, by } => {
            tracing::warn!(
                "member {} ({}) is dead (declared by {})",
                peer.addr,
                peer.id.short(),
                by.short()
            )
        }
        Event::MemberLeft(p) => tracing::info!("member {} ({}) left", p.addr, p.id.short()),
        Event::SelfRemoved { by } => tracing::warn!(
            "this node was removed from the mesh by {}; it stays out until added again",
            by.short()
        ),
        Event::MemberRemoved { peer, by } => {
            tracing::info!(
                "member {} ({}) was removed by {}",
                peer.addr,
                peer.id.short(),
                by.short()
            )
        }
        Event::SelfReadded => tracing::info!("this node was added to the mesh again"),
        other => tracing::debug!("mesh event: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use crate::mesh::member::State;
    use crate::node::dispatch::{NodeContext, serve, tests::test_node};

    /// Hang guard for the waits below, not a speed assertion.
    const DEADLINE: Duration = Duration::from_secs(20);

    /// Serves `ctx` until the returned sender is dropped or used.
    fn serving(ctx: &Arc<NodeContext>) -> oneshot::Sender<()> {
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(serve(ctx.clone(), async {
            let _ = rx.await;
        }));
        tx
    }

    /// Addresses of the members `mesh` sees in `state`.
    async fn in_state(mesh: &MeshClient, state: State) -> BTreeSet<SocketAddr> {
        mesh.view()
            .await
            .map(|v| {
                v.members
                    .iter()
                    .filter(|m| m.member.state == state)
                    .map(|m| m.member.peer.addr)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Polls `what` every 50 ms until it holds; panics after [`DEADLINE`].
    async fn eventually<F: std::future::Future<Output = bool>>(
        what: &str,
        mut check: impl FnMut() -> F,
    ) {
        let give_up = Instant::now() + DEADLINE;
        while !check().await {
            assert!(Instant::now() < give_up, "{what}: not within {DEADLINE:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_drivers_join_see_each_other_and_a_leave() {
        let (a, _a_dir) = test_node("driver-a");
        let (b, _b_dir) = test_node("driver-b");
        let _serve_a = serving(&a);
        let _serve_b = serving(&b);
        assert_eq!(in_state(&a.mesh, State::Alive).await, [a.addr].into());

        b.mesh.join(vec![a.addr]).await.expect("join");
        let both: BTreeSet<SocketAddr> = [a.addr, b.addr].into();
        eventually("a and b see each other alive", || async {
            in_state(&a.mesh, State::Alive).await == both
                && in_state(&b.mesh, State::Alive).await == both
        })
        .await;

        // b leaves: a sees it as left, and b's driver has stopped.
        b.mesh.leave().await.expect("leave");
        eventually("a sees b as left", || async {
            in_state(&a.mesh, State::Left).await == [b.addr].into()
        })
        .await;
        eventually("b's driver stopped", || async {
            b.mesh.view().await.is_err()
        })
        .await;
        assert_eq!(b.mesh.probe_all().await, Err(ShuttingDown));
        assert_eq!(in_state(&a.mesh, State::Alive).await, [a.addr].into());
    }

    #[tokio::test]
    async fn removing_an_unknown_address_or_oneself_changes_nothing() {
        let (a, _dir) = test_node("driver-remove");
        let stranger = SocketAddr::from(([127, 0, 0, 1], 9));
        assert!(matches!(
            a.mesh.remove(stranger).await,
            Ok(Err(RemoveError::UnknownAddress(addr))) if addr == stranger
        ));
        assert!(matches!(
            a.mesh.remove(a.addr).await,
            Ok(Err(RemoveError::IsSelf(_)))
        ));
        let view = a.mesh.view().await.expect("view");
        assert_eq!(view.members.len(), 1);
        assert!(view.members[0].is_self && !view.removed);
    }

    #[tokio::test]
    async fn a_published_health_summary_shows_in_the_view() {
        let (a, _dir) = test_node("driver-health");
        let summary = HealthSummary {
            version: 1,
            passing: 2,
            failing: 1,
            erroring: 0,
            failing_names: vec!["disk".into()],
            erroring_names: Vec::new(),
            names_omitted: 0,
            at_unix_ms: 1,
            refresh_id: 0,
        };
        a.mesh
            .set_health(summary.clone())
            .await
            .expect("set health");
        let view = a.mesh.view().await.expect("view");
        assert_eq!(view.members[0].member.health.as_ref(), Some(&summary));
    }

    #[tokio::test]
    async fn the_snapshot_is_written_after_a_change() {
        let dir = crate::node::dispatch::tests::Scratch::new("driver-snapshot");
        let (a, _a_dir) = test_node("driver-snapshot-node");
        let path = dir.0.join("membership.cbor");
        let me = crate::mesh::member::Peer {
            id: NodeId::random(),
            addr: SocketAddr::from(([127, 0, 0, 1], 9)),
        };
        let membership = Membership::new(
            me,
            Default::default(),
            crate::mesh::config::Config::for_profile(crate::mesh::config::Profile::Local),
            1,
            Instant::now(),
        );
        let mesh = spawn(
            membership,
            a.transport.clone(),
            Some(path.clone()),
            Arc::new(crate::node::metrics::Metrics::new()),
        );
        eventually("the snapshot file exists", || async { path.exists() }).await;
        let snap = snapshot::load(&path).expect("readable").expect("present");
        assert_eq!(snap.me, me);
        assert!(!snap.removed);
        mesh.leave().await.expect("leave");
    }
}
