//! Prometheus text exposition (`--output prometheus`), for node_exporter's textfile
//! collector: a gauge per host × check, `werify_check_result{host="…",check="…"}`, 1
//! when the check passed, 0 when it failed, -1 when it could not decide or its host did
//! not answer (checks still pending have no sample); and, when the results say when
//! they were taken, `werify_check_results_timestamp_seconds`. No sample carries a
//! timestamp of its own (the textfile collector refuses them). Label values are escaped
//! as the format requires (`\\`, `\"`, `\n`).

use std::fmt::Write as _;

use super::results::{Rows, Verdict};

/// `rows` as Prometheus text exposition.
pub fn prometheus(rows: &Rows<'_>) -> String {
    let mut out = String::new();
    out.push_str(
        "# HELP werify_check_result Result of a werify check on a host: 1 passed, 0 failed, -1 could not decide or the host did not answer.\n\
         # TYPE werify_check_result gauge\n",
    );
    for host in &rows.hosts {
        for row in &host.rows {
            let value = match row.verdict {
                Verdict::Pass => 1,
                Verdict::Fail => 0,
                Verdict::Error(_) => -1,
                Verdict::Pending => continue,
            };
            let _ = writeln!(
                out,
                "werify_check_result{{host=\"{}\",check=\"{}\"}} {value}",
                label(host.host),
                label(row.check)
            );
        }
    }
    if let Some(at) = rows.at_unix_ms {
        out.push_str(
            "# HELP werify_check_results_timestamp_seconds When these check results were taken (Unix time).\n\
             # TYPE werify_check_results_timestamp_seconds gauge\n",
        );
        let _ = writeln!(
            out,
            "werify_check_results_timestamp_seconds {}.{:03}",
            at / 1000,
            at % 1000
        );
    }
    out
}

/// A label value escaped for the text format.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::output::results::{HostRows, HostState, Row};

    #[test]
    fn gauges_per_host_and_check_with_escaped_labels() {
        let rows = Rows {
            hosts: vec![HostRows {
                host: "10.0.0.1:30035",
                state: HostState::Answered { took_ms: None },
                rows: vec![
                    Row {
                        check: "a\"b\\c",
                        verdict: Verdict::Pass,
                        observation: None,
                    },
                    Row {
                        check: "f",
                        verdict: Verdict::Fail,
                        observation: None,
                    },
                    Row {
                        check: "e",
                        verdict: Verdict::Error("x".into()),
                        observation: None,
                    },
                    Row {
                        check: "p",
                        verdict: Verdict::Pending,
                        observation: None,
                    },
                ],
            }],
            at_unix_ms: Some(1_700_000_000_123),
        };
        let text = prometheus(&rows);
        assert!(
            text.contains(r#"werify_check_result{host="10.0.0.1:30035",check="a\"b\\c"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"werify_check_result{host="10.0.0.1:30035",check="f"} 0"#));
        assert!(text.contains(r#"werify_check_result{host="10.0.0.1:30035",check="e"} -1"#));
        assert!(!text.contains(r#"check="p""#));
        assert!(text.contains("werify_check_results_timestamp_seconds 1700000000.123\n"));
    }
}
