//! The `process_running` check: is some process on this host (as visible in `/proc`)
//! running a given executable and/or under a given name?
//!
//! * `path` matches when it equals the target of `/proc/PID/exe` (the real executable,
//!   symlinks resolved) or the process's argv\[0\] (the path it was started under, which
//!   may be a symlink such as `/usr/bin/python3`).
//! * `check` (the name) matches when it equals `/proc/PID/comm` (so a login shell `-bash`
//!   matches `bash`) or the basename of argv\[0\] (comm is cut at 15 characters).
//! * Both given: **one** process must satisfy both, not one process each.
//!
//! Entries that vanish or cannot be read (other users' `exe` links without privilege,
//! kernel threads with no argv) are skipped, never an error. Only processes visible in
//! this node's PID namespace are seen. Linux only.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::checks::check_type::{
    CheckType, FieldProblem, FieldSpec, FieldType, Fields, Typed, non_empty_text, opt,
};
use crate::checks::outcome::{CheckResult, Facts};
use crate::checks::procfs::{Process, process_dirs};
use crate::checks::run::{CheckContext, blocking};

/// `process_running`: some process matches `path` and/or `check` (at least one given).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessRunning {
    /// Executable path: matches `/proc/PID/exe` or argv\[0\].
    pub path: Option<String>,
    /// Process name: matches `/proc/PID/comm` or the basename of argv\[0\].
    pub check: Option<String>,
}

impl CheckType for ProcessRunning {
    const NAME: &'static str = "process_running";
    const DOC: &'static str =
        "passes when a process matches path (executable or argv[0]) and/or check (its name)";
    const FIELDS: &'static [FieldSpec] = &[
        opt("path", FieldType::String),
        opt("check", FieldType::String),
    ];

    fn from_fields(fields: &Fields) -> Result<Self, FieldProblem> {
        Ok(ProcessRunning {
            path: fields.string("path"),
            check: fields.string("check"),
        })
    }

    fn to_fields(&self) -> Vec<(&'static str, Typed)> {
        let mut fields = Vec::new();
        fields.extend(self.path.clone().map(|p| ("path", Typed::Str(p))));
        fields.extend(self.check.clone().map(|c| ("check", Typed::Str(c))));
        fields
    }

    fn validate(&self) -> Result<(), FieldProblem> {
        if self.path.is_none() && self.check.is_none() {
            return Err(FieldProblem::whole(
                "process_running needs path, check or both \
                 (path matches the executable or argv[0], check the process name)",
            ));
        }
        if let Some(path) = &self.path {
            non_empty_text("path", path)?;
        }
        if let Some(check) = &self.check {
            non_empty_text("check", check)?;
        }
        Ok(())
    }

    fn expected(&self) -> Facts {
        let mut expected = Facts::new();
        if let Some(path) = &self.path {
            expected = expected.with("path", path.as_str());
        }
        if let Some(check) = &self.check {
            expected = expected.with("name", check.as_str());
        }
        expected.with("running", "true")
    }

    async fn run(self, ctx: CheckContext) -> CheckResult {
        blocking(move || process_running(self.path.as_deref(), self.check.as_deref(), &ctx)).await
    }
}

/// Most pids named in `found`.
const MAX_LISTED_PIDS: usize = 16;

/// Runs `process_running`; at least one of `path` and `name` is given (checked at submit).
/// Found: the `pids` that match (comma-separated, `none` if none) and their `count`.
fn process_running(path: Option<&str>, name: Option<&str>, ctx: &CheckContext) -> CheckResult {
    let dirs = match process_dirs() {
        Ok(dirs) => dirs,
        Err(e) => return CheckResult::error(format!("listing /proc: {e}")),
    };
    let mut pids = Vec::new();
    let mut count = 0usize;
    for (seen, dir) in dirs.enumerate() {
        if seen.is_multiple_of(256) && ctx.expired() {
            return ctx.timed_out();
        }
        let mut process = Process::new(&dir);
        let path_ok =
            path.is_none_or(|p| process.exe_is(p) || process.argv0() == Some(p.as_bytes()));
        if path_ok && name.is_none_or(|n| named(&mut process, n)) {
            count += 1;
            if pids.len() < MAX_LISTED_PIDS
                && let Some(pid) = dir.file_name().and_then(OsStr::to_str)
            {
                pids.push(pid.to_string());
            }
        }
    }
    let listed = match (pids.is_empty(), count > pids.len()) {
        (true, _) => "none".to_string(),
        (false, false) => pids.join(","),
        (false, true) => format!("{},…", pids.join(",")),
    };
    CheckResult::holds(
        count > 0,
        Facts::new()
            .with("pids", listed)
            .with("count", count.to_string()),
    )
}

/// The process's name is `wanted`: its `comm`, or the basename of its argv\[0\].
fn named(process: &mut Process, wanted: &str) -> bool {
    if process.comm() == wanted.as_bytes() {
        return true;
    }
    process
        .argv0()
        .map(|a| Path::new(OsStr::from_bytes(a)))
        .and_then(Path::file_name)
        .is_some_and(|base| base.as_bytes() == wanted.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};
    use std::time::Duration;

    /// A `sleep` child killed on drop.
    struct Sleeper(Child);

    impl Sleeper {
        fn spawn(argv0: Option<&str>) -> Self {
            let mut cmd = Command::new("sleep");
            cmd.arg("60");
            if let Some(argv0) = argv0 {
                cmd.arg0(argv0);
            }
            Sleeper(cmd.spawn().expect("spawn sleep"))
        }

        fn exe(&self) -> String {
            // Wait until the child has finished exec'ing sleep: the exe link changes early
            // in execve and the new argv shows in cmdline only a little later.
            let pid = self.0.id();
            for _ in 0..200 {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                if let Ok(target) = std::fs::read_link(format!("/proc/{pid}/exe")) {
                    let target = target.display().to_string();
                    if target.ends_with("sleep") && cmdline.ends_with(b"60\0") {
                        return target;
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("sleep child never exec'd");
        }
    }

    impl Drop for Sleeper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn running(path: Option<&str>, name: Option<&str>) -> CheckResult {
        process_running(path, name, &CheckContext::for_test(Duration::from_secs(30)))
    }

    #[test]
    fn matches_executable_name_and_both_in_one_process() {
        let child = Sleeper::spawn(None);
        let exe = child.exe();
        assert_eq!(running(Some(&exe), None), Outcome::Success(true));
        assert_eq!(running(None, Some("sleep")), Outcome::Success(true));
        // The child's pid is among those found.
        let pid = child.0.id().to_string();
        let found = running(Some(&exe), Some("sleep")).observation.found;
        let pids = found.get("pids").unwrap_or_default();
        let count: usize = found.get("count").and_then(|c| c.parse().ok()).unwrap_or(0);
        assert!(
            count > MAX_LISTED_PIDS || pids.split(',').any(|p| p == pid),
            "{pid} not in {pids}"
        );
        let none = running(None, Some("werify-no-such-process-name"));
        assert_eq!(none.observation.found.get("pids"), Some("none"));
        assert_eq!(none.observation.found.get("count"), Some("0"));
        assert_eq!(running(Some(&exe), Some("sleep")), Outcome::Success(true));
        // Both given: one process must satisfy both.
        let own_name = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(
            running(Some(&exe), Some(own_name.trim_end())),
            Outcome::Success(false)
        );
        assert_eq!(
            running(None, Some("werify-no-such-process-name")),
            Outcome::Success(false)
        );
        assert_eq!(
            running(Some("/no/such/werify/binary"), None),
            Outcome::Success(false)
        );
    }

    #[test]
    fn matches_argv0_like_the_seed() {
        let fake = format!("/tmp/werify-fakeproc-{}", std::process::id());
        let child = Sleeper::spawn(Some(&fake));
        child.exe();
        let base = fake.rsplit('/').next().unwrap_or_default();
        assert_eq!(running(Some(&fake), None), Outcome::Success(true));
        assert_eq!(running(None, Some(base)), Outcome::Success(true));
        assert_eq!(running(Some(&fake), Some(base)), Outcome::Success(true));
    }
}
