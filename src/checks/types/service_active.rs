//! The `service_active` check: is a systemd unit active, per `systemctl is-active`?
//!
//! Passes when `systemctl is-active -- NAME` exits 0; any other exit (inactive, failed,
//! unknown unit) is `Success(false)`. Found: the `state` it printed (`active`,
//! `inactive`, `failed`, …). On a host without systemd (no `systemctl` in
//! `PATH`, or not booted with systemd: no `/run/systemd/system`) the check is an
//! `Error` saying so, rather than a misleading `false`. The unit name was validated at
//! submit (no leading `-`), and `--` ends options anyway.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};

use crate::checks::check_type::{
    CheckType, FieldProblem, FieldSpec, FieldType, Fields, Typed, non_empty_text, req,
};
use crate::checks::outcome::{CheckResult, Facts};
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

    fn expected(&self) -> Facts {
        Facts::new().with("state", "active")
    }

    async fn run(self, _ctx: CheckContext) -> CheckResult {
        service_active(&self.name).await
    }
}

/// Longest state word kept from `systemctl is-active`'s output.
const MAX_STATE_BYTES: usize = 64;

async fn service_active(name: &str) -> CheckResult {
    let Some(systemctl) = find_systemctl() else {
        return CheckResult::error("systemd is not available on this host (no systemctl in PATH)");
    };
    if !Path::new(SYSTEMD_RUNTIME_DIR).is_dir() {
        return CheckResult::error(format!(
            "systemd is not available on this host (not booted with systemd: no {SYSTEMD_RUNTIME_DIR})"
        ));
    }
    let output = tokio::process::Command::new(&systemctl)
        .args(["is-active", "--", name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await;
    match output {
        Ok(output) => {
            let printed = String::from_utf8_lossy(&output.stdout);
            let state = printed.lines().next().unwrap_or("").trim();
            let state = if state.is_empty() {
                "unknown"
            } else {
                state.get(..MAX_STATE_BYTES).unwrap_or(state)
            };
            CheckResult::holds(output.status.success(), Facts::new().with("state", state))
        }
        Err(e) => CheckResult::error(format!("running {}: {e}", systemctl.display())),
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
    use crate::checks::Outcome;

    #[tokio::test]
    async fn reports_missing_systemd_or_an_inactive_unit() {
        let outcome = service_active("werify-no-such-unit-xyz.service")
            .await
            .outcome;
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
