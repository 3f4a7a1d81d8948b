//! Build script: hands the git commit the binary is built from to the crate as
//! `WERIFY_GIT_SHA` (a short sha, or `unknown` outside a git checkout, e.g. a packaged
//! source), for `werify --version`. Git is only asked about this crate's own directory:
//! a source tree unpacked inside some other repository does not take that repository's
//! commit. Cargo reruns the script when HEAD or the branch it points to moves.

use std::path::Path;
use std::process::Command;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let dir = Path::new(&manifest_dir);
    println!("cargo:rerun-if-changed=build.rs");
    let sha = git(dir, &["rev-parse", "--short", "HEAD"]);
    if sha.is_some() {
        // HEAD itself (a checkout or a new branch), the branch ref it points to (a
        // commit), and packed-refs (where `git gc` moves refs).
        let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
        if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
            watched.push(branch);
        }
        for name in watched {
            if let Some(path) = git(dir, &["rev-parse", "--git-path", &name]) {
                let path = dir.join(path);
                // A path that does not exist would make Cargo rerun the script every build.
                if path.exists() {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
            }
        }
    }
    println!(
        "cargo:rustc-env=WERIFY_GIT_SHA={}",
        sha.as_deref().unwrap_or("unknown")
    );
}

/// `git ARGS` run in `dir`, trimmed; `None` when `dir` is not the top of a checkout, git
/// is missing, or git fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    // Only a checkout whose top is this crate counts (a .git directory, or a .git file
    // for a worktree); git would otherwise find a repository in a parent directory.
    if !dir.join(".git").exists() {
        return None;
    }
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}
