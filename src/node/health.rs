//! The node's periodic health: runs the `--checks` file every `--check-interval` (and at
//! once for each refresh), and publishes the summary into the gossiped membership state.
//! Checks themselves are in [`crate::checks`]; spreading the summary is the mesh's job.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::checks::run::{RunOptions, run_checks, summarize};
use crate::checks::spec::CheckSet;
use crate::mesh::member::HealthSummary;
use crate::node::driver::MeshClient;

/// Names of failing checks carried in a summary, at most.
pub const MAX_FAILING_NAMES: usize = 8;

/// Starts the health task. `refresh_rx` delivers refresh ids to serve at once.
pub fn spawn(
    mesh: MeshClient,
    checks: Option<CheckSet>,
    interval: Duration,
    options: RunOptions,
    mut refresh_rx: mpsc::Receiver<u64>,
) {
    tokio::spawn(async move {
        let mut last_refresh = 0u64;
        let mut published = None;
        let mut tick = tokio::time::interval(interval.max(Duration::from_millis(100)));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                id = refresh_rx.recv() => match id {
                    Some(id) => last_refresh = last_refresh.max(id),
                    None => return,
                },
            }
            let summary = match &checks {
                Some(set) => {
                    let results = run_checks(set, &options).await;
                    let s = summarize(&results);
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
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
