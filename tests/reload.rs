//! SIGHUP on running `werify node` processes: the config file and the checks file are read
//! again and applied without leaving the mesh — another node sees the new tags and the new
//! health, the PID stays the same, no node ever sees the reloaded one suspect or dead —
//! while tags given as flags keep precedence over the file, keys that need a restart are
//! logged as such and kept, and a broken file changes nothing and is logged with
//! FILE:LINE. Also the log formats: JSON lines that each parse, no timestamps of their
//! own under systemd, no colour with NO_COLOR.
//!
//! Nodes here use 127.0.0.x on ports 32120-32159.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, TempDir, status_json, wait_until};
use serde_json::Value;

/// A `werify node` process of this file's own: no `RUST_LOG` (the config decides the
/// level), its stderr in `log`; killed by PID and reaped on drop.
struct Proc {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Proc {
    fn start(dir: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let data = dir.join(name);
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars() {
            if k.starts_with("WERIFY_") || k == "RUST_LOG" || k == "JOURNAL_STREAM" {
                cmd.env_remove(k);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .arg("node")
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn werify node");
        let pos = args.iter().position(|a| *a == "--bind");
        let bind = pos.map_or("127.0.0.1", |i| args[i + 1]);
        let port = args
            .iter()
            .position(|a| *a == "--port")
            .map_or("30035", |i| args[i + 1]);
        Proc {
            child,
            addr: format!("{bind}:{port}"),
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill {sig} {}", self.pid());
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until the log holds `text`.
    fn wait_log(&self, text: &str, within: Duration) -> bool {
        wait_until(within, || self.log().contains(text)).is_some()
    }

    /// Stops it with SIGTERM and waits (bounded) for it to exit.
    fn stop(&mut self) {
        self.signal("-TERM");
        let _ = wait_until(Duration::from_secs(10), || !self.running());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The member at `addr` in `view` (a `mesh status --output json` document).
fn member<'a>(view: &'a Value, addr: &str) -> Option<&'a Value> {
    view["members"]
        .as_array()?
        .iter()
        .find(|m| m["addr"] == addr)
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write file");
}

const PASSING: &str = r#"{"hosts_exists": {"type": "file_exists", "path": "/etc/hosts"}}"#;
const FAILING: &str = r#"{
  "hosts_exists": {"type": "file_exists", "path": "/etc/hosts"},
  "nowhere_exists": {"type": "file_exists", "path": "/nonexistent/werify-reload-test"}
}"#;

#[test]
fn sighup_changes_tags_checks_and_log_level_without_leaving_the_mesh() {
    let dir = TempDir::new("reload");
    let d = dir.path();
    let (pass, fail) = (d.join("pass.json"), d.join("fail.json"));
    write(&pass, PASSING);
    write(&fail, FAILING);
    let b_conf = d.join("b.toml");
    let c_conf = d.join("c.toml");
    // The file's port loses to the --port flag; its workers count needs a restart.
    let b_text = |tags: &str, checks: &Path, level: &str, workers: u32| {
        format!(
            "# node b\nport = 32199\nworkers = {workers}\ncheck_interval = \"1s\"\nlog_level = \"{level}\"\nchecks = \"{}\"\n\n[tags]\n{tags}\n",
            checks.display()
        )
    };
    write(&b_conf, &b_text("role = \"web\"", &pass, "info", 8));
    write(&c_conf, "[tags]\nrole = \"from-file\"\n");

    let common = |ip: &str, port: &str| {
        vec![
            "--bind".to_string(),
            ip.to_string(),
            "--port".to_string(),
            port.to_string(),
            "--profile".to_string(),
            "local".to_string(),
        ]
    };
    let a_args = common("127.0.0.1", "32120");
    let mut b_args = common("127.0.0.2", "32121");
    b_args.extend(["--join".into(), "127.0.0.1:32120".into()]);
    b_args.extend(["--config".into(), b_conf.display().to_string()]);
    let mut c_args = common("127.0.0.3", "32122");
    c_args.extend(["--join".into(), "127.0.0.1:32120".into()]);
    c_args.extend(["--config".into(), c_conf.display().to_string()]);
    // A flag beats the file, on reload too.
    c_args.extend(["--tag".into(), "role=pinned".into()]);
    let a = Proc::start(d, "a", &refs(&a_args), &[("RUST_LOG", "info")]);
    let mut b = Proc::start(d, "b", &refs(&b_args), &[]);
    let mut c = Proc::start(d, "c", &refs(&c_args), &[]);
    let addrs = [a.addr.clone(), b.addr.clone(), c.addr.clone()];
    let logs = |procs: &[&Proc]| {
        procs
            .iter()
            .map(|p| format!("--- {} ---\n{}", p.addr, p.log()))
            .collect::<Vec<_>>()
            .join("\n")
    };

    // All three alive everywhere, and b's passing health known to a.
    let converged = wait_until(Duration::from_secs(60), || {
        addrs.iter().all(|at| {
            status_json(at).is_some_and(|v| {
                addrs
                    .iter()
                    .all(|m| member(&v, m).is_some_and(|m| m["state"] == "alive"))
            })
        }) && status_json(&a.addr)
            .is_some_and(|v| member(&v, &b.addr).is_some_and(|m| m["health"]["passing"] == 1))
    });
    assert!(
        converged.is_some(),
        "no convergence:\n{}",
        logs(&[&a, &b, &c])
    );
    let view = status_json(&a.addr).expect("a answers");
    assert_eq!(member(&view, &b.addr).expect("b")["tags"]["role"], "web");
    assert_eq!(member(&view, &c.addr).expect("c")["tags"]["role"], "pinned");
    // b logs at info: no debug lines yet.
    assert!(!b.log().contains("DEBUG"), "{}", b.log());
    let (b_pid, c_pid) = (b.pid(), c.pid());

    // New tags, failing checks, debug logging and more workers (needs a restart).
    write(
        &b_conf,
        &b_text("role = \"db\"\ndc = \"ams1\"", &fail, "debug", 16),
    );
    write(&c_conf, "[tags]\nrole = \"changed-in-file\"\n");
    let hup = Instant::now();
    b.signal("-HUP");
    c.signal("-HUP");

    // a sees the new tags and the failing check; meanwhile nobody sees b or c other than
    // alive.
    let mut not_alive = Vec::new();
    let seen = wait_until(Duration::from_secs(30), || {
        for at in [&a.addr, &c.addr, &b.addr] {
            if let Some(v) = status_json(at) {
                for m in [&b.addr, &c.addr] {
                    if let Some(state) = member(&v, m).map(|m| m["state"].clone())
                        && state != "alive"
                    {
                        not_alive.push(format!("{at} saw {m} {state}"));
                    }
                }
            }
        }
        status_json(&a.addr).is_some_and(|v| {
            member(&v, &b.addr).is_some_and(|m| {
                m["tags"]["role"] == "db"
                    && m["tags"]["dc"] == "ams1"
                    && m["health"]["failing"] == 1
                    && m["health"]["failing_names"][0] == "nowhere_exists"
            })
        })
    });
    assert!(
        seen.is_some(),
        "a did not see b's new tags and health:\n{:#}\n{}",
        status_json(&a.addr).unwrap_or_default(),
        logs(&[&a, &b, &c])
    );
    println!(
        "a saw b's new tags and failing health {:?} after SIGHUP",
        hup.elapsed()
    );
    assert!(
        not_alive.is_empty(),
        "{not_alive:?}\n{}",
        logs(&[&a, &b, &c])
    );
    // Same processes, still running, still in the mesh at the old port.
    assert!(b.running() && c.running());
    assert_eq!((b.pid(), c.pid()), (b_pid, c_pid));
    assert!(status_json(&b.addr).is_some());
    assert!(status_json("127.0.0.2:32199").is_none());
    // c's tag came from a flag: the file's change does not touch it.
    let view = status_json(&a.addr).expect("a answers");
    assert_eq!(member(&view, &c.addr).expect("c")["tags"]["role"], "pinned");

    let b_conf_name = b_conf.display().to_string();
    assert!(
        b.wait_log("reloaded", Duration::from_secs(5)),
        "{}",
        b.log()
    );
    let log = b.log();
    let reloaded: Vec<&str> = log.lines().filter(|l| l.contains("reloaded")).collect();
    assert_eq!(reloaded.len(), 1, "one line per reload: {reloaded:?}");
    let line = reloaded[0];
    assert!(line.contains(" INFO "), "{line}");
    assert!(
        line.contains(&format!("reloaded {b_conf_name}: ")),
        "{line}"
    );
    for part in [
        "tags {dc=ams1, role=db} (was {role=web})",
        &format!("checks {} (2 checks, was 1 check)", fail.display()),
        "log_level debug (was info)",
    ] {
        assert!(line.contains(part), "{part:?} missing: {line}");
    }
    assert!(
        log.contains(&format!(
            "workers changed in {b_conf_name}: needs a restart (running with 8, now 16)"
        )),
        "{log}"
    );
    assert!(!log.contains("port changed"), "the --port flag wins: {log}");
    // Debug lines appear once the level is debug.
    assert!(
        b.wait_log("DEBUG", Duration::from_secs(10)),
        "no debug lines after the reload:\n{}",
        b.log()
    );
    assert!(
        c.wait_log("nothing to change", Duration::from_secs(5)),
        "{}",
        c.log()
    );
    // Nobody logged b or c as suspected or dead.
    for p in [&a, &b, &c] {
        for m in [&b.addr, &c.addr] {
            let bad = p.log().lines().any(|l| {
                l.contains(&format!("member {m} "))
                    && (l.contains("suspected") || l.contains("is dead"))
            });
            assert!(
                !bad,
                "{} logged {m} as suspect or dead:\n{}",
                p.addr,
                p.log()
            );
        }
    }

    // A broken file: logged at ERROR with FILE:LINE, the running config kept.
    write(
        &b_conf,
        &format!(
            "port = 32121\ncheck_interval = \"1s\"\nchecks = \"{}\"\n\n[tags]\nrole = 7\n",
            pass.display()
        ),
    );
    b.signal("-HUP");
    assert!(
        b.wait_log("reload failed", Duration::from_secs(10)),
        "{}",
        b.log()
    );
    let log = b.log();
    let failed = log
        .lines()
        .find(|l| l.contains("reload failed"))
        .expect("the failure line");
    assert!(failed.contains("ERROR"), "{failed}");
    assert!(failed.contains(&format!("{b_conf_name}:6: ")), "{failed}");
    // A broken checks file named by a valid config: the same.
    let broken_checks = d.join("broken.json");
    write(&broken_checks, "{\n  \"x\": {\"type\": \"file_exists\"}\n");
    write(
        &b_conf,
        &b_text("role = \"cache\"", &broken_checks, "debug", 16),
    );
    b.signal("-HUP");
    let broken_name = broken_checks.display().to_string();
    assert!(
        wait_until(Duration::from_secs(10), || {
            b.log()
                .lines()
                .any(|l| l.contains("reload failed") && l.contains(&broken_name))
        })
        .is_some(),
        "{}",
        b.log()
    );
    // Let gossip run a few rounds: b is unchanged, alive, same PID.
    std::thread::sleep(Duration::from_secs(2));
    let view = status_json(&a.addr).expect("a answers");
    let seen_b = member(&view, &b.addr).expect("b");
    assert_eq!(seen_b["tags"]["role"], "db", "{view:#}");
    assert_eq!(seen_b["state"], "alive");
    assert_eq!(seen_b["health"]["failing"], 1);
    assert!(b.running());
    assert_eq!(b.pid(), b_pid);
    b.stop();
    c.stop();
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = TempDir::new("reload-json");
    let conf = dir.path().join("werify.toml");
    write(&conf, "log_format = \"json\"\nlog_level = \"info\"\n");
    let mut n = Proc::start(
        dir.path(),
        "n",
        &[
            "--bind",
            "127.0.0.1",
            "--port",
            "32140",
            "--profile",
            "local",
            "--config",
            conf.to_str().expect("utf-8 path"),
        ],
        &[],
    );
    assert!(
        n.wait_log("listening", Duration::from_secs(20)),
        "{}",
        n.log()
    );
    // A reload and a warning (log_format needs a restart) go through the same writer.
    write(&conf, "log_format = \"text\"\nlog_level = \"debug\"\n");
    n.signal("-HUP");
    assert!(
        n.wait_log("reloaded", Duration::from_secs(10)),
        "{}",
        n.log()
    );
    n.stop();
    let text = n.log();
    let mut levels = std::collections::BTreeSet::new();
    let mut lines = 0;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{text}"));
        let level = v["level"]
            .as_str()
            .unwrap_or_else(|| panic!("no level: {line}"));
        assert!(v["message"].is_string(), "no message: {line}");
        assert!(v["timestamp"].is_string(), "no timestamp: {line}");
        levels.insert(level.to_string());
        lines += 1;
    }
    assert!(lines >= 4, "{text}");
    assert!(
        levels.contains("INFO") && levels.contains("WARN"),
        "{levels:?}"
    );
    assert!(text.contains("log_format changed in"), "{text}");
}

#[test]
fn text_logs_have_no_timestamp_under_systemd_and_no_colour_off_a_terminal() {
    let dir = TempDir::new("reload-text");
    let run = |name: &str, port: &str, env: &[(&str, &str)]| {
        let mut n = Proc::start(
            dir.path(),
            name,
            &[
                "--bind",
                "127.0.0.1",
                "--port",
                port,
                "--profile",
                "local",
                "--log-level",
                "info",
            ],
            env,
        );
        assert!(
            n.wait_log("listening", Duration::from_secs(20)),
            "{}",
            n.log()
        );
        n.stop();
        n.log()
    };
    let starts_with_time = |l: &str| {
        let b = l.as_bytes();
        b.len() > 11 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T'
    };
    let plain = run("plain", "32141", &[]);
    assert!(plain.lines().count() >= 2, "{plain}");
    assert!(plain.lines().all(starts_with_time), "{plain}");
    let journal = run("journal", "32142", &[("JOURNAL_STREAM", "8:12345")]);
    assert!(journal.lines().count() >= 2, "{journal}");
    for l in journal.lines() {
        assert!(!starts_with_time(l), "{l}");
        assert!(
            l.trim_start().starts_with("INFO") || l.trim_start().starts_with("WARN"),
            "{l}"
        );
    }
    // stderr is a file here, not a terminal: no colour.
    assert!(!plain.contains('\u{1b}') && !journal.contains('\u{1b}'));
}

/// On a terminal (a pseudo-terminal from `script`) text logs are coloured unless
/// NO_COLOR is set.
#[test]
fn no_color_turns_colour_off_on_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: script(1) from util-linux is not installed");
        return;
    }
    let dir = TempDir::new("reload-colour");
    let run = |port: &str, no_color: bool| {
        let data = dir.path().join(port);
        let node = format!(
            "exec timeout -s TERM 3 {BIN} node --bind 127.0.0.1 --port {port} --profile local --data-dir {} --log-level info",
            data.display()
        );
        let mut cmd = Command::new("script");
        cmd.args(["-q", "-e", "-c", &node, "/dev/null"])
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let o = cmd.output().expect("run script");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let coloured = run("32143", false);
    assert!(coloured.contains("listening"), "{coloured}");
    assert!(
        coloured.contains("\u{1b}["),
        "no colour on a terminal: {coloured:?}"
    );
    let plain = run("32144", true);
    assert!(plain.contains("listening"), "{plain}");
    assert!(
        !plain.contains("\u{1b}["),
        "colour despite NO_COLOR: {plain:?}"
    );
}
