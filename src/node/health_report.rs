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
    HealthReport, HostChecks, HostHealth, PeriodicChecks, Request, Response, split_results,
};
use crate::rpc::transport::response_name;

/// Longest one member may take to answer for its results.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// Members asked at once.
pub const ASKS_AT_ONCE: usize = 32;

/// This node's own latest periodic results, all of them or only the failing and erroring
/// ones, with what each found and expected.
pub fn local_checks(periodic: &Periodic, failing_only: bool) -> PeriodicChecks {
    match periodic {
        Periodic::Off => PeriodicChecks::Off,
        Periodic::NotRunYet => PeriodicChecks::NotRunYet,
        Periodic::Ran(run) => {
            let (results, observations) = split_results(
                run.results
                    .iter()
                    .filter(|(_, r)| !failing_only || !r.outcome.passed())
                    .map(|(n, r)| (n.clone(), r.clone()))
                    .collect(),
            );
            PeriodicChecks::Ran {
                at_unix_ms: run.at_unix_ms,
                took_ms: run.took_ms,
                results,
                observations,
            }
        }
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
    use crate::checks::run::Summary;
    use crate::checks::{CheckResult, Facts, Outcome};
    use crate::node::health::PeriodicRun;

    #[test]
    fn local_results_are_all_or_only_the_failing_ones_with_what_they_found() {
        let mode = |m: &str| Facts::new().with("mode", m);
        let results: BTreeMap<String, CheckResult> = [
            ("a".to_string(), CheckResult::holds(true, mode("0644"))),
            (
                "b".to_string(),
                CheckResult::holds(false, mode("0644")).expecting(mode("0600")),
            ),
            ("c".to_string(), CheckResult::error("unreadable")),
        ]
        .into();
        let ran = Periodic::Ran(Arc::new(PeriodicRun {
            summary: Summary::default(),
            results,
            at_unix_ms: 5,
            took_ms: 1,
        }));
        let all = local_checks(&ran, false);
        let PeriodicChecks::Ran {
            at_unix_ms: 5,
            took_ms: 1,
            results,
            observations,
        } = &all
        else {
            panic!("ran: {all:?}");
        };
        assert_eq!(
            results.values().cloned().collect::<Vec<_>>(),
            [
                Outcome::Success(true),
                Outcome::Success(false),
                Outcome::Error("unreadable".into())
            ]
        );
        // Only checks that observed something carry an observation.
        assert_eq!(observations.keys().collect::<Vec<_>>(), ["a", "b"]);
        let b = all.observation("b").expect("b observed");
        assert_eq!(b.found.get("mode"), Some("0644"));
        assert_eq!(b.expected.get("mode"), Some("0600"));

        let failing = local_checks(&ran, true);
        let PeriodicChecks::Ran {
            results,
            observations,
            ..
        } = &failing
        else {
            panic!("ran");
        };
        assert_eq!(results.keys().collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(observations.keys().collect::<Vec<_>>(), ["b"]);
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
