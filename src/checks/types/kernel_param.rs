//! The `kernel_param` check: does a kernel parameter (a sysctl) have a given value?
//!
//! `name` is written the way `sysctl` prints it, components separated by dots
//! (`net.ipv4.ip_forward`), and read from the matching file under `/proc/sys`
//! (`/proc/sys/net/ipv4/ip_forward`). The check passes when the file's content equals
//! `value`, both compared as whitespace-separated words: leading and trailing whitespace
//! (the kernel's newline) does not count, and `"32768 60999"` matches the tab the kernel
//! prints in `net.ipv4.ip_local_port_range`.
//!
//! A name can only reach files under `/proc/sys`: every component must be non-empty and
//! free of `/`, whitespace and control characters, so `..`, absolute paths and empty
//! components are refused at submit and on receipt from a peer. (A component that itself
//! contains a dot, such as the VLAN interface `eth0.100`, cannot be named; sysctl writes
//! it `eth0/100`, which this check refuses.)
//!
//! A parameter that does not exist (a module not loaded, another kernel), a directory
//! such as `net.ipv4`, or a file this node may not read (`vm.drop_caches` is write-only)
//! is an `Error` naming the file.

use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::checks::check_type::{
    CheckType, FieldProblem, FieldSpec, FieldType, Fields, Typed, req, text,
};
use crate::checks::outcome::{CheckResult, Facts};
use crate::checks::read::open_regular;
use crate::checks::run::{CheckContext, blocking};

/// Where the kernel exposes its parameters.
const PROC_SYS: &str = "/proc/sys";

/// Longest value read. The largest `/proc/sys` values are a few KiB.
const MAX_VALUE_READ: u64 = 64 << 10;

/// `kernel_param`: the kernel parameter `name` (e.g. `net.ipv4.ip_forward`) has `value`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelParam {
    /// Parameter name, dot-separated as `sysctl` prints it.
    pub name: String,
    /// Expected value, compared as whitespace-separated words.
    pub value: String,
}

/// Why a parameter name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum NameError {
    #[error("name must not be empty")]
    Empty,
    #[error(
        "name {0:?} has an empty component; separate components with single dots, \
         such as net.ipv4.ip_forward"
    )]
    EmptyComponent(String),
    #[error(
        "name {0:?} contains '/'; write the parameter with dots, such as net.ipv4.ip_forward \
         (names reach only files under /proc/sys)"
    )]
    Slash(String),
    #[error("name {0:?} contains whitespace or a control character")]
    Blank(String),
}

/// The file under `/proc/sys` that holds parameter `name`, or why `name` is refused.
fn param_path(name: &str) -> Result<String, NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let mut path = String::from(PROC_SYS);
    for component in name.split('.') {
        if component.is_empty() {
            return Err(NameError::EmptyComponent(name.into()));
        }
        if component.contains('/') {
            return Err(NameError::Slash(name.into()));
        }
        if component
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(NameError::Blank(name.into()));
        }
        path.push('/');
        path.push_str(component);
    }
    Ok(path)
}

impl CheckType for KernelParam {
    const NAME: &'static str = "kernel_param";
    const DOC: &'static str = "passes when the kernel parameter name (e.g. net.ipv4.ip_forward, read from /proc/sys) equals value, ignoring surrounding whitespace";
    const FIELDS: &'static [FieldSpec] = &[
        req("name", FieldType::String),
        req("value", FieldType::String),
    ];

    fn from_fields(fields: &Fields) -> Result<Self, FieldProblem> {
        Ok(KernelParam {
            name: fields.required("name"),
            value: fields.required("value"),
        })
    }

    fn to_fields(&self) -> Vec<(&'static str, Typed)> {
        vec![
            ("name", Typed::Str(self.name.clone())),
            ("value", Typed::Str(self.value.clone())),
        ]
    }

    fn validate(&self) -> Result<(), FieldProblem> {
        text("name", &self.name)?;
        param_path(&self.name).map_err(|e| FieldProblem::on("name", e.to_string()))?;
        text("value", &self.value)
    }

    fn expected(&self) -> Facts {
        Facts::new().with("value", words(&self.value))
    }

    async fn run(self, ctx: CheckContext) -> CheckResult {
        blocking(move || kernel_param(&self.name, &self.value, &ctx)).await
    }
}

/// A value as compared: its words, separated by single spaces.
pub(crate) fn words(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Found: the parameter's `value`, its words separated by single spaces.
fn kernel_param(name: &str, expected: &str, ctx: &CheckContext) -> CheckResult {
    match read_param(name, ctx) {
        Ok(actual) => CheckResult::holds(
            actual.split_whitespace().eq(expected.split_whitespace()),
            Facts::new().with("value", words(&actual)),
        ),
        Err(result) => result,
    }
}

/// The text of kernel parameter `name` as the kernel prints it (its newline included);
/// the error is the check's result when the name is refused or the file cannot be read.
pub(crate) fn read_param(name: &str, ctx: &CheckContext) -> Result<String, CheckResult> {
    // Validated at submit and on receipt; checked again so no caller can read elsewhere.
    let path = param_path(name).map_err(|e| CheckResult::error(e.to_string()))?;
    if ctx.expired() {
        return Err(ctx.timed_out());
    }
    // /proc/sys files report a size of 0, so the cap is enforced while reading.
    let file = open_regular(&path, MAX_VALUE_READ).map_err(CheckResult::error)?;
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_VALUE_READ + 1).read_to_end(&mut bytes) {
        return Err(CheckResult::error(format!("read {path}: {e}")));
    }
    if bytes.len() as u64 > MAX_VALUE_READ {
        return Err(CheckResult::error(format!(
            "{path} holds more than {MAX_VALUE_READ} bytes; kernel_param compares short values"
        )));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
    use crate::checks::{CheckSet, RunOptions, parse_operations, run_checks};
    use std::time::Duration;

    fn ctx() -> CheckContext {
        CheckContext::for_test(Duration::from_secs(30))
    }

    /// The real value of a parameter, read directly, for comparing against the check.
    fn actual(name: &str) -> String {
        let path = format!("/proc/sys/{}", name.replace('.', "/"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
    }

    #[test]
    fn names_map_to_files_under_proc_sys() {
        assert_eq!(
            param_path("net.ipv4.ip_forward").as_deref(),
            Ok("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            param_path("kernel.ostype").as_deref(),
            Ok("/proc/sys/kernel/ostype")
        );
    }

    #[test]
    fn hostile_names_are_refused() {
        for (name, expected) in [
            ("", NameError::Empty),
            ("..", NameError::EmptyComponent("..".into())),
            ("net..ipv4", NameError::EmptyComponent("net..ipv4".into())),
            (".net.ipv4", NameError::EmptyComponent(".net.ipv4".into())),
            ("net.ipv4.", NameError::EmptyComponent("net.ipv4.".into())),
            ("/etc/shadow", NameError::Slash("/etc/shadow".into())),
            (
                "../../etc/shadow",
                NameError::EmptyComponent("../../etc/shadow".into()),
            ),
            (
                "kernel/../../etc",
                NameError::Slash("kernel/../../etc".into()),
            ),
            (
                "net/ipv4/ip_forward",
                NameError::Slash("net/ipv4/ip_forward".into()),
            ),
            ("eth0/100", NameError::Slash("eth0/100".into())),
            ("kernel.ostype ", NameError::Blank("kernel.ostype ".into())),
            (
                "kernel.os\ntype",
                NameError::Blank("kernel.os\ntype".into()),
            ),
        ] {
            assert_eq!(param_path(name), Err(expected), "{name:?}");
        }
    }

    #[test]
    fn hostile_names_are_refused_at_submit_with_the_field_position() {
        let error = |name: &str| {
            let text = format!(
                r#"{{"k": {{"type": "kernel_param", "name": {}, "value": "1"}}}}"#,
                serde_json::to_string(name).unwrap_or_default()
            );
            match parse_operations(&text, "ops.json") {
                Ok(set) => panic!("{name:?} was accepted: {set:?}"),
                Err(e) => e.to_string(),
            }
        };
        assert_eq!(
            error("../../etc/shadow"),
            "ops.json:1:40: check \"k\": name \"../../etc/shadow\" has an empty component; \
             separate components with single dots, such as net.ipv4.ip_forward"
        );
        assert_eq!(
            error("/etc/shadow"),
            "ops.json:1:40: check \"k\": name \"/etc/shadow\" contains '/'; write the parameter \
             with dots, such as net.ipv4.ip_forward (names reach only files under /proc/sys)"
        );
        assert_eq!(
            error(""),
            "ops.json:1:40: check \"k\": name must not be empty"
        );
        assert_eq!(
            error("kernel.\u{0}ostype"),
            "ops.json:1:40: check \"k\": name contains a NUL character"
        );
    }

    #[test]
    fn hostile_names_from_a_peer_are_refused_on_receipt() {
        let set: CheckSet = serde_json::from_value(serde_json::json!({"checks": {
            "k": {"kind": {"KernelParam": {"name": "..", "value": "x"}}, "expect": true, "timeout": null}
        }}))
        .expect("type-correct");
        let mut bytes = Vec::new();
        ciborium::into_writer(&set, &mut bytes).expect("encode");
        let received: CheckSet = ciborium::from_reader(bytes.as_slice()).expect("decode");
        assert_eq!(received, set);
        assert_eq!(
            received.validate().map_err(|e| e.to_string()),
            Err(
                "check \"k\": name \"..\" has an empty component; separate components with \
                 single dots, such as net.ipv4.ip_forward"
                    .to_string()
            )
        );
        // And the runner never reads outside /proc/sys even if handed one unvalidated.
        assert_eq!(
            kernel_param("..", "x", &ctx()),
            Outcome::Error(NameError::EmptyComponent("..".into()).to_string())
        );
    }

    #[test]
    fn compares_a_real_parameter_with_its_value_and_a_wrong_one() {
        // Always "Linux".
        assert_eq!(
            kernel_param("kernel.ostype", "Linux", &ctx()),
            Outcome::Success(true)
        );
        assert_eq!(
            kernel_param("kernel.ostype", " Linux\n", &ctx()),
            Outcome::Success(true)
        );
        assert_eq!(
            kernel_param("kernel.ostype", "FreeBSD", &ctx()),
            Outcome::Success(false)
        );
        assert_eq!(
            kernel_param("kernel.ostype", "Lin ux", &ctx()),
            Outcome::Success(false)
        );
        // A number that differs per host: compare with what the file says right now.
        let pid_max = actual("kernel.pid_max");
        let pid_max = pid_max.trim();
        assert_eq!(
            kernel_param("kernel.pid_max", pid_max, &ctx()),
            Outcome::Success(true)
        );
        assert_eq!(
            kernel_param("kernel.pid_max", &format!("{pid_max}0"), &ctx()),
            Outcome::Success(false)
        );
    }

    #[test]
    fn values_of_several_words_compare_word_by_word() {
        // The kernel separates the two ports with a tab.
        let range = actual("net.ipv4.ip_local_port_range");
        let words: Vec<&str> = range.split_whitespace().collect();
        assert_eq!(words.len(), 2, "{range:?}");
        let spaced = words.join(" ");
        assert_eq!(
            kernel_param("net.ipv4.ip_local_port_range", &spaced, &ctx()),
            Outcome::Success(true)
        );
        assert_eq!(
            kernel_param("net.ipv4.ip_local_port_range", words[0], &ctx()),
            Outcome::Success(false)
        );
    }

    #[test]
    fn missing_parameters_and_directories_are_errors() {
        assert_eq!(
            kernel_param("kernel.werify_no_such_param", "1", &ctx()),
            Outcome::Error(
                "stat /proc/sys/kernel/werify_no_such_param: No such file or directory (os error 2)"
                    .into()
            )
        );
        assert_eq!(
            kernel_param("kernel", "1", &ctx()),
            Outcome::Error(
                "/proc/sys/kernel is a directory; only regular files can be read".into()
            )
        );
    }

    #[tokio::test]
    async fn runs_from_an_operations_file() {
        let set = parse_operations(
            r#"{"ostype": {"type": "kernel_param", "name": "kernel.ostype", "value": "Linux"},
                "not_bsd": {"type": "kernel_param", "name": "kernel.ostype", "value": "FreeBSD", "expect": false},
                "wrong": {"type": "kernel_param", "name": "kernel.ostype", "value": "FreeBSD"}}"#,
            "ops.json",
        )
        .expect("parses");
        assert!(set.validate().is_ok());
        let results = run_checks(&set, &RunOptions::default()).await;
        assert_eq!(
            results.get("ostype").map(|r| &r.outcome),
            Some(&Outcome::Success(true))
        );
        assert_eq!(
            results.get("not_bsd").map(|r| &r.outcome),
            Some(&Outcome::Success(true))
        );
        assert_eq!(
            results.get("wrong").map(|r| &r.outcome),
            Some(&Outcome::Success(false))
        );
    }
}
