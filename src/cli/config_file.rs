//! The node's TOML config file (`--config FILE`, else `/etc/werify/werify.toml` when it
//! exists): reading it strictly and remembering the line of every value, so that an error
//! names `FILE:LINE`, the key and what is valid. Keys are the long flag names of
//! `werify node`. Merging it under the flags and environment variables is done by
//! [`crate::cli::node`]; nothing here starts anything.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

use crate::checks::duration::parse_duration;
use crate::cli::logging::{LogFormat, LogLevel};
use crate::mesh::config::Profile;

/// Where the node looks for its config file when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/werify/werify.toml";

/// A config file larger than this is refused rather than read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Every key the file may hold, in the order `werify config check` prints them.
pub const KEYS: &[&str] = &[
    "env",
    "bind",
    "port",
    "advertise",
    "join",
    "tags",
    "workers",
    "data_dir",
    "profile",
    "secret_file",
    "ca_cert",
    "ca_key",
    "checks",
    "check_interval",
    "allow_command",
    "http",
    "log_level",
    "log_format",
];

/// Log levels a config may name.
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];
/// Log formats a config may name.
pub const LOG_FORMATS: &[&str] = &["text", "json"];

/// Why a config file could not be used. Every variant names the file; those about a value
/// name its line and key too.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {} is {size} bytes, more than the {MAX_CONFIG_BYTES} allowed", path.display())]
    TooBig { path: PathBuf, size: u64 },
    #[error(
        "{}:{line}: unknown key {key:?}{hint}; valid keys: {valid}",
        path.display(),
        hint = did_you_mean(*.suggestion),
        valid = KEYS.join(", ")
    )]
    UnknownKey {
        path: PathBuf,
        line: usize,
        key: String,
        /// The valid key closest to `key`, if one is close.
        suggestion: Option<&'static str>,
    },
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}:{line}: invalid {key} {value:?}: {reason}", path.display())]
    Value {
        path: PathBuf,
        line: usize,
        key: &'static str,
        value: String,
        reason: String,
    },
}

/// The config file's values, each with its line; absent keys are `None`.
#[derive(Clone, Debug, Default)]
pub struct FileConfig {
    pub path: PathBuf,
    pub env: Option<Located<String>>,
    pub bind: Option<Located<IpAddr>>,
    pub port: Option<Located<u16>>,
    pub advertise: Option<Located<String>>,
    pub join: Option<Located<Vec<String>>>,
    pub tags: Option<Located<BTreeMap<String, String>>>,
    pub workers: Option<Located<u32>>,
    pub data_dir: Option<Located<PathBuf>>,
    pub profile: Option<Located<Profile>>,
    pub secret_file: Option<Located<PathBuf>>,
    pub ca_cert: Option<Located<PathBuf>>,
    pub ca_key: Option<Located<PathBuf>>,
    pub checks: Option<Located<PathBuf>>,
    pub check_interval: Option<Located<Duration>>,
    pub allow_command: Option<Located<bool>>,
    pub http: Option<Located<SocketAddr>>,
    pub log_level: Option<Located<LogLevel>>,
    pub log_format: Option<Located<LogFormat>>,
}

/// A value and the line of the file it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub line: usize,
}

impl<T: fmt::Display> fmt::Display for Located<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

/// The file as TOML gives it: strings where a value needs parsing of our own, so that
/// the error can name the line and list what is valid.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    env: Option<Spanned<String>>,
    bind: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    advertise: Option<Spanned<String>>,
    join: Option<Spanned<Vec<String>>>,
    tags: Option<Spanned<BTreeMap<String, String>>>,
    workers: Option<Spanned<i64>>,
    data_dir: Option<Spanned<PathBuf>>,
    profile: Option<Spanned<String>>,
    secret_file: Option<Spanned<PathBuf>>,
    ca_cert: Option<Spanned<PathBuf>>,
    ca_key: Option<Spanned<PathBuf>>,
    checks: Option<Spanned<PathBuf>>,
    check_interval: Option<Spanned<String>>,
    allow_command: Option<Spanned<bool>>,
    http: Option<Spanned<String>>,
    log_level: Option<Spanned<String>>,
    log_format: Option<Spanned<String>>,
}

/// Reads and checks the config file at `path`.
pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_err)?.len();
    if size > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooBig {
            path: path.to_path_buf(),
            size,
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    parse(path, &text)
}

/// Checks config text as if read from `path` (which only names it in errors).
pub fn parse(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    let lines = LineIndex::new(text);
    let syntax = |e: toml::de::Error| {
        let line = e.span().map_or(1, |s| lines.line_of(s.start));
        let message = one_line(e.message());
        let key = key_at(text, line);
        ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            message: match key {
                Some(k) => format!("{k}: {message}; {k} takes {}", expected(k)),
                None => message,
            },
        }
    };
    // Unknown keys first, each with its line and the closest valid key.
    let keys: BTreeMap<Spanned<String>, IgnoredAny> = toml::from_str(text).map_err(syntax)?;
    if let Some(k) = keys.keys().find(|k| !KEYS.contains(&k.get_ref().as_str())) {
        return Err(ConfigError::UnknownKey {
            path: path.to_path_buf(),
            line: lines.line_of(k.span().start),
            key: k.get_ref().clone(),
            suggestion: closest_key(k.get_ref()),
        });
    }
    let raw: Raw = toml::from_str(text).map_err(syntax)?;
    let v = Values {
        path,
        lines: &lines,
    };
    Ok(FileConfig {
        path: path.to_path_buf(),
        env: v.map(raw.env, "env", |s| match s.parse::<crate::base::Env>() {
            Ok(_) => Ok(s),
            Err(_) => Err(
                "use 1 to 63 characters from lowercase letters a-z, digits 0-9 and '-'".to_string(),
            ),
        })?,
        bind: v.map(raw.bind, "bind", |s| {
            s.parse::<IpAddr>()
                .map_err(|_| "expected an IP address such as 127.0.0.1 or ::1".to_string())
        })?,
        port: v.map(raw.port, "port", |n| {
            u16::try_from(n).map_err(|_| "expected a port from 0 to 65535".to_string())
        })?,
        advertise: v.keep(raw.advertise),
        join: v.keep(raw.join),
        tags: v.map(raw.tags, "tags", |t| {
            match t.keys().find(|k| k.is_empty()) {
                Some(_) => Err("a tag name may not be empty".to_string()),
                None => Ok(t),
            }
        })?,
        workers: v.map(raw.workers, "workers", |n| match u32::try_from(n) {
            Ok(n @ 1..=4096) => Ok(n),
            _ => Err("expected a number from 1 to 4096".to_string()),
        })?,
        data_dir: v.keep(raw.data_dir),
        profile: v.map(raw.profile, "profile", |s| {
            s.parse::<Profile>()
                .map_err(|_| "valid profiles: lan, wan, local".to_string())
        })?,
        secret_file: v.keep(raw.secret_file),
        ca_cert: v.keep(raw.ca_cert),
        ca_key: v.keep(raw.ca_key),
        checks: v.keep(raw.checks),
        check_interval: v.map(raw.check_interval, "check_interval", |s| {
            parse_duration(&s).map_err(|e| e.to_string())
        })?,
        allow_command: v.keep(raw.allow_command),
        http: v.map(raw.http, "http", |s| {
            s.parse::<SocketAddr>()
                .map_err(|_| "expected ADDR:PORT, such as 127.0.0.1:30036".to_string())
        })?,
        log_level: v.map(raw.log_level, "log_level", |s| {
            s.parse::<LogLevel>()
                .map_err(|_| format!("valid values: {}", LOG_LEVELS.join(", ")))
        })?,
        log_format: v.map(raw.log_format, "log_format", |s| {
            s.parse::<LogFormat>()
                .map_err(|_| format!("valid values: {}", LOG_FORMATS.join(", ")))
        })?,
    })
}

/// The key whose value is on `line` (1-based): the `key = value` on it, or the table
/// (`[tags]`) it sits in; `None` when that is not a known key.
fn key_at(text: &str, line: usize) -> Option<&'static str> {
    let mut table: Option<&str> = None;
    let mut here = None;
    for l in text.lines().take(line) {
        let t = l.trim();
        if let Some(header) = t.strip_prefix('[') {
            table = header.split(']').next().map(str::trim);
            here = table;
        } else {
            here = table.or_else(|| t.split_once('=').map(|(k, _)| k.trim()));
        }
    }
    here.and_then(|k| KEYS.iter().copied().find(|known| *known == k))
}

/// What the value of `key` must be, for errors about its type.
fn expected(key: &str) -> &'static str {
    match key {
        "port" => "a whole number from 0 to 65535",
        "workers" => "a whole number from 1 to 4096",
        "allow_command" => "true or false",
        "join" => "a list of strings, such as [\"10.0.0.1\", \"10.0.0.2:30035\"]",
        "tags" => "a table of strings, such as [tags] followed by lines like role = \"web\"",
        "check_interval" => "a duration string, such as \"30s\" or \"1m\"",
        "bind" => "an IP address string, such as \"127.0.0.1\"",
        "http" => "an ADDR:PORT string, such as \"127.0.0.1:30036\"",
        "profile" => "one of the strings \"lan\", \"wan\", \"local\"",
        "log_level" => "one of the strings \"error\", \"warn\", \"info\", \"debug\", \"trace\"",
        "log_format" => "one of the strings \"text\", \"json\"",
        _ => "a string",
    }
}

/// The valid key closest to an unknown one, when it is close enough to be a typo.
fn closest_key(unknown: &str) -> Option<&'static str> {
    let unknown = unknown.to_ascii_lowercase().replace('-', "_");
    KEYS.iter()
        .map(|k| (strsim::damerau_levenshtein(&unknown, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default()
}

/// Turns spanned raw values into located, checked ones.
struct Values<'a> {
    path: &'a Path,
    lines: &'a LineIndex,
}

impl Values<'_> {
    fn keep<T>(&self, raw: Option<Spanned<T>>) -> Option<Located<T>> {
        raw.map(|s| {
            let line = self.lines.line_of(s.span().start);
            Located {
                value: s.into_inner(),
                line,
            }
        })
    }

    fn map<T: fmt::Debug + Clone, U>(
        &self,
        raw: Option<Spanned<T>>,
        key: &'static str,
        check: impl FnOnce(T) -> Result<U, String>,
    ) -> Result<Option<Located<U>>, ConfigError> {
        let Some(s) = raw else { return Ok(None) };
        let line = self.lines.line_of(s.span().start);
        let shown = s.get_ref().clone();
        match check(s.into_inner()) {
            Ok(value) => Ok(Some(Located { value, line })),
            Err(reason) => Err(ConfigError::Value {
                path: self.path.to_path_buf(),
                line,
                key,
                value: debug_value(&shown),
                reason,
            }),
        }
    }
}

/// A raw value as the error shows it (strings without their debug quotes doubled).
fn debug_value<T: fmt::Debug>(v: &T) -> String {
    let s = format!("{v:?}");
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .map(str::to_string)
        .unwrap_or(s)
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Byte offset → 1-based line number.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    fn line_of(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<FileConfig, ConfigError> {
        parse(Path::new("/etc/werify/werify.toml"), text)
    }

    #[test]
    fn every_key_parses_with_its_line() {
        let text = r#"# a comment
env = "prod"
bind = "10.0.0.5"
port = 30035
advertise = "10.0.0.5"
join = ["10.0.0.1", "10.0.0.2:30035"]
workers = 32
data_dir = "/var/lib/werify"
profile = "wan"
secret_file = "/etc/werify/secret"
checks = "/etc/werify/checks.json"
check_interval = "15s"
allow_command = true
http = "127.0.0.1:30036"
log_level = "debug"
log_format = "json"

[tags]
role = "web"
dc = "ams1"
"#;
        let c = parse_text(text).expect("valid");
        assert_eq!(
            c.env.as_ref().map(|e| (e.value.as_str(), e.line)),
            Some(("prod", 2))
        );
        assert_eq!(
            c.port,
            Some(Located {
                value: 30035,
                line: 4
            })
        );
        assert_eq!(c.profile.map(|p| p.value), Some(Profile::Wan));
        assert_eq!(
            c.check_interval.map(|d| d.value),
            Some(Duration::from_secs(15))
        );
        assert_eq!(c.http.map(|h| h.value.port()), Some(30036));
        let tags = c.tags.expect("tags");
        assert_eq!(tags.value.get("dc").map(String::as_str), Some("ams1"));
        assert_eq!(c.join.map(|j| j.value.len()), Some(2));
        assert_eq!(c.log_format.map(|f| f.value), Some(LogFormat::Json));
        assert_eq!(c.log_level.map(|l| l.value), Some(LogLevel::Debug));
    }

    #[test]
    fn an_unknown_key_names_the_line_and_the_valid_keys() {
        let e = parse_text("env = \"prod\"\n\nprofiel = \"lan\"\n")
            .expect_err("unknown key")
            .to_string();
        assert!(
            e.starts_with(
                "/etc/werify/werify.toml:3: unknown key \"profiel\" (did you mean \"profile\"?); valid keys: env, bind, port,"
            ),
            "{e}"
        );
        assert!(
            e.ends_with("log_level, log_format"),
            "lists every valid key: {e}"
        );
        // Inside a table header line, and nothing close: no hint, still the line.
        let e = parse_text("port = 1\n\n[frobnicate]\nx = 1\n")
            .expect_err("unknown table")
            .to_string();
        assert!(
            e.starts_with("/etc/werify/werify.toml:3: unknown key \"frobnicate\"; valid keys: "),
            "{e}"
        );
        // Flag spelling (dashes) is recognised as a typo of the key.
        let e = parse_text("check-interval = \"5s\"\n")
            .expect_err("dashes")
            .to_string();
        assert!(e.contains("did you mean \"check_interval\"?"), "{e}");
    }

    #[test]
    fn a_wrong_type_names_the_line() {
        let e = parse_text("port = \"30035\"\n")
            .expect_err("wrong type")
            .to_string();
        assert!(e.starts_with("/etc/werify/werify.toml:1: port: "), "{e}");
        assert!(
            e.ends_with("port takes a whole number from 0 to 65535"),
            "{e}"
        );
        let e = parse_text("env = \"dev\"\nallow_command = \"yes\"\n")
            .expect_err("wrong type")
            .to_string();
        assert!(
            e.starts_with("/etc/werify/werify.toml:2: allow_command: "),
            "{e}"
        );
        assert!(e.ends_with("allow_command takes true or false"), "{e}");
        let e = parse_text("join = \"10.0.0.1\"\n")
            .expect_err("wrong type")
            .to_string();
        assert!(e.contains("join takes a list of strings"), "{e}");
        // A value inside the [tags] table is the tags key's.
        let e = parse_text("port = 1\n\n[tags]\nrole = \"web\"\nrack = 5\n")
            .expect_err("wrong type")
            .to_string();
        assert!(e.starts_with("/etc/werify/werify.toml:5: tags: "), "{e}");
        assert!(e.ends_with("tags takes a table of strings, such as [tags] followed by lines like role = \"web\""), "{e}");
    }

    #[test]
    fn bad_values_name_the_line_the_key_and_what_is_valid() {
        let cases = [
            ("\n\nprofile = \"fast\"\n", 3, "profile", "lan, wan, local"),
            ("port = 70000\n", 1, "port", "0 to 65535"),
            ("workers = 0\n", 1, "workers", "1 to 4096"),
            (
                "log_level = \"loud\"\n",
                1,
                "log_level",
                "error, warn, info, debug, trace",
            ),
            ("log_format = \"xml\"\n", 1, "log_format", "text, json"),
            ("check_interval = \"soon\"\n", 1, "check_interval", ""),
            ("bind = \"localhost\"\n", 1, "bind", "IP address"),
            ("http = \"30036\"\n", 1, "http", "ADDR:PORT"),
            ("env = \"Prod Env\"\n", 1, "env", "a-z"),
        ];
        for (text, line, key, valid) in cases {
            let e = parse_text(text).expect_err(text).to_string();
            let prefix = format!("/etc/werify/werify.toml:{line}: invalid {key} ");
            assert!(e.starts_with(&prefix), "{text:?}: {e}");
            assert!(e.contains(valid), "{text:?}: {e}");
        }
    }

    #[test]
    fn broken_toml_names_the_line() {
        let e = parse_text("env = \"prod\"\nport = \n")
            .expect_err("syntax")
            .to_string();
        assert!(e.starts_with("/etc/werify/werify.toml:2: "), "{e}");
    }

    #[test]
    fn a_missing_or_huge_file_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("werify-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let missing = dir.join("missing.toml");
        let e = load(&missing).expect_err("missing").to_string();
        assert!(e.starts_with("cannot read config file "), "{e}");
        let huge = dir.join("huge.toml");
        std::fs::write(&huge, vec![b'#'; (MAX_CONFIG_BYTES + 1) as usize]).expect("write");
        let e = load(&huge).expect_err("huge").to_string();
        assert!(e.contains("more than the"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keys_match_the_file_fields() {
        // Every key listed is accepted, and nothing else is.
        for key in KEYS {
            let text = match *key {
                "join" => "join = []\n".to_string(),
                "tags" => "[tags]\n".to_string(),
                "port" | "workers" => format!("{key} = 1\n"),
                "allow_command" => format!("{key} = false\n"),
                "bind" => "bind = \"127.0.0.1\"\n".to_string(),
                "http" => "http = \"127.0.0.1:1\"\n".to_string(),
                "profile" => "profile = \"lan\"\n".to_string(),
                "check_interval" => "check_interval = \"1s\"\n".to_string(),
                "log_level" => "log_level = \"info\"\n".to_string(),
                "log_format" => "log_format = \"text\"\n".to_string(),
                "env" => "env = \"dev\"\n".to_string(),
                _ => format!("{key} = \"x\"\n"),
            };
            parse_text(&text).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
    }
}
