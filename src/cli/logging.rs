//! Where the process's log lines go and how they look: stderr, as text or one JSON object
//! per line, at a level that a running node may change ([`LogHandle::set_level`]).
//! `RUST_LOG`, when set, wins over the level. Under systemd (`JOURNAL_STREAM` set) text
//! lines carry no timestamp of their own, the journal adds one; with `NO_COLOR` set or
//! stderr not a terminal they carry no colour. Which level and format to use is decided by
//! the caller (flags, config file); nothing here reads them.

use std::fmt;
use std::io::IsTerminal;
use std::str::FromStr;

use clap::ValueEnum;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// How much a node logs (`--log-level`, config `log_level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The name flags, config files and `RUST_LOG` use.
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<LogLevel, String> {
        <LogLevel as ValueEnum>::from_str(s, false)
    }
}

/// What a log line looks like (`--log-format`, config `log_format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, with `timestamp`, `level` and `message` fields and the
    /// event's own fields beside them.
    Json,
}

impl LogFormat {
    /// The name flags and config files use.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<LogFormat, String> {
        <LogFormat as ValueEnum>::from_str(s, false)
    }
}

/// Changes the level of the logging set up by [`init`].
pub struct LogHandle {
    /// `None` when `RUST_LOG` decides, or when another subscriber was already installed.
    filter: Option<reload::Handle<EnvFilter, Registry>>,
    level: LogLevel,
}

/// Why [`LogHandle::set_level`] changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum SetLevelError {
    #[error("RUST_LOG is set and decides what is logged; unset it to use log_level")]
    RustLogWins,
    #[error("the log level cannot be changed in this process")]
    NotReloadable,
}

impl LogHandle {
    /// The level in force (what `RUST_LOG` says is not reflected here).
    pub fn level(&self) -> LogLevel {
        self.level
    }

    /// Whether `RUST_LOG` decides what is logged.
    pub fn rust_log_wins(&self) -> bool {
        rust_log().is_some()
    }

    /// Logs at `level` from now on.
    pub fn set_level(&mut self, level: LogLevel) -> Result<(), SetLevelError> {
        if self.rust_log_wins() {
            return Err(SetLevelError::RustLogWins);
        }
        let handle = self.filter.as_ref().ok_or(SetLevelError::NotReloadable)?;
        handle
            .reload(EnvFilter::new(level.name()))
            .map_err(|_| SetLevelError::NotReloadable)?;
        self.level = level;
        Ok(())
    }
}

/// `RUST_LOG` when it is set, not empty and a valid filter.
fn rust_log() -> Option<EnvFilter> {
    std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok())
}

/// Whether text lines may carry ANSI colour: stderr is a terminal and `NO_COLOR` is unset
/// or empty (<https://no-color.org>).
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Whether stderr goes to the systemd journal, which timestamps every line itself.
fn under_journal() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some_and(|v| !v.is_empty())
}

/// Logs to stderr at `level` (unless `RUST_LOG` says otherwise) in `format`. Only the first
/// call in a process installs anything; later calls get a handle that changes nothing.
pub fn init(level: LogLevel, format: LogFormat) -> LogHandle {
    let bad_rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty() && EnvFilter::try_new(v).is_err());
    let filter = rust_log().unwrap_or_else(|| EnvFilter::new(level.name()));
    let (filter, handle) = reload::Layer::new(filter);
    let output = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_target(false)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => {
            let text = tracing_subscriber::fmt::layer()
                .with_target(false)
                .with_ansi(colour())
                .with_writer(std::io::stderr);
            if under_journal() {
                text.without_time().boxed()
            } else {
                text.boxed()
            }
        }
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .is_ok();
    if let Some(v) = bad_rust_log {
        tracing::warn!("RUST_LOG={v:?} is not a valid filter; logging at level {level}");
    }
    LogHandle {
        filter: installed.then_some(handle),
        level,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::config_file::{LOG_FORMATS, LOG_LEVELS};

    #[test]
    fn names_match_what_config_files_accept() {
        let levels: Vec<&str> = LogLevel::value_variants()
            .iter()
            .map(|l| l.name())
            .collect();
        assert_eq!(levels, LOG_LEVELS);
        let formats: Vec<&str> = LogFormat::value_variants()
            .iter()
            .map(|f| f.name())
            .collect();
        assert_eq!(formats, LOG_FORMATS);
        for l in LogLevel::value_variants() {
            assert_eq!(l.name().parse::<LogLevel>(), Ok(*l));
        }
        assert!("loud".parse::<LogLevel>().is_err());
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
    }
}
