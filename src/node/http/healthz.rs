//! `GET /healthz`: whether this node is in a mesh and its periodic checks pass, as one
//! status code and one line, for load balancers and orchestrator probes. It is the one path
//! served without a token ([`super::access`]): it says nothing a probe could not learn by
//! connecting.

use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::mesh::member::{MeshView, State};
use crate::node::health::Periodic;
use crate::node::refusals::not_joined;

use super::one_line;

/// Failing check names `/healthz` lists before saying how many more there are.
pub const HEALTHZ_NAMES: usize = 3;

/// `Ok` when the node is in a mesh and its periodic checks pass, else one line saying
/// why not. In a mesh means: the mesh task runs, this node was not removed, and when it
/// was told to join (`join` non-empty) or a peer refused it (`refusal`, the latest
/// refusal), at least one other member is alive; the refusal is then the reason given.
/// The checks pass when there are none, or when their latest run had no failing or
/// erroring check.
pub fn health_verdict(
    view: Option<&MeshView>,
    periodic: &Periodic,
    join: &[SocketAddr],
    refusal: Option<&str>,
) -> Result<(), String> {
    let Some(view) = view else {
        return Err("the node is shutting down".into());
    };
    let mut reasons = Vec::new();
    if view.removed {
        reasons.push(
            "removed from the mesh (werify ctl del); it stays out until added again".to_string(),
        );
    } else if let Some(reason) = refusal.and_then(|r| not_joined(view, join, Some(r))) {
        reasons.push(format!("not joined: {reason}"));
    } else if !join.is_empty()
        && !view
            .members
            .iter()
            .any(|m| !m.is_self && m.member.state == State::Alive)
    {
        let contacts: Vec<String> = join.iter().take(3).map(|a| a.to_string()).collect();
        reasons.push(format!(
            "alone in the mesh: no other member is alive (joining through {})",
            contacts.join(", ")
        ));
    }
    match periodic {
        Periodic::Off => {}
        Periodic::NotRunYet => reasons.push("the periodic checks have not run yet".into()),
        Periodic::Ran(run) if run.summary.failing + run.summary.erroring > 0 => {
            let s = &run.summary;
            let total = s.passing + s.failing + s.erroring;
            let mut line = format!(
                "{} of {total} periodic checks failing: {}",
                s.failing + s.erroring,
                s.failing_names
                    .iter()
                    .take(HEALTHZ_NAMES)
                    .map(|n| one_line(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let more = s.failing_names.len().saturating_sub(HEALTHZ_NAMES);
            if more > 0 {
                let _ = write!(line, " and {more} more");
            }
            reasons.push(line);
        }
        Periodic::Ran(_) => {}
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::base::NodeId;
    use crate::checks::run::Summary;
    use crate::mesh::member::{Member, MemberView, Peer, Tags};
    use crate::node::health::PeriodicRun;

    fn view(others: &[State], removed: bool) -> MeshView {
        let member = |n: u8, state: State| {
            let peer = Peer {
                id: NodeId([n; 16]),
                addr: SocketAddr::from(([127, 0, 0, n], 1)),
            };
            let mut m = Member::new(peer, 0, Tags::new(), Instant::now());
            m.state = state;
            MemberView {
                member: m,
                is_self: n == 1,
                last_heard_ago: None,
                state_for: Duration::ZERO,
            }
        };
        let mut members = vec![member(1, State::Alive)];
        for (i, s) in others.iter().enumerate() {
            members.push(member(i as u8 + 2, *s));
        }
        MeshView {
            members,
            local_health: 0,
            local_health_max: 8,
            removed,
        }
    }

    #[test]
    fn healthz_needs_a_mesh_when_told_to_join_and_passing_checks() {
        let seed = [SocketAddr::from(([127, 0, 0, 2], 1))];
        let ran = |summary: Summary| {
            Periodic::Ran(std::sync::Arc::new(PeriodicRun {
                summary,
                ..PeriodicRun::default()
            }))
        };
        let ok = ran(Summary {
            passing: 2,
            ..Summary::default()
        });
        assert_eq!(
            health_verdict(Some(&view(&[], false)), &Periodic::Off, &[], None),
            Ok(())
        );
        assert_eq!(
            health_verdict(Some(&view(&[State::Alive], false)), &ok, &seed, None),
            Ok(())
        );
        let alone = health_verdict(Some(&view(&[State::Dead], false)), &ok, &seed, None);
        assert!(
            alone
                .as_ref()
                .is_err_and(|e| e.starts_with("alone in the mesh")),
            "{alone:?}"
        );
        let removed = health_verdict(Some(&view(&[State::Alive], true)), &ok, &seed, None);
        assert!(removed.is_err_and(|e| e.starts_with("removed")));
        assert!(health_verdict(None, &ok, &[], None).is_err());
        let not_yet = health_verdict(Some(&view(&[], false)), &Periodic::NotRunYet, &[], None);
        assert!(not_yet.is_err_and(|e| e.contains("not run yet")));
        let failing = ran(Summary {
            passing: 1,
            failing: 4,
            erroring: 1,
            failing_names: ["a", "b\nc", "d", "e", "f"].map(String::from).to_vec(),
        });
        assert_eq!(
            health_verdict(Some(&view(&[State::Dead], false)), &failing, &seed, None),
            Err(
                "alone in the mesh: no other member is alive (joining through 127.0.0.2:1); \
                 5 of 6 periodic checks failing: a, b c, d and 2 more"
                    .into()
            )
        );
    }

    #[test]
    fn healthz_and_status_give_the_refusal_of_a_node_that_is_not_joined() {
        let seed = [SocketAddr::from(([127, 0, 0, 2], 1))];
        let refused = "peer 127.0.0.2:1 refused our certificate: it is not signed by that \
                       node's CA for env \"prod\" (different secret or CA)";
        assert_eq!(
            health_verdict(
                Some(&view(&[State::Dead], false)),
                &Periodic::Off,
                &seed,
                Some(refused)
            ),
            Err(format!("not joined: {refused}"))
        );
        // Refused by some, joined with others: healthy.
        assert_eq!(
            health_verdict(
                Some(&view(&[State::Alive], false)),
                &Periodic::Off,
                &seed,
                Some(refused)
            ),
            Ok(())
        );
        // `mesh status` says the same, and why when no contact answered at all.
        let alone = view(&[State::Dead], false);
        assert_eq!(
            not_joined(&alone, &seed, Some(refused)).as_deref(),
            Some(refused)
        );
        assert_eq!(
            not_joined(&alone, &seed, None).as_deref(),
            Some(
                "no other member is alive and no contact answered yet (joining through \
                 127.0.0.2:1)"
            )
        );
        assert_eq!(not_joined(&alone, &[], None), None);
        assert_eq!(
            not_joined(&view(&[State::Alive], false), &seed, Some(refused)),
            None
        );
        assert_eq!(not_joined(&view(&[], true), &seed, Some(refused)), None);
    }
}
