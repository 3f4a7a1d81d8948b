//! What an operator installs, checked with the tools that consume it: `werify --version`,
//! the completion scripts in real bash, zsh and fish, the manual pages through man(1),
//! packaging/werify.toml through the node's own config reader, packaging/werify.service
//! through `systemd-analyze verify` and `security`, and the Debian package from
//! packaging/build-deb.sh through dpkg-deb, dpkg (installed, upgraded and purged in a
//! scratch root) and lintian.
//!
//! A tool that is missing skips its check with a note, except under `CI=true`, where
//! .ci/run installs every one of them and a missing tool fails the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use common::{BIN, TempDir, stderr, stdout};
use werify::cli::config_file::{self, KEYS};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// Whether `tool` can be run; if not, fails under CI and otherwise says the check is
/// skipped.
fn have(tool: &str, package: &str, check: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            !under_ci(),
            "{tool} is needed under CI=true for {check} (apt-get install {package})"
        );
        eprintln!("SKIPPED: {check}: {tool} not found (apt-get install {package})");
    }
    found
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

fn run_ok(cmd: &mut Command) -> Output {
    let o = run(cmd);
    assert!(
        o.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    o
}

// ---- werify --version, completions, man pages ------------------------------------------

#[test]
fn version_names_the_package_the_commit_and_the_protocol() {
    let o = run_ok(Command::new(BIN).arg("--version"));
    let text = stdout(&o);
    let want_prefix = format!("werify {} (git ", env!("CARGO_PKG_VERSION"));
    let want_suffix = format!(", protocol {})\n", werify::rpc::protocol::PROTOCOL_VERSION);
    assert!(
        text.starts_with(&want_prefix) && text.ends_with(&want_suffix),
        "{text:?}"
    );
    let sha = &text[want_prefix.len()..text.len() - want_suffix.len()];
    // In a git checkout, the commit checked out (build.rs reruns when HEAD moves).
    let head = Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short",
            "HEAD",
        ])
        .output();
    match head {
        Ok(h) if h.status.success() && repo().join(".git").exists() => {
            assert_eq!(sha, stdout(&h).trim(), "{text}")
        }
        _ => assert!(
            sha == "unknown" || sha.chars().all(|c| c.is_ascii_hexdigit()),
            "{text}"
        ),
    }
}

#[test]
fn completion_scripts_complete_in_bash_zsh_and_fish() {
    let dir = TempDir::new("completions");
    let script = |shell: &str, name: &str| {
        let o = run_ok(Command::new(BIN).args(["completions", shell]));
        let path = dir.path().join(name);
        std::fs::write(&path, &o.stdout).expect("write the script");
        path
    };
    if have("bash", "bash", "bash completion") {
        let path = script("bash", "werify.bash");
        // What bash asks the completion function when TAB is pressed after the words.
        let complete = |words: &str| {
            let cword = words.split(' ').count() - 1;
            let o = run_ok(Command::new("bash").arg("-c").arg(format!(
                "source '{}'; COMP_WORDS=({words}); COMP_CWORD={cword}; \
                 COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; \
                 _werify werify \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
                 printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                path.display()
            )));
            stdout(&o)
        };
        assert_eq!(complete("werify no"), "node\n");
        assert_eq!(complete("werify ctl operat"), "operation\n");
        assert!(
            complete("werify node --check").contains("--check-interval"),
            "bash: node options"
        );
        assert_eq!(complete("werify completions z"), "zsh\n");
    }
    if have("fish", "fish", "fish completion") {
        let path = script("fish", "werify.fish");
        let complete = |line: &str| {
            let o = run_ok(
                Command::new("fish")
                    .arg("-c")
                    .arg(format!("source '{}'; complete -C '{line}'", path.display())),
            );
            stdout(&o)
        };
        assert!(
            complete("werify ctl operat").starts_with("operation\t"),
            "fish: {}",
            complete("werify ctl operat")
        );
        assert!(complete("werify node --pro").starts_with("--profile\t"));
    }
    if have("zsh", "zsh", "zsh completion") {
        let path = script("zsh", "_werify");
        // compinit, then the script registers _werify for the werify command.
        let o = run_ok(Command::new("zsh").arg("-fc").arg(format!(
            "autoload -Uz compinit; compinit -u -d '{}'; source '{}'; \
             print -r -- $_comps[werify]; \
             print -r -- ${{+functions[_werify__subcmd__ctl__subcmd__operation_commands]}}",
            dir.path().join("zcompdump").display(),
            path.display()
        )));
        assert_eq!(stdout(&o), "_werify\n1\n", "{}", stderr(&o));
    }
}

#[test]
fn man_pages_are_written_one_per_subcommand_and_render_without_warnings() {
    let dir = TempDir::new("man");
    let o = run_ok(Command::new(BIN).arg("man").arg("--out").arg(dir.path()));
    let written: Vec<String> = stdout(&o).lines().map(String::from).collect();
    for page in [
        "werify.1",
        "werify-node.1",
        "werify-ctl.1",
        "werify-ctl-operation.1",
        "werify-mesh-status.1",
        "werify-certs-init.1",
    ] {
        let path = dir.path().join(page);
        assert!(path.is_file(), "{page} not written");
        assert!(
            written.contains(&path.display().to_string()),
            "{page} not listed: {written:?}"
        );
    }
    // Without --out: werify(1) alone, on stdout.
    let stdout_page = run_ok(Command::new(BIN).arg("man")).stdout;
    assert_eq!(
        stdout_page,
        std::fs::read(dir.path().join("werify.1")).expect("werify.1")
    );
    // A directory that does not exist is an error that says so.
    let o = run(Command::new(BIN)
        .args(["man", "--out"])
        .arg(dir.path().join("missing")));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--out must name an existing"),
        "{}",
        stderr(&o)
    );

    if !have("man", "man-db", "man page rendering") {
        return;
    }
    for path in written {
        let o = run_ok(
            Command::new("man")
                .args(["--warnings", "-E", "UTF-8", "-l"])
                .arg(&path)
                .env("MANWIDTH", "80"),
        );
        assert!(o.stderr.is_empty(), "{path}: {}", stderr(&o));
        let text = plain(&stdout(&o));
        assert!(
            text.contains("NAME") && text.contains("SYNOPSIS"),
            "{path}: {text}"
        );
    }
    let o = run_ok(
        Command::new("man")
            .arg("-l")
            .arg(dir.path().join("werify-node.1"))
            .env("MANWIDTH", "80"),
    );
    let text = plain(&stdout(&o));
    assert!(
        text.contains("--check-interval") && text.contains("werify-node"),
        "{text}"
    );
}

/// man's output without its overstrike (bold is `N\x08N`, underline `_\x08x`): a
/// backspace removes the character before it, and the one drawn over it stays.
fn plain(text: &str) -> String {
    let mut out: Vec<char> = Vec::with_capacity(text.len());
    for c in text.chars() {
        if c == '\u{8}' {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out.into_iter().collect()
}

// ---- packaging/werify.toml ----------------------------------------------------------------

/// The conffile with every commented-out setting (`#key = …`, `#[tags]`; prose comments
/// start with `# `) made live.
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if !rest.is_empty() && !rest.starts_with([' ', '#']) => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_conffile_sets_nothing_and_names_every_key_with_its_default() {
    let path = repo().join("packaging/werify.toml");
    let text = std::fs::read_to_string(&path).expect("packaging/werify.toml");

    // As shipped it sets nothing: the node runs on its defaults.
    let shipped = config_file::parse(&path, &text).expect("the shipped file parses");
    assert!(
        shipped.env.is_none() && shipped.bind.is_none() && shipped.tags.is_none(),
        "the shipped file must set nothing"
    );

    // Every key is there, and the file with all of them live is valid.
    let live = uncommented(&text);
    for key in KEYS {
        let present = live
            .lines()
            .any(|l| l.starts_with(&format!("{key} =")) || l == format!("[{key}]"));
        assert!(
            present,
            "packaging/werify.toml lacks a commented-out `{key}`"
        );
    }
    let c = config_file::parse(&path, &live).unwrap_or_else(|e| panic!("uncommented: {e}"));

    // Where a key has a default, the file shows that default.
    let werify::cli::args::Command::Node(defaults) = werify::cli::parse(["werify", "node"])
        .expect("werify node parses")
        .command
    else {
        panic!("not a node command");
    };
    let value = |v: Option<config_file::Located<String>>| v.map(|l| l.value);
    assert_eq!(value(c.env), Some(werify::base::Env::default().to_string()));
    assert_eq!(c.bind.map(|l| l.value), Some(defaults.bind));
    assert_eq!(c.port.map(|l| l.value), Some(defaults.port));
    assert_eq!(c.workers.map(|l| l.value), Some(defaults.workers));
    assert_eq!(c.profile.map(|l| l.value), Some(defaults.profile));
    assert_eq!(
        c.check_interval.map(|l| l.value),
        Some(defaults.check_interval)
    );
    assert_eq!(
        c.allow_command.map(|l| l.value),
        Some(defaults.allow_command)
    );
    assert_eq!(c.join.map(|l| l.value), Some(defaults.join));
    assert_eq!(
        c.log_level.map(|l| l.value),
        Some(werify::cli::logging::LogLevel::Info)
    );
    assert_eq!(
        c.log_format.map(|l| l.value),
        Some(werify::cli::logging::LogFormat::Text)
    );
}

// ---- packaging/werify.service --------------------------------------------------------------

/// `KEY=VALUE` lines of a unit file, in order (comments and section headers left out).
fn directives(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('[') && l.contains('='))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_unit_is_a_notify_service_reading_the_default_config_with_every_sandbox_line_explained() {
    let unit = std::fs::read_to_string(repo().join("packaging/werify.service")).expect("unit");
    let d = directives(&unit);
    let get = |key: &str| {
        d.iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(get("Type"), ["notify"]);
    assert_eq!(
        get("ExecStart"),
        [format!(
            "/usr/bin/werify node --config {}",
            config_file::DEFAULT_CONFIG_PATH
        )]
    );
    assert_eq!(get("StateDirectory"), ["werify"]);
    assert_eq!(get("ConfigurationDirectory"), ["werify"]);
    // Checks must see the host's real /tmp and every process.
    for absent in [
        "PrivateTmp",
        "ProtectProc",
        "ProcSubset",
        "DynamicUser",
        "User",
    ] {
        assert!(get(absent).is_empty(), "{absent}= must not be set");
    }
    // Every sandbox line sits in a paragraph that starts with a comment saying what it
    // costs or rules out.
    let sandbox = [
        "Protect",
        "Private",
        "Restrict",
        "CapabilityBoundingSet",
        "NoNewPrivileges",
        "LockPersonality",
        "MemoryDenyWriteExecute",
        "SystemCall",
        "UMask",
    ];
    for paragraph in unit.split("\n\n") {
        let mut commented = false;
        for line in paragraph.lines() {
            if line.starts_with('#') {
                commented = true;
            } else if sandbox.iter().any(|s| line.starts_with(s)) {
                assert!(commented, "no comment explains {line:?}");
            } else {
                commented = false;
            }
        }
    }
}

/// The overall exposure `systemd-analyze security --offline=yes` gives `unit`.
fn exposure(unit: &Path) -> f64 {
    let o = run_ok(
        Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(unit),
    );
    let text = stdout(&o);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure line in:\n{text}"));
    line.split(": ")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the exposure in {line:?}"))
}

#[test]
fn the_unit_exposure_is_at_most_5() {
    if !have("systemd-analyze", "systemd", "systemd-analyze security") {
        return;
    }
    let level = exposure(&repo().join("packaging/werify.service"));
    eprintln!("systemd-analyze security --offline=yes packaging/werify.service: {level}");
    assert!(level <= 5.0, "exposure {level} is above 5.0");
}

// ---- the Debian package ----------------------------------------------------------------------

/// The package built once for every test below, from the binary under test, or `None`
/// when dpkg-deb or dpkg-dev are missing (outside CI).
fn package() -> Option<&'static Path> {
    static DEB: OnceLock<Option<PathBuf>> = OnceLock::new();
    DEB.get_or_init(|| {
        if !have("dpkg-deb", "dpkg", "the Debian package")
            || !have("dpkg-shlibdeps", "dpkg-dev", "the Debian package")
            || !have("strip", "binutils", "the Debian package")
        {
            return None;
        }
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("werify-deb");
        let _ = std::fs::remove_dir_all(&out);
        let o = run_ok(
            Command::new(repo().join("packaging/build-deb.sh"))
                .arg("--binary")
                .arg(BIN)
                .arg("--out")
                .arg(&out),
        );
        let deb = PathBuf::from(stdout(&o).lines().last().expect("the package path"));
        assert_eq!(
            deb.file_name().and_then(|n| n.to_str()),
            Some(format!("werify_{}_{}.deb", env!("CARGO_PKG_VERSION"), arch()).as_str())
        );
        Some(deb)
    })
    .as_deref()
}

fn arch() -> String {
    stdout(&run_ok(Command::new("dpkg").arg("--print-architecture")))
        .trim()
        .to_string()
}

#[test]
fn the_package_holds_the_binary_unit_conffile_pages_and_completions() {
    let Some(deb) = package() else { return };
    let listing = stdout(&run_ok(Command::new("dpkg-deb").arg("-c").arg(deb)));
    // `-rwxr-xr-x root/root 123 2026-01-01 00:00 ./usr/bin/werify` → (mode, owner, path)
    let files: Vec<(String, String, String)> = listing
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 6).then(|| (f[0].to_string(), f[1].to_string(), f[5].to_string()))
        })
        .collect();
    let mode_of = |path: &str| {
        files
            .iter()
            .find(|(_, _, p)| p == path)
            .map(|(m, _, _)| m.as_str())
    };
    for (path, mode) in [
        ("./usr/bin/werify", "-rwxr-xr-x"),
        ("./lib/systemd/system/werify.service", "-rw-r--r--"),
        ("./etc/werify/werify.toml", "-rw-r--r--"),
        ("./usr/share/man/man1/werify.1.gz", "-rw-r--r--"),
        ("./usr/share/man/man1/werify-node.1.gz", "-rw-r--r--"),
        (
            "./usr/share/man/man1/werify-ctl-operation.1.gz",
            "-rw-r--r--",
        ),
        (
            "./usr/share/bash-completion/completions/werify",
            "-rw-r--r--",
        ),
        ("./usr/share/zsh/vendor-completions/_werify", "-rw-r--r--"),
        (
            "./usr/share/fish/vendor_completions.d/werify.fish",
            "-rw-r--r--",
        ),
        ("./usr/share/doc/werify/copyright", "-rw-r--r--"),
        ("./usr/share/doc/werify/changelog.gz", "-rw-r--r--"),
    ] {
        assert_eq!(mode_of(path), Some(mode), "{path} in:\n{listing}");
    }
    assert!(
        files.iter().all(|(_, owner, _)| owner == "root/root"),
        "{listing}"
    );
    // One page per subcommand, as `werify man` writes them.
    let pages = files
        .iter()
        .filter(|(_, _, p)| p.starts_with("./usr/share/man/man1/werify"))
        .count();
    let dir = TempDir::new("deb-man");
    let written = stdout(&run_ok(
        Command::new(BIN).arg("man").arg("--out").arg(dir.path()),
    ));
    assert_eq!(pages, written.lines().count(), "{listing}");

    let field = |name: &str| {
        stdout(&run_ok(
            Command::new("dpkg-deb").arg("-f").arg(deb).arg(name),
        ))
        .trim()
        .to_string()
    };
    assert_eq!(field("Package"), "werify");
    assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(field("Architecture"), arch());
    assert!(
        field("Depends").contains("libc6 (>= "),
        "{}",
        field("Depends")
    );
    assert_eq!(field("Section"), "admin");
    assert!(field("Maintainer").contains('<'), "{}", field("Maintainer"));
    assert!(
        field("Description").starts_with("peer-to-peer host-check mesh"),
        "{}",
        field("Description")
    );
    let info = stdout(&run_ok(Command::new("dpkg-deb").arg("-I").arg(deb)));
    for member in ["conffiles", "postinst", "prerm", "postrm", "md5sums"] {
        assert!(info.contains(member), "no {member} in:\n{info}");
    }
    let conffiles = stdout(&run_ok(
        Command::new("dpkg-deb").arg("-I").arg(deb).arg("conffiles"),
    ));
    assert_eq!(conffiles, "/etc/werify/werify.toml\n");
}

#[test]
fn the_packaged_unit_passes_systemd_analyze_verify() {
    let Some(deb) = package() else { return };
    if !have("systemd-analyze", "systemd", "systemd-analyze verify")
        || !have(
            "man",
            "man-db",
            "systemd-analyze verify (Documentation=man:…)",
        )
    {
        return;
    }
    let dir = TempDir::new("deb-verify");
    let root = dir.path().join("root");
    run_ok(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root));
    let binary = root.join("usr/bin/werify");
    let o = run_ok(Command::new(&binary).arg("--version"));
    assert!(stdout(&o).starts_with("werify "), "{}", stdout(&o));

    // verify checks that ExecStart's program exists and that the Documentation= pages
    // open in man: point it at the package's binary and pages, unit otherwise as shipped.
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/werify.service"))
        .expect("the packaged unit");
    assert!(unit.contains("ExecStart=/usr/bin/werify "));
    let checked = dir.path().join("werify.service");
    std::fs::write(
        &checked,
        unit.replace(
            "ExecStart=/usr/bin/werify ",
            &format!("ExecStart={} ", binary.display()),
        ),
    )
    .expect("write the unit");
    let o = run(Command::new("systemd-analyze")
        .args(["verify", "--no-pager"])
        .arg(&checked)
        .env("MANPATH", root.join("usr/share/man"))
        .current_dir(dir.path()));
    assert!(
        o.status.success() && !stderr(&o).contains("werify.service"),
        "systemd-analyze verify ({}):\n{}{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    // The hardening travelled with it.
    assert!(exposure(&checked) <= 5.0);
}

#[test]
fn the_package_installs_upgrades_keeping_the_edited_conffile_and_purges() {
    let Some(deb) = package() else { return };
    let dir = TempDir::new("deb-install");
    let root = dir.path().join("root");
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
    ] {
        std::fs::create_dir_all(root.join(d)).expect("dpkg database dirs");
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").expect("dpkg status");
    // dpkg into a scratch root; the maintainer scripts run with DPKG_ROOT set (they touch
    // nothing outside it), without chroot; libc6 is not in the scratch database.
    let dpkg = |args: &[&str]| {
        run_ok(
            Command::new("dpkg")
                .arg(format!("--root={}", root.display()))
                .args([
                    "--force-script-chrootless",
                    "--force-depends",
                    "--force-not-root",
                    "--force-confold",
                ])
                .args(args),
        )
    };
    let deb = deb.to_str().expect("UTF-8 path");
    dpkg(&["--install", deb]);
    let conffile = root.join("etc/werify/werify.toml");
    let shipped = std::fs::read_to_string(&conffile).expect("the conffile is installed");
    assert!(root.join("usr/bin/werify").is_file());
    assert!(root.join("lib/systemd/system/werify.service").is_file());

    // The operator edits the config, the node writes state; an upgrade keeps both.
    let edited = format!("{shipped}\nenv = \"prod\"\n");
    std::fs::write(&conffile, &edited).expect("edit the conffile");
    let state = root.join("var/lib/werify/10.0.0.5-30035");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::write(state.join("node-id"), "x").expect("state file");
    dpkg(&["--install", deb]);
    assert_eq!(
        std::fs::read_to_string(&conffile).expect("conffile"),
        edited
    );
    assert!(state.join("node-id").is_file());

    // Removal keeps the config and the state; a purge removes both.
    dpkg(&["--remove", "werify"]);
    assert!(!root.join("usr/bin/werify").exists());
    assert!(conffile.is_file() && state.join("node-id").is_file());
    dpkg(&["--purge", "werify"]);
    assert!(!conffile.exists(), "purge leaves the conffile");
    assert!(
        !root.join("var/lib/werify").exists(),
        "purge leaves the state"
    );
}

#[test]
fn the_package_is_lintian_clean() {
    let Some(deb) = package() else { return };
    if !have("lintian", "lintian", "lintian") {
        return;
    }
    // Every tag, pedantic and informational ones included; overridden tags (each with
    // its reason in packaging/debian/lintian-overrides) are not reported.
    let o = run(Command::new("lintian")
        .args(["--pedantic", "--display-info", "--display-experimental"])
        .arg(deb)
        .env("LC_ALL", "C.UTF-8"));
    let tags: Vec<&str> = std::str::from_utf8(&o.stdout)
        .expect("UTF-8")
        .lines()
        .filter(|l| l.len() > 2 && l.as_bytes()[1] == b':')
        .collect();
    assert!(
        o.status.success() && tags.is_empty(),
        "lintian ({}):\n{}{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
}
