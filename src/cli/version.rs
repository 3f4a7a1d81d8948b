//! What `werify --version` says: the package version, the git commit the binary was built
//! from (found by build.rs; `unknown` when built outside a git checkout) and the version
//! of the wire protocol, [`PROTOCOL_VERSION`], which decides who can talk to whom.

use std::sync::LazyLock;

use crate::rpc::protocol::PROTOCOL_VERSION;

/// The git commit this binary was built from, short, or `unknown`.
pub const GIT_SHA: &str = env!("WERIFY_GIT_SHA");

/// `X.Y.Z (git SHA, protocol N)`, the version clap prints after the command's name.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} (git {GIT_SHA}, protocol {PROTOCOL_VERSION})",
        env!("CARGO_PKG_VERSION")
    )
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_names_the_package_the_commit_and_the_protocol() {
        let v = VERSION.as_str();
        let (package, rest) = v.split_once(' ').expect("a space after X.Y.Z");
        assert_eq!(package, env!("CARGO_PKG_VERSION"));
        assert_eq!(package.split('.').count(), 3, "{v}");
        assert_eq!(
            rest,
            format!("(git {GIT_SHA}, protocol {PROTOCOL_VERSION})")
        );
        assert!(
            GIT_SHA == "unknown"
                || (GIT_SHA.len() >= 7 && GIT_SHA.chars().all(|c| c.is_ascii_hexdigit())),
            "{GIT_SHA}"
        );
    }
}
