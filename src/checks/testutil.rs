//! Test helpers for the check modules: a self-removing temporary directory, a way to
//! tell whether the tests run as root, and a sample account database. Compiled only for
//! tests.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a directory unique to this process and call.
    pub(crate) fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "werify-checks-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create a temp dir for the test");
        TempDir { path }
    }

    /// The directory as a string (check parameters are strings).
    pub(crate) fn path_str(&self) -> String {
        self.path.display().to_string()
    }

    /// `name` inside the directory, as a string.
    pub(crate) fn join(&self, name: &str) -> String {
        self.path.join(name).display().to_string()
    }

    /// Writes a file and returns its path.
    pub(crate) fn write(&self, name: &str, contents: &[u8]) -> String {
        let path = self.join(name);
        std::fs::write(&path, contents).expect("write a test file");
        path
    }

    /// Creates a FIFO with the `mkfifo` tool (the crate forbids `unsafe`) and returns it.
    pub(crate) fn mkfifo(&self, name: &str) -> String {
        let path = self.join(name);
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("run mkfifo");
        assert!(status.success(), "mkfifo {path} failed");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// True when the effective uid is 0 (the owner of `/proc/self` is the effective uid).
pub(crate) fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A passwd-format file with a comment, a broken line and a non-numeric id.
pub(crate) const SAMPLE_PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/bash\n\
    # a comment:x:5\n\
    alice:x:1000:1000::/home/alice:/bin/sh\n\
    broken\n\
    bob:x:notanumber:1:::\n";
