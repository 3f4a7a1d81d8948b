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
//! signal, is an `Error`.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use tokio::io::AsyncReadExt;

use super::Outcome;

/// The error every node without `--allow-command` reports for a `command` check.
pub const COMMAND_DISABLED: &str =
    "command checks are disabled on this node; start it with --allow-command";

/// How much of a program's standard output is kept for `stdout_contains`.
pub const MAX_STDOUT_BYTES: usize = 1 << 20;

/// Runs `command` when `allowed`.
pub(crate) async fn command(
    program: &str,
    args: &[String],
    exit_status: i32,
    stdout_contains: Option<&str>,
    allowed: bool,
) -> Outcome {
    if !allowed {
        return Outcome::Error(COMMAND_DISABLED.into());
    }
    let (code, stdout) = match run(program, args).await {
        Ok(result) => result,
        Err(e) => return Outcome::Error(e),
    };
    let output_ok = stdout_contains
        .is_none_or(|needle| memchr::memmem::find(&stdout, needle.as_bytes()).is_some());
    Outcome::Success(code == exit_status && output_ok)
}

/// Runs the program to completion; returns its exit code and captured stdout.
async fn run(program: &str, args: &[String]) -> Result<(i32, Vec<u8>), String> {
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
    match status.code() {
        Some(code) => Ok((code, captured)),
        None => Err(format!(
            "{program} was killed by signal {}",
            status.signal().unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            command("false", &[], 0, None, true).await,
            Outcome::Success(false)
        );
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
        assert_eq!(
            command("sh", &script, 0, Some("END"), true).await,
            Outcome::Success(false)
        );
    }

    #[tokio::test]
    async fn failures_to_run_are_errors() {
        match command("/no/such/werify-program", &[], 0, None, true).await {
            Outcome::Error(e) => {
                assert!(e.starts_with("starting /no/such/werify-program: "), "{e}")
            }
            other => panic!("expected an error, got {other:?}"),
        }
        match command("sh", &args(&["-c", "kill -9 $$"]), 0, None, true).await {
            Outcome::Error(e) => assert!(e.contains("killed by signal 9"), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
    }
}
