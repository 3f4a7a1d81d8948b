//! The `process_running` check: is some process on this host (as visible in `/proc`)
//! running a given executable and/or under a given name?
//!
//! * `path` matches when it equals the target of `/proc/PID/exe` (the real executable,
//!   which the seed missed) or the process's argv\[0\] (what the seed compared).
//! * `check` (the name) matches when it equals `/proc/PID/comm` (so a login shell `-bash`
//!   matches `bash`) or the basename of argv\[0\] (comm is cut at 15 characters).
//! * Both given: **one** process must satisfy both (the seed OR-ed them across processes).
//!
//! Entries that vanish or cannot be read (other users' `exe` links without privilege,
//! kernel threads with no argv) are skipped, never an error. Only processes visible in
//! this node's PID namespace are seen. Linux only.

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::Outcome;
use super::run::CheckContext;

/// How much of `/proc/PID/cmdline` is read: enough for any argv\[0\] (PATH_MAX is 4096).
const MAX_CMDLINE_BYTES: u64 = 8192;

/// Runs `process_running`; at least one of `path` and `name` is given (checked at submit).
pub(crate) fn process_running(
    path: Option<&str>,
    name: Option<&str>,
    ctx: &CheckContext,
) -> Outcome {
    let entries = match std::fs::read_dir("/proc") {
        Ok(entries) => entries,
        Err(e) => return Outcome::Error(format!("listing /proc: {e}")),
    };
    for (seen, entry) in entries.flatten().enumerate() {
        if seen.is_multiple_of(256) && ctx.expired() {
            return ctx.timed_out();
        }
        let file_name = entry.file_name();
        if file_name.is_empty() || !file_name.as_bytes().iter().all(u8::is_ascii_digit) {
            continue;
        }
        let dir = entry.path();
        let mut process = Process {
            dir: &dir,
            argv0: None,
        };
        let path_ok = path.is_none_or(|p| process.exe_is(p) || process.argv0_is(p));
        if path_ok && name.is_none_or(|n| process.named(n)) {
            return Outcome::Success(true);
        }
    }
    Outcome::Success(false)
}

/// One `/proc/PID` entry, reading each file at most once and only when needed.
struct Process<'a> {
    dir: &'a Path,
    argv0: Option<Option<Vec<u8>>>,
}

impl Process<'_> {
    fn exe_is(&self, wanted: &str) -> bool {
        let Ok(target) = std::fs::read_link(self.dir.join("exe")) else {
            return false;
        };
        let target = target.as_os_str().as_bytes();
        // A binary replaced on disk (e.g. by an upgrade) shows as "PATH (deleted)".
        target == wanted.as_bytes() || target.strip_suffix(b" (deleted)") == Some(wanted.as_bytes())
    }

    fn argv0(&mut self) -> Option<&[u8]> {
        if self.argv0.is_none() {
            let mut bytes = Vec::new();
            let read = std::fs::File::open(self.dir.join("cmdline"))
                .and_then(|f| f.take(MAX_CMDLINE_BYTES).read_to_end(&mut bytes));
            let first = match read {
                Ok(_) => bytes.split(|&b| b == 0).next().map(<[u8]>::to_vec),
                Err(_) => None,
            };
            self.argv0 = Some(first.filter(|a| !a.is_empty()));
        }
        self.argv0.as_ref().and_then(|a| a.as_deref())
    }

    fn argv0_is(&mut self, wanted: &str) -> bool {
        self.argv0() == Some(wanted.as_bytes())
    }

    fn named(&mut self, wanted: &str) -> bool {
        let comm = std::fs::read(self.dir.join("comm")).unwrap_or_default();
        if comm.strip_suffix(b"\n").unwrap_or(&comm) == wanted.as_bytes() {
            return true;
        }
        self.argv0()
            .map(|a| Path::new(OsStr::from_bytes(a)))
            .and_then(Path::file_name)
            .is_some_and(|base| base.as_bytes() == wanted.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    fn running(path: Option<&str>, name: Option<&str>) -> Outcome {
        process_running(path, name, &CheckContext::for_test(Duration::from_secs(30)))
    }

    #[test]
    fn matches_executable_name_and_both_in_one_process() {
        let child = Sleeper::spawn(None);
        let exe = child.exe();
        assert_eq!(running(Some(&exe), None), Outcome::Success(true));
        assert_eq!(running(None, Some("sleep")), Outcome::Success(true));
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
