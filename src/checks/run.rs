//! The runner: runs every check of a [`CheckSet`] on this host, concurrently, each under
//! its own timeout, and summarizes the results.
//!
//! Guarantees: every check in the set gets exactly one result; a slow or hung check
//! costs only its own timeout (`Error("timed out after 5s")`) and never delays or loses
//! the others; blocking work (file reads, `/proc` scans, HTTP) runs on tokio's blocking
//! pool and also watches the deadline so it stops reading soon after a timeout; a check
//! that panics becomes an `Error` for that check alone. `"expect": false` inverts
//! `Success` only (and marks the expectation negated). Every result carries what the
//! check saw (`found`) and, unless it passed, what it wanted (`expected`); error texts
//! are single lines capped at [`RunOptions::max_result_bytes`], and so is each
//! observation. What each check does lives in its type's file under `types/`, reached
//! through [`CheckKind`](super::spec::CheckKind).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::Outcome;
use super::duration::format_duration;
use super::outcome::{CheckResult, one_line};
use super::spec::{Check, CheckSet};

/// Default per-check timeout when a check sets none.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on one result's error text, in bytes.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 1024;
/// Default number of checks run at once.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Default largest file the content checks read (4 GiB).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 4 << 30;

/// How this node runs checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// Whether `command` checks may run (`--allow-command`); otherwise they report
    /// [`COMMAND_DISABLED`](super::COMMAND_DISABLED).
    pub allow_command: bool,
    /// Timeout for checks that set none. Defaults to [`DEFAULT_CHECK_TIMEOUT`].
    pub default_timeout: Duration,
    /// Longest error text kept per result, in bytes (cut at a character boundary, with
    /// `…` appended), and most bytes of found and expected values together. Defaults to
    /// [`DEFAULT_MAX_RESULT_BYTES`].
    pub max_result_bytes: usize,
    /// How many checks run at once; 0 is treated as 1. Defaults to [`DEFAULT_CONCURRENCY`].
    pub concurrency: usize,
    /// Largest file `file_contains`, `file_matches` and `file_hash` will read.
    /// Defaults to [`DEFAULT_MAX_FILE_BYTES`].
    pub max_file_bytes: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            allow_command: false,
            default_timeout: DEFAULT_CHECK_TIMEOUT,
            max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
            concurrency: DEFAULT_CONCURRENCY,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// What one running check may consult: this node's settings and the check's deadline.
#[derive(Clone, Debug)]
pub(crate) struct CheckContext {
    /// Whether `command` checks may run on this node (`--allow-command`).
    pub allow_command: bool,
    /// Largest file a content check reads.
    pub max_file_bytes: u64,
    /// When the check's time is up; long loops stop after it.
    pub deadline: Instant,
    /// The check's timeout, for messages.
    pub timeout: Duration,
}

impl CheckContext {
    fn new(timeout: Duration, opts: &RunOptions) -> Self {
        let now = Instant::now();
        CheckContext {
            allow_command: opts.allow_command,
            max_file_bytes: opts.max_file_bytes,
            deadline: now.checked_add(timeout).unwrap_or(now),
            timeout,
        }
    }

    /// A context with this node's default limits and `timeout`, for reading the host
    /// outside a run (`checks add` inspecting what a check would test).
    pub(crate) fn with_defaults(timeout: Duration) -> Self {
        CheckContext::new(timeout, &RunOptions::default())
    }

    /// A context with default limits, for unit tests of single checks.
    #[cfg(test)]
    pub(crate) fn for_test(timeout: Duration) -> Self {
        CheckContext::new(timeout, &RunOptions::default())
    }

    /// True once the deadline has passed.
    pub(crate) fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// The result for a check that ran out of time.
    pub(crate) fn timed_out(&self) -> CheckResult {
        timed_out(self.timeout)
    }
}

fn timed_out(timeout: Duration) -> CheckResult {
    CheckResult::error(format!("timed out after {}", format_duration(timeout)))
}

/// Runs every check in `set` and returns one result per check name.
///
/// Dropping the returned future cancels the checks still running (their tasks are
/// aborted; a `command` child is killed).
pub async fn run_checks(set: &CheckSet, opts: &RunOptions) -> BTreeMap<String, CheckResult> {
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    // A JoinSet aborts its tasks when dropped, so a cancelled run leaves nothing behind.
    let mut running = JoinSet::new();
    let mut names = HashMap::with_capacity(set.len());
    for (name, check) in set.iter() {
        let check = check.clone();
        let opts = opts.clone();
        let permits = Arc::clone(&permits);
        let task = running.spawn(async move {
            // The semaphore is never closed, so acquiring only waits; the timeout starts
            // once the check actually starts.
            let _permit = permits.acquire_owned().await;
            run_one(&check, &opts).await
        });
        names.insert(task.id(), name.to_owned());
    }
    let mut results = BTreeMap::new();
    while let Some(joined) = running.join_next_with_id().await {
        let (id, result) = match joined {
            Ok((id, result)) => (id, result),
            Err(e) => (
                e.id(),
                CheckResult::error(format!("the check crashed: {e}")),
            ),
        };
        if let Some(name) = names.remove(&id) {
            results.insert(name, bounded(result, opts.max_result_bytes));
        }
    }
    results
}

/// Runs one check under its timeout and applies `expect`: the verdict is inverted, the
/// expectation marked negated, and a passed check keeps no expectation.
async fn run_one(check: &Check, opts: &RunOptions) -> CheckResult {
    let timeout = check.timeout.unwrap_or(opts.default_timeout);
    let ctx = CheckContext::new(timeout, opts);
    let expected = check.kind.expected();
    let mut result = match tokio::time::timeout(timeout, check.kind.clone().run(ctx)).await {
        Ok(result) => result,
        Err(_) => timed_out(timeout),
    }
    .expecting(expected);
    if let Outcome::Success(holds) = result.outcome {
        result.outcome = Outcome::Success(holds == check.expect);
    }
    result.observation.negated = !check.expect;
    if result.outcome.passed() {
        result.observation.expected = Default::default();
        result.observation.negated = false;
    }
    result
}

/// Runs blocking check code on tokio's blocking pool; a panic there becomes an `Error`.
pub(crate) async fn blocking(work: impl FnOnce() -> CheckResult + Send + 'static) -> CheckResult {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) => CheckResult::error(format!("the check crashed: {e}")),
    }
}

/// A result as it leaves this host: its error text one line (control characters become
/// spaces) of at most `max_bytes`, and its observation within what the error text left
/// of the same `max_bytes`, so a result is no larger than an error alone.
pub fn bounded(result: CheckResult, max_bytes: usize) -> CheckResult {
    let outcome = match result.outcome {
        Outcome::Error(text) => Outcome::Error(one_line(&text, max_bytes)),
        ok => ok,
    };
    let used = match &outcome {
        Outcome::Error(text) => text.len(),
        Outcome::Success(_) => 0,
    };
    CheckResult {
        outcome,
        observation: result.observation.bounded(max_bytes - used),
    }
}

/// Counts of results by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Checks that passed (`Success(true)`).
    pub passing: u32,
    /// Checks that ran and did not hold (`Success(false)`).
    pub failing: u32,
    /// Checks that could not decide (`Error`).
    pub erroring: u32,
    /// Names of the failing and erroring checks, in name order.
    pub failing_names: Vec<String>,
}

/// Summarizes a result map.
pub fn summarize(results: &BTreeMap<String, CheckResult>) -> Summary {
    let mut summary = Summary::default();
    for (name, CheckResult { outcome, .. }) in results {
        match outcome {
            Outcome::Success(true) => summary.passing += 1,
            Outcome::Success(false) => summary.failing += 1,
            Outcome::Error(_) => summary.erroring += 1,
        }
        if !outcome.passed() {
            summary.failing_names.push(name.clone());
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::spec::parse_operations;
    use crate::checks::testutil::TempDir;
    use crate::checks::types::command;

    fn set(json: &str) -> CheckSet {
        parse_operations(json, "test.json").unwrap()
    }

    #[tokio::test]
    async fn runs_every_check_and_inverts_expect() {
        let dir = TempDir::new();
        let hosts = dir.write("hosts", b"10.0.0.1 db:4488\n");
        let json = format!(
            r#"{{"present": {{"type": "file_contains", "path": "{hosts}", "check": "4488"}},
                "absent": {{"type": "file_contains", "path": "{hosts}", "check": "9999"}},
                "no_virus": {{"type": "file_exists", "path": "{}", "expect": false}},
                "virus_inverted_error": {{"type": "file_contains", "path": "{}", "check": "x", "expect": false}}}}"#,
            dir.join("virus"),
            dir.join("virus"),
        );
        let results = run_checks(&set(&json), &RunOptions::default()).await;
        assert_eq!(results.len(), 4);
        assert_eq!(results["present"], Outcome::Success(true));
        assert_eq!(results["absent"], Outcome::Success(false));
        assert_eq!(results["no_virus"], Outcome::Success(true));
        // Errors are never inverted.
        assert!(matches!(
            &results["virus_inverted_error"].outcome,
            Outcome::Error(_)
        ));

        let summary = summarize(&results);
        assert_eq!(summary.passing, 2);
        assert_eq!(summary.failing, 1);
        assert_eq!(summary.erroring, 1);
        assert_eq!(summary.failing_names, ["absent", "virus_inverted_error"]);
    }

    #[tokio::test]
    async fn a_slow_command_times_out_without_holding_up_the_others() {
        let json = r#"{"slow": {"type": "command", "command": "sleep", "args": ["30"], "timeout": "300ms"},
                       "quick": {"type": "file_exists", "path": "/"},
                       "quick_cmd": {"type": "command", "command": "true"}}"#;
        let opts = RunOptions {
            allow_command: true,
            concurrency: 1,
            ..RunOptions::default()
        };
        let results = run_checks(&set(json), &opts).await;
        assert_eq!(
            results["slow"],
            Outcome::Error("timed out after 300ms".into())
        );
        assert_eq!(results["quick"], Outcome::Success(true));
        assert_eq!(results["quick_cmd"], Outcome::Success(true));
    }

    #[tokio::test]
    async fn commands_are_refused_unless_allowed() {
        let results = run_checks(
            &set(r#"{"c": {"type": "command", "command": "true"}}"#),
            &RunOptions::default(),
        )
        .await;
        assert_eq!(
            results["c"],
            Outcome::Error(command::COMMAND_DISABLED.into())
        );
    }

    #[tokio::test]
    async fn default_timeout_applies_and_a_fifo_never_blocks() {
        let dir = TempDir::new();
        let fifo = dir.mkfifo("fifo");
        let json = format!(
            r#"{{"fifo": {{"type": "file_contains", "path": "{fifo}", "check": "x"}},
                "slow": {{"type": "command", "command": "sleep", "args": ["30"]}}}}"#
        );
        let opts = RunOptions {
            allow_command: true,
            default_timeout: Duration::from_millis(200),
            ..RunOptions::default()
        };
        let results = run_checks(&set(&json), &opts).await;
        assert_eq!(
            results["slow"],
            Outcome::Error("timed out after 200ms".into())
        );
        match &results["fifo"].outcome {
            Outcome::Error(e) => assert!(e.contains("is a FIFO"), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn dropping_the_run_cancels_running_checks() {
        let dir = TempDir::new();
        let marker = dir.join("late");
        let json = format!(
            r#"{{"late": {{"type": "command", "command": "sh", "args": ["-c", "sleep 1; touch {marker}"]}}}}"#
        );
        let opts = RunOptions {
            allow_command: true,
            ..RunOptions::default()
        };
        let checks = set(&json);
        let cancelled =
            tokio::time::timeout(Duration::from_millis(100), run_checks(&checks, &opts)).await;
        assert!(cancelled.is_err(), "the run should still have been going");
        // Correctness, not speed: the killed child must never get to create the marker.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!std::path::Path::new(&marker).exists());
    }

    #[test]
    fn error_texts_become_one_capped_line() {
        assert_eq!(
            bounded(CheckResult::error("a\nb\tc"), 100),
            Outcome::Error("a b c".into())
        );
        let capped = bounded(CheckResult::error("é".repeat(100)), 10).outcome;
        match capped {
            Outcome::Error(text) => {
                assert!(text.len() <= 10, "{text}");
                assert!(text.ends_with('…'), "{text}");
                assert!(text.starts_with("éé"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            bounded(CheckResult::from(Outcome::Success(true)), 0),
            Outcome::Success(true)
        );
        assert_eq!(
            bounded(CheckResult::error("abc"), 0),
            Outcome::Error(String::new())
        );
    }

    #[tokio::test]
    async fn results_are_capped_by_max_result_bytes() {
        let long_path = format!("/{}/x", "d".repeat(300));
        let json =
            format!(r#"{{"e": {{"type": "file_contains", "path": "{long_path}", "check": "x"}}}}"#);
        let opts = RunOptions {
            max_result_bytes: 64,
            ..RunOptions::default()
        };
        match &run_checks(&set(&json), &opts).await["e"].outcome {
            Outcome::Error(text) => assert!(text.len() <= 64, "{text}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_examples_run_to_one_result_each() {
        let example = set(include_str!("../../examples/checks.json"));
        let opts = RunOptions {
            default_timeout: Duration::from_secs(5),
            ..RunOptions::default()
        };
        let results = run_checks(&example, &opts).await;
        let names: Vec<_> = results.keys().map(String::as_str).collect();
        let expected: Vec<_> = example.names().collect();
        assert_eq!(names, expected);
        assert_eq!(
            results
                .values()
                .map(|r| &r.outcome)
                .find(|o| matches!(o, Outcome::Error(e) if e == command::COMMAND_DISABLED)),
            Some(&Outcome::Error(command::COMMAND_DISABLED.into()))
        );
    }
}
