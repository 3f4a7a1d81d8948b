//! Check results as rows, whatever produced them: an operation's report (`ctl get`,
//! `operation --wait`), a refresh (`refresh --wait`) or a local run (`checks run`). The
//! monitoring formats (jsonl, junit, tap, nagios, prometheus) and the exit codes read
//! these rows, so each format is written once for every command.
//!
//! A refresh knows each host's periodic checks only as counts and failing names, so it
//! becomes one row per host, `periodic_checks`, whose `found` says the counts.

use crate::checks::{CheckResult, Facts, Observation, Outcome};
use crate::rpc::protocol::{HostReport, OperationReport};

use super::{LocalRun, RefreshResult, hosts_sorted};

/// The name of a refresh's one row per host.
pub const PERIODIC_CHECKS_ROW: &str = "periodic_checks";

/// What became of one check on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The check held.
    Pass,
    /// The check ran and did not hold.
    Fail,
    /// The check could not decide, or its host did not answer: why.
    Error(String),
    /// No answer yet (the operation still runs).
    Pending,
}

/// One check on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row<'a> {
    pub check: &'a str,
    pub verdict: Verdict,
    /// What the check found and expected, when it says.
    pub observation: Option<Observation>,
}

/// How a host took part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostState {
    /// It answered (its checks ran), in `took_ms` when known.
    Answered { took_ms: Option<u64> },
    /// It gave no usable answer; every row is an error.
    Unreachable,
    /// No answer yet.
    Pending,
}

/// One host's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRows<'a> {
    pub host: &'a str,
    pub state: HostState,
    pub rows: Vec<Row<'a>>,
}

/// Every host's rows, hosts sorted by address, rows by check name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rows<'a> {
    pub hosts: Vec<HostRows<'a>>,
    /// When the results were taken (Unix ms), for the formats that stamp them.
    pub at_unix_ms: Option<u64>,
}

/// Counts over [`Rows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub hosts: usize,
    pub hosts_unreachable: usize,
    pub hosts_pending: usize,
    pub passed: usize,
    pub failed: usize,
    pub errored: usize,
    pub pending: usize,
}

impl Counts {
    /// Every row.
    pub fn checks(&self) -> usize {
        self.passed + self.failed + self.errored + self.pending
    }

    /// Something was checked, and everything passed.
    pub fn all_passed(&self) -> bool {
        self.hosts > 0 && self.passed == self.checks()
    }
}

impl<'a> Rows<'a> {
    /// The rows of an operation's report; an unreachable host gets an error row per check.
    pub fn of_operation(rec: &'a OperationReport) -> Rows<'a> {
        let hosts = hosts_sorted(rec)
            .into_iter()
            .map(|(host, r)| host_rows(rec, host, r))
            .collect();
        Rows {
            hosts,
            at_unix_ms: rec.ended_unix_ms,
        }
    }

    /// The rows of a local run: one host.
    pub fn of_local(run: &'a LocalRun) -> Rows<'a> {
        Rows {
            hosts: vec![HostRows {
                host: &run.host,
                state: HostState::Answered {
                    took_ms: Some(run.took_ms),
                },
                rows: run
                    .results
                    .iter()
                    .map(|(name, r)| result_row(name, r))
                    .collect(),
            }],
            at_unix_ms: Some(run.at_unix_ms),
        }
    }

    /// The rows of a refresh: one `periodic_checks` row per alive host.
    pub fn of_refresh(r: &'a RefreshResult) -> Rows<'a> {
        let hosts = r
            .hosts
            .iter()
            .map(|(host, summary)| {
                let verdict = match summary {
                    None => Verdict::Error("no new health summary arrived".into()),
                    Some(h) if h.failing > 0 => Verdict::Fail,
                    Some(h) if h.erroring > 0 => Verdict::Error(format!(
                        "{} periodic check(s) could not decide: {}",
                        h.erroring,
                        h.failing_names.join(", ")
                    )),
                    Some(_) => Verdict::Pass,
                };
                HostRows {
                    host,
                    state: match summary {
                        Some(_) => HostState::Answered { took_ms: None },
                        None => HostState::Unreachable,
                    },
                    rows: vec![Row {
                        check: PERIODIC_CHECKS_ROW,
                        verdict,
                        observation: summary.as_ref().map(periodic_observation),
                    }],
                }
            })
            .collect();
        Rows {
            hosts,
            at_unix_ms: None,
        }
    }

    /// Counts of hosts and rows by kind.
    pub fn counts(&self) -> Counts {
        let mut c = Counts {
            hosts: self.hosts.len(),
            ..Counts::default()
        };
        for h in &self.hosts {
            match h.state {
                HostState::Unreachable => c.hosts_unreachable += 1,
                HostState::Pending => c.hosts_pending += 1,
                HostState::Answered { .. } => {}
            }
            for row in &h.rows {
                match row.verdict {
                    Verdict::Pass => c.passed += 1,
                    Verdict::Fail => c.failed += 1,
                    Verdict::Error(_) => c.errored += 1,
                    Verdict::Pending => c.pending += 1,
                }
            }
        }
        c
    }
}

fn host_rows<'a>(rec: &'a OperationReport, host: &'a str, r: &'a HostReport) -> HostRows<'a> {
    let mut names: Vec<&str> = rec.check_names.iter().map(String::as_str).collect();
    names.sort_unstable();
    match r {
        HostReport::Pending => HostRows {
            host,
            state: HostState::Pending,
            rows: names
                .into_iter()
                .map(|check| Row {
                    check,
                    verdict: Verdict::Pending,
                    observation: None,
                })
                .collect(),
        },
        HostReport::Failed(e) => HostRows {
            host,
            state: HostState::Unreachable,
            rows: names
                .into_iter()
                .map(|check| Row {
                    check,
                    verdict: Verdict::Error(e.clone()),
                    observation: None,
                })
                .collect(),
        },
        HostReport::Answered {
            results,
            took_ms,
            observations,
        } => HostRows {
            host,
            state: HostState::Answered {
                took_ms: Some(*took_ms),
            },
            rows: results
                .iter()
                .map(|(check, outcome)| Row {
                    check,
                    verdict: verdict(outcome),
                    observation: observations.get(check).cloned(),
                })
                .collect(),
        },
    }
}

fn result_row<'a>(name: &'a str, r: &'a CheckResult) -> Row<'a> {
    Row {
        check: name,
        verdict: verdict(&r.outcome),
        observation: Some(r.observation.clone()).filter(|o| !o.is_empty()),
    }
}

fn verdict(o: &Outcome) -> Verdict {
    match o {
        Outcome::Success(true) => Verdict::Pass,
        Outcome::Success(false) => Verdict::Fail,
        Outcome::Error(e) => Verdict::Error(e.clone()),
    }
}

/// What a refresh's `periodic_checks` row found: the counts and the failing names.
pub fn periodic_observation(h: &crate::mesh::member::HealthSummary) -> Observation {
    let mut found = Facts::new()
        .with("passing", h.passing.to_string())
        .with("failing", h.failing.to_string())
        .with("erroring", h.erroring.to_string());
    if !h.failing_names.is_empty() {
        found = found.with("failing_names", h.failing_names.join(","));
    }
    let expected = if h.failing + h.erroring > 0 {
        Facts::new().with("failing", "0").with("erroring", "0")
    } else {
        Facts::new()
    };
    Observation {
        found,
        expected,
        negated: false,
    }
}

/// One line of facts: `mode=0644 owner=root`; a value with spaces, quotes, `=` or
/// nothing in it is quoted JSON-style (`stdout="hello world"`).
pub fn facts_line(facts: &Facts) -> String {
    facts
        .iter()
        .map(|(name, value)| format!("{name}={}", quote(value)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '=' || c == '\\' || c.is_control());
    if plain {
        value.to_string()
    } else {
        serde_json::to_string(value).unwrap_or_default()
    }
}

/// What was expected, as one line: `mode=0600`, or `not (exists=true)` when the check
/// wanted it not to hold. `None` when nothing was expected.
pub fn expected_line(o: &Observation) -> Option<String> {
    if o.expected.is_empty() {
        return None;
    }
    let line = facts_line(&o.expected);
    Some(if o.negated {
        format!("not ({line})")
    } else {
        line
    })
}

/// A row's detail in one sentence, for the formats that show one message per check:
/// `found mode=0644 owner=root; expected mode=0600`, or for an error the reason and
/// what was expected.
pub fn detail(row: &Row<'_>) -> String {
    let mut parts = Vec::new();
    match &row.verdict {
        Verdict::Error(e) => parts.push(e.clone()),
        Verdict::Pending => parts.push("no answer yet".into()),
        Verdict::Pass | Verdict::Fail => {}
    }
    if let Some(o) = &row.observation {
        if !o.found.is_empty() {
            parts.push(format!("found {}", facts_line(&o.found)));
        }
        if let Some(e) = expected_line(o) {
            parts.push(format!("expected {e}"));
        }
    }
    if parts.is_empty() && row.verdict == Verdict::Fail {
        parts.push("the check did not hold".into());
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_lines_quote_what_needs_it() {
        let f = Facts::new()
            .with("mode", "0644")
            .with("stdout", "hello world")
            .with("empty", "")
            .with("q", "a\"b");
        assert_eq!(
            facts_line(&f),
            r#"mode=0644 stdout="hello world" empty="" q="a\"b""#
        );
        let o = Observation {
            found: Facts::new().with("exists", "true"),
            expected: Facts::new().with("exists", "true"),
            negated: true,
        };
        assert_eq!(expected_line(&o).as_deref(), Some("not (exists=true)"));
        let row = Row {
            check: "virus",
            verdict: Verdict::Fail,
            observation: Some(o),
        };
        assert_eq!(
            detail(&row),
            "found exists=true; expected not (exists=true)"
        );
        let bare = Row {
            check: "x",
            verdict: Verdict::Error("stat /x: gone".into()),
            observation: None,
        };
        assert_eq!(detail(&bare), "stat /x: gone");
    }
}
