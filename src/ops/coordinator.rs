//! Operations coordinated by this node: validating a submission, choosing target hosts,
//! fanning the checks out (bounded by `-w`), recording each host's answer as it arrives,
//! finishing as soon as every targeted host answered or at the deadline, answering `get`
//! (forwarding to the coordinator named by the handle), and mesh-wide refresh.
//! Storage is [`crate::ops::store`]; running checks on a host is [`crate::checks::run`].

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use regex::Regex;
use tokio::sync::{Notify, Semaphore};

use crate::base::NodeId;
use crate::base::clock::{duration_ms, unix_ms};
use crate::checks::run::{RunOptions, run_checks};
use crate::checks::spec::CheckSet;
use crate::checks::{CheckResult, Observation, Outcome};
use crate::mesh::member::{MemberView, MeshView, State};
use crate::ops::error::OpsError;
use crate::ops::handle::{Handle, node_tag};
use crate::ops::store::{OperationRecord, Store, StoreError};
use crate::rpc::limits::RateLimiter;
use crate::rpc::protocol::{
    ErrorCode, HostReport, OperationReport, Request, Response, Submitter, TargetFilter,
};
use crate::rpc::transport::{Transport, TransportError, response_name};

/// Longest deadline an operation may ask for.
pub const MAX_DEADLINE: Duration = Duration::from_secs(600);
/// Operations running at once on one coordinator.
pub const MAX_RUNNING_OPERATIONS: usize = 64;
/// Operations, refreshes and health reports per second allowed from one client address
/// (one bucket for the three: each makes the node ask every host).
pub const SUBMITS_PER_SECOND: NonZeroU32 = NonZeroU32::new(20).expect("20 is not zero");
/// Operations, refreshes and health reports one client address may ask for in a burst.
pub const SUBMIT_BURST: NonZeroU32 = NonZeroU32::new(40).expect("40 is not zero");
/// Hosts one client address may add per second. An add costs the node one handshake and
/// one membership exchange with the new host, far less than an operation, so a batch
/// file of a few hundred `add` lines goes at the speed the node adds them.
pub const ADDS_PER_SECOND: NonZeroU32 = NonZeroU32::new(200).expect("200 is not zero");
/// Hosts one client address may add at once.
pub const ADD_BURST: NonZeroU32 = NonZeroU32::new(400).expect("400 is not zero");
/// Longest a client's request is held back to pace it to its rate once its burst is
/// spent: a client that sends one request after another (a batch of `add` lines, a
/// script calling `werify ctl add` per host) is slowed to the rate, never refused. A
/// client with more requests in flight than this queue holds is refused.
pub const MAX_PACED_WAIT: Duration = Duration::from_secs(2);

/// A request the node paces per client address ([`Coordinator::admit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paced {
    /// `ctl operation`.
    Operation,
    /// `ctl refresh`.
    Refresh,
    /// `ctl health`.
    HealthReport,
    /// `ctl add`.
    Add,
}

impl Paced {
    /// The plural the refusal names: `too many adds from …`.
    fn noun(self) -> &'static str {
        match self {
            Paced::Operation => "operations",
            Paced::Refresh => "refreshes",
            Paced::HealthReport => "health reports",
            Paced::Add => "adds",
        }
    }

    /// The sustained rate of this request's bucket.
    pub fn per_second(self) -> NonZeroU32 {
        match self {
            Paced::Add => ADDS_PER_SECOND,
            _ => SUBMITS_PER_SECOND,
        }
    }
}

/// Longest a `get --wait` waits in one request; the client asks again.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Operations of other coordinators, fetched through this node, that it remembers for
/// [`Coordinator::recent`] (the latest answer of each, newest fetch first).
pub const MAX_FETCHED: usize = 32;

/// What the coordinator needs from the mesh: who is in it, and a way to probe everyone.
/// The node's mesh driver implements it; tests can give a fixed view.
pub trait MeshAccess: Clone + Send + Sync + 'static {
    /// The mesh as this node sees it now; `Err` once the node is shutting down.
    fn view(&self) -> impl Future<Output = Result<MeshView, ShuttingDown>> + Send;
    /// Probes every member now (refresh).
    fn probe_all(&self) -> impl Future<Output = Result<(), ShuttingDown>> + Send;
}

/// The mesh task has stopped: the node is shutting down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the node is shutting down")]
pub struct ShuttingDown;

impl From<ShuttingDown> for OpsError {
    fn from(_: ShuttingDown) -> OpsError {
        OpsError::ShuttingDown
    }
}

/// How an operation coordinated here ended, from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OperationOutcome {
    /// Every targeted host answered and every check held.
    Passed,
    /// Every targeted host answered; a check did not hold or errored.
    Failed,
    /// A targeted host did not answer (dead, unreachable, or past the deadline).
    Incomplete,
}

/// Told what the coordinator did, for the node's metrics (see [`Coordinator::observe`]).
pub trait Observer: Send + Sync + 'static {
    /// Checks of an operation ran on this host, with these results, in `took`.
    fn checks_ran(
        &self,
        checks: &CheckSet,
        results: &BTreeMap<String, CheckResult>,
        took: Duration,
    );
    /// An operation coordinated here ended.
    fn operation_ended(&self, outcome: OperationOutcome);
}

/// An operation accepted by [`Coordinator::submit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitted {
    pub handle: Handle,
    /// `IP:PORT` of this coordinator.
    pub coordinator: String,
    /// Hosts the operation targets.
    pub targeted: usize,
}

/// One operation in the list of [`Coordinator::recent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecentOperation {
    /// The operation as last known here: from the store when this node coordinates it,
    /// else the latest answer of its coordinator fetched through this node.
    pub report: OperationReport,
    /// Whether this node coordinates it.
    pub coordinated_here: bool,
}

/// A refresh started by [`Coordinator::refresh`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefreshStarted {
    pub refresh_id: u64,
    pub targeted: usize,
}

/// Coordinates operations submitted to this node.
pub struct Coordinator<M: MeshAccess> {
    inner: Arc<Inner<M>>,
}

impl<M: MeshAccess> Clone for Coordinator<M> {
    fn clone(&self) -> Self {
        Coordinator {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<M> {
    store: Store,
    transport: Transport,
    mesh: M,
    node_id: NodeId,
    addr: SocketAddr,
    workers: usize,
    /// How checks run on this node; the node may change it while running.
    run_options: tokio::sync::watch::Receiver<RunOptions>,
    running: Arc<Semaphore>,
    /// Operations, refreshes and health reports, per client address.
    limiter: Mutex<RateLimiter>,
    /// Adds, per client address.
    add_limiter: Mutex<RateLimiter>,
    changed: Notify,
    refresh_tx: tokio::sync::mpsc::Sender<u64>,
    observer: OnceLock<Arc<dyn Observer>>,
    /// The latest answers of other coordinators fetched through this node, newest first.
    fetched: Mutex<VecDeque<OperationReport>>,
}

impl<M: MeshAccess> Coordinator<M> {
    /// A coordinator over `store`. Operations left unfinished by a previous run of this
    /// node are closed: their silent hosts are reported, nothing recorded is dropped.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        transport: Transport,
        mesh: M,
        node_id: NodeId,
        addr: SocketAddr,
        workers: usize,
        run_options: tokio::sync::watch::Receiver<RunOptions>,
        refresh_tx: tokio::sync::mpsc::Sender<u64>,
    ) -> Coordinator<M> {
        let c = Coordinator {
            inner: Arc::new(Inner {
                store,
                transport,
                mesh,
                node_id,
                addr,
                workers: workers.max(1),
                run_options,
                running: Arc::new(Semaphore::new(MAX_RUNNING_OPERATIONS)),
                limiter: Mutex::new(RateLimiter::new(SUBMITS_PER_SECOND, SUBMIT_BURST)),
                add_limiter: Mutex::new(RateLimiter::new(ADDS_PER_SECOND, ADD_BURST)),
                changed: Notify::new(),
                refresh_tx,
                observer: OnceLock::new(),
                fetched: Mutex::new(VecDeque::new()),
            }),
        };
        c.close_interrupted();
        c
    }

    /// Has `observer` told of every operation's end and of the checks run here; the first
    /// observer set stays.
    pub fn observe(&self, observer: Arc<dyn Observer>) {
        let _ = self.inner.observer.set(observer);
    }

    /// Runs a store call on the blocking pool: every write is an fsynced commit.
    async fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<Result<T, StoreError>, OpsError> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| OpsError::StoreTask(e.to_string()))
    }

    fn close_interrupted(&self) {
        let store = &self.inner.store;
        match store.unfinished() {
            Ok(records) => {
                for rec in records {
                    for (host, r) in &rec.hosts {
                        if matches!(r, HostReport::Pending) {
                            let _ = store.record_host(
                                &rec.handle,
                                host,
                                HostReport::Failed("no answer: the coordinator restarted while this host was running".into()),
                            );
                        }
                    }
                    let _ = store.finish(&rec.handle, unix_ms());
                    tracing::info!(
                        "closed operation {} left running by a previous run",
                        rec.handle
                    );
                }
            }
            Err(e) => tracing::warn!("could not look for interrupted operations: {e}"),
        }
        if let Err(e) = store.expire(unix_ms()) {
            tracing::warn!("could not expire old operations: {e}");
        }
    }

    /// Admits one request of kind `what` from `client`: at once while its burst lasts,
    /// then paced to the kind's rate by holding the request back (at most
    /// [`MAX_PACED_WAIT`]). Refused, with how long to wait, when the client already has
    /// that much queued: only a client with many requests in flight at once gets there.
    /// Operations, refreshes and health reports share one bucket per client address
    /// ([`SUBMITS_PER_SECOND`]); adds have their own ([`ADDS_PER_SECOND`]).
    pub async fn admit(&self, client: IpAddr, what: Paced) -> Result<(), OpsError> {
        let wait = self.reserve_rate(client, what)?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// Reserves `client`'s next slot for a request of kind `what` (see
    /// [`Coordinator::admit`]): how long the request must wait, or the refusal.
    pub fn reserve_rate(&self, client: IpAddr, what: Paced) -> Result<Duration, OpsError> {
        let limiter = match what {
            Paced::Add => &self.inner.add_limiter,
            _ => &self.inner.limiter,
        };
        let mut limiter = limiter.lock().unwrap_or_else(|p| p.into_inner());
        limiter
            .reserve(client, Instant::now(), MAX_PACED_WAIT)
            .map_err(|retry| OpsError::RateLimited {
                what: what.noun(),
                client,
                per_second: what.per_second().get(),
                retry_ms: retry.0.as_millis(),
            })
    }

    /// `ctl operation`: records the operation with who submitted it, logs one line, and
    /// starts it; answers at once.
    pub async fn submit(
        &self,
        client: IpAddr,
        submitter: Submitter,
        checks: CheckSet,
        filter: TargetFilter,
        deadline: Duration,
    ) -> Result<Submitted, OpsError> {
        let inner = &self.inner;
        validate_off_runtime(&checks)
            .await
            .map_err(|e| OpsError::InvalidChecks(e.to_string()))?;
        if deadline.is_zero() || deadline > MAX_DEADLINE {
            return Err(OpsError::DeadlineOutOfRange {
                shown: human_duration(deadline),
                max_secs: MAX_DEADLINE.as_secs(),
            });
        }
        let matcher = TargetMatcher::new(&filter)?;
        self.admit(client, Paced::Operation).await?;
        let Ok(permit) = inner.running.clone().try_acquire_owned() else {
            return Err(OpsError::TooManyRunning(MAX_RUNNING_OPERATIONS));
        };
        let view = inner.mesh.view().await?;
        let matched: Vec<&MemberView> =
            view.members.iter().filter(|m| matcher.matches(m)).collect();
        let reachable = |m: &&MemberView| matches!(m.member.state, State::Alive | State::Suspect);
        if !filter.is_empty() && !matched.iter().any(reachable) {
            return Err(no_match(&filter, &view, &matched));
        }
        let counter = self
            .store(|s| s.next_counter())
            .await?
            .map_err(|e| OpsError::Record(Box::new(e)))?;
        let handle = Handle::new(rand::random(), counter, inner.node_id);
        let now = unix_ms();
        let mut hosts = BTreeMap::new();
        let mut targets = Vec::new();
        for m in matched {
            let key = m.member.peer.addr.to_string();
            match m.member.state {
                // A suspect may well be alive (suspicions are often refuted): ask it. If it
                // is really gone, the mesh declares it dead soon and the watcher below
                // reports it then.
                State::Alive | State::Suspect => {
                    hosts.insert(key, HostReport::Pending);
                    targets.push((m.member.peer.addr, m.is_self));
                }
                State::Dead => {
                    hosts.insert(
                        key,
                        HostReport::Failed("host unreachable (marked dead)".into()),
                    );
                }
                State::Left => {}
            }
        }
        let record = OperationRecord {
            handle: handle.clone(),
            coordinator: inner.addr.to_string(),
            submitted_unix_ms: now,
            deadline_unix_ms: now.saturating_add(duration_ms(deadline)),
            ended_unix_ms: None,
            check_names: checks.names().map(str::to_string).collect(),
            hosts,
            submitted_by: Some(submitter),
        };
        let to_insert = record.clone();
        self.store(move |s| s.insert(&to_insert))
            .await?
            .map_err(|e| OpsError::Record(Box::new(e)))?;
        let targeted = record.hosts.len();
        if let Some(by) = &record.submitted_by {
            tracing::info!(
                "operation {handle} submitted by {by} (certificate sha256 {}): {} checks, {targeted} hosts",
                by.certificate,
                record.check_names.len()
            );
        }
        let marked_dead = record
            .hosts
            .values()
            .any(|r| matches!(r, HostReport::Failed(_)));
        let this = self.clone();
        let h = handle.clone();
        tokio::spawn(async move {
            let outcome = this.fan_out(h, checks, targets, deadline).await;
            if let Some(observer) = this.inner.observer.get() {
                observer.operation_ended(match outcome {
                    OperationOutcome::Passed if marked_dead => OperationOutcome::Incomplete,
                    other => other,
                });
            }
            drop(permit);
        });
        Ok(Submitted {
            handle,
            coordinator: inner.addr.to_string(),
            targeted,
        })
    }

    async fn fan_out(
        &self,
        handle: Handle,
        checks: CheckSet,
        targets: Vec<(SocketAddr, bool)>,
        deadline: Duration,
    ) -> OperationOutcome {
        let inner = &self.inner;
        let started = Instant::now();
        let slots = Arc::new(Semaphore::new(inner.workers));
        let checks = Arc::new(checks);
        // Hosts the mesh declares dead while the operation runs are reported at once
        // instead of at the deadline.
        let (dead_tx, dead_rx) = tokio::sync::watch::channel(HashSet::<SocketAddr>::new());
        let watcher = tokio::spawn(watch_dead(
            inner.mesh.clone(),
            targets.iter().map(|(a, _)| *a).collect(),
            dead_tx,
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for (addr, is_self) in targets {
            let this = self.clone();
            let slots = slots.clone();
            let checks = checks.clone();
            let handle = handle.clone();
            let mut dead_rx = dead_rx.clone();
            tasks.spawn(async move {
                let work = async {
                    let _slot = slots.acquire_owned().await;
                    let remaining = deadline.saturating_sub(started.elapsed());
                    this.run_on(addr, is_self, &checks, remaining).await
                };
                let died = async {
                    if dead_rx.wait_for(|dead| dead.contains(&addr)).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                };
                let result = tokio::select! {
                    r = tokio::time::timeout(deadline.saturating_sub(started.elapsed()), work) => match r {
                        Ok(r) => r,
                        Err(_) => HostReport::Failed(format!(
                            "no answer within {}",
                            human_duration(deadline)
                        )),
                    },
                    () = died => HostReport::Failed(
                        "host unreachable: it was declared dead while the operation ran".into(),
                    ),
                };
                let outcome = match &result {
                    HostReport::Answered { results, .. } if results.values().all(Outcome::passed) => {
                        OperationOutcome::Passed
                    }
                    HostReport::Answered { .. } => OperationOutcome::Failed,
                    HostReport::Pending | HostReport::Failed(_) => OperationOutcome::Incomplete,
                };
                this.record(&handle, &addr.to_string(), result).await;
                outcome
            });
        }
        // The worst host decides: a host without an answer beats a check that failed.
        let mut outcome = OperationOutcome::Passed;
        while let Some(joined) = tasks.join_next().await {
            outcome = outcome.max(joined.unwrap_or(OperationOutcome::Incomplete));
        }
        watcher.abort();
        let h = handle.clone();
        match self.store(move |s| s.finish(&h, unix_ms())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("could not record the end of operation {handle}: {e}"),
            Err(e) => tracing::warn!("could not record the end of operation {handle}: {e}"),
        }
        inner.changed.notify_waiters();
        outcome
    }

    /// Longest error text kept per result.
    fn max_result_bytes(&self) -> usize {
        self.inner.run_options.borrow().max_result_bytes
    }

    async fn run_on(
        &self,
        addr: SocketAddr,
        is_self: bool,
        checks: &CheckSet,
        remaining: Duration,
    ) -> HostReport {
        let started = Instant::now();
        if is_self {
            let options = self.inner.run_options.borrow().clone();
            let results = run_checks(checks, &options).await;
            if let Some(observer) = self.inner.observer.get() {
                observer.checks_ran(checks, &results, started.elapsed());
            }
            return HostReport::answered(results, duration_ms(started.elapsed()));
        }
        let req = Request::RunChecks {
            checks: checks.clone(),
            timeout_ms: duration_ms(remaining),
        };
        match self.inner.transport.call(addr, &req, remaining).await {
            Ok(Response::CheckResults {
                results,
                took_ms,
                observations,
            }) => {
                let max = self.max_result_bytes();
                HostReport::Answered {
                    results: sanitize(results, checks, max),
                    took_ms,
                    observations: sanitize_observations(observations, checks, max),
                }
            }
            Ok(Response::Error { message, .. }) => {
                HostReport::Failed(truncate(&message, self.max_result_bytes()))
            }
            Ok(other) => {
                HostReport::Failed(format!("host answered with {}", response_name(&other)))
            }
            Err(TransportError::Timeout { after, .. }) => {
                HostReport::Failed(format!("no answer within {}", human_duration(after)))
            }
            Err(e) => HostReport::Failed(format!("host unreachable: {e}")),
        }
    }

    async fn record(&self, handle: &Handle, host: &str, result: HostReport) {
        let (h, host_owned) = (handle.clone(), host.to_string());
        match self
            .store(move |s| s.record_host(&h, &host_owned, result))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("could not record {host}'s results for {handle}: {e}"),
            Err(e) => tracing::warn!("could not record {host}'s results for {handle}: {e}"),
        }
        self.inner.changed.notify_waiters();
    }

    /// `ctl get`: the record, from here or from the coordinator the handle names. With a
    /// `wait`, answers once the operation ended, the wait passed, or (with
    /// `known_answers`) more hosts than that have answered.
    pub async fn get(
        &self,
        handle: &Handle,
        wait: Duration,
        known_answers: Option<u64>,
    ) -> Result<OperationReport, OpsError> {
        let inner = &self.inner;
        let wait = wait.min(MAX_WAIT);
        if handle.node_tag() != node_tag(&inner.node_id) {
            return self.forward_get(handle, wait, known_answers).await;
        }
        let until = Instant::now() + wait;
        loop {
            // Register interest before reading, so a change between the read and the
            // wait is not missed.
            let notified = inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let h = handle.clone();
            match self.store(move |s| s.get(&h)).await? {
                Ok(Some(rec)) => {
                    let answered = rec
                        .hosts
                        .values()
                        .filter(|h| !matches!(h, HostReport::Pending))
                        .count() as u64;
                    let news = known_answers.is_some_and(|known| answered > known);
                    if rec.ended_unix_ms.is_some() || news || Instant::now() >= until {
                        return Ok(rec.into());
                    }
                }
                Ok(None) => {
                    return Err(OpsError::UnknownHandle {
                        handle: handle.to_string(),
                        why: "this node never coordinated it, or its results expired".into(),
                    });
                }
                Err(source) => {
                    return Err(OpsError::Read {
                        handle: handle.to_string(),
                        source: Box::new(source),
                    });
                }
            }
            let _ = tokio::time::timeout(until.saturating_duration_since(Instant::now()), notified)
                .await;
        }
    }

    async fn forward_get(
        &self,
        handle: &Handle,
        wait: Duration,
        known_answers: Option<u64>,
    ) -> Result<OperationReport, OpsError> {
        let view = self.inner.mesh.view().await?;
        let mut owners: Vec<&MemberView> = view
            .members
            .iter()
            .filter(|m| !m.is_self && node_tag(&m.member.peer.id) == handle.node_tag())
            .collect();
        owners.sort_by_key(|m| m.member.state != State::Alive);
        if owners.is_empty() {
            return Err(OpsError::UnknownHandle {
                handle: handle.to_string(),
                why: format!(
                    "no member of this mesh coordinates handles ending in -{}",
                    handle.node_tag()
                ),
            });
        }
        let mut last = OpsError::ShuttingDown;
        for owner in owners {
            let addr = owner.member.peer.addr;
            let req = Request::Get {
                handle: handle.to_string(),
                wait_ms: duration_ms(wait),
                known_answers,
            };
            match self
                .inner
                .transport
                .call(addr, &req, wait + Duration::from_secs(10))
                .await
            {
                Ok(Response::Operation(report)) => {
                    self.remember_fetched(&report);
                    return Ok(report);
                }
                Ok(Response::Error { code, message }) => last = OpsError::Remote { code, message },
                Ok(other) => {
                    last = OpsError::Remote {
                        code: ErrorCode::Peer,
                        message: format!("{addr} answered with {}", response_name(&other)),
                    }
                }
                Err(e) => {
                    last = OpsError::Remote {
                        code: ErrorCode::Unavailable,
                        message: format!(
                            "the coordinator of {handle} ({addr}) is unreachable: {e}"
                        ),
                    }
                }
            }
        }
        Err(last)
    }

    /// Keeps the latest answer about another coordinator's operation for [`Self::recent`].
    fn remember_fetched(&self, report: &OperationReport) {
        let mut fetched = self.inner.fetched.lock().unwrap_or_else(|p| p.into_inner());
        fetched.retain(|r| r.handle != report.handle);
        fetched.push_front(report.clone());
        fetched.truncate(MAX_FETCHED);
    }

    /// The `limit` most recently submitted operations this node knows: those it
    /// coordinates (from its store, with every answer recorded so far) and those of other
    /// coordinators fetched through it (as last fetched), newest submission first.
    pub async fn recent(&self, limit: usize) -> Result<Vec<RecentOperation>, OpsError> {
        let records = self
            .store(move |s| s.recent(limit))
            .await?
            .map_err(|e| OpsError::List(Box::new(e)))?;
        let mut list: Vec<RecentOperation> = records
            .into_iter()
            .map(|rec| RecentOperation {
                report: rec.into(),
                coordinated_here: true,
            })
            .collect();
        {
            let fetched = self.inner.fetched.lock().unwrap_or_else(|p| p.into_inner());
            list.extend(fetched.iter().map(|report| RecentOperation {
                report: report.clone(),
                coordinated_here: false,
            }));
        }
        list.sort_by(|a, b| {
            (b.report.submitted_unix_ms, &b.report.handle)
                .cmp(&(a.report.submitted_unix_ms, &a.report.handle))
        });
        list.truncate(limit);
        Ok(list)
    }

    /// `ctl refresh`: probe everyone now and have every alive node re-run its checks.
    pub async fn refresh(&self) -> Result<RefreshStarted, OpsError> {
        let inner = &self.inner;
        let refresh_id = unix_ms();
        inner.mesh.probe_all().await?;
        let view = inner.mesh.view().await?;
        let mut targeted = 0;
        for m in view
            .members
            .iter()
            .filter(|m| m.member.state == State::Alive)
        {
            targeted += 1;
            if m.is_self {
                let _ = inner.refresh_tx.try_send(refresh_id);
                continue;
            }
            let transport = inner.transport.clone();
            let addr = m.member.peer.addr;
            tokio::spawn(async move {
                if let Err(e) = transport
                    .call(
                        addr,
                        &Request::RunRefresh { refresh_id },
                        Duration::from_secs(5),
                    )
                    .await
                {
                    tracing::debug!(%addr, "refresh not delivered: {e}");
                }
            });
        }
        Ok(RefreshStarted {
            refresh_id,
            targeted,
        })
    }
}

/// Why [`validate_off_runtime`] refused a check set.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// The checks break a rule: the caller's input.
    #[error(transparent)]
    Invalid(#[from] crate::checks::spec::SpecError),
    /// The validation task panicked (a bug) or was cancelled (the runtime shutting down).
    #[error("validation failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Validates a check set on the blocking pool: compiling a hostile regex can take a
/// while, and must not stall the node's async workers.
pub async fn validate_off_runtime(checks: &CheckSet) -> Result<(), ValidateError> {
    let checks = checks.clone();
    Ok(tokio::task::spawn_blocking(move || checks.validate()).await??)
}

/// Publishes which of `targets` the mesh sees as dead, every 250 ms, until aborted.
async fn watch_dead<M: MeshAccess>(
    mesh: M,
    targets: HashSet<SocketAddr>,
    tx: tokio::sync::watch::Sender<HashSet<SocketAddr>>,
) {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Ok(view) = mesh.view().await else { return };
        let dead: HashSet<SocketAddr> = view
            .members
            .iter()
            .filter(|m| m.member.state == State::Dead && targets.contains(&m.member.peer.addr))
            .map(|m| m.member.peer.addr)
            .collect();
        if !dead.is_empty() {
            tx.send_if_modified(|d| {
                let changed = *d != dead;
                *d = dead;
                changed
            });
        }
    }
}

/// Members listed at most in a [`OpsError::NoMatch`] message.
const MAX_LISTED_MEMBERS: usize = 10;
/// Longest description of one listed member (its tags are cut), in bytes.
const MAX_MEMBER_TEXT: usize = 120;

/// The error for filters that match no alive (or suspect) member: the filters, the alive
/// members they could have matched (address, short id, tags; bounded), and the dead or
/// departed members they did match, if any.
fn no_match(filter: &TargetFilter, view: &MeshView, matched: &[&MemberView]) -> OpsError {
    // As typed in a shell: bare when plain, else in single quotes.
    let quoted = |word: &str| {
        let plain = !word.is_empty()
            && word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c));
        if plain {
            word.to_string()
        } else {
            format!("'{}'", word.replace('\'', "'\\''"))
        }
    };
    let mut flags: Vec<String> = filter
        .nodes
        .iter()
        .map(|r| format!("--node {}", quoted(r)))
        .collect();
    flags.extend(
        filter
            .tags
            .iter()
            .map(|(k, r)| format!("--tag {}", quoted(&format!("{k}={r}")))),
    );
    let alive: Vec<&MemberView> = view
        .members
        .iter()
        .filter(|m| matches!(m.member.state, State::Alive | State::Suspect))
        .collect();
    let describe = |m: &MemberView| {
        let mut text = format!("{} (id {}", m.member.peer.addr, m.member.peer.id.short());
        if !m.member.tags.is_empty() {
            let tags: Vec<String> = m
                .member
                .tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            text.push_str(", tags ");
            text.push_str(&tags.join(","));
        }
        if text.len() > MAX_MEMBER_TEXT {
            let mut cut = MAX_MEMBER_TEXT;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        text.push(')');
        text
    };
    let mut candidates: Vec<String> = alive
        .iter()
        .take(MAX_LISTED_MEMBERS)
        .map(|m| describe(m))
        .collect();
    if alive.len() > MAX_LISTED_MEMBERS {
        candidates.push(format!("and {} more", alive.len() - MAX_LISTED_MEMBERS));
    }
    let gone: Vec<String> = matched
        .iter()
        .take(MAX_LISTED_MEMBERS)
        .map(|m| format!("{} ({})", m.member.peer.addr, m.member.state))
        .collect();
    OpsError::NoMatch {
        filter: flags.join(" "),
        alive: alive.len(),
        candidates: candidates.join("; "),
        gone: gone.join(", "),
    }
}

/// Host filters of an operation, compiled.
struct TargetMatcher {
    nodes: Vec<Regex>,
    tags: Vec<(String, Regex)>,
}

impl TargetMatcher {
    fn new(f: &TargetFilter) -> Result<TargetMatcher, OpsError> {
        let compile = |flag: &'static str, re: &str| {
            Regex::new(re).map_err(|e| OpsError::InvalidFilter {
                flag,
                regex: re.to_string(),
                reason: e.to_string(),
            })
        };
        Ok(TargetMatcher {
            nodes: f
                .nodes
                .iter()
                .map(|r| compile("--node", r))
                .collect::<Result<_, _>>()?,
            tags: f
                .tags
                .iter()
                .map(|(k, r)| Ok((k.clone(), compile("--tag", r)?)))
                .collect::<Result<_, OpsError>>()?,
        })
    }

    fn matches(&self, m: &MemberView) -> bool {
        let addr = m.member.peer.addr.to_string();
        let id = m.member.peer.id.to_string();
        (self.nodes.is_empty()
            || self
                .nodes
                .iter()
                .any(|r| r.is_match(&addr) || r.is_match(&id)))
            && self
                .tags
                .iter()
                .all(|(k, r)| m.member.tags.get(k).is_some_and(|v| r.is_match(v)))
    }
}

/// Keeps only results for checks that were asked for, with error texts capped: a host's
/// answer is input from the network.
fn sanitize(
    results: BTreeMap<String, Outcome>,
    checks: &CheckSet,
    max: usize,
) -> BTreeMap<String, Outcome> {
    let mut out = BTreeMap::new();
    for name in checks.names() {
        let r = match results.get(name) {
            Some(Outcome::Error(e)) => Outcome::Error(truncate(e, max)),
            Some(o) => o.clone(),
            None => Outcome::Error("the host returned no result for this check".into()),
        };
        out.insert(name.to_string(), r);
    }
    out
}

/// Keeps only observations of checks that were asked for, each within the same cap as
/// an error text: a host's answer is input from the network.
fn sanitize_observations(
    observations: BTreeMap<String, Observation>,
    checks: &CheckSet,
    max: usize,
) -> BTreeMap<String, Observation> {
    observations
        .into_iter()
        .filter(|(name, _)| checks.get(name).is_some())
        .map(|(name, o)| (name, o.bounded(max)))
        .filter(|(_, o)| !o.is_empty())
        .collect()
}

fn truncate(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.len() <= max {
        return line.to_string();
    }
    let mut end = max;
    while end > 0 && !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

/// `10s`, `1.5s`, `250ms`: how deadlines are shown in results.
pub fn human_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::parse_operations;
    use crate::mesh::member::{Member, Peer, Tags};
    use crate::ops::store::StoreLimits;
    use std::path::PathBuf;

    /// A mesh whose view never changes.
    #[derive(Clone)]
    struct FixedMesh(Arc<MeshView>);

    impl MeshAccess for FixedMesh {
        async fn view(&self) -> Result<MeshView, ShuttingDown> {
            Ok((*self.0).clone())
        }

        async fn probe_all(&self) -> Result<(), ShuttingDown> {
            Ok(())
        }
    }

    /// A scratch directory removed on drop.
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// One member of a fixed view.
    fn member(peer: Peer, state: State, tags: &[(&str, &str)], is_self: bool) -> MemberView {
        let tags: Tags = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut m = Member::new(peer, 1, tags, Instant::now());
        m.state = state;
        MemberView {
            member: m,
            is_self,
            last_heard_ago: None,
            state_for: Duration::ZERO,
        }
    }

    /// The fixed view of [`coordinator`]: this node (`role=web`) on the loopback transport,
    /// and 127.0.0.2 (alive, `role=db`), 127.0.0.3 (alive, `role=web`), 127.0.0.4 (dead,
    /// `role=web`), 127.0.0.5 (left), all on port 9 where nothing listens.
    fn others() -> Vec<MemberView> {
        vec![
            member(Peer::numbered(2, 9), State::Alive, &[("role", "db")], false),
            member(
                Peer::numbered(3, 9),
                State::Alive,
                &[("role", "web")],
                false,
            ),
            member(Peer::numbered(4, 9), State::Dead, &[("role", "web")], false),
            member(Peer::numbered(5, 9), State::Left, &[], false),
        ]
    }

    /// A coordinator with a real store and a real loopback transport, over a fixed view
    /// made of this node and `others`.
    fn coordinator(name: &str, others: Vec<MemberView>) -> (Coordinator<FixedMesh>, Scratch) {
        let dir = Scratch(std::env::temp_dir().join(format!(
            "werify-coordinator-{}-{name}-{}",
            std::process::id(),
            rand::random::<u32>()
        )));
        std::fs::create_dir_all(&dir.0).expect("scratch dir");
        let node_id = NodeId::random();
        let transport =
            crate::rpc::transport::node_transport_with(node_id, b"coordinator unit tests");
        let addr = transport.local_addr().expect("bound");
        let mut members = vec![member(
            Peer { id: node_id, addr },
            State::Alive,
            &[("role", "web")],
            true,
        )];
        members.extend(others);
        let mesh = FixedMesh(Arc::new(MeshView {
            members,
            local_health: 0,
            local_health_max: 8,
            removed: false,
        }));
        let store =
            Store::open(&dir.0.join("operations.redb"), StoreLimits::default()).expect("store");
        let (refresh_tx, _) = tokio::sync::mpsc::channel(4);
        let c = Coordinator::new(
            store,
            transport,
            mesh,
            node_id,
            addr,
            4,
            tokio::sync::watch::channel(RunOptions::default()).1,
            refresh_tx,
        );
        (c, dir)
    }

    fn checks() -> CheckSet {
        parse_operations(
            r#"{"root": {"type": "file_exists", "path": "/"}}"#,
            "ops.json",
        )
        .expect("operations")
    }

    fn client() -> IpAddr {
        IpAddr::from([127, 0, 0, 1])
    }

    fn submitter() -> Submitter {
        Submitter {
            operator: Some("alice".into()),
            from: "127.0.0.1:40000".into(),
            certificate: "ab".repeat(32),
        }
    }

    fn filter(nodes: &[&str], tags: &[(&str, &str)]) -> TargetFilter {
        TargetFilter {
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Submits with `filter` and returns the hosts of the record, as recorded at once.
    async fn targets(c: &Coordinator<FixedMesh>, filter: TargetFilter) -> Vec<String> {
        let s = c
            .submit(
                client(),
                submitter(),
                checks(),
                filter,
                Duration::from_secs(2),
            )
            .await
            .expect("submitted");
        let report = c
            .get(&s.handle, Duration::ZERO, None)
            .await
            .expect("recorded");
        assert_eq!(s.targeted, report.hosts.len());
        assert_eq!(report.submitted_by, Some(submitter()));
        report.hosts.keys().cloned().collect()
    }

    #[tokio::test]
    async fn hosts_are_targeted_by_node_regex_and_by_tags() {
        let (c, _dir) = coordinator("targeting", others());
        let me = c.inner.addr.to_string();
        let (two, three, four) = ("127.0.0.2:9", "127.0.0.3:9", "127.0.0.4:9");
        // No filter: every member but the one that left.
        let mut all = vec![me.clone(), two.into(), three.into(), four.into()];
        all.sort();
        let mut got = targets(&c, TargetFilter::default()).await;
        got.sort();
        assert_eq!(got, all);
        // By address regex (any of several).
        assert_eq!(
            targets(&c, filter(&[r"^127\.0\.0\.3:"], &[])).await,
            vec![three]
        );
        let mut got = targets(&c, filter(&[r"\.2:9$", r"\.3:9$"], &[])).await;
        got.sort();
        assert_eq!(got, vec![two, three]);
        // By node id.
        let id = Peer::numbered(2, 9).id.to_string();
        assert_eq!(targets(&c, filter(&[&id], &[])).await, vec![two]);
        // By tag: every key must match; a dead member that matches is still reported.
        let mut got = targets(&c, filter(&[], &[("role", "^web$")])).await;
        got.sort();
        let mut web = vec![me.clone(), three.to_string(), four.to_string()];
        web.sort();
        assert_eq!(got, web);
        // Filters that match no alive member are refused, naming the filters and the
        // members they could have matched; nothing is recorded.
        let refused = |f: TargetFilter| {
            let c = c.clone();
            async move {
                c.submit(client(), submitter(), checks(), f, Duration::from_secs(2))
                    .await
                    .expect_err("matches no alive member")
            }
        };
        let err = refused(filter(&[], &[("zone", ".*")])).await;
        assert_eq!(err.code(), ErrorCode::NoMatch);
        let text = err.to_string();
        assert!(
            text.starts_with(
                "no alive member matches --tag 'zone=.*', so nothing was run; alive members (3): "
            ),
            "{text}"
        );
        let two_id = Peer::numbered(2, 9).id.short();
        assert!(
            text.contains(&format!("127.0.0.2:9 (id {two_id}, tags role=db)")),
            "{text}"
        );
        assert!(text.contains(&format!("{me} (id ")), "{text}");
        assert!(!text.contains("127.0.0.4:9"), "{text}");
        let text = refused(filter(&[r"\.[45]:9$", "nomatch"], &[("role", "web|")]))
            .await
            .to_string();
        assert!(
            text.starts_with(
                "no alive member matches --node '\\.[45]:9$' --node nomatch --tag 'role=web|', \
                 so nothing was run (it matches only members that are not alive: \
                 127.0.0.4:9 (dead)); alive members (3): "
            ),
            "{text}"
        );
        // Both kinds together.
        assert_eq!(
            targets(&c, filter(&[r"127\.0\.0\.[34]"], &[("role", "web")])).await,
            vec![three, four]
        );
        // A bad regex is the caller's error.
        let err = c
            .submit(
                client(),
                submitter(),
                checks(),
                filter(&["("], &[]),
                Duration::from_secs(2),
            )
            .await
            .expect_err("bad regex");
        assert!(
            matches!(err, OpsError::InvalidFilter { flag: "--node", .. }),
            "{err}"
        );
        assert_eq!(err.code(), ErrorCode::Invalid);
    }

    #[tokio::test]
    async fn dead_hosts_are_reported_unreachable_and_the_rest_answer() {
        // This node and one dead member: nothing needs the network.
        let dead = vec![member(Peer::numbered(4, 9), State::Dead, &[], false)];
        let (c, _dir) = coordinator("dead", dead);
        let s = c
            .submit(
                client(),
                submitter(),
                checks(),
                TargetFilter::default(),
                Duration::from_secs(10),
            )
            .await
            .expect("submitted");
        assert_eq!(s.targeted, 2);
        let report = c
            .get(&s.handle, Duration::from_secs(20), None)
            .await
            .expect("report");
        assert!(report.ended_unix_ms.is_some(), "ended: {report:?}");
        match &report.hosts["127.0.0.4:9"] {
            HostReport::Failed(why) => assert!(why.contains("unreachable"), "{why}"),
            other => panic!("the dead host: {other:?}"),
        }
        match &report.hosts[&c.inner.addr.to_string()] {
            HostReport::Answered { results, .. } => {
                assert_eq!(results["root"], Outcome::Success(true))
            }
            other => panic!("this node: {other:?}"),
        }
    }

    #[tokio::test]
    async fn recent_lists_coordinated_and_fetched_operations_newest_first() {
        let (c, _dir) = coordinator("recent", Vec::new());
        assert!(c.recent(10).await.expect("recent").is_empty());
        let mut handles = Vec::new();
        for _ in 0..3 {
            let s = c
                .submit(
                    client(),
                    submitter(),
                    checks(),
                    TargetFilter::default(),
                    MAX_DEADLINE,
                )
                .await
                .expect("submitted");
            handles.push(s.handle.to_string());
            // Distinct submission times, so the order is known.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        let first = c
            .get(&handles[0].parse().expect("handle"), Duration::ZERO, None)
            .await
            .expect("recorded");
        // Another coordinator's operation, fetched through this node: the newest.
        let fetched = OperationReport {
            handle: "zzzzz9-other".into(),
            submitted_unix_ms: u64::MAX,
            ..first.clone()
        };
        c.remember_fetched(&fetched);
        c.remember_fetched(&fetched);
        let listed = c.recent(3).await.expect("recent");
        let names: Vec<(&str, bool)> = listed
            .iter()
            .map(|r| (r.report.handle.as_str(), r.coordinated_here))
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert_eq!(names[0], ("zzzzz9-other", false));
        assert!(names[1..].iter().all(|(_, here)| *here), "{names:?}");
        assert!(!names.iter().any(|(h, _)| *h == handles[0]), "{names:?}");
        assert_eq!(c.recent(10).await.expect("recent").len(), 4);
        for n in 0..MAX_FETCHED + 3 {
            c.remember_fetched(&OperationReport {
                handle: format!("other{n}"),
                ..first.clone()
            });
        }
        let all = c.recent(1000).await.expect("recent");
        assert_eq!(
            all.iter().filter(|r| !r.coordinated_here).count(),
            MAX_FETCHED
        );
    }

    #[tokio::test]
    async fn deadlines_out_of_range_are_refused() {
        let (c, _dir) = coordinator("deadline", Vec::new());
        for bad in [Duration::ZERO, MAX_DEADLINE + Duration::from_millis(1)] {
            let err = c
                .submit(
                    client(),
                    submitter(),
                    checks(),
                    TargetFilter::default(),
                    bad,
                )
                .await
                .expect_err("out of range");
            assert!(matches!(err, OpsError::DeadlineOutOfRange { .. }), "{err}");
            assert_eq!(err.code(), ErrorCode::Invalid);
        }
        c.submit(
            client(),
            submitter(),
            checks(),
            TargetFilter::default(),
            MAX_DEADLINE,
        )
        .await
        .expect("the longest deadline is allowed");
    }

    #[tokio::test]
    async fn submissions_past_the_burst_are_rate_limited_per_client() {
        let (c, _dir) = coordinator("rate", Vec::new());
        // Spend the client's whole burst and fill its paced queue (as many requests in
        // flight at once would), then submit: refused until the bucket refills (one token
        // every 50 ms). Each try drains again first, so a token that came back while the
        // previous try ran is spent before the next submission.
        let drain = || {
            let mut n = 0;
            while c.reserve_rate(client(), Paced::Operation).is_ok() {
                n += 1;
                assert!(n <= SUBMIT_BURST.get() * 10, "the bucket never runs dry");
            }
        };
        let mut limited = None;
        for _ in 0..20 {
            drain();
            match c
                .submit(
                    client(),
                    submitter(),
                    checks(),
                    TargetFilter::default(),
                    Duration::from_secs(5),
                )
                .await
            {
                Err(e @ OpsError::RateLimited { .. }) => {
                    limited = Some(e);
                    break;
                }
                Ok(_) => {}
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        let err = limited.expect("a submission past the burst is rate limited");
        assert_eq!(err.code(), ErrorCode::RateLimited);
        assert!(err.to_string().contains("too many operations"), "{err}");
        // Another client has its own bucket.
        c.submit(
            IpAddr::from([127, 0, 0, 2]),
            submitter(),
            checks(),
            TargetFilter::default(),
            Duration::from_secs(5),
        )
        .await
        .expect("another client is not limited");
    }

    #[tokio::test]
    async fn unknown_handles_are_not_found() {
        let (c, _dir) = coordinator("unknown", others());
        // This node's tag, a counter it never gave out.
        let mine = Handle::new(1, 999_999, c.inner.node_id);
        let err = c
            .get(&mine, Duration::ZERO, None)
            .await
            .expect_err("unknown");
        assert!(matches!(err, OpsError::UnknownHandle { .. }), "{err}");
        assert_eq!(err.code(), ErrorCode::NotFound);
        // A tag no member has: nobody to forward to.
        let stranger = (0..)
            .map(|_| NodeId::random())
            .find(|id| {
                let tag = node_tag(id);
                tag != node_tag(&c.inner.node_id)
                    && (2..=5).all(|n| tag != node_tag(&Peer::numbered(n, 9).id))
            })
            .expect("a random id with another tag");
        let theirs = Handle::new(1, 1, stranger);
        let err = c
            .get(&theirs, Duration::ZERO, None)
            .await
            .expect_err("unknown");
        assert!(matches!(err, OpsError::UnknownHandle { .. }), "{err}");
        assert_eq!(err.code(), ErrorCode::NotFound);
    }
}
