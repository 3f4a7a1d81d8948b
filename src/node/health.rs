//! The node's periodic health: runs the `--checks` file every `--check-interval` (and at
//! once for each refresh, and when a reload changes the checks, their interval or the run
//! options), publishes the summary into the gossiped membership state, and keeps the
//! latest run for `GET /healthz` ([`Periodic`]) and the metrics.
//! Checks themselves are in [`crate::checks`]; spreading the summary is the mesh's job;
//! reading the checks file is the caller's.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};

use crate::checks::run::{RunOptions, Summary, run_checks, summarize};
use crate::checks::spec::CheckSet;
use crate::mesh::member::HealthSummary;
use crate::node::driver::MeshClient;
use crate::node::metrics::{CheckSource, Metrics};

/// The periodic checks as `GET /healthz` sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Periodic {
    /// No `--checks` file: nothing to pass or fail.
    Off,
    /// The first run has not finished yet.
    NotRunYet,
    /// The latest run's counts and the names of its failing and erroring checks.
    Ran(Summary),
}

/// Names of failing checks carried in a summary, at most.
pub const MAX_FAILING_NAMES: usize = 8;

/// The shortest interval between periodic runs.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// What the periodic checks are and how often they run; a reload sends a new one.
#[derive(Clone, Debug, PartialEq)]
pub struct PeriodicChecks {
    /// The checks; `None` runs nothing (and publishes an empty summary).
    pub checks: Option<Arc<CheckSet>>,
    /// How often they run.
    pub interval: Duration,
}

/// Starts the health task. `settings` and `options` hold the checks to run and how; a
/// change to either runs them at once. `refresh_rx` delivers refresh ids to serve at
/// once. The returned receiver always holds the latest [`Periodic`] state.
pub fn spawn(
    mesh: MeshClient,
    mut settings: watch::Receiver<PeriodicChecks>,
    mut options: watch::Receiver<RunOptions>,
    mut refresh_rx: mpsc::Receiver<u64>,
    metrics: Arc<Metrics>,
) -> watch::Receiver<Periodic> {
    let initial = |s: &PeriodicChecks| match s.checks {
        Some(_) => Periodic::NotRunYet,
        None => Periodic::Off,
    };
    let mut current = settings.borrow_and_update().clone();
    let (latest_tx, latest_rx) = watch::channel(initial(&current));
    tokio::spawn(async move {
        let mut last_refresh = 0u64;
        let mut published = None;
        let mut tick = tokio::time::interval(current.interval.max(MIN_INTERVAL));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                id = refresh_rx.recv() => match id {
                    Some(id) => last_refresh = last_refresh.max(id),
                    None => return,
                },
                () = changed(&mut settings) => {
                    current = settings.borrow_and_update().clone();
                    latest_tx.send_replace(initial(&current));
                    tick = tokio::time::interval(current.interval.max(MIN_INTERVAL));
                    // The new interval's first tick is now: this run is it.
                    tick.tick().await;
                    if current.checks.is_none() {
                        metrics.periodic(0, 0, 0);
                    }
                }
                () = changed(&mut options) => {}
            }
            let run_options = options.borrow_and_update().clone();
            let summary = match current.checks.as_deref() {
                Some(set) => {
                    let started = Instant::now();
                    let results = run_checks(set, &run_options).await;
                    metrics.checks_ran(CheckSource::Periodic, set, &results, started.elapsed());
                    let s = summarize(&results);
                    metrics.periodic(s.passing, s.failing, s.erroring);
                    latest_tx.send_replace(Periodic::Ran(s.clone()));
                    let mut names = s.failing_names;
                    names.truncate(MAX_FAILING_NAMES);
                    HealthSummary {
                        version: 0,
                        passing: s.passing,
                        failing: s.failing,
                        erroring: s.erroring,
                        failing_names: names,
                        at_unix_ms: unix_ms(),
                        refresh_id: last_refresh,
                    }
                }
                None => HealthSummary {
                    version: 0,
                    passing: 0,
                    failing: 0,
                    erroring: 0,
                    failing_names: Vec::new(),
                    at_unix_ms: unix_ms(),
                    refresh_id: last_refresh,
                },
            };
            // Gossip only what changed: an unchanged summary would cost every node a
            // round of dissemination per interval for nothing. `at_unix_ms` therefore says
            // when the summary last changed (or answered a refresh).
            let key = (
                summary.passing,
                summary.failing,
                summary.erroring,
                summary.failing_names.clone(),
                summary.refresh_id,
            );
            if published.as_ref() == Some(&key) {
                continue;
            }
            if mesh.set_health(summary).await.is_err() {
                return;
            }
            published = Some(key);
        }
    });
    latest_rx
}

/// Completes when `rx` holds a value not yet seen; never, once its sender is gone.
async fn changed<T>(rx: &mut watch::Receiver<T>) {
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
