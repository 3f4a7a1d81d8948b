//! The mesh as text: `list`/`listactive`/`listinactive` in the original tool's lines
//! (`Active hosts (N)`, one address per line, `End of list`) and the `mesh status`
//! table. Their JSON is in [`super::json`].

use std::fmt::Write as _;
use std::time::Duration;

use super::sort_key;
use crate::mesh::member::State;
use crate::rpc::protocol::{MemberReport, StatusReport};

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
pub(super) fn list_text(report: &StatusReport, show_active: bool, show_inactive: bool) -> String {
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
            let _ = write!(s, "{}", super::health::names_in_parens(h));
            s
        }
    }
}

/// `mesh status`, as a table.
pub(super) fn status_text(r: &StatusReport) -> String {
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
    if let Some(reason) = &r.not_joined {
        let _ = writeln!(out, "not joined: {reason}");
    }
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
