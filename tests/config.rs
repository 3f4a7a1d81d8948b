//! The config file of `werify node`, through the real binary: `werify config check` shows
//! every key's value and where it came from (flag > environment variable > file >
//! default), every kind of mistake is refused with FILE:LINE, the key and what is valid
//! (exit 2, nothing starts), and a node started with `--config` runs with what the file
//! says, an environment variable still winning over it.
//!
//! Nodes here use 127.0.0.x on ports 32100-32109.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{BIN, TempDir, stderr, stdout, wait_until};

/// `werify ARGS…` with no `WERIFY_*` settings but `env`, and no stdin.
fn werify(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("WERIFY_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run werify")
}

/// `config check` output as key → (value, source); unset keys have an empty value.
fn entries(text: &str) -> BTreeMap<String, (String, String)> {
    text.lines()
        .filter_map(|l| {
            let (setting, source) = l.rsplit_once("# ")?;
            let setting = setting.trim();
            if let Some(unset) = setting.strip_prefix("# ") {
                let key = unset.strip_suffix(" is not set")?;
                return Some((key.to_string(), (String::new(), source.to_string())));
            }
            let (key, value) = setting.split_once(" = ")?;
            Some((key.to_string(), (value.to_string(), source.to_string())))
        })
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path.display().to_string()
}

#[test]
fn config_check_shows_each_value_and_where_it_came_from() {
    let dir = TempDir::new("config-check");
    let checks = write(
        dir.path(),
        "checks.json",
        r#"{"hosts": {"type": "file_exists", "path": "/etc/hosts"}}"#,
    );
    let file = write(
        dir.path(),
        "werify.toml",
        &format!(
            r#"# every layer below is overridden for some keys
port = 32001
workers = 8
profile = "wan"
check_interval = "45s"
allow_command = true
log_level = "debug"
checks = "{checks}"
join = ["10.0.0.1", "10.0.0.2:30035"]

[tags]
role = "web"
"#
        ),
    );
    let o = werify(
        &[
            "config",
            "check",
            &file,
            "--port",
            "32002",
            "--log-level",
            "warn",
            "--tag",
            "role=db",
        ],
        &[
            ("WERIFY_PORT", "32003"),
            ("WERIFY_WORKERS", "16"),
            ("WERIFY_CHECK_INTERVAL", "5s"),
            ("WERIFY_ALLOW_COMMAND", "false"),
        ],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    println!("{text}");
    assert!(text.starts_with(&format!("# {file} is valid")), "{text}");
    let e = entries(&text);
    let line = |n: usize| format!("{file}:{n}");
    let expect = [
        // flag > env > file
        ("port", "32002", "flag --port".to_string()),
        // env > file
        ("workers", "16", "env WERIFY_WORKERS".to_string()),
        (
            "check_interval",
            "\"5s\"",
            "env WERIFY_CHECK_INTERVAL".to_string(),
        ),
        (
            "allow_command",
            "false",
            "env WERIFY_ALLOW_COMMAND".to_string(),
        ),
        // flag > file, for a flag without a variable and a repeatable one
        ("log_level", "\"warn\"", "flag --log-level".to_string()),
        ("tags", "{ role = \"db\" }", "flag --tag".to_string()),
        // file > default
        ("profile", "\"wan\"", line(4)),
        ("checks", &format!("\"{checks}\""), line(8)),
        ("join", "[\"10.0.0.1\", \"10.0.0.2:30035\"]", line(9)),
        // default
        ("bind", "\"127.0.0.1\"", "default".to_string()),
        ("log_format", "\"text\"", "default".to_string()),
        ("advertise", "", "default".to_string()),
        ("ca_cert", "", "default".to_string()),
        ("cert", "", "default".to_string()),
        ("key", "", "default".to_string()),
        ("deny", "", "default".to_string()),
    ];
    for (key, value, source) in expect {
        assert_eq!(
            e.get(key),
            Some(&(value.to_string(), source.clone())),
            "{key}:\n{text}"
        );
    }
    assert_eq!(
        e.len(),
        werify::cli::config_file::KEYS.len(),
        "one line per key:\n{text}"
    );
    // The output is TOML: what is set reads back as the same values.
    let back: toml::Table = toml::from_str(&text).expect("config check prints TOML");
    assert_eq!(back["port"].as_integer(), Some(32002));
    assert_eq!(back["tags"]["role"].as_str(), Some("db"));
    assert_eq!(back["join"].as_array().map(Vec::len), Some(2));
    assert!(!back.contains_key("advertise"));

    // No file: every value is a default or comes from the command line.
    let o = werify(
        &["config", "check", "--config", "/dev/null", "--env", "prod"],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let e = entries(&stdout(&o));
    assert_eq!(
        e.get("env"),
        Some(&("\"prod\"".to_string(), "flag --env".to_string()))
    );
    assert_eq!(
        e.get("port"),
        Some(&("30035".to_string(), "default".to_string()))
    );
}

/// One mistake: its name, the config file's text, extra args, what stderr must start with
/// after "Error: FILE:", and what it must contain.
type Mistake<'a> = (&'a str, String, Vec<&'a str>, &'a str, Vec<&'a str>);

#[test]
fn every_mistake_is_refused_with_file_line_key_and_what_is_valid() {
    let dir = TempDir::new("config-errors");
    let checks = write(dir.path(), "broken.json", "{\n  \"x\": \n");
    let cases: Vec<Mistake> = vec![
        (
            "unknown key",
            "env = \"prod\"\nchecks_interval = \"5s\"\n".into(),
            vec![],
            "2: unknown key \"checks_interval\" (did you mean \"check_interval\"?)",
            vec!["valid keys: env, bind, port,", "log_format"],
        ),
        (
            "wrong type",
            "\n\nworkers = \"many\"\n".into(),
            vec![],
            "3: workers: invalid type",
            vec!["workers takes a whole number from 1 to 4096"],
        ),
        (
            "bad value",
            "log_format = \"xml\"\n".into(),
            vec![],
            "1: invalid log_format \"xml\"",
            vec!["valid values: text, json"],
        ),
        (
            "bad profile",
            "port = 1\nprofile = \"fast\"\n".into(),
            vec![],
            "2: invalid profile \"fast\"",
            vec!["lan, wan, local"],
        ),
        (
            "broken TOML",
            "env = \"prod\"\ntags = [\n".into(),
            vec![],
            "2: ",
            vec![],
        ),
    ];
    for (what, text, extra, starts, contains) in cases {
        let file = write(dir.path(), "werify.toml", &text);
        for command in [&["config", "check"][..], &["node", "--port", "32009"]] {
            let mut args: Vec<&str> = command.to_vec();
            args.extend(["--config", &file]);
            args.extend(extra.iter().copied());
            let o = werify(&args, &[]);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(2), "{what} ({command:?}): {err}");
            assert!(stdout(&o).is_empty(), "{what}: {}", stdout(&o));
            let prefix = format!("Error: {file}:{starts}");
            assert!(err.starts_with(&prefix), "{what} ({command:?}): {err}");
            for c in &contains {
                assert!(err.contains(c), "{what} ({command:?}) lacks {c:?}: {err}");
            }
        }
    }

    // A missing file named by --config (or as `config check`'s argument).
    let missing = dir.path().join("nowhere.toml").display().to_string();
    for args in [
        vec!["config", "check", &missing],
        vec!["node", "--port", "32009", "--config", &missing],
    ] {
        let o = werify(&args, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&o).starts_with(&format!("Error: cannot read config file {missing}: ")),
            "{}",
            stderr(&o)
        );
    }
    // Valid on their own, not together: half a PEM CA from the file.
    let file = write(dir.path(), "pem.toml", "ca_cert = \"/x/ca.crt.pem\"\n");
    let o = werify(&["config", "check", &file], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o).trim_end(),
        format!(
            "Error: ca_cert ({file}:1) needs ca_key or cert as well: PEM mode is ca_cert with \
             either ca_key (the node signs its own certificate) or cert and key (a certificate \
             from werify certs issue)"
        )
    );
    // The checks file the config names is checked too, with its own FILE:LINE.
    let file = write(
        dir.path(),
        "checks.toml",
        &format!("checks = \"{checks}\"\n"),
    );
    let o = werify(&["config", "check", &file], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).starts_with(&format!("Error: {checks}:")),
        "{}",
        stderr(&o)
    );
    // A bad value in an environment variable is clap's to refuse, naming the variable.
    let o = werify(
        &["config", "check", "--config", "/dev/null"],
        &[("WERIFY_LOG_LEVEL", "loud")],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("loud"), "{}", stderr(&o));
}

#[test]
fn a_node_runs_with_its_config_file_and_an_environment_variable_beats_it() {
    let dir = TempDir::new("config-node");
    let file = write(
        dir.path(),
        "werify.toml",
        r#"bind = "127.0.0.1"
port = 32100
profile = "local"
check_interval = "1s"

[tags]
role = "web"
dc = "ams1"
"#,
    );
    // The flags the harness gives (bind, port, data dir, profile) would beat the file:
    // this node takes everything but its data dir from the file and the environment.
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("WERIFY_") {
            cmd.env_remove(k);
        }
    }
    let log = std::fs::File::create(dir.path().join("node.log")).expect("log file");
    let mut child = cmd
        .args(["node", "--config", &file, "--data-dir"])
        .arg(dir.path().join("data"))
        .env("WERIFY_PORT", "32101")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn werify node");
    let addr = "127.0.0.1:32101";
    let status = wait_until(Duration::from_secs(20), || {
        common::status_json(addr).is_some()
    });
    let log_text = || std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default();
    let report = common::status_json(addr);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        status.is_some(),
        "node did not answer on {addr}:\n{}",
        log_text()
    );
    let report = report.expect("status");
    assert_eq!(report["addr"], addr, "WERIFY_PORT beats the file's port");
    assert_eq!(report["profile"], "local");
    let me = &report["members"][0];
    assert_eq!(me["tags"]["role"], "web");
    assert_eq!(me["tags"]["dc"], "ams1");
    // Nothing listens on the file's port.
    assert!(common::status_json("127.0.0.1:32100").is_none());
}

#[test]
fn the_example_config_is_valid() {
    let o = werify(&["config", "check", "examples/werify.toml"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = entries(&stdout(&o));
    assert_eq!(
        e.len(),
        werify::cli::config_file::KEYS.len(),
        "{}",
        stdout(&o)
    );
    assert!(
        e.values()
            .filter(|(v, _)| !v.is_empty())
            .all(|(_, source)| source.starts_with("examples/werify.toml:")),
        "every key set comes from the example:\n{}",
        stdout(&o)
    );
}
