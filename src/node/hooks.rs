//! `werify node --on-event SCRIPT`: runs each script once for every membership event the
//! node records ([`crate::node::events`]), with the event in its environment (`WERIFY_*`
//! variables, see [`event_env`]) and as one JSON line on its standard input.
//!
//! Bounded on every side, so a slow or stuck script never holds up the mesh: at most
//! [`HooksConfig::concurrency`] scripts run at once (the others wait, in event order); a
//! script still running after [`HooksConfig::timeout`] is killed with its whole process
//! group; at most [`MAX_LOGGED_OUTPUT`] bytes of each of its stdout and stderr are logged;
//! and when scripts fall more than [`crate::node::events::SUBSCRIBER_QUEUE`] events behind,
//! the oldest events are skipped and the count is logged. A script that cannot start,
//! fails or times out is logged and the next event runs as usual.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::node::events::{EventLog, MeshEvent, Received};

/// How long a script may run by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How many scripts run at once by default.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Bytes of a script's stdout, and of its stderr, that are logged; the rest is read and
/// dropped.
pub const MAX_LOGGED_OUTPUT: usize = 4096;

/// The `--on-event` scripts and their bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HooksConfig {
    /// Programs to run for each event, in this order (concurrently when slots allow).
    pub scripts: Vec<PathBuf>,
    /// A run still going after this is killed.
    pub timeout: Duration,
    /// Runs at once, over all scripts.
    pub concurrency: usize,
}

impl Default for HooksConfig {
    fn default() -> HooksConfig {
        HooksConfig {
            scripts: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// Why an `--on-event` script cannot be used; the node does not start.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("--on-event {}: {source}; give the path of an executable script", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--on-event {}: not an executable file; chmod +x it or name another", path.display())]
    NotExecutable { path: PathBuf },
}

/// Checks that every script is an executable file.
pub fn check_scripts(config: &HooksConfig) -> Result<(), HookError> {
    use std::os::unix::fs::PermissionsExt;
    for path in &config.scripts {
        let meta = std::fs::metadata(path).map_err(|source| HookError::Unreadable {
            path: path.clone(),
            source,
        })?;
        if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
            return Err(HookError::NotExecutable { path: path.clone() });
        }
    }
    Ok(())
}

/// The environment a script gets for `event`, recorded by the node `node_id` at
/// `node_addr` (besides the node's own environment):
///
/// | variable | value |
/// | --- | --- |
/// | `WERIFY_EVENT` | the event name: `member-joined`, `member-suspect`, `member-alive`, `member-dead`, `member-left`, `member-removed`, `member-updated`, `member-health`, `member-reaped`, `self-refuted`, `self-removed`, `self-readded` |
/// | `WERIFY_EVENT_SEQ`, `WERIFY_EVENT_TIME_MS` | its seq in the node's log, when it was recorded (Unix ms) |
/// | `WERIFY_MEMBER_ID`, `WERIFY_MEMBER_ADDR` | the member's node id (32 hex digits) and `IP:PORT` |
/// | `WERIFY_MEMBER_STATE` | `alive`, `suspect`, `dead` or `left` after the event |
/// | `WERIFY_MEMBER_PREVIOUS_STATE` | its state before, when the event changed it and it was known |
/// | `WERIFY_MEMBER_TAGS` | `KEY=VALUE` pairs joined by `,`, keys sorted |
/// | `WERIFY_MEMBER_INCARNATION`, `WERIFY_MEMBER_IS_SELF` | its incarnation; `true` when it is this node |
/// | `WERIFY_ACCUSER` | who suspected, declared dead or removed it, when known |
/// | `WERIFY_CONFIRMATIONS` | independent confirmations of the suspicion, when counted |
/// | `WERIFY_FAILING_CHECKS`, `WERIFY_ERRORING_CHECKS` | names from its health summary, joined by `,`, when it has one |
/// | `WERIFY_NODE_ID`, `WERIFY_NODE_ADDR` | the node running the script |
pub fn event_env(
    event: &MeshEvent,
    node_id: &str,
    node_addr: &str,
) -> BTreeMap<&'static str, String> {
    let mut env = BTreeMap::new();
    env.insert("WERIFY_EVENT", event.event.to_string());
    env.insert("WERIFY_EVENT_SEQ", event.seq.to_string());
    env.insert("WERIFY_EVENT_TIME_MS", event.at_unix_ms.to_string());
    env.insert("WERIFY_MEMBER_ID", event.member_id.to_string());
    env.insert("WERIFY_MEMBER_ADDR", event.member_addr.to_string());
    env.insert("WERIFY_MEMBER_STATE", event.member_state.to_string());
    if let Some(prev) = event.previous_state {
        env.insert("WERIFY_MEMBER_PREVIOUS_STATE", prev.to_string());
    }
    let tags: Vec<String> = event
        .member_tags
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    env.insert("WERIFY_MEMBER_TAGS", tags.join(","));
    env.insert(
        "WERIFY_MEMBER_INCARNATION",
        event.member_incarnation.to_string(),
    );
    env.insert("WERIFY_MEMBER_IS_SELF", event.is_self.to_string());
    if let Some(by) = event.accuser {
        env.insert("WERIFY_ACCUSER", by.to_string());
    }
    if let Some(n) = event.confirmations {
        env.insert("WERIFY_CONFIRMATIONS", n.to_string());
    }
    if let Some(h) = &event.health {
        env.insert("WERIFY_FAILING_CHECKS", h.failing_names.join(","));
        env.insert("WERIFY_ERRORING_CHECKS", h.erroring_names.join(","));
    }
    env.insert("WERIFY_NODE_ID", node_id.to_string());
    env.insert("WERIFY_NODE_ADDR", node_addr.to_string());
    // A NUL cannot be passed in the environment (tags and names come from other nodes).
    for value in env.values_mut() {
        if value.contains('\0') {
            *value = value.replace('\0', " ");
        }
    }
    env
}

/// Starts running `config.scripts` for every event of `log` from its first one, if there
/// are scripts. `node_id` and `node_addr` name this node to the scripts.
pub fn spawn(log: &Arc<EventLog>, config: HooksConfig, node_id: String, node_addr: String) {
    if config.scripts.is_empty() {
        return;
    }
    // From the first event on: those recorded before this task runs are in the backlog.
    let (backlog, mut sub) = log.subscribe(Some(0));
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let config = Arc::new(config);
    let who = Arc::new((node_id, node_addr));
    tokio::spawn(async move {
        let run_all = |event: Arc<MeshEvent>| {
            let (slots, config, who) = (slots.clone(), config.clone(), who.clone());
            async move {
                for script in &config.scripts {
                    // Waiting here, in event order, is what bounds the runs; the
                    // subscription queue absorbs the events meanwhile.
                    let Ok(slot) = slots.clone().acquire_owned().await else {
                        return;
                    };
                    let (script, event, config, who) =
                        (script.clone(), event.clone(), config.clone(), who.clone());
                    tokio::spawn(async move {
                        run_one(&script, &event, config.timeout, &who.0, &who.1).await;
                        drop(slot);
                    });
                }
            }
        };
        for event in backlog.events {
            run_all(event).await;
        }
        while let Some(next) = sub.recv().await {
            match next {
                Received::Event(event) => run_all(event).await,
                Received::Missed(n) => tracing::warn!(
                    "--on-event: {n} events skipped: the scripts fall behind the events (at most {} run at once, each up to {:?})",
                    config.concurrency,
                    config.timeout
                ),
            }
        }
    });
}

/// How one run of a script ended.
#[derive(Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// It exited with this status (`None`: killed by a signal).
    Exited(Option<i32>),
    /// It ran past the timeout and was killed.
    TimedOut,
    /// It could not be started.
    NotStarted(String),
}

/// What a run left: how it ended and the start of its output.
#[derive(Debug)]
pub struct RunReport {
    pub end: RunEnd,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `script` once for `event`, logs how it went, and returns it.
pub async fn run_one(
    script: &Path,
    event: &MeshEvent,
    timeout: Duration,
    node_id: &str,
    node_addr: &str,
) -> RunReport {
    let report = run_script(script, event, timeout, node_id, node_addr).await;
    let what = format!(
        "--on-event {} for {} of {} (seq {})",
        script.display(),
        event.event,
        event.member_addr,
        event.seq
    );
    let output = |name: &str, text: &str| {
        if text.is_empty() {
            String::new()
        } else {
            format!("; {name}: {}", text.trim_end())
        }
    };
    let output = format!(
        "{}{}",
        output("stdout", &report.stdout),
        output("stderr", &report.stderr)
    );
    match &report.end {
        RunEnd::Exited(Some(0)) => tracing::info!("{what}: exited 0{output}"),
        RunEnd::Exited(Some(code)) => tracing::warn!("{what}: exited {code}{output}"),
        RunEnd::Exited(None) => tracing::warn!("{what}: killed by a signal{output}"),
        RunEnd::TimedOut => {
            tracing::warn!("{what}: still running after {timeout:?}, killed{output}")
        }
        RunEnd::NotStarted(why) => tracing::warn!("{what}: could not start: {why}"),
    }
    report
}

async fn run_script(
    script: &Path,
    event: &MeshEvent,
    timeout: Duration,
    node_id: &str,
    node_addr: &str,
) -> RunReport {
    let not_started = |why: String| RunReport {
        end: RunEnd::NotStarted(why),
        stdout: String::new(),
        stderr: String::new(),
    };
    let mut command = tokio::process::Command::new(script);
    command
        .envs(event_env(event, node_id, node_addr))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout kills what it started too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return not_started(e.to_string()),
    };
    let pid = child.id();
    let json = match serde_json::to_string(event) {
        Ok(mut j) => {
            j.push('\n');
            j
        }
        Err(e) => return not_started(format!("cannot render the event: {e}")),
    };
    let stdin = child.stdin.take();
    let feed = async move {
        if let Some(mut stdin) = stdin {
            // A script that does not read its input is fine.
            let _ = stdin.write_all(json.as_bytes()).await;
        }
    };
    let stdout = read_bounded(child.stdout.take());
    let stderr = read_bounded(child.stderr.take());
    let waited = async {
        let (_, out, err, status) = tokio::join!(feed, stdout, stderr, child.wait());
        (out, err, status)
    };
    match tokio::time::timeout(timeout, waited).await {
        Ok((stdout, stderr, status)) => RunReport {
            end: match status {
                Ok(s) => RunEnd::Exited(s.code()),
                Err(e) => RunEnd::NotStarted(format!("cannot wait for it: {e}")),
            },
            stdout,
            stderr,
        },
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok())
                && let Some(pid) = rustix::process::Pid::from_raw(pid)
            {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            let _ = child.kill().await;
            RunReport {
                end: RunEnd::TimedOut,
                stdout: String::new(),
                stderr: String::new(),
            }
        }
    }
}

/// The first [`MAX_LOGGED_OUTPUT`] bytes of a pipe (lossily as UTF-8), reading the rest to
/// the end so that the script never blocks on a full pipe.
async fn read_bounded(pipe: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut pipe) = pipe else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_LOGGED_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Instant;

    use super::*;
    use crate::base::NodeId;
    use crate::mesh::member::{State, Tags};
    use crate::node::dispatch::tests::Scratch;
    use crate::node::events::EventKind;

    fn event() -> MeshEvent {
        let mut tags = Tags::new();
        tags.insert("role".into(), "db".into());
        tags.insert("zone".into(), "a\0b".into());
        MeshEvent {
            seq: 7,
            at_unix_ms: 1_764_000_000_000,
            event: EventKind::MemberDead,
            member_id: NodeId([3; 16]),
            member_addr: SocketAddr::from(([127, 0, 0, 3], 32503)),
            member_state: State::Dead,
            previous_state: Some(State::Suspect),
            member_incarnation: 2,
            member_tags: tags,
            is_self: false,
            accuser: Some(NodeId([4; 16])),
            confirmations: Some(1),
            health: None,
        }
    }

    fn script(dir: &Scratch, name: &str, body: &str) -> PathBuf {
        let path = dir.0.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    #[test]
    fn the_environment_names_the_event_member_and_accuser() {
        let env = event_env(&event(), "ab", "127.0.0.1:1");
        assert_eq!(env["WERIFY_EVENT"], "member-dead");
        assert_eq!(env["WERIFY_MEMBER_ID"], "03".repeat(16));
        assert_eq!(env["WERIFY_MEMBER_ADDR"], "127.0.0.3:32503");
        assert_eq!(env["WERIFY_MEMBER_STATE"], "dead");
        assert_eq!(env["WERIFY_MEMBER_PREVIOUS_STATE"], "suspect");
        assert_eq!(env["WERIFY_MEMBER_TAGS"], "role=db,zone=a b");
        assert_eq!(env["WERIFY_ACCUSER"], "04".repeat(16));
        assert_eq!(env["WERIFY_CONFIRMATIONS"], "1");
        assert_eq!(env["WERIFY_NODE_ADDR"], "127.0.0.1:1");
        assert!(!env.contains_key("WERIFY_FAILING_CHECKS"));
    }

    #[tokio::test]
    async fn a_script_gets_the_event_in_its_environment_and_on_stdin() {
        let dir = Scratch::new("hooks-env");
        let out = dir.0.join("out");
        let s = script(
            &dir,
            "hook.sh",
            &format!(
                "echo \"$WERIFY_EVENT $WERIFY_MEMBER_ADDR $WERIFY_ACCUSER\" > {out}; cat >> {out}; echo done; echo oops >&2; exit 3",
                out = out.display()
            ),
        );
        let report = run_one(&s, &event(), Duration::from_secs(20), "ab", "x").await;
        assert_eq!(report.end, RunEnd::Exited(Some(3)));
        assert_eq!(report.stdout, "done\n");
        assert_eq!(report.stderr, "oops\n");
        let written = std::fs::read_to_string(&out).expect("script output");
        let mut lines = written.lines();
        assert_eq!(
            lines.next(),
            Some(format!("member-dead 127.0.0.3:32503 {}", "04".repeat(16)).as_str())
        );
        let json: MeshEvent =
            serde_json::from_str(lines.next().expect("stdin line")).expect("json");
        assert_eq!(json, event());
    }

    #[tokio::test]
    async fn a_script_past_its_timeout_is_killed_with_what_it_started() {
        let dir = Scratch::new("hooks-timeout");
        // The shell's child holds the output pipes: only killing the group ends the read.
        let s = script(&dir, "slow.sh", "sleep 600 & sleep 600");
        let started = Instant::now();
        let report = run_one(&s, &event(), Duration::from_millis(300), "ab", "x").await;
        assert_eq!(report.end, RunEnd::TimedOut);
        // A hang guard, not a speed assertion: the sleeps would take ten minutes.
        assert!(started.elapsed() < Duration::from_secs(60));
    }

    #[tokio::test]
    async fn output_is_logged_up_to_a_bound_and_a_missing_script_is_reported() {
        let dir = Scratch::new("hooks-output");
        let s = script(&dir, "loud.sh", "head -c 100000 /dev/zero | tr '\\0' x");
        let report = run_one(&s, &event(), Duration::from_secs(20), "ab", "x").await;
        assert_eq!(report.end, RunEnd::Exited(Some(0)));
        assert_eq!(report.stdout.len(), MAX_LOGGED_OUTPUT);
        let missing = run_one(
            &dir.0.join("absent.sh"),
            &event(),
            Duration::from_secs(5),
            "ab",
            "x",
        )
        .await;
        assert!(matches!(missing.end, RunEnd::NotStarted(_)), "{missing:?}");
    }

    #[test]
    fn scripts_must_be_executable_files() {
        let dir = Scratch::new("hooks-check");
        let ok = script(&dir, "ok.sh", "true");
        let plain = dir.0.join("plain.sh");
        std::fs::write(&plain, "#!/bin/sh\n").expect("write");
        let config = |p: &Path| HooksConfig {
            scripts: vec![ok.clone(), p.to_path_buf()],
            ..HooksConfig::default()
        };
        assert!(check_scripts(&config(&ok)).is_ok());
        let e = check_scripts(&config(&plain)).unwrap_err();
        assert!(e.to_string().contains("not an executable file"), "{e}");
        let e = check_scripts(&config(&dir.0.join("nope"))).unwrap_err();
        assert!(e.to_string().contains("--on-event"), "{e}");
        assert!(check_scripts(&config(&dir.0)).is_err(), "a directory");
    }
}
