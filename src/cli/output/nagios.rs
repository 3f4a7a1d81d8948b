//! Nagios/Icinga plugin output (`--output nagios`): one status line with performance
//! data, then one line per check that did not pass, and the plugin exit code.
//!
//! | status | exit | when |
//! |---|---|---|
//! | OK | 0 | every targeted host answered and every check passed |
//! | WARNING | 1 | no check failed, but a check could not decide (an error), a host did not answer, or an answer is still pending |
//! | CRITICAL | 2 | a check failed (ran and did not hold) |
//! | UNKNOWN | 3 | werify could not get results: a usage, input or connection error, a node refusing the request, or nothing was checked |
//!
//! So CRITICAL means "the host is not as the checks say", WARNING "werify could not
//! tell everywhere". Example:
//! `WERIFY CRITICAL - 1 of 6 checks failed on 1 of 3 hosts | passed=5;;;0;6 failed=1;;;0;6 errored=0;;;0;6 unreachable=0;;;0;3`

use std::fmt::Write as _;

use super::results::{Counts, Rows, Verdict, detail};

/// A plugin status, with its exit code as the discriminant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Status {
    /// The plugin exit code.
    pub fn exit_code(self) -> u8 {
        self as u8
    }

    fn word(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// The status results with these counts mean.
pub fn status(c: &Counts) -> Status {
    if c.hosts == 0 || c.checks() == 0 {
        Status::Unknown
    } else if c.failed > 0 {
        Status::Critical
    } else if c.errored > 0 || c.pending > 0 || c.hosts_unreachable > 0 || c.hosts_pending > 0 {
        Status::Warning
    } else {
        Status::Ok
    }
}

/// `rows` as plugin output.
pub fn nagios(rows: &Rows<'_>) -> String {
    let c = rows.counts();
    let st = status(&c);
    let total = c.checks();
    let summary = match st {
        Status::Unknown => "nothing was checked (no hosts or no checks)".to_string(),
        Status::Ok => format!("{total} checks passed on {} hosts", c.hosts),
        Status::Critical => format!(
            "{} of {total} checks failed on {} of {} hosts",
            c.failed,
            hosts_with(rows, |v| *v == Verdict::Fail),
            c.hosts
        ),
        Status::Warning => {
            let mut parts = Vec::new();
            if c.errored > 0 {
                parts.push(format!("{} of {total} checks could not decide", c.errored));
            }
            if c.hosts_unreachable > 0 {
                parts.push(format!(
                    "{} of {} hosts did not answer",
                    c.hosts_unreachable, c.hosts
                ));
            }
            if c.pending > 0 {
                parts.push(format!("{} checks are still pending", c.pending));
            }
            parts.join(", ")
        }
    };
    let mut out = format!(
        "WERIFY {} - {summary} | passed={};;;0;{total} failed={};;;0;{total} errored={};;;0;{total} unreachable={};;;0;{}\n",
        st.word(),
        c.passed,
        c.failed,
        c.errored,
        c.hosts_unreachable,
        c.hosts
    );
    for host in &rows.hosts {
        for row in &host.rows {
            let word = match row.verdict {
                Verdict::Pass => continue,
                Verdict::Fail => "failed",
                Verdict::Error(_) => "error",
                Verdict::Pending => "pending",
            };
            // `|` would start performance data in the long output.
            let line = format!("{} {} {word}: {}", host.host, row.check, detail(row));
            let _ = writeln!(out, "{}", line.replace('|', "/"));
        }
    }
    out
}

/// Plugin output for a run that got no results: `WERIFY UNKNOWN - MESSAGE`.
pub fn unknown(message: &str) -> String {
    format!(
        "WERIFY UNKNOWN - {}\n",
        message.replace('|', "/").lines().next().unwrap_or("")
    )
}

fn hosts_with(rows: &Rows<'_>, f: impl Fn(&Verdict) -> bool) -> usize {
    rows.hosts
        .iter()
        .filter(|h| h.rows.iter().any(|r| f(&r.verdict)))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_critical_errors_warnings() {
        let c = |passed, failed, errored, hosts_unreachable| Counts {
            hosts: 2,
            hosts_unreachable,
            passed,
            failed,
            errored,
            ..Counts::default()
        };
        assert_eq!(status(&c(3, 0, 0, 0)), Status::Ok);
        assert_eq!(status(&c(2, 1, 0, 0)), Status::Critical);
        assert_eq!(status(&c(2, 1, 1, 1)), Status::Critical);
        assert_eq!(status(&c(2, 0, 1, 0)), Status::Warning);
        assert_eq!(status(&c(2, 0, 1, 1)), Status::Warning);
        assert_eq!(status(&Counts::default()), Status::Unknown);
        assert_eq!(Status::Critical.exit_code(), 2);
        assert_eq!(
            unknown("no answer | x\nmore"),
            "WERIFY UNKNOWN - no answer / x\n"
        );
    }
}
