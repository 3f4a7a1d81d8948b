//! The node's periodic health: runs the `--checks` file every `--check-interval` (and at
//! once for each refresh, and when a reload changes the checks, their interval or the run
//! options), publishes the summary into the gossiped membership state, and keeps the
//! latest run, every result, for `GET /healthz`, `werify ctl health` ([`Periodic`]) and
//! the metrics.
//! Checks themselves are in [`crate::checks`]; spreading the summary is the mesh's job;
//! reading the checks file is the caller's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};

use crate::base::clock::duration_ms;
use crate::checks::run::{RunOptions, Summary, run_checks, summarize};
use crate::checks::spec::CheckSet;
use crate::checks::{CheckResult, Outcome};
use crate::mesh::member::HealthSummary;
use crate::node::driver::MeshClient;
use crate::node::metrics::{CheckSource, Metrics};

/// The periodic checks as `GET /healthz` and `werify ctl health` see them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Periodic {
    /// No `--checks` file: nothing to pass or fail.
    Off,
    /// The first run has not finished yet.
    NotRunYet,
    /// The latest run.
    Ran(Arc<PeriodicRun>),
}

/// One finished run of the periodic checks: every result, with what each check found
/// and expected, kept on this node (only the bounded [`HealthSummary`] is gossiped;
/// `werify ctl health` and the live page ask the node for this).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeriodicRun {
    /// The counts and the failing and erroring names.
    pub summary: Summary,
    /// Every check's result (outcome and observation), by name.
    pub results: BTreeMap<String, CheckResult>,
    /// When the run ended (Unix time, ms).
    pub at_unix_ms: u64,
    /// How long it took.
    pub took_ms: u64,
}

/// The gossiped summary of a run: counts, then the names of failing and of erroring
/// checks (capped by the mesh to fit a datagram, see [`HealthSummary::capped`]).
pub fn summary_of(run: &PeriodicRun, refresh_id: u64) -> HealthSummary {
    let names = |erroring: bool| -> Vec<String> {
        run.results
            .iter()
            .filter(|(_, r)| match &r.outcome {
                Outcome::Success(passed) => !erroring && !passed,
                Outcome::Error(_) => erroring,
            })
            .map(|(name, _)| name.clone())
            .collect()
    };
    HealthSummary {
        version: 0,
        passing: run.summary.passing,
        failing: run.summary.failing,
        erroring: run.summary.erroring,
        failing_names: names(false),
        erroring_names: names(true),
        names_omitted: 0,
        at_unix_ms: unix_ms(),
        refresh_id,
    }
    .capped()
}

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
                    let took = started.elapsed();
                    metrics.checks_ran(CheckSource::Periodic, set, &results, took);
                    let s = summarize(&results);
                    metrics.periodic(s.passing, s.failing, s.erroring);
                    let run = PeriodicRun {
                        summary: s,
                        results,
                        at_unix_ms: unix_ms(),
                        took_ms: duration_ms(took),
                    };
                    let summary = summary_of(&run, last_refresh);
                    latest_tx.send_replace(Periodic::Ran(Arc::new(run)));
                    summary
                }
                None => HealthSummary {
                    at_unix_ms: unix_ms(),
                    refresh_id: last_refresh,
                    ..HealthSummary::default()
                },
            };
            // Gossip only what changed: an unchanged summary would cost every node a
            // round of dissemination per interval for nothing. `at_unix_ms` therefore says
            // when the summary last changed (or answered a refresh).
            let key = HealthSummary {
                version: 0,
                at_unix_ms: 0,
                ..summary.clone()
            };
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
