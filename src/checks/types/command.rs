//! The `command` check: run a program and compare its exit status (and optionally its
//! standard output) with what is expected.
//!
//! Refused unless the node was started with `--allow-command`: an operation can come
//! from any node of the mesh, so running programs is opt-in per host. The program is
//! executed directly (no shell, so no globbing or pipes), looked up in `PATH` when it has
//! no `/`, with stdin from `/dev/null`, stderr discarded and the node's environment and
//! working directory. The first [`MAX_STDOUT_BYTES`] of stdout are kept for
//! `stdout_contains`; the rest is read and dropped so the program never blocks on a full
//! pipe. When the check's timeout fires the runner drops this future and the child is
//! killed (`kill_on_drop`); grandchildren it started are not.
//!
//! Passes when the exit status equals `exit_status` (default 0) and, if given, stdout
//! contains `stdout_contains`. A program that cannot be started, or that dies from a
//! signal, is an `Error`. Found: the `exit_status` (or the `signal`) and the first
//! [`MAX_STDOUT_EXCERPT_BYTES`] of stdout as `stdout`.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::checks::check_type::{
    CheckType, FieldProblem, FieldSpec, FieldType, Fields, Typed, non_empty_text, opt, req, text,
};
use crate::checks::outcome::{CheckResult, Facts};
use crate::checks::run::CheckContext;
use crate::checks::spec::MAX_ARGS;

/// The error every node without `--allow-command` reports for a `command` check.
pub const COMMAND_DISABLED: &str =
    "command checks are disabled on this node; start it with --allow-command";

/// How much of a program's standard output is kept for `stdout_contains`.
pub const MAX_STDOUT_BYTES: usize = 1 << 20;

/// How much of a program's standard output is reported as found.
pub const MAX_STDOUT_EXCERPT_BYTES: usize = 256;

/// `command`: runs a program; passes when its exit status (and stdout) are as expected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Program to run (looked up in `PATH` when it has no `/`). No shell is involved.
    pub command: String,
    /// Arguments passed as-is.
    pub args: Vec<String>,
    /// Expected exit status (default 0).
    pub exit_status: i32,
    /// Substring that must appear in the program's standard output.
    pub stdout_contains: Option<String>,
}

impl CheckType for Command {
    const NAME: &'static str = "command";
    const DOC: &'static str = "runs a program (no shell); passes when it exits with exit_status and its stdout contains stdout_contains";
    const FIELDS: &'static [FieldSpec] = &[
        req("command", FieldType::String),
        opt("args", FieldType::StringList),
        opt("exit_status", FieldType::Integer),
        opt("stdout_contains", FieldType::String),
    ];

    fn from_fields(fields: &Fields) -> Result<Self, FieldProblem> {
        Ok(Command {
            command: fields.required("command"),
            args: fields.list("args").unwrap_or_default(),
            exit_status: match fields.int("exit_status") {
                None => 0,
                Some(code) => i32::try_from(code)
                    .map_err(|_| FieldProblem::on("exit_status", "exit_status is out of range"))?,
            },
            stdout_contains: fields.string("stdout_contains"),
        })
    }

    fn to_fields(&self) -> Vec<(&'static str, Typed)> {
        vec![("command", Typed::Str(self.command.clone()))]
            .into_iter()
            .chain((!self.args.is_empty()).then(|| ("args", Typed::List(self.args.clone()))))
            .chain(
                (self.exit_status != 0)
                    .then(|| ("exit_status", Typed::Int(self.exit_status.into()))),
            )
            .chain(
                self.stdout_contains
                    .clone()
                    .map(|s| ("stdout_contains", Typed::Str(s))),
            )
            .collect()
    }

    fn validate(&self) -> Result<(), FieldProblem> {
        non_empty_text("command", &self.command)?;
        if self.args.len() > MAX_ARGS {
            return Err(FieldProblem::on(
                "args",
                format!(
                    "args has {} entries; the limit is {MAX_ARGS}",
                    self.args.len()
                ),
            ));
        }
        for arg in &self.args {
            text("args", arg)?;
        }
        if let Some(needle) = &self.stdout_contains {
            non_empty_text("stdout_contains", needle)?;
        }
        Ok(())
    }

    fn expected(&self) -> Facts {
        let expected = Facts::new().with("exit_status", self.exit_status.to_string());
        match &self.stdout_contains {
            Some(needle) => expected.with("stdout_contains", needle.as_str()),
            None => expected,
        }
    }

    async fn run(self, ctx: CheckContext) -> CheckResult {
        command(
            &self.command,
            &self.args,
            self.exit_status,
            self.stdout_contains.as_deref(),
            ctx.allow_command,
        )
        .await
    }
}

/// Runs `command` when `allowed`.
async fn command(
    program: &str,
    args: &[String],
    exit_status: i32,
    stdout_contains: Option<&str>,
    allowed: bool,
) -> CheckResult {
    if !allowed {
        return CheckResult::error(COMMAND_DISABLED);
    }
    let ran = match run(program, args).await {
        Ok(ran) => ran,
        Err(e) => return CheckResult::error(e),
    };
    let excerpt = stdout_excerpt(&ran.stdout);
    let code = match ran.exit {
        Exit::Code(code) => code,
        Exit::Signal(signal) => {
            return CheckResult::error(format!("{program} was killed by signal {signal}")).found(
                Facts::new()
                    .with("signal", signal.to_string())
                    .with("stdout", excerpt),
            );
        }
    };
    let output_ok = stdout_contains
        .is_none_or(|needle| memchr::memmem::find(&ran.stdout, needle.as_bytes()).is_some());
    CheckResult::holds(
        code == exit_status && output_ok,
        Facts::new()
            .with("exit_status", code.to_string())
            .with("stdout", excerpt),
    )
}

/// The start of `stdout` as text: at most [`MAX_STDOUT_EXCERPT_BYTES`] (cut at a
/// character boundary, `…` appended when cut), surrounding whitespace trimmed.
fn stdout_excerpt(stdout: &[u8]) -> String {
    let head = stdout.get(..MAX_STDOUT_EXCERPT_BYTES + 4).unwrap_or(stdout);
    let text = String::from_utf8_lossy(head);
    let text = text.trim();
    if stdout.len() <= MAX_STDOUT_EXCERPT_BYTES {
        return text.to_string();
    }
    let mut cut = MAX_STDOUT_EXCERPT_BYTES.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", text.get(..cut).unwrap_or_default())
}

/// How a program ended.
enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

/// A finished program: how it ended and the start of its stdout.
struct Ran {
    exit: Exit,
    stdout: Vec<u8>,
}

/// Runs the program to completion; returns how it ended and its captured stdout.
async fn run(program: &str, args: &[String]) -> Result<Ran, String> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {program}: {e}"))?;
    let mut captured = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = stdout
                .read(&mut buf)
                .await
                .map_err(|e| format!("reading the output of {program}: {e}"))?;
            if n == 0 {
                break;
            }
            let room = MAX_STDOUT_BYTES.saturating_sub(captured.len());
            captured.extend_from_slice(buf.get(..n.min(room)).unwrap_or_default());
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| format!("waiting for {program}: {e}"))?;
    let exit = match status.code() {
        Some(code) => Exit::Code(code),
        None => Exit::Signal(status.signal().unwrap_or_default()),
    };
    Ok(Ran {
        exit,
        stdout: captured,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn refused_unless_allowed() {
        assert_eq!(
            command("true", &[], 0, None, false).await,
            Outcome::Error(COMMAND_DISABLED.into())
        );
    }

    #[tokio::test]
    async fn compares_exit_status_and_stdout() {
        assert_eq!(
            command("true", &[], 0, None, true).await,
            Outcome::Success(true)
        );
        let failed = command("false", &[], 0, None, true).await;
        assert_eq!(failed, Outcome::Success(false));
        assert_eq!(failed.observation.found.get("exit_status"), Some("1"));
        assert_eq!(
            command("false", &[], 1, None, true).await,
            Outcome::Success(true)
        );
        let echo = args(&["hello", "werify"]);
        assert_eq!(
            command("echo", &echo, 0, Some("lo wer"), true).await,
            Outcome::Success(true)
        );
        assert_eq!(
            command("echo", &echo, 0, Some("bye"), true).await,
            Outcome::Success(false)
        );
        // No shell: the argument is passed literally.
        assert_eq!(
            command("echo", &args(&["$HOME"]), 0, Some("$HOME"), true).await,
            Outcome::Success(true)
        );
    }

    #[tokio::test]
    async fn large_output_is_drained_and_capped() {
        // 4 MiB of output: more than the cap and than any pipe buffer.
        let script = args(&["-c", "head -c 4194304 /dev/zero; echo END"]);
        assert_eq!(
            command("sh", &script, 0, None, true).await,
            Outcome::Success(true)
        );
        // The marker is beyond the kept prefix, so it is not seen.
        let big = command("sh", &script, 0, Some("END"), true).await;
        assert_eq!(big, Outcome::Success(false));
        // The excerpt reported is bounded.
        let excerpt = big.observation.found.get("stdout").unwrap_or_default();
        assert!(
            excerpt.len() <= MAX_STDOUT_EXCERPT_BYTES + 3,
            "{}",
            excerpt.len()
        );
        assert!(excerpt.ends_with('…'));
    }

    #[tokio::test]
    async fn failures_to_run_are_errors() {
        match command("/no/such/werify-program", &[], 0, None, true)
            .await
            .outcome
        {
            Outcome::Error(e) => {
                assert!(e.starts_with("starting /no/such/werify-program: "), "{e}")
            }
            other => panic!("expected an error, got {other:?}"),
        }
        let killed = command(
            "sh",
            &args(&["-c", "echo dying; kill -9 $$"]),
            0,
            None,
            true,
        )
        .await;
        assert_eq!(killed.observation.found.get("signal"), Some("9"));
        assert_eq!(killed.observation.found.get("stdout"), Some("dying"));
        match killed.outcome {
            Outcome::Error(e) => assert!(e.contains("killed by signal 9"), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
    }
}
