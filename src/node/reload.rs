//! Changing a running node without a restart, so it never leaves the mesh: its tags
//! (gossiped at once, under a raised incarnation), its periodic checks and their
//! interval, whether `command` checks may run, and its certificate, trusted CAs and deny
//! list (read again from their files at every reload; connections they no longer allow
//! are retired or cut, see [`crate::rpc::transport::Transport::install`]). [`Reloader::reload`] takes the new
//! [`LiveConfig`] in two steps:
//!
//! 1. **prepare**: read and validate everything the new config names (the checks file);
//!    on any error nothing has changed and the error says what and where;
//! 2. **apply**: hand each part to the task that owns it, and report what changed.
//!
//! Another live part adds its field to [`LiveConfig`], its loading to `prepare` and its
//! hand-over to `apply`. What cannot change live (addresses, env, node id, data dir) is
//! not here at all: the command line
//! tells the operator that it needs a restart. Deciding when to reload (SIGHUP) and
//! reading the config file are the command line's jobs.

use std::fmt;
use std::net::IpAddr;
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
use crate::node::security::{self, SecurityFiles};
use crate::ops::coordinator::ShuttingDown;
use crate::rpc::identity::{DenyList, Identity, IdentityError};
use crate::rpc::tls::TlsError;
use crate::rpc::transport::Transport;

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
    /// Where the certificate, trusted CAs and deny list come from; the files are read
    /// again at every reload. `None` leaves them as they are.
    pub security: Option<SecurityFiles>,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The checks file cannot be read or is not valid (the error names FILE:LINE).
    #[error(transparent)]
    Checks(#[from] SpecError),
    /// A certificate, CA, secret or deny file cannot be read or is not valid.
    #[error(transparent)]
    Security(#[from] IdentityError),
    /// The certificate files describe another node, env or role than this one.
    #[error(transparent)]
    Identity(#[from] TlsError),
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
    /// Where the certificate, trusted CAs and deny list are installed.
    transport: Transport,
    /// The addresses a certificate minted here names.
    ips: Vec<IpAddr>,
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
    /// The identity and deny list to install, checked to fit this node.
    security: Option<(Identity, DenyList)>,
}

impl Reloader {
    /// A reloader over the node's parts, with `config` (whose checks file read as
    /// `checks`) in force.
    /// `transport` is the node's, `ips` the addresses a certificate minted here names.
    pub(crate) fn new(
        mesh: MeshClient,
        periodic: watch::Sender<PeriodicChecks>,
        options: watch::Sender<RunOptions>,
        (transport, ips): (Transport, Vec<IpAddr>),
        config: LiveConfig,
        checks: Option<Arc<CheckSet>>,
    ) -> Reloader {
        Reloader {
            inner: Arc::new(Inner {
                mesh,
                periodic,
                options,
                transport,
                ips,
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
        let mut prepared = prepare(new).await?;
        if let Some(files) = &prepared.config.security {
            prepared.security = Some(self.prepare_security(files).await?);
        }
        self.apply(&mut current, prepared).await
    }

    /// Reads the certificate, CA and deny files and checks that they fit this node (its
    /// env, role and node id). A certificate minted here is kept while the CA that
    /// signed it stays the same, so that a reload does not change it for nothing.
    async fn prepare_security(
        &self,
        files: &SecurityFiles,
    ) -> Result<(Identity, DenyList), ReloadError> {
        let transport = &self.inner.transport;
        let now = transport.identity();
        let (files, node_id, ips) = (files.clone(), now.node_id(), self.inner.ips.clone());
        // File reading belongs on the blocking pool, not the node's one runtime thread.
        let (identity, deny) =
            tokio::task::spawn_blocking(move || security::load(&files, node_id, &ips))
                .await
                .map_err(|_| ReloadError::ShuttingDown)??;
        let identity = identity.keeping_minted_leaf_of(&now);
        transport.check_installable(&identity)?;
        Ok((identity, deny))
    }

    /// Step 2: hands each changed part to its owner.
    async fn apply(
        &self,
        current: &mut Current,
        new: Prepared,
    ) -> Result<Vec<Change>, ReloadError> {
        let old = &current.config;
        let mut changes = Vec::new();
        // First, as the one hand-over that can still fail (a bug building TLS configs).
        if let Some((identity, deny)) = &new.security {
            changes.extend(self.install(identity, deny.clone())?);
        }
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

impl Reloader {
    /// Installs `identity` and `deny` on the transport; what changed, for the log.
    fn install(&self, identity: &Identity, deny: DenyList) -> Result<Vec<Change>, ReloadError> {
        let transport = &self.inner.transport;
        let (was, trusted_before) = (transport.identity(), transport.trust());
        let deny_changed = *trusted_before.deny() != deny;
        let (entries, entries_before) = (deny.len(), trusted_before.deny().len());
        let installed = transport.install(identity, deny)?;
        let mut changes = Vec::new();
        if identity.leaf_fingerprint() != was.leaf_fingerprint() {
            changes.push(Change {
                key: "certificate",
                what: format!(
                    "sha256 {} of CA {} (was sha256 {})",
                    identity.leaf_fingerprint(),
                    identity.ca_fingerprint(),
                    was.leaf_fingerprint()
                ),
            });
        }
        let trusted = identity.trusted_fingerprints();
        let sorted = |fingerprints: &[String]| {
            let mut v = fingerprints.to_vec();
            v.sort();
            v
        };
        // The same CAs in another order (the one that signs ours comes first) are no change.
        if sorted(&trusted) != sorted(trusted_before.ca_fingerprints()) {
            changes.push(Change {
                key: "trusted CAs",
                what: format!(
                    "{} (was {})",
                    trusted.join(", "),
                    trusted_before.ca_fingerprints().join(", ")
                ),
            });
        }
        if deny_changed {
            changes.push(Change {
                key: "deny",
                what: format!("{entries} entries (was {entries_before})"),
            });
        }
        for (peer, why) in installed.cut.iter().chain(&installed.retired) {
            tracing::warn!("connection with {peer} ends: {why}");
        }
        if !installed.cut.is_empty() || !installed.retired.is_empty() {
            changes.push(Change {
                key: "connections",
                what: format!(
                    "{} cut, {} retired (their certificates are no longer accepted)",
                    installed.cut.len(),
                    installed.retired.len()
                ),
            });
        }
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
    Ok(Prepared {
        config,
        checks,
        security: None,
    })
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
            security: None,
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
            (ctx.transport.clone(), Vec::new()),
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
            security: None,
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

    #[tokio::test]
    async fn certificates_trust_and_deny_list_are_read_again_and_installed() {
        use crate::rpc::identity::{CaSource, Secret};
        let (ctx, _dir) = test_node("reload-security");
        let scratch = Scratch::new("reload-security-files");
        let (secret, deny) = (scratch.0.join("secret"), scratch.0.join("deny"));
        // What the test node was started with, as a file.
        std::fs::write(&secret, "node unit tests\n").expect("secret");
        std::fs::write(&deny, "").expect("deny");
        let files = |env: Option<&str>| SecurityFiles {
            env: env.map(|e| e.parse().expect("env")),
            ca: CaSource::Derived {
                secret: Secret::File(secret.clone()),
            },
            deny: Some(deny.clone()),
        };
        let live = |security| LiveConfig {
            tags: Tags::new(),
            checks: None,
            check_interval: Duration::from_secs(30),
            allow_command: false,
            security,
        };
        let (periodic_tx, _periodic) = watch::channel(PeriodicChecks {
            checks: None,
            interval: Duration::from_secs(30),
        });
        let (options_tx, _options) = watch::channel(RunOptions::default());
        let reloader = Reloader::new(
            ctx.mesh.clone(),
            periodic_tx,
            options_tx,
            (ctx.transport.clone(), Vec::new()),
            live(None),
            None,
        );
        let presented = ctx.transport.identity().leaf_fingerprint();

        // The same files: the certificate minted at start is kept, nothing changes.
        let changes = reloader
            .reload(live(Some(files(None))))
            .await
            .expect("reload");
        assert_eq!(changes, vec![]);
        assert_eq!(ctx.transport.identity().leaf_fingerprint(), presented);

        // A deny list.
        std::fs::write(&deny, "operator:mallory\n").expect("deny");
        let changes = reloader
            .reload(live(Some(files(None))))
            .await
            .expect("reload");
        assert_eq!(
            changes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["deny 1 entries (was 0)"]
        );
        assert_eq!(ctx.transport.trust().deny().len(), 1);

        // A new secret in front of the old: a new certificate, both CAs trusted.
        std::fs::write(&secret, "rotated\nnode unit tests\n").expect("secret");
        let changes = reloader
            .reload(live(Some(files(None))))
            .await
            .expect("reload");
        let keys: Vec<&str> = changes.iter().map(|c| c.key).collect();
        assert_eq!(keys, ["certificate", "trusted CAs"]);
        assert_ne!(ctx.transport.identity().leaf_fingerprint(), presented);
        assert_eq!(ctx.transport.trust().ca_fingerprints().len(), 2);

        // Another env cannot be switched to; nothing changes, tags included.
        let err = reloader
            .reload(LiveConfig {
                tags: tags(&[("role", "db")]),
                ..live(Some(files(Some("staging"))))
            })
            .await
            .expect_err("another env");
        assert!(matches!(err, ReloadError::Identity(_)), "{err}");
        let view = ctx.mesh.view().await.expect("view");
        assert!(view.members[0].member.tags.is_empty());
        // A broken file: an error naming it, nothing changes.
        std::fs::write(&deny, "not a name\n").expect("deny");
        let err = reloader
            .reload(live(Some(files(None))))
            .await
            .expect_err("bad deny file");
        assert!(
            err.to_string().contains(&format!("{}:1", deny.display())),
            "{err}"
        );
        assert_eq!(ctx.transport.trust().deny().len(), 1);
    }
}
