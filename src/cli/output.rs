//! How results look, in every `--output` format: the original tool's text lines
//! (`Active hosts (N)`, `Host:… Operation:… Success:…`, `Operation ended, took …`), the
//! `mesh status` table, summaries, and the JSON documents. A command hands its result to
//! [`render`] as a [`CommandOutput`]; the choice of format is made there and nowhere else.
//! Nothing here talks to the network.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

use crate::checks::Outcome;
use crate::mesh::member::{HealthSummary, State};
use crate::rpc::protocol::{HostReport, OperationReport};
use crate::rpc::protocol::{MemberReport, StatusReport};

/// How results are printed (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Lines for people, as the original tool printed them.
    Text,
    /// One JSON document per command.
    Json,
}

/// What one command has to show.
#[derive(Debug, Clone, Copy)]
pub enum CommandOutput<'a> {
    /// `ctl add`.
    Added { host: &'a str },
    /// `ctl del`.
    Removed { host: &'a str },
    /// `ctl list`, `listactive`, `listinactive`.
    List {
        report: &'a StatusReport,
        active: bool,
        inactive: bool,
    },
    /// `ctl operation` without `--wait`: the handle, and the command that shows results.
    Submitted {
        handle: &'a str,
        coordinator: SocketAddr,
        targeted: usize,
        get_command: &'a str,
    },
    /// `ctl get`, and `operation --wait`.
    Operation(&'a OperationReport),
    /// `ctl refresh` without `--wait`.
    RefreshStarted { refresh_id: u64, targeted: usize },
    /// `ctl refresh --wait`.
    Refreshed(&'a RefreshResult),
    /// `mesh status`.
    Status(&'a StatusReport),
}

/// What `refresh --wait` collected: each alive host's summary of this refresh, if it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshResult {
    pub refresh_id: u64,
    /// Every alive host reported before the wait ended.
    pub complete: bool,
    pub hosts: Vec<(String, Option<HealthSummary>)>,
}

impl RefreshResult {
    /// Every alive host reported, and no check fails or errors anywhere.
    pub fn all_passed(&self) -> bool {
        self.complete
            && self.hosts.iter().all(|(_, h)| {
                h.as_ref()
                    .is_some_and(|h| h.failing == 0 && h.erroring == 0)
            })
    }
}

/// `out` in `format`, ending in a newline.
pub fn render(format: OutputFormat, out: &CommandOutput<'_>) -> String {
    match format {
        OutputFormat::Text => text(out),
        OutputFormat::Json => {
            let mut s = serde_json::to_string_pretty(&json(out)).unwrap_or_else(|_| "null".into());
            s.push('\n');
            s
        }
    }
}

/// The last line of batch mode, the original tool's, in every format (it is not a
/// command's result).
pub fn batch_end(processed: usize) -> String {
    format!("Commands processed: {processed}\n")
}

fn text(out: &CommandOutput<'_>) -> String {
    match *out {
        CommandOutput::Added { host } => format!("Added host {host}\n"),
        CommandOutput::Removed { host } => format!("Removed host {host}\n"),
        CommandOutput::List {
            report,
            active,
            inactive,
        } => list_text(report, active, inactive),
        CommandOutput::Submitted { get_command, .. } => {
            format!("Operation submitted. To check progress, run: {get_command}\n")
        }
        CommandOutput::Operation(rec) => operation_text(rec),
        CommandOutput::RefreshStarted { .. } => "Initiated refresh\n".into(),
        CommandOutput::Refreshed(r) => refresh_text(r),
        CommandOutput::Status(report) => status_text(report),
    }
}

fn json(out: &CommandOutput<'_>) -> Value {
    match *out {
        CommandOutput::Added { host } => json!({"added": host}),
        CommandOutput::Removed { host } => json!({"removed": host}),
        CommandOutput::List {
            report,
            active,
            inactive,
        } => list_json(report, active, inactive),
        CommandOutput::Submitted {
            handle,
            coordinator,
            targeted,
            ..
        } => json!({
            "handle": handle,
            "coordinator": coordinator.to_string(),
            "targeted": targeted,
        }),
        CommandOutput::Operation(rec) => operation_json(rec),
        CommandOutput::RefreshStarted {
            refresh_id,
            targeted,
        } => json!({"refresh_id": refresh_id, "targeted": targeted}),
        CommandOutput::Refreshed(r) => json!({
            "refresh_id": r.refresh_id,
            "complete": r.complete,
            "hosts": r.hosts.iter().map(|(a, h)| json!({"host": a, "health": h})).collect::<Vec<_>>(),
        }),
        CommandOutput::Status(report) => status_json(report),
    }
}

/// `refresh --wait` as text.
fn refresh_text(r: &RefreshResult) -> String {
    let mut out = String::from("Initiated refresh\n");
    for (addr, h) in &r.hosts {
        match h {
            Some(h) => {
                let _ = write!(
                    out,
                    "Host:{addr} Health: {} passing, {} failing, {} erroring",
                    h.passing, h.failing, h.erroring
                );
                if !h.failing_names.is_empty() {
                    let _ = write!(out, " ({})", h.failing_names.join(", "));
                }
                out.push('\n');
            }
            None => {
                let _ = writeln!(out, "Host:{addr} Error:no new health summary arrived");
            }
        }
    }
    let reported = r.hosts.iter().filter(|(_, h)| h.is_some()).count();
    let _ = writeln!(
        out,
        "Refresh complete: {reported} of {} alive hosts reported",
        r.hosts.len()
    );
    out
}

/// `mesh status` as JSON; the node's `GET /v1/status` answers the same document.
pub use crate::node::status::status_json;

fn sort_key(addr: &str) -> (Option<SocketAddr>, String) {
    (addr.parse().ok(), addr.to_string())
}

/// Active (alive) and inactive (suspect or dead) members, sorted by address.
pub fn partition_hosts(report: &StatusReport) -> (Vec<String>, Vec<String>) {
    let mut active = Vec::new();
    let mut inactive = Vec::new();
    for m in &report.members {
        match m.state {
            State::Alive => active.push(m.addr.clone()),
            State::Suspect | State::Dead => inactive.push(m.addr.clone()),
            State::Left => {}
        }
    }
    active.sort_by_key(|a| sort_key(a));
    inactive.sort_by_key(|a| sort_key(a));
    (active, inactive)
}

/// `list` / `listactive` / `listinactive`, the original tool's lines.
fn list_text(report: &StatusReport, show_active: bool, show_inactive: bool) -> String {
    let (active, inactive) = partition_hosts(report);
    let mut out = String::new();
    if show_active {
        let _ = writeln!(out, "Active hosts ({})", active.len());
        for a in &active {
            let _ = writeln!(out, "{a}");
        }
    }
    if show_inactive {
        let _ = writeln!(out, "Inactive hosts ({})", inactive.len());
        for a in &inactive {
            let _ = writeln!(out, "{a}");
        }
    }
    out.push_str("End of list\n");
    out
}

/// `list` as JSON.
fn list_json(report: &StatusReport, show_active: bool, show_inactive: bool) -> Value {
    let (active, inactive) = partition_hosts(report);
    let mut v = serde_json::Map::new();
    if show_active {
        v.insert("active".into(), json!(active));
    }
    if show_inactive {
        v.insert("inactive".into(), json!(inactive));
    }
    Value::Object(v)
}

/// Counts over an operation's results.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct OperationSummary {
    pub hosts_targeted: usize,
    pub hosts_answered: usize,
    pub hosts_unreachable: usize,
    pub hosts_pending: usize,
    pub checks_passed: usize,
    pub checks_failed: usize,
    pub checks_errored: usize,
}

impl OperationSummary {
    /// Every targeted host answered and every check passed.
    pub fn all_passed(&self) -> bool {
        self.hosts_answered == self.hosts_targeted
            && self.checks_failed == 0
            && self.checks_errored == 0
    }
}

/// Counts for `rec`.
pub fn summarize(rec: &OperationReport) -> OperationSummary {
    let mut s = OperationSummary {
        hosts_targeted: rec.hosts.len(),
        ..Default::default()
    };
    for r in rec.hosts.values() {
        match r {
            HostReport::Pending => s.hosts_pending += 1,
            HostReport::Failed(_) => {
                s.hosts_unreachable += 1;
                s.checks_errored += rec.check_names.len();
            }
            HostReport::Answered { results, .. } => {
                s.hosts_answered += 1;
                for o in results.values() {
                    match o {
                        Outcome::Success(true) => s.checks_passed += 1,
                        Outcome::Success(false) => s.checks_failed += 1,
                        Outcome::Error(_) => s.checks_errored += 1,
                    }
                }
            }
        }
    }
    s
}

fn hosts_sorted(rec: &OperationReport) -> Vec<(&String, &HostReport)> {
    let mut hosts: Vec<_> = rec.hosts.iter().collect();
    hosts.sort_by_key(|(a, _)| sort_key(a));
    hosts
}

/// `get`: the original tool's lines, then a summary line.
fn operation_text(rec: &OperationReport) -> String {
    let mut out = String::new();
    for (host, r) in hosts_sorted(rec) {
        match r {
            HostReport::Pending => {}
            HostReport::Failed(e) => {
                let mut names = rec.check_names.clone();
                names.sort();
                for name in names {
                    let _ = writeln!(out, "Host:{host} Operation:{name} Error:{e}");
                }
            }
            HostReport::Answered { results, .. } => {
                for (name, o) in results {
                    match o {
                        Outcome::Success(b) => {
                            let _ = writeln!(out, "Host:{host} Operation:{name} Success:{b}");
                        }
                        Outcome::Error(e) => {
                            let _ = writeln!(out, "Host:{host} Operation:{name} Error:{e}");
                        }
                    }
                }
            }
        }
    }
    match rec.ended_unix_ms {
        Some(end) => {
            let took = Duration::from_millis(end.saturating_sub(rec.submitted_unix_ms));
            let _ = writeln!(out, "Operation ended, took {}", go_duration(took));
        }
        None => out.push_str("Operation still running...\n"),
    }
    let s = summarize(rec);
    let _ = write!(
        out,
        "Hosts: {} targeted, {} answered, {} unreachable",
        s.hosts_targeted, s.hosts_answered, s.hosts_unreachable
    );
    if s.hosts_pending > 0 {
        let _ = write!(out, ", {} pending", s.hosts_pending);
    }
    let _ = writeln!(
        out,
        "; checks: {} passed, {} failed, {} errored",
        s.checks_passed, s.checks_failed, s.checks_errored
    );
    out
}

/// `get` as JSON.
fn operation_json(rec: &OperationReport) -> Value {
    let mut hosts = Vec::new();
    for (host, r) in hosts_sorted(rec) {
        let (status, checks, error, took_ms) = match r {
            HostReport::Pending => ("pending", Value::Null, Value::Null, Value::Null),
            HostReport::Failed(e) => ("unreachable", Value::Null, json!(e), Value::Null),
            HostReport::Answered { results, took_ms } => {
                let checks: serde_json::Map<String, Value> = results
                    .iter()
                    .map(|(n, o)| {
                        let v = match o {
                            Outcome::Success(b) => json!({"success": b}),
                            Outcome::Error(e) => json!({"error": e}),
                        };
                        (n.clone(), v)
                    })
                    .collect();
                (
                    "answered",
                    Value::Object(checks),
                    Value::Null,
                    json!(took_ms),
                )
            }
        };
        hosts.push(json!({"host": host, "status": status, "checks": checks, "error": error, "took_ms": took_ms}));
    }
    json!({
        "handle": rec.handle.to_string(),
        "coordinator": rec.coordinator,
        "submitted_unix_ms": rec.submitted_unix_ms,
        "ended_unix_ms": rec.ended_unix_ms,
        "took_ms": rec.ended_unix_ms.map(|e| e.saturating_sub(rec.submitted_unix_ms)),
        "running": rec.ended_unix_ms.is_none(),
        "checks": rec.check_names,
        "hosts": hosts,
        "summary": summarize(rec),
    })
}

/// A duration the way Go prints `time.Duration` (the original tool's `took` format):
/// `406.97µs`, `13.22664ms`, `1m0.004510389s`, `0s`.
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    fn frac(value: u128, unit: u128) -> String {
        let whole = value / unit;
        let rest = value % unit;
        if rest == 0 {
            return whole.to_string();
        }
        let width = unit.to_string().len() - 1;
        let digits = format!("{rest:0width$}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", frac(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", frac(nanos, 1_000_000));
    }
    let total_secs = nanos / 1_000_000_000;
    let sub = nanos % 1_000_000_000;
    let (h, m, s) = (total_secs / 3600, (total_secs / 60) % 60, total_secs % 60);
    let secs = frac(s * 1_000_000_000 + sub, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{secs}s"),
        (0, m) => format!("{m}m{secs}s"),
        (h, m) => format!("{h}h{m}m{secs}s"),
    }
}

fn ago(d: Option<Duration>) -> String {
    match d {
        None => "-".into(),
        Some(d) if d < Duration::from_secs(1) => format!("{}ms", d.as_millis()),
        Some(d) if d < Duration::from_secs(120) => format!("{:.1}s", d.as_secs_f64()),
        Some(d) => format!("{}m", d.as_secs() / 60),
    }
}

fn rtt(d: Option<Duration>) -> String {
    match d {
        None => "-".into(),
        Some(d) if d < Duration::from_millis(1) => format!("{}µs", d.as_micros()),
        Some(d) => format!("{:.1}ms", d.as_secs_f64() * 1000.0),
    }
}

fn health_cell(m: &MemberReport) -> String {
    match &m.health {
        None => "-".into(),
        Some(h) if h.passing + h.failing + h.erroring == 0 => "no checks".into(),
        Some(h) if h.failing == 0 && h.erroring == 0 => format!("ok {}/{}", h.passing, h.passing),
        Some(h) => {
            let mut s = format!(
                "{} failing, {} erroring of {}",
                h.failing,
                h.erroring,
                h.passing + h.failing + h.erroring
            );
            if !h.failing_names.is_empty() {
                let _ = write!(s, " ({})", h.failing_names.join(","));
            }
            s
        }
    }
}

/// `mesh status`, as a table.
fn status_text(r: &StatusReport) -> String {
    let count = |s: State| r.members.iter().filter(|m| m.state == s).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "env {}  node {} ({})  profile {}  local health {}/{}  connections {}",
        r.env,
        r.addr,
        r.node_id.short(),
        r.profile,
        r.local_health,
        r.local_health_max,
        r.connections
    );
    let _ = writeln!(
        out,
        "members: {} alive, {} suspect, {} dead, {} left",
        count(State::Alive),
        count(State::Suspect),
        count(State::Dead),
        count(State::Left)
    );
    let mut rows = vec![[
        "ADDRESS".to_string(),
        "ID".into(),
        "STATE".into(),
        "INC".into(),
        "HEARD".into(),
        "RTT".into(),
        "HEALTH".into(),
        "TAGS".into(),
        "SUSPICION".into(),
    ]];
    for m in &r.members {
        let tags = m
            .tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let suspicion = match (m.state, m.suspected_by) {
            (State::Suspect | State::Dead, Some(by)) => {
                format!(
                    "by {} +{} confirmed, {} ago",
                    by.short(),
                    m.confirmations,
                    ago(m.state_for)
                )
            }
            _ => String::new(),
        };
        let state = if m.is_self {
            format!("{} (self)", m.state)
        } else {
            m.state.to_string()
        };
        rows.push([
            m.addr.clone(),
            m.node_id.short(),
            state,
            m.incarnation.to_string(),
            if m.is_self {
                "-".into()
            } else {
                ago(m.last_heard_ago)
            },
            rtt(m.rtt_us.or(m.rtt)),
            health_cell(m),
            if tags.is_empty() { "-".into() } else { tags },
            suspicion,
        ]);
    }
    let mut widths = [0usize; 9];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_matches_go() {
        assert_eq!(go_duration(Duration::from_nanos(406_970)), "406.97µs");
        assert_eq!(go_duration(Duration::from_nanos(13_226_640)), "13.22664ms");
        assert_eq!(
            go_duration(Duration::from_nanos(60_004_510_389)),
            "1m0.004510389s"
        );
        assert_eq!(go_duration(Duration::from_millis(3)), "3ms");
        assert_eq!(go_duration(Duration::from_secs(2)), "2s");
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_secs(3723)), "1h2m3s");
    }
}
