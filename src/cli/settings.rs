//! The configuration `werify node` runs with, merged key by key from four layers: a flag
//! wins over its environment variable, which wins over the config file, which wins over
//! the default. Which layer gave a value comes from clap's
//! [`ArgMatches::value_source`]; every value remembers it ([`Source`]). `werify node`,
//! `werify config check` and a node's reload on SIGHUP all go through [`resolve`], so the
//! three always agree. Reading the file is [`crate::cli::config_file`]'s job; what a node
//! does with the result is [`crate::node`]'s.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command};

use crate::checks::duration::format_duration;
use crate::cli::args::{IdentityArgs, NodeArgs};
use crate::cli::config_file::{self, DEFAULT_CONFIG_PATH, FileConfig, KEYS, Located};
use crate::cli::error::CliError;
use crate::cli::identity::{ca_source, env_of};
use crate::cli::logging::{LogFormat, LogLevel};
use crate::mesh::config::Profile;
use crate::node::NodeConfig;
use crate::node::reload::LiveConfig;

/// Keys a running node applies on SIGHUP; every other key needs a restart.
pub const LIVE_KEYS: &[&str] = &[
    "tags",
    "checks",
    "check_interval",
    "allow_command",
    "log_level",
];

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag, such as `--port`.
    Flag(String),
    /// An environment variable, such as `WERIFY_PORT`.
    Env(String),
    /// A line of the config file.
    File { path: PathBuf, line: usize },
    /// Nothing set it.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(var) => write!(f, "env {var}"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

/// One key of the effective configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The config file key (one of [`KEYS`]).
    pub key: &'static str,
    /// The value as a TOML value (`"prod"`, `30035`, `["10.0.0.1"]`); `None` when unset.
    pub value: Option<String>,
    /// Where it came from.
    pub source: Source,
}

/// Why the merged configuration cannot be used, though every layer was valid on its own.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "{key} ({from}) needs {needs} as well: a PEM CA is the pair ca_cert and ca_key; set both or neither"
    )]
    Unpaired {
        key: &'static str,
        from: Source,
        needs: &'static str,
    },
    #[error(
        "secret_file ({secret_from}) and ca_cert ({ca_from}) cannot be used together: the env CA is derived from a secret or loaded from PEM files, not both; remove one"
    )]
    SecretAndPem {
        secret_from: Source,
        ca_from: Source,
    },
}

/// The effective configuration of a node: typed values and, in [`Settings::entries`],
/// each key's value and source.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    /// `--env`, the secret and the CA files (and `WERIFY_SECRET`, which no file holds).
    pub identity: IdentityArgs,
    pub bind: IpAddr,
    pub port: u16,
    pub advertise: Option<String>,
    pub join: Vec<String>,
    pub tags: BTreeMap<String, String>,
    pub workers: u32,
    pub data_dir: Option<PathBuf>,
    pub profile: Profile,
    pub checks: Option<PathBuf>,
    pub check_interval: Duration,
    pub allow_command: bool,
    pub http: Option<SocketAddr>,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    /// Every key of [`KEYS`], in that order.
    pub entries: Vec<Setting>,
}

impl Settings {
    /// The entry of `key`.
    pub fn entry(&self, key: &str) -> Option<&Setting> {
        self.entries.iter().find(|s| s.key == key)
    }

    /// The node configuration these settings describe; reads the secret file if one is
    /// named.
    pub fn node_config(&self) -> Result<NodeConfig, CliError> {
        Ok(NodeConfig {
            env: env_of(&self.identity)?,
            ca: ca_source(&self.identity)?,
            bind: self.bind,
            port: self.port,
            advertise: self.advertise.clone(),
            join: self.join.clone(),
            tags: self.tags.clone(),
            workers: self.workers as usize,
            data_dir: self.data_dir.clone(),
            profile: self.profile,
            checks: self.checks.clone(),
            check_interval: self.check_interval,
            allow_command: self.allow_command,
            http: self.http,
        })
    }

    /// What a running node can change without a restart (the log level aside, which is
    /// the command line's).
    pub fn live(&self) -> LiveConfig {
        LiveConfig {
            tags: self.tags.clone(),
            checks: self.checks.clone(),
            check_interval: self.check_interval,
            allow_command: self.allow_command,
        }
    }
}

/// The config file `args` name: `--config` (or `WERIFY_CONFIG`), else the default path
/// when a file exists there.
pub fn config_path(args: &NodeArgs) -> Option<PathBuf> {
    match &args.config {
        Some(path) => Some(path.clone()),
        None => {
            let default = Path::new(DEFAULT_CONFIG_PATH);
            default.exists().then(|| default.to_path_buf())
        }
    }
}

/// Merges flags and environment variables (`args`, parsed from `matches`), the config
/// file and the defaults. Reads the config file, nothing else.
pub fn resolve(args: &NodeArgs, matches: &ArgMatches) -> Result<Settings, CliError> {
    let path = config_path(args);
    let file = match &path {
        Some(p) => config_file::load(p)?,
        None => FileConfig::default(),
    };
    let command = NodeArgs::augment_args(Command::new("node"));
    let mut l = Layers {
        matches,
        command: &command,
        file: &file.path,
        entries: Vec::new(),
    };
    let f = file.clone();
    let env = l.pick(
        "env",
        "env",
        args.identity.env.clone(),
        at(f.env).map(some),
        quoted,
    );
    let bind = l.pick("bind", "bind", args.bind, at(f.bind), |b| Some(quote(b)));
    let port = l.pick("port", "port", args.port, at(f.port), |p| {
        Some(p.to_string())
    });
    let advertise = l.pick(
        "advertise",
        "advertise",
        args.advertise.clone(),
        at(f.advertise).map(some),
        quoted,
    );
    let join = l.pick("join", "join", args.join.clone(), at(f.join), |j| {
        Some(format!(
            "[{}]",
            j.iter().map(quote).collect::<Vec<_>>().join(", ")
        ))
    });
    let tags = l.pick("tags", "tag", parse_tags(&args.tag)?, at(f.tags), |t| {
        Some(inline_table(t))
    });
    let workers = l.pick("workers", "workers", args.workers, at(f.workers), |w| {
        Some(w.to_string())
    });
    let data_dir = l.pick(
        "data_dir",
        "data_dir",
        args.data_dir.clone(),
        at(f.data_dir).map(some),
        quoted_path,
    );
    let profile = l.pick("profile", "profile", args.profile, at(f.profile), |p| {
        Some(quote(p))
    });
    let secret_file = l.pick(
        "secret_file",
        "secret_file",
        args.identity.secret_file.clone(),
        at(f.secret_file).map(some),
        quoted_path,
    );
    let ca_cert = l.pick(
        "ca_cert",
        "ca_cert",
        args.identity.ca_cert.clone(),
        at(f.ca_cert).map(some),
        quoted_path,
    );
    let ca_key = l.pick(
        "ca_key",
        "ca_key",
        args.identity.ca_key.clone(),
        at(f.ca_key).map(some),
        quoted_path,
    );
    let checks = l.pick(
        "checks",
        "checks",
        args.checks.clone(),
        at(f.checks).map(some),
        quoted_path,
    );
    let check_interval = l.pick(
        "check_interval",
        "check_interval",
        args.check_interval,
        at(f.check_interval),
        |d| Some(quote(format_duration(*d))),
    );
    let allow_command = l.pick(
        "allow_command",
        "allow_command",
        args.allow_command,
        at(f.allow_command),
        |b| Some(b.to_string()),
    );
    let http = l.pick("http", "http", args.http, at(f.http).map(some), |h| {
        h.as_ref().map(quote)
    });
    let log_level = l.pick(
        "log_level",
        "log_level",
        args.log_level,
        at(f.log_level),
        |v| Some(quote(v)),
    );
    let log_format = l.pick(
        "log_format",
        "log_format",
        args.log_format,
        at(f.log_format),
        |v| Some(quote(v)),
    );
    let entries = l.entries;
    debug_assert!(entries.iter().map(|s| s.key).eq(KEYS.iter().copied()));
    let source_of = |key: &str| {
        entries
            .iter()
            .find(|s| s.key == key)
            .map_or(Source::Default, |s| s.source.clone())
    };
    match (&ca_cert, &ca_key, &secret_file) {
        (Some(_), None, _) => {
            return Err(SettingsError::Unpaired {
                key: "ca_cert",
                from: source_of("ca_cert"),
                needs: "ca_key",
            }
            .into());
        }
        (None, Some(_), _) => {
            return Err(SettingsError::Unpaired {
                key: "ca_key",
                from: source_of("ca_key"),
                needs: "ca_cert",
            }
            .into());
        }
        (Some(_), Some(_), Some(_)) => {
            return Err(SettingsError::SecretAndPem {
                secret_from: source_of("secret_file"),
                ca_from: source_of("ca_cert"),
            }
            .into());
        }
        _ => {}
    }
    let identity = IdentityArgs {
        env,
        secret_file,
        secret: args.identity.secret.clone(),
        ca_cert,
        ca_key,
    };
    // A bad env name is reported now, not when the node builds its identity.
    env_of(&identity)?;
    Ok(Settings {
        file: path,
        identity,
        bind,
        port,
        advertise,
        join,
        tags,
        workers,
        data_dir,
        profile,
        checks,
        check_interval,
        allow_command,
        http,
        log_level,
        log_format,
        entries,
    })
}

/// `--tag KEY=VALUE` flags as a map.
pub fn parse_tags(tags: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut out = BTreeMap::new();
    for t in tags {
        match t.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            _ => return Err(CliError::NodeTag(t.clone())),
        }
    }
    Ok(out)
}

/// The layers being merged, and the entries merged so far.
struct Layers<'a> {
    matches: &'a ArgMatches,
    /// `werify node`'s options, for their flag names and environment variables.
    command: &'a Command,
    /// The config file (empty when none was read).
    file: &'a Path,
    entries: Vec<Setting>,
}

impl Layers<'_> {
    /// The value of `key`: clap's (`given`) when a flag or environment variable set it,
    /// else the file's, else clap's default. Records the entry.
    fn pick<T>(
        &mut self,
        key: &'static str,
        arg: &str,
        given: T,
        in_file: Option<(T, usize)>,
        show: impl Fn(&T) -> Option<String>,
    ) -> T {
        let from_clap = match self.matches.value_source(arg) {
            Some(ValueSource::CommandLine) => Some(Source::Flag(self.flag_of(arg))),
            Some(ValueSource::EnvVariable) => Some(Source::Env(self.env_of(arg))),
            _ => None,
        };
        let (value, source) = match (from_clap, in_file) {
            (Some(source), _) => (given, source),
            (None, Some((value, line))) => (
                value,
                Source::File {
                    path: self.file.to_path_buf(),
                    line,
                },
            ),
            (None, None) => (given, Source::Default),
        };
        self.entries.push(Setting {
            key,
            value: show(&value),
            source,
        });
        value
    }

    fn flag_of(&self, arg: &str) -> String {
        self.command
            .get_arguments()
            .find(|a| a.get_id() == arg)
            .and_then(|a| a.get_long())
            .map_or_else(|| arg.to_string(), |long| format!("--{long}"))
    }

    fn env_of(&self, arg: &str) -> String {
        self.command
            .get_arguments()
            .find(|a| a.get_id() == arg)
            .and_then(|a| a.get_env())
            .map_or_else(|| arg.to_string(), |v| v.to_string_lossy().into_owned())
    }
}

/// A file value with its line, as [`Layers::pick`] takes it.
fn at<T>(located: Option<Located<T>>) -> Option<(T, usize)> {
    located.map(|l| (l.value, l.line))
}

/// A file value for a key whose clap value is optional.
fn some<T>((value, line): (T, usize)) -> (Option<T>, usize) {
    (Some(value), line)
}

/// A TOML basic string (JSON's escapes are a subset of TOML's).
fn quote(v: impl fmt::Display) -> String {
    serde_json::Value::String(v.to_string()).to_string()
}

fn quoted(v: &Option<String>) -> Option<String> {
    v.as_ref().map(quote)
}

fn quoted_path(v: &Option<PathBuf>) -> Option<String> {
    v.as_ref().map(|p| quote(p.display()))
}

/// A TOML inline table of strings, keys quoted when they are not bare keys.
fn inline_table(tags: &BTreeMap<String, String>) -> String {
    if tags.is_empty() {
        return "{}".to_string();
    }
    let bare = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let pairs: Vec<String> = tags
        .iter()
        .map(|(k, v)| {
            let k = if bare(k) { k.clone() } else { quote(k) };
            format!("{k} = {}", quote(v))
        })
        .collect();
    format!("{{ {} }}", pairs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::{Cli, Command as Sub};
    use clap::{CommandFactory, FromArgMatches};

    /// Resolves `werify node ARGS` with the config text `file` (if any), environment
    /// variables set through clap's own lookup being out of reach here (see
    /// tests/config.rs for those).
    fn resolve_with(args: &[&str], file: Option<&str>) -> Result<Settings, CliError> {
        let dir = std::env::temp_dir().join(format!(
            "werify-settings-{}-{}",
            std::process::id(),
            args.join("_").replace('/', "")
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("werify.toml");
        let mut argv = vec!["werify".to_string(), "node".to_string()];
        if let Some(text) = file {
            std::fs::write(&path, text).expect("write config");
            argv.push("--config".into());
            argv.push(path.display().to_string());
        }
        argv.extend(args.iter().map(|s| s.to_string()));
        let matches = Cli::command().try_get_matches_from(&argv).expect("parses");
        let cli = Cli::from_arg_matches(&matches).expect("parses");
        let Sub::Node(node) = cli.command else {
            panic!("node");
        };
        let sub = matches.subcommand_matches("node").expect("node matches");
        let out = resolve(&node, sub);
        let _ = std::fs::remove_dir_all(&dir);
        out
    }

    #[test]
    fn a_flag_beats_the_file_which_beats_the_default() {
        let s = resolve_with(
            &["--port", "31000", "--tag", "role=db"],
            Some("port = 30999\nworkers = 8\n\n[tags]\nrole = \"web\"\ndc = \"ams1\"\n"),
        )
        .expect("valid");
        assert_eq!(s.port, 31000);
        assert_eq!(
            s.entry("port").map(|e| &e.source),
            Some(&Source::Flag("--port".into()))
        );
        assert_eq!(s.workers, 8);
        assert!(matches!(
            s.entry("workers").map(|e| &e.source),
            Some(Source::File { line: 2, .. })
        ));
        // Tags are one key: flags replace the file's table as a whole.
        assert_eq!(s.tags, BTreeMap::from([("role".into(), "db".into())]));
        assert_eq!(
            s.entry("tags").and_then(|e| e.value.as_deref()),
            Some("{ role = \"db\" }")
        );
        assert_eq!(s.profile, Profile::Lan);
        assert_eq!(
            s.entry("profile").map(|e| &e.source),
            Some(&Source::Default)
        );
        assert_eq!(s.entry("advertise").and_then(|e| e.value.clone()), None);
        assert_eq!(s.entries.len(), KEYS.len());
        // A value equal to the default but given as a flag still counts as the flag's.
        let s = resolve_with(&["--port", "30035"], Some("port = 30999\n")).expect("valid");
        assert_eq!(s.port, 30035);
    }

    #[test]
    fn the_identity_pair_is_checked_after_merging() {
        let e = resolve_with(&[], Some("ca_cert = \"/x/ca.crt.pem\"\n"))
            .expect_err("unpaired")
            .to_string();
        assert!(e.starts_with("ca_cert ("), "{e}");
        assert!(e.contains("werify.toml:1) needs ca_key as well"), "{e}");
        let e = resolve_with(
            &["--secret-file", "/x/secret"],
            Some("ca_cert = \"/x/ca.crt.pem\"\nca_key = \"/x/ca.key.pem\"\n"),
        )
        .expect_err("both")
        .to_string();
        assert!(
            e.starts_with("secret_file (flag --secret-file) and ca_cert ("),
            "{e}"
        );
        let e = resolve_with(&[], Some("env = \"prod\"\n"))
            .map(|s| s.identity.env)
            .expect("valid");
        assert_eq!(e.as_deref(), Some("prod"));
    }

    #[test]
    fn values_show_as_toml() {
        let s = resolve_with(
            &["--join", "10.0.0.1", "--join", "10.0.0.2:30035"],
            Some("check_interval = \"90s\"\nhttp = \"127.0.0.1:30036\"\n[tags]\n\"a b\" = \"x\\\"y\"\n"),
        )
        .expect("valid");
        let shown = |k: &str| s.entry(k).and_then(|e| e.value.clone()).unwrap_or_default();
        assert_eq!(shown("join"), "[\"10.0.0.1\", \"10.0.0.2:30035\"]");
        assert_eq!(shown("check_interval"), "\"1m30s\"");
        assert_eq!(shown("http"), "\"127.0.0.1:30036\"");
        assert_eq!(shown("tags"), "{ \"a b\" = \"x\\\"y\" }");
        assert_eq!(shown("allow_command"), "false");
        assert_eq!(shown("log_level"), "\"info\"");
        // What is shown parses back as the same TOML values.
        let text: String = s
            .entries
            .iter()
            .filter_map(|e| e.value.as_ref().map(|v| format!("{} = {v}\n", e.key)))
            .collect();
        let back: toml::Table = toml::from_str(&text).expect("valid TOML");
        assert_eq!(back["check_interval"].as_str(), Some("1m30s"));
        assert_eq!(back["tags"]["a b"].as_str(), Some("x\"y"));
    }
}
