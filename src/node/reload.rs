//! Changing a running node without a restart, so it never leaves the mesh: its tags
//! (gossiped at once, under a raised incarnation), its periodic checks and their
//! interval, and whether `command` checks may run. [`Reloader::reload`] takes the new
//! [`LiveConfig`] in two steps:
//!
//! 1. **prepare**: read and validate everything the new config names (the checks file);
//!    on any error nothing has changed and the error says what and where;
//! 2. **apply**: hand each part to the task that owns it, and report what changed.
//!
//! Another live part (a certificate trust set, a deny list) adds its field to
//! [`LiveConfig`], its loading to `prepare` and its hand-over to `apply`. What cannot
//! change live (addresses, identity, data dir) is not here at all: the command line
//! tells the operator that it needs a restart. Deciding when to reload (SIGHUP) and
//! reading the config file are the command line's jobs.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, watch};

use crate::checks::SpecError;
use crate::checks::duration::format_duration;
use crate::checks::run::RunOptions;
use crate::checks::spec::{CheckSet, load_operations_file};
use crate::mesh::member::Tags;
use crate::node::driver::MeshClient;
use crate::node::health::PeriodicChecks;
use crate::ops::coordinator::ShuttingDown;

/// What a running node can change without leaving the mesh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveConfig {
    /// Tags that travel with this node's membership.
    pub tags: Tags,
    /// The periodic checks file; re-read at every reload even when the path is the same.
    pub checks: Option<PathBuf>,
    /// How often the periodic checks run.
    pub check_interval: Duration,
    /// Whether `command` checks may run here (periodic ones and operations' alike).
    pub allow_command: bool,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The checks file cannot be read or is not valid (the error names FILE:LINE).
    #[error(transparent)]
    Checks(#[from] SpecError),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,
}

impl From<ShuttingDown> for ReloadError {
    fn from(_: ShuttingDown) -> ReloadError {
        ReloadError::ShuttingDown
    }
}

/// One thing a reload changed, as the log line shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The config key.
    pub key: &'static str,
    /// What it is now, and what it was.
    pub what: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.key, self.what)
    }
}

/// Applies new live settings to a running node; cheap to clone.
#[derive(Clone)]
pub struct Reloader {
    inner: Arc<Inner>,
}

struct Inner {
    mesh: MeshClient,
    periodic: watch::Sender<PeriodicChecks>,
    options: watch::Sender<RunOptions>,
    /// What is in force; the lock also makes reloads take turns.
    current: Mutex<Current>,
}

struct Current {
    config: LiveConfig,
    checks: Option<Arc<CheckSet>>,
}

/// Everything a reload needs, read and validated, not yet applied.
struct Prepared {
    config: LiveConfig,
    checks: Option<Arc<CheckSet>>,
}

impl Reloader {
    /// A reloader over the node's parts, with `config` (whose checks file read as
    /// `checks`) in force.
    pub(crate) fn new(
        mesh: MeshClient,
        periodic: watch::Sender<PeriodicChecks>,
        options: watch::Sender<RunOptions>,
        config: LiveConfig,
        checks: Option<Arc<CheckSet>>,
    ) -> Reloader {
        Reloader {
            inner: Arc::new(Inner {
                mesh,
                periodic,
                options,
                current: Mutex::new(Current { config, checks }),
            }),
        }
    }

    /// The live settings in force.
    pub async fn current(&self) -> LiveConfig {
        self.inner.current.lock().await.config.clone()
    }

    /// Applies `new`: all of it, or (on error) none of it. Returns what changed, empty
    /// when nothing did.
    pub async fn reload(&self, new: LiveConfig) -> Result<Vec<Change>, ReloadError> {
        let mut current = self.inner.current.lock().await;
        let prepared = prepare(new).await?;
        self.apply(&mut current, prepared).await
    }

    /// Step 2: hands each changed part to its owner.
    async fn apply(
        &self,
        current: &mut Current,
        new: Prepared,
    ) -> Result<Vec<Change>, ReloadError> {
        let old = &current.config;
        let mut changes = Vec::new();
        if new.config.tags != old.tags {
            self.inner.mesh.set_tags(new.config.tags.clone()).await?;
            changes.push(Change {
                key: "tags",
                what: format!(
                    "{} (was {})",
                    show_tags(&new.config.tags),
                    show_tags(&old.tags)
                ),
            });
        }
        let checks_changed = new.config.checks != old.checks || new.checks != current.checks;
        if checks_changed {
            changes.push(Change {
                key: "checks",
                what: match (&new.config.checks, &new.checks) {
                    (Some(path), Some(set)) => format!(
                        "{} ({}, was {})",
                        path.display(),
                        count_checks(Some(set)),
                        count_checks(current.checks.as_deref())
                    ),
                    _ => format!("off (was {})", count_checks(current.checks.as_deref())),
                },
            });
        }
        if new.config.check_interval != old.check_interval {
            changes.push(Change {
                key: "check_interval",
                what: format!(
                    "{} (was {})",
                    format_duration(new.config.check_interval),
                    format_duration(old.check_interval)
                ),
            });
        }
        if checks_changed || new.config.check_interval != old.check_interval {
            self.inner.periodic.send_replace(PeriodicChecks {
                checks: new.checks.clone(),
                interval: new.config.check_interval,
            });
        }
        if new.config.allow_command != old.allow_command {
            let allow = new.config.allow_command;
            self.inner
                .options
                .send_modify(|options| options.allow_command = allow);
            changes.push(Change {
                key: "allow_command",
                what: format!("{allow} (was {})", old.allow_command),
            });
        }
        current.config = new.config;
        current.checks = new.checks;
        Ok(changes)
    }
}

/// Step 1: reads and validates what `config` names. Nothing changes here.
async fn prepare(config: LiveConfig) -> Result<Prepared, ReloadError> {
    let checks = match &config.checks {
        Some(path) => {
            let path = path.clone();
            // File reading belongs on the blocking pool, not the node's one runtime thread.
            let set = tokio::task::spawn_blocking(move || load_operations_file(&path))
                .await
                .map_err(|_| ReloadError::ShuttingDown)??;
            Some(Arc::new(set))
        }
        None => None,
    };
    Ok(Prepared { config, checks })
}

/// `1 check`, `2 checks`, or `off`.
fn count_checks(set: Option<&CheckSet>) -> String {
    match set.map(CheckSet::len) {
        Some(1) => "1 check".to_string(),
        Some(n) => format!("{n} checks"),
        None => "off".to_string(),
    }
}

/// Tags as `{k=v, …}`.
fn show_tags(tags: &Tags) -> String {
    let pairs: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::dispatch::tests::{Scratch, test_node};

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn a_reload_applies_every_part_or_none() {
        let (ctx, _dir) = test_node("reload");
        let scratch = Scratch::new("reload-files");
        let checks_path = scratch.0.join("checks.json");
        std::fs::write(
            &checks_path,
            r#"{"hosts": {"type": "file_exists", "path": "/etc/hosts"}}"#,
        )
        .expect("write checks");
        let first = LiveConfig {
            tags: tags(&[("role", "web")]),
            checks: None,
            check_interval: Duration::from_secs(30),
            allow_command: false,
        };
        let (periodic_tx, mut periodic) = watch::channel(PeriodicChecks {
            checks: None,
            interval: first.check_interval,
        });
        let (options_tx, mut options) = watch::channel(RunOptions::default());
        let reloader = Reloader::new(
            ctx.mesh.clone(),
            periodic_tx,
            options_tx,
            first.clone(),
            None,
        );

        // The same settings: nothing changes, nothing is sent.
        assert_eq!(
            reloader.reload(first.clone()).await.expect("reload"),
            vec![]
        );
        assert!(!periodic.has_changed().expect("open"));
        assert!(!options.has_changed().expect("open"));

        // Everything at once.
        let second = LiveConfig {
            tags: tags(&[("role", "db")]),
            checks: Some(checks_path.clone()),
            check_interval: Duration::from_secs(5),
            allow_command: true,
        };
        let changes = reloader.reload(second.clone()).await.expect("reload");
        let keys: Vec<&str> = changes.iter().map(|c| c.key).collect();
        assert_eq!(keys, ["tags", "checks", "check_interval", "allow_command"]);
        assert_eq!(changes[0].to_string(), "tags {role=db} (was {role=web})");
        assert!(
            changes[1].to_string().ends_with("(1 check, was off)"),
            "{}",
            changes[1]
        );
        let view = ctx.mesh.view().await.expect("view");
        assert_eq!(view.members[0].member.tags, tags(&[("role", "db")]));
        assert!(view.members[0].member.incarnation > 0);
        let sent = periodic.borrow_and_update().clone();
        assert_eq!(sent.interval, Duration::from_secs(5));
        assert_eq!(sent.checks.map(|c| c.len()), Some(1));
        assert!(options.borrow_and_update().allow_command);
        assert_eq!(reloader.current().await, second);

        // A broken checks file: an error naming it, and nothing else changes either.
        std::fs::write(&checks_path, "{\n  \"hosts\": \n").expect("break checks");
        let third = LiveConfig {
            tags: tags(&[("role", "cache")]),
            ..second.clone()
        };
        let e = reloader.reload(third).await.expect_err("broken checks");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("{}:", checks_path.display())),
            "{text}"
        );
        assert_eq!(reloader.current().await, second);
        let view = ctx.mesh.view().await.expect("view");
        assert_eq!(view.members[0].member.tags, tags(&[("role", "db")]));
        assert!(!periodic.has_changed().expect("open"));

        // The same path with new contents counts as changed checks.
        std::fs::write(
            &checks_path,
            r#"{"a": {"type": "file_exists", "path": "/etc/hosts"},
                "b": {"type": "file_exists", "path": "/etc/passwd"}}"#,
        )
        .expect("write checks");
        let changes = reloader.reload(second.clone()).await.expect("reload");
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(
            changes[0].to_string().ends_with("(2 checks, was 1 check)"),
            "{}",
            changes[0]
        );
        assert_eq!(
            periodic
                .borrow_and_update()
                .checks
                .as_ref()
                .map(|c| c.len()),
            Some(2)
        );

        // Checks off.
        let changes = reloader
            .reload(LiveConfig {
                checks: None,
                ..second
            })
            .await
            .expect("reload");
        assert_eq!(changes[0].to_string(), "checks off (was 2 checks)");
        assert_eq!(periodic.borrow_and_update().checks, None);
    }
}
