//! Writing a check from what this host has now (`werify checks add TYPE ARG`): the
//! check's parameters are read from the host with the same readers the check types run
//! on (the file's digest, its mode and owners, the status a URL answers, a kernel
//! parameter's value), then the check is run once by the runner and kept only if it
//! passes. So a check written here holds on this host when it is written.
//!
//! Which types can be written this way, and what their one argument is, is [`ADDABLE`].
//! The types left out (`command`, `disk_free`, `file_contains`, `file_matches`) test a
//! value only their author knows. Turning the check into file text is `author.rs`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::MetadataExt;

use super::Outcome;
use super::accounts::{GROUP_FILE, PASSWD_FILE, name_of};
use super::run::{CheckContext, DEFAULT_CHECK_TIMEOUT, RunOptions, run_checks};
use super::spec::{Check, CheckKind, CheckSet, MAX_NAME_BYTES};
use super::types::port_listening::Proto;
use super::types::{
    FileExists, FileHash, FileMode, HttpStatus, KernelParam, PortListening, ProcessRunning,
    ServiceActive, UserExists, file_hash, http_status, kernel_param,
};

/// A type `checks add` can write, with what its one argument is.
#[derive(Clone, Copy, Debug)]
pub struct Addable {
    /// The check type's name.
    pub name: &'static str,
    /// The argument, as usage shows it.
    pub argument: &'static str,
    /// What is read from the host and written into the check.
    pub reads: &'static str,
}

/// The types `checks add` writes, sorted by name.
pub const ADDABLE: &[Addable] = &[
    Addable {
        name: "file_exists",
        argument: "PATH",
        reads: "that PATH exists",
    },
    Addable {
        name: "file_hash",
        argument: "PATH",
        reads: "the SHA-256 of the file (sha256)",
    },
    Addable {
        name: "file_mode",
        argument: "PATH",
        reads: "its permission bits, owner and group (mode, owner, group)",
    },
    Addable {
        name: "http_status",
        argument: "URL",
        reads: "the status a GET of URL answers now (status)",
    },
    Addable {
        name: "kernel_param",
        argument: "NAME",
        reads: "the parameter's value, e.g. of net.ipv4.ip_forward (value)",
    },
    Addable {
        name: "port_listening",
        argument: "[tcp:|udp:][ADDRESS:]PORT",
        reads: "that a socket listens there, e.g. 22, udp:53, tcp:127.0.0.1:8080, tcp:[::1]:8080",
    },
    Addable {
        name: "process_running",
        argument: "NAME|PATH",
        reads: "that a process of that name (or executable path, when it has a /) runs",
    },
    Addable {
        name: "service_active",
        argument: "UNIT",
        reads: "that systemd reports the unit active",
    },
    Addable {
        name: "user_exists",
        argument: "NAME",
        reads: "that /etc/passwd has the user",
    },
];

/// Why no check was written.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// A type `checks add` does not write (or no type at all).
    #[error(
        "checks add cannot write {type_name:?} checks; it writes {}",
        addable_list()
    )]
    Unsupported {
        /// The type asked for.
        type_name: String,
    },
    /// The argument cannot be what the type needs.
    #[error("{type_name} {argument:?}: {reason}")]
    BadArgument {
        /// The type asked for.
        type_name: &'static str,
        /// The argument given.
        argument: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The check built from the argument breaks a rule of its type.
    #[error("{type_name} {argument:?}: {reason}")]
    Invalid {
        /// The type asked for.
        type_name: &'static str,
        /// The argument given.
        argument: String,
        /// The rule it breaks.
        reason: String,
    },
    /// This host does not pass such a check now (or could not be read).
    #[error("{type_name} {argument:?} does not hold on this host now: {reason}")]
    NotHeld {
        /// The type asked for.
        type_name: &'static str,
        /// The argument given.
        argument: String,
        /// What was found instead, or why it could not be read.
        reason: String,
    },
}

fn addable_list() -> String {
    ADDABLE
        .iter()
        .map(|a| a.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads this host for a check of `type_name` about `argument`, and returns the check,
/// once it passed a run here. Blocking reads run on the blocking pool.
pub async fn inspect(type_name: &str, argument: &str) -> Result<Check, InspectError> {
    let Some(addable) = ADDABLE.iter().find(|a| a.name == type_name) else {
        return Err(InspectError::Unsupported {
            type_name: type_name.into(),
        });
    };
    let ty = addable.name;
    let invalid = |reason: String| InspectError::Invalid {
        type_name: ty,
        argument: argument.into(),
        reason,
    };
    let not_held = |reason: String| InspectError::NotHeld {
        type_name: ty,
        argument: argument.into(),
        reason,
    };
    let check = |kind: CheckKind| Check {
        kind,
        expect: true,
        timeout: None,
    };
    // The argument as the check holds it, with placeholders where the host is read:
    // the type's rules apply to it before anything is read.
    let arg = argument.to_string();
    let prototype: CheckKind = match ty {
        "file_exists" => FileExists { path: arg }.into(),
        "file_hash" => FileHash {
            path: arg,
            sha256: "0".repeat(64),
        }
        .into(),
        "file_mode" => FileMode {
            path: arg,
            mode: 0,
            owner: None,
            group: None,
        }
        .into(),
        "http_status" => HttpStatus {
            url: arg,
            status: 200,
        }
        .into(),
        "kernel_param" => KernelParam {
            name: arg,
            value: String::new(),
        }
        .into(),
        "port_listening" => parse_listener(argument)
            .map_err(|reason| InspectError::BadArgument {
                type_name: ty,
                argument: argument.into(),
                reason,
            })?
            .into(),
        "process_running" => {
            let (path, name) = if argument.contains('/') {
                (Some(arg), None)
            } else {
                (None, Some(arg))
            };
            ProcessRunning { path, check: name }.into()
        }
        "service_active" => ServiceActive { name: arg }.into(),
        _ => UserExists { name: arg }.into(),
    };
    check(prototype.clone())
        .problem()
        .map_err(|p| invalid(p.message))?;
    let kind = match prototype {
        CheckKind::FileHash(c) => {
            let path = c.path.clone();
            let sha256 = blocking(move || {
                let ctx = CheckContext::with_defaults(DEFAULT_CHECK_TIMEOUT);
                file_hash::sha256_hex(&path, &ctx).map_err(|r| outcome_text(r.outcome))
            })
            .await
            .map_err(not_held)?;
            FileHash { sha256, ..c }.into()
        }
        CheckKind::FileMode(c) => blocking(move || file_mode_now(&c.path))
            .await
            .map_err(not_held)?
            .into(),
        CheckKind::HttpStatus(c) => {
            let url = c.url.clone();
            let status = blocking(move || http_status::get_status(&url, DEFAULT_CHECK_TIMEOUT))
                .await
                .map_err(not_held)?
                .0;
            HttpStatus { status, ..c }.into()
        }
        CheckKind::KernelParam(c) => {
            let name = c.name.clone();
            let value = blocking(move || {
                let ctx = CheckContext::with_defaults(DEFAULT_CHECK_TIMEOUT);
                kernel_param::read_param(&name, &ctx).map_err(|r| outcome_text(r.outcome))
            })
            .await
            .map_err(not_held)?;
            // The words as the check compares them: the kernel's tabs and newline go.
            let value = kernel_param::words(&value);
            KernelParam { value, ..c }.into()
        }
        other => other,
    };
    let check = check(kind);
    check.problem().map_err(|p| invalid(p.message))?;
    match run_once(&check).await {
        Outcome::Success(true) => Ok(check),
        Outcome::Success(false) => Err(not_held(not_found(&check.kind))),
        Outcome::Error(e) => Err(not_held(e)),
    }
}

/// The text of a check result that stopped a read.
fn outcome_text(outcome: Outcome) -> String {
    match outcome {
        Outcome::Error(e) => e,
        Outcome::Success(_) => "it could not be read".into(),
    }
}

/// The check's result on this host, run by the runner as a node would run it.
async fn run_once(check: &Check) -> Outcome {
    let name = "checks_add";
    let set = CheckSet {
        checks: BTreeMap::from([(name.to_string(), check.clone())]),
    };
    run_checks(&set, &RunOptions::default())
        .await
        .remove(name)
        .map(|result| result.outcome)
        .unwrap_or_else(|| Outcome::Error("the runner returned no result".into()))
}

/// What a check that came out false did not find, in words.
fn not_found(kind: &CheckKind) -> String {
    match kind {
        CheckKind::FileExists(c) => format!("{} does not exist", c.path),
        CheckKind::ProcessRunning(c) => match (&c.path, &c.check) {
            (Some(path), _) => format!("no process runs the executable {path}"),
            (None, Some(name)) => format!("no process named {name} runs"),
            (None, None) => "no process matches".into(),
        },
        CheckKind::PortListening(c) => {
            let proto = if c.proto == Proto::Udp { "udp" } else { "tcp" };
            match c.address {
                Some(a) => format!("no {proto} socket listens on {a} port {}", c.port),
                None => format!("no {proto} socket listens on port {}", c.port),
            }
        }
        CheckKind::UserExists(c) => format!("{PASSWD_FILE} has no user {}", c.name),
        CheckKind::ServiceActive(c) => {
            format!("systemctl is-active says {} is not active", c.name)
        }
        // Values just read that no longer match: the host changed in between.
        _ => "it changed between reading it and checking it; try again".into(),
    }
}

/// The permission bits, owner and group of `path` now; owner and group by name when
/// the account files name them, by number otherwise.
fn file_mode_now(path: &str) -> Result<FileMode, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("stat {path}: {e}"))?;
    let named = |db: &str, id: u32| match name_of(db, id) {
        Ok(Some(name)) => name,
        _ => id.to_string(),
    };
    Ok(FileMode {
        path: path.into(),
        mode: meta.mode() & 0o7777,
        owner: Some(named(PASSWD_FILE, meta.uid())),
        group: Some(named(GROUP_FILE, meta.gid())),
    })
}

/// `[tcp:|udp:]PORT`, `[tcp:|udp:]IPV4:PORT` or `[tcp:|udp:][IPV6]:PORT`.
fn parse_listener(text: &str) -> Result<PortListening, String> {
    let (proto, rest) = if let Some(rest) = text.strip_prefix("tcp:") {
        (Proto::Tcp, rest)
    } else if let Some(rest) = text.strip_prefix("udp:") {
        (Proto::Udp, rest)
    } else {
        (Proto::Tcp, text)
    };
    let (port, address): (u16, Option<IpAddr>) = match rest.parse::<u16>() {
        Ok(port) => (port, None),
        Err(_) => match rest.parse::<SocketAddr>() {
            Ok(addr) => (addr.port(), Some(addr.ip())),
            Err(_) => {
                return Err(
                    "expected [tcp:|udp:][ADDRESS:]PORT, such as 22, udp:53, tcp:127.0.0.1:8080 \
                     or tcp:[::1]:8080"
                        .into(),
                );
            }
        },
    };
    if port == 0 {
        return Err("port must be between 1 and 65535".into());
    }
    Ok(PortListening {
        port,
        proto,
        address,
    })
}

/// A check name from the type and its argument: `file_exists_etc_hosts`,
/// `port_listening_tcp_22`; lowercase letters, digits and single underscores, at most
/// [`MAX_NAME_BYTES`] bytes.
pub fn default_name(type_name: &str, argument: &str) -> String {
    let argument = match type_name {
        "port_listening" if !argument.starts_with("tcp:") && !argument.starts_with("udp:") => {
            format!("tcp:{argument}")
        }
        "http_status" => argument
            .split_once("://")
            .map_or(argument, |(_, rest)| rest)
            .to_string(),
        _ => argument.to_string(),
    };
    let words = argument
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase);
    let mut name = std::iter::once(type_name.to_string())
        .chain(words)
        .collect::<Vec<_>>()
        .join("_");
    // ASCII only: any byte is a character boundary.
    name.truncate(MAX_NAME_BYTES);
    name.trim_end_matches('_').to_string()
}

/// Runs `f` on the blocking pool; a panic there becomes an error for this check.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String>
where
    Result<T, String>: Send,
{
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(format!("reading the host failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testutil::TempDir;

    #[test]
    fn listener_arguments() {
        let p = parse_listener("22").unwrap();
        assert_eq!((p.port, p.proto, p.address), (22, Proto::Tcp, None));
        let p = parse_listener("udp:53").unwrap();
        assert_eq!((p.port, p.proto), (53, Proto::Udp));
        let p = parse_listener("tcp:127.0.0.1:8080").unwrap();
        assert_eq!(p.address, Some(IpAddr::from([127, 0, 0, 1])));
        let p = parse_listener("udp:[::1]:5353").unwrap();
        assert_eq!(
            (p.port, p.proto, p.address),
            (5353, Proto::Udp, Some("::1".parse().unwrap()))
        );
        for bad in ["", "ssh", "tcp:", "sctp:22", "70000", "0", "localhost:22"] {
            assert!(parse_listener(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_names_are_short_words() {
        assert_eq!(
            default_name("file_exists", "/etc/hosts"),
            "file_exists_etc_hosts"
        );
        assert_eq!(
            default_name("port_listening", "22"),
            "port_listening_tcp_22"
        );
        assert_eq!(
            default_name("port_listening", "udp:[::1]:53"),
            "port_listening_udp_1_53"
        );
        assert_eq!(
            default_name("http_status", "http://127.0.0.1:8080/Health"),
            "http_status_127_0_0_1_8080_health"
        );
        assert_eq!(
            default_name("kernel_param", "net.ipv4.ip_forward"),
            "kernel_param_net_ipv4_ip_forward"
        );
        assert!(default_name("file_exists", &"/x".repeat(200)).len() <= MAX_NAME_BYTES);
    }

    #[tokio::test]
    async fn writes_what_the_host_has_and_refuses_what_it_has_not() {
        let dir = TempDir::new();
        let file = dir.write("f", b"abc");
        let check = inspect("file_hash", &file).await.unwrap();
        assert_eq!(
            check.kind,
            CheckKind::FileHash(FileHash {
                path: file.clone(),
                sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into()
            })
        );
        let check = inspect("kernel_param", "kernel.ostype").await.unwrap();
        assert!(
            matches!(check.kind, CheckKind::KernelParam(KernelParam { ref value, .. }) if value == "Linux")
        );
        let e = inspect("file_exists", &dir.join("missing"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("does not hold on this host now") && e.contains("does not exist"),
            "{e}"
        );
        let e = inspect("user_exists", "werify-no-such-user")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/etc/passwd has no user werify-no-such-user"),
            "{e}"
        );
        let e = inspect("disk_free", "/").await.unwrap_err().to_string();
        assert!(
            e.starts_with("checks add cannot write \"disk_free\" checks; it writes file_exists,"),
            "{e}"
        );
        let e = inspect("kernel_param", "../etc").await.unwrap_err();
        assert!(matches!(e, InspectError::Invalid { .. }), "{e}");
        let e = inspect("kernel_param", "kernel.werify_no_such")
            .await
            .unwrap_err();
        assert!(matches!(e, InspectError::NotHeld { .. }), "{e}");
        let e = inspect("file_exists", "").await.unwrap_err();
        assert!(matches!(e, InspectError::Invalid { .. }), "{e}");
    }
}
