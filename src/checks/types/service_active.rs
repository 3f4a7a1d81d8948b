//! The `service_active` check: is a systemd unit active, per `systemctl is-active`?
//!
//! Passes when `systemctl is-active -- NAME` exits 0; any other exit (inactive, failed,
//! unknown unit) is `Success(false)`. On a host without systemd (no `systemctl` in
//! `PATH`, or not booted with systemd: no `/run/systemd/system`) the check is an
//! `Error` saying so, rather than a misleading `false`. The unit name was validated at
//! submit (no leading `-`), and `--` ends options anyway.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};

use crate::checks::Outcome;
use crate::checks::check_type::{
    CheckType, FieldProblem, FieldSpec, FieldType, Fields, Typed, non_empty_text, req,
};
use crate::checks::run::CheckContext;

/// Present on every host booted with systemd (what `sd_booted()` tests).
const SYSTEMD_RUNTIME_DIR: &str = "/run/systemd/system";

/// `service_active`: `systemctl is-active NAME` says the unit is active.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceActive {
    /// systemd unit name, e.g. `sshd` or `nginx.service`.
    pub name: String,
}

impl CheckType for ServiceActive {
    const NAME: &'static str = "service_active";
    const DOC: &'static str = "passes when `systemctl is-active name` reports the unit active";
    const FIELDS: &'static [FieldSpec] = &[req("name", FieldType::String)];

    fn from_fields(fields: &Fields) -> Result<Self, FieldProblem> {
        Ok(ServiceActive {
            name: fields.required("name"),
        })
    }

    fn to_fields(&self) -> Vec<(&'static str, Typed)> {
        vec![("name", Typed::Str(self.name.clone()))]
    }

    fn validate(&self) -> Result<(), FieldProblem> {
        non_empty_text("name", &self.name)?;
        let allowed = |c: char| c.is_ascii_alphanumeric() || ":-_.@\\".contains(c);
        if self.name.starts_with('-') || !self.name.chars().all(allowed) {
            return Err(FieldProblem::on(
                "name",
                "name must be a systemd unit name (letters, digits and :-_.@\\, \
                 not starting with -)",
            ));
        }
        Ok(())
    }

    async fn run(self, _ctx: CheckContext) -> Outcome {
        service_active(&self.name).await
    }
}

async fn service_active(name: &str) -> Outcome {
    let Some(systemctl) = find_systemctl() else {
        return Outcome::Error(
            "systemd is not available on this host (no systemctl in PATH)".into(),
        );
    };
    if !Path::new(SYSTEMD_RUNTIME_DIR).is_dir() {
        return Outcome::Error(format!(
            "systemd is not available on this host (not booted with systemd: no {SYSTEMD_RUNTIME_DIR})"
        ));
    }
    let status = tokio::process::Command::new(&systemctl)
        .args(["is-active", "--quiet", "--", name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await;
    match status {
        Ok(status) => Outcome::Success(status.success()),
        Err(e) => Outcome::Error(format!("running {}: {e}", systemctl.display())),
    }
}

fn find_systemctl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("systemctl"))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_missing_systemd_or_an_inactive_unit() {
        let outcome = service_active("werify-no-such-unit-xyz.service").await;
        let systemd = find_systemctl().is_some() && Path::new(SYSTEMD_RUNTIME_DIR).is_dir();
        if systemd {
            assert_eq!(outcome, Outcome::Success(false));
        } else {
            match outcome {
                Outcome::Error(e) => assert!(e.starts_with("systemd is not available"), "{e}"),
                other => panic!("expected an error without systemd, got {other:?}"),
            }
        }
    }
}
