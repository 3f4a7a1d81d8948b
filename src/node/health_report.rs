//! `werify ctl health` on the node side: gathering every member's periodic-check state
//! without running anything. Each alive member is asked for its latest results
//! ([`Request::PeriodicResults`], answered from [`Periodic`] by [`local_checks`]), a bounded
//! number at once and each within [`ASK_TIMEOUT`]; members that cannot be asked are
//! reported with their gossiped summary and why. Running the checks is
//! [`crate::node::health`]'s job; printing the report is the CLI's.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::mesh::member::{HealthSummary, State};
use crate::node::dispatch::NodeContext;
use crate::node::health::Periodic;
use crate::ops::coordinator::ShuttingDown;
use crate::rpc::protocol::{
    HealthReport, HostChecks, HostHealth, PeriodicChecks, Request, Response,
};
use crate::rpc::transport::response_name;

/// Longest one member may take to answer for its results.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// Members asked at once.
pub const ASKS_AT_ONCE: usize = 32;

/// This node's own latest periodic results, all of them or only the failing and erroring
/// ones.
pub fn local_checks(periodic: &Periodic, failing_only: bool) -> PeriodicChecks {
    match periodic {
        Periodic::Off => PeriodicChecks::Off,
        Periodic::NotRunYet => PeriodicChecks::NotRunYet,
        Periodic::Ran(run) => PeriodicChecks::Ran {
            at_unix_ms: run.at_unix_ms,
            took_ms: run.took_ms,
            results: run
                .results
                .iter()
                .filter(|(_, o)| !failing_only || !o.passed())
                .map(|(n, o)| (n.clone(), o.clone()))
                .collect(),
        },
    }
}

/// Whether a gossiped summary shows something failing or erroring (or is missing, so
/// nothing is known).
fn may_fail(summary: Option<&HealthSummary>) -> bool {
    summary.is_none_or(|s| s.failing + s.erroring > 0)
}

/// Every member's periodic-check state (left members excluded), sorted by address.
pub async fn gather(ctx: &NodeContext, failing_only: bool) -> Result<HealthReport, ShuttingDown> {
    let view = ctx.mesh.view().await?;
    let slots = Arc::new(Semaphore::new(ASKS_AT_ONCE));
    let mut asks = JoinSet::new();
    let mut hosts = Vec::new();
    for v in view
        .members
        .iter()
        .filter(|v| v.member.state != State::Left)
    {
        let m = &v.member;
        let checks = if v.is_self {
            HostChecks::Answered(local_checks(&ctx.periodic.borrow(), failing_only))
        } else if m.state != State::Alive {
            HostChecks::Unavailable(match m.suspected_by {
                Some(by) => format!("{} (accused by {})", m.state, by.short()),
                None => m.state.to_string(),
            })
        } else if failing_only && !may_fail(m.health.as_ref()) {
            HostChecks::NotAsked
        } else {
            let (transport, slots, addr) = (ctx.transport.clone(), slots.clone(), m.peer.addr);
            let index = hosts.len();
            asks.spawn(async move {
                let _slot = slots.acquire_owned().await;
                let req = Request::PeriodicResults { failing_only };
                let answer = match transport.call(addr, &req, ASK_TIMEOUT).await {
                    Ok(Response::PeriodicResults(p)) => HostChecks::Answered(p),
                    Ok(Response::Error { message, .. }) => {
                        HostChecks::Unavailable(format!("it refused: {message}"))
                    }
                    Ok(other) => HostChecks::Unavailable(format!(
                        "it answered with {}",
                        response_name(&other)
                    )),
                    Err(e) => HostChecks::Unavailable(e.to_string()),
                };
                (index, answer)
            });
            // Replaced by the answer when it comes.
            HostChecks::Unavailable("it gave no answer".into())
        };
        hosts.push(HostHealth {
            addr: m.peer.addr.to_string(),
            node_id: m.peer.id,
            state: m.state,
            summary: m.health.clone(),
            checks,
        });
    }
    while let Some(done) = asks.join_next().await {
        if let Ok((index, answer)) = done
            && let Some(host) = hosts.get_mut(index)
        {
            host.checks = answer;
        }
    }
    hosts.sort_by_key(|h| (h.addr.parse::<std::net::SocketAddr>().ok(), h.addr.clone()));
    Ok(HealthReport {
        gathered_by: ctx.addr.to_string(),
        failing_only,
        hosts,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::checks::Outcome;
    use crate::checks::run::Summary;
    use crate::node::health::PeriodicRun;

    #[test]
    fn local_results_are_all_or_only_the_failing_ones() {
        let results: BTreeMap<String, Outcome> = [
            ("a".to_string(), Outcome::Success(true)),
            ("b".to_string(), Outcome::Success(false)),
            ("c".to_string(), Outcome::Error("unreadable".into())),
        ]
        .into();
        let ran = Periodic::Ran(Arc::new(PeriodicRun {
            summary: Summary::default(),
            results: results.clone(),
            at_unix_ms: 5,
            took_ms: 1,
        }));
        assert_eq!(
            local_checks(&ran, false),
            PeriodicChecks::Ran {
                at_unix_ms: 5,
                took_ms: 1,
                results,
            }
        );
        let PeriodicChecks::Ran { results, .. } = local_checks(&ran, true) else {
            panic!("ran");
        };
        assert_eq!(results.keys().collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(local_checks(&Periodic::Off, true), PeriodicChecks::Off);
        assert_eq!(
            local_checks(&Periodic::NotRunYet, false),
            PeriodicChecks::NotRunYet
        );
    }

    #[test]
    fn only_summaries_that_show_a_failure_or_are_missing_are_worth_asking() {
        assert!(may_fail(None));
        let passing = HealthSummary {
            passing: 3,
            ..HealthSummary::default()
        };
        assert!(!may_fail(Some(&passing)));
        let erroring = HealthSummary {
            erroring: 1,
            ..passing.clone()
        };
        assert!(may_fail(Some(&erroring)));
    }
}
