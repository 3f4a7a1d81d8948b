//! `mesh watch`: one line per membership event, as text or JSON Lines.

use std::fmt::Write as _;

use serde_json::json;

use crate::cli::args::WatchFormat;
use crate::rpc::mesh_event::MeshEvent;

/// `2026-01-05T12:00:01.123Z` for a Unix time in milliseconds (UTC).
fn utc_millis(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.millisecond()
        ),
        Err(_) => format!("{ms}ms"),
    }
}

/// One `mesh watch` line for an event. Text: the time, `seq=N`, the event name, the
/// member's address, then `key=value` fields (node, state, was, accuser, confirmations,
/// tags, failing, erroring), each only when known. JSONL: the event's JSON on one line.
pub fn watch_event(format: WatchFormat, e: &MeshEvent) -> String {
    match format {
        WatchFormat::Jsonl => {
            let mut line = serde_json::to_string(e).unwrap_or_else(|_| "null".into());
            line.push('\n');
            line
        }
        WatchFormat::Text => {
            let mut line = format!(
                "{} seq={} {} {} node={} state={}",
                utc_millis(e.at_unix_ms),
                e.seq,
                e.event,
                e.member_addr,
                e.member_id.short(),
                e.member_state
            );
            if e.is_self {
                line.push_str(" self=true");
            }
            if let Some(prev) = e.previous_state {
                let _ = write!(line, " was={prev}");
            }
            if let Some(by) = e.accuser {
                let _ = write!(line, " accuser={}", by.short());
            }
            if let Some(n) = e.confirmations {
                let _ = write!(line, " confirmations={n}");
            }
            if !e.member_tags.is_empty() {
                let tags: Vec<String> = e
                    .member_tags
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let _ = write!(line, " tags={}", tags.join(","));
            }
            if let Some(h) = &e.health {
                let _ = write!(
                    line,
                    " passing={} failing={} erroring={}",
                    h.passing, h.failing, h.erroring
                );
                let names: Vec<&str> = h
                    .failing_names
                    .iter()
                    .chain(&h.erroring_names)
                    .map(String::as_str)
                    .collect();
                if !names.is_empty() {
                    let _ = write!(line, " checks={}", names.join(","));
                }
                if h.names_omitted > 0 {
                    let _ = write!(line, "+{}", h.names_omitted);
                }
            }
            line.push('\n');
            line
        }
    }
}

/// The `mesh watch` line saying `count` events were dropped because this watcher fell
/// behind.
pub fn watch_missed(format: WatchFormat, count: u64) -> String {
    match format {
        WatchFormat::Jsonl => format!("{}\n", json!({"event": "events-missed", "count": count})),
        WatchFormat::Text => format!("events-missed count={count} (this watcher fell behind)\n"),
    }
}
