//! TAP version 13 (`--output tap`): one test point per host × check,
//! `ok N - HOST CHECK` or `not ok N - HOST CHECK`, a check still waiting for its host
//! marked `# SKIP`. A point that did not pass carries a YAML block (`---` … `...`) with
//! `severity` (`fail` or `error`), `message`, and the `found` and `expected` facts as
//! maps (`not: true` beside `expected` when the check wanted them not to hold). Strings
//! in the YAML are double-quoted JSON strings, which YAML reads as they are.

use std::fmt::Write as _;

use super::results::{Row, Rows, Verdict, detail};
use crate::checks::Facts;

/// `rows` as a TAP stream.
pub fn tap(rows: &Rows<'_>) -> String {
    let mut out = String::from("TAP version 13\n");
    let total: usize = rows.hosts.iter().map(|h| h.rows.len()).sum();
    let _ = writeln!(out, "1..{total}");
    let mut n = 0;
    for host in &rows.hosts {
        for row in &host.rows {
            n += 1;
            point(&mut out, n, host.host, row);
        }
    }
    out
}

fn point(out: &mut String, n: usize, host: &str, row: &Row<'_>) {
    let description = escape_description(&format!("{host} {}", row.check));
    let _ = match row.verdict {
        Verdict::Pass => writeln!(out, "ok {n} - {description}"),
        Verdict::Pending => writeln!(out, "ok {n} - {description} # SKIP no answer yet"),
        Verdict::Fail | Verdict::Error(_) => writeln!(out, "not ok {n} - {description}"),
    };
    let severity = match row.verdict {
        Verdict::Fail => "fail",
        Verdict::Error(_) => "error",
        Verdict::Pass | Verdict::Pending => return,
    };
    out.push_str("  ---\n");
    let _ = writeln!(out, "  severity: {severity}");
    let _ = writeln!(out, "  message: {}", quoted(&detail(row)));
    if let Some(o) = &row.observation {
        facts_block(out, "found", &o.found);
        facts_block(out, "expected", &o.expected);
        if o.negated && !o.expected.is_empty() {
            out.push_str("  not: true\n");
        }
    }
    out.push_str("  ...\n");
}

fn facts_block(out: &mut String, key: &str, facts: &Facts) {
    if facts.is_empty() {
        return;
    }
    let _ = writeln!(out, "  {key}:");
    for (name, value) in facts.iter() {
        let _ = writeln!(out, "    {}: {}", quoted(name), quoted(value));
    }
}

/// A YAML double-quoted scalar: JSON's string syntax, which YAML shares.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// A test point's description: `#` would start a directive, so it is escaped.
fn escape_description(text: &str) -> String {
    text.replace('\\', "\\\\").replace('#', "\\#")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Observation;
    use crate::cli::output::results::{HostRows, HostState};

    #[test]
    fn points_directives_and_diagnostics() {
        let rows = Rows {
            hosts: vec![HostRows {
                host: "h:1",
                state: HostState::Answered { took_ms: None },
                rows: vec![
                    Row {
                        check: "ok#1",
                        verdict: Verdict::Pass,
                        observation: None,
                    },
                    Row {
                        check: "mode",
                        verdict: Verdict::Fail,
                        observation: Some(Observation {
                            found: Facts::new().with("mode", "0644"),
                            expected: Facts::new().with("mode", "0600"),
                            negated: false,
                        }),
                    },
                    Row {
                        check: "wait",
                        verdict: Verdict::Pending,
                        observation: None,
                    },
                ],
            }],
            at_unix_ms: None,
        };
        assert_eq!(
            tap(&rows),
            "TAP version 13\n1..3\nok 1 - h:1 ok\\#1\nnot ok 2 - h:1 mode\n  ---\n  severity: fail\n  \
             message: \"found mode=0644; expected mode=0600\"\n  found:\n    \"mode\": \"0644\"\n  \
             expected:\n    \"mode\": \"0600\"\n  ...\nok 3 - h:1 wait # SKIP no answer yet\n"
        );
    }
}
