//! `ctl health` as text: every host's periodic checks as the asked node gathered them, as
//! seed-style `Host:… Check:… Success:…` lines (each check that did not pass followed by
//! indented `found:` and `expected:` lines; with `-v` every check). The JSON document and
//! the counts that decide the exit code are [`crate::node::health_json`]'s, shared with
//! the node's `GET /v1/health`.

use std::fmt::Write as _;

use crate::checks::Outcome;
use crate::mesh::member::HealthSummary;
use crate::node::health_json::health_counts;
use crate::rpc::protocol::{HealthReport, HostChecks, PeriodicChecks};

/// A one-line summary of a gossiped health summary: `1 passing, 2 failing (a,b), 0 erroring`.
fn summary_words(h: &HealthSummary) -> String {
    format!(
        "{} passing, {} failing, {} erroring{}",
        h.passing,
        h.failing,
        h.erroring,
        names_in_parens(h)
    )
}

/// `ctl health`: `Host:… Check:… Success:…` lines (seed style) with what the checks that
/// did not pass found and expected (with `verbose`, what every check found), host lines,
/// a summary.
pub(super) fn health_text(r: &HealthReport, verbose: bool) -> String {
    let mut out = String::new();
    for h in &r.hosts {
        let host = &h.addr;
        match &h.checks {
            HostChecks::Answered(ran @ PeriodicChecks::Ran { results, .. }) => {
                for (name, o) in results {
                    match o {
                        Outcome::Success(b) => {
                            let _ = writeln!(out, "Host:{host} Check:{name} Success:{b}");
                        }
                        Outcome::Error(e) => {
                            let _ = writeln!(out, "Host:{host} Check:{name} Error:{e}");
                        }
                    }
                    if verbose || !o.passed() {
                        super::text::detail_lines(&mut out, ran.observation(name));
                    }
                }
            }
            HostChecks::Answered(PeriodicChecks::Off) if !r.failing_only => {
                let _ = writeln!(out, "Host:{host} Health:no periodic checks");
            }
            HostChecks::Answered(PeriodicChecks::Off) => {}
            HostChecks::Answered(PeriodicChecks::NotRunYet) => {
                let _ = writeln!(out, "Host:{host} Health:not run yet");
            }
            HostChecks::NotAsked => {}
            HostChecks::Unavailable(why) => {
                let last = match &h.summary {
                    Some(s) => format!("; last gossiped: {}", summary_words(s)),
                    None => String::new(),
                };
                let _ = writeln!(out, "Host:{host} Error:{why}{last}");
            }
        }
    }
    let c = health_counts(r);
    let _ = write!(
        out,
        "Hosts: {} known, {} answered, {} unavailable",
        c.hosts, c.answered, c.unavailable
    );
    if c.not_asked > 0 {
        let _ = write!(out, ", {} not asked (passing)", c.not_asked);
    }
    let _ = writeln!(
        out,
        "; checks: {} passing, {} failing, {} erroring",
        c.checks_passing, c.checks_failing, c.checks_erroring
    );
    out
}

/// ` (disk,dns +3 more)`: the failing then erroring check names a summary carries and
/// how many it left out; empty when it names none.
pub(super) fn names_in_parens(h: &HealthSummary) -> String {
    let names: Vec<&str> = h.names().collect();
    match (names.is_empty(), h.names_omitted) {
        (true, 0) => String::new(),
        (true, more) => format!(" ({more} not named)"),
        (false, 0) => format!(" ({})", names.join(",")),
        (false, more) => format!(" ({} +{more} more)", names.join(",")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::base::NodeId;
    use crate::checks::{Facts, Observation};
    use crate::mesh::member::State;
    use crate::rpc::protocol::HostHealth;

    fn report() -> HealthReport {
        let mode = |m: &str| Facts::new().with("mode", m);
        let results: BTreeMap<String, Outcome> = [
            ("hosts_mode".to_string(), Outcome::Success(false)),
            ("root".to_string(), Outcome::Success(true)),
        ]
        .into();
        let observations: BTreeMap<String, Observation> = [
            (
                "hosts_mode".to_string(),
                Observation {
                    found: mode("0644"),
                    expected: mode("0600"),
                    negated: false,
                },
            ),
            (
                "root".to_string(),
                Observation {
                    found: Facts::new().with("exists", "true"),
                    ..Observation::default()
                },
            ),
        ]
        .into();
        HealthReport {
            gathered_by: "127.0.0.1:30035".into(),
            failing_only: false,
            hosts: vec![HostHealth {
                addr: "127.0.0.1:30035".into(),
                node_id: NodeId([1; 16]),
                state: State::Alive,
                summary: None,
                checks: HostChecks::Answered(PeriodicChecks::Ran {
                    at_unix_ms: 1,
                    took_ms: 2,
                    results,
                    observations,
                }),
            }],
        }
    }

    #[test]
    fn a_failing_check_shows_what_it_found_and_expected_and_v_shows_every_found() {
        assert_eq!(
            health_text(&report(), false),
            "Host:127.0.0.1:30035 Check:hosts_mode Success:false\n\
             \x20   found: mode=0644\n\
             \x20   expected: mode=0600\n\
             Host:127.0.0.1:30035 Check:root Success:true\n\
             Hosts: 1 known, 1 answered, 0 unavailable; checks: 1 passing, 1 failing, 0 erroring\n"
        );
        let verbose = health_text(&report(), true);
        assert!(
            verbose.contains("Check:root Success:true\n    found: exists=true\n"),
            "{verbose}"
        );
    }
}
