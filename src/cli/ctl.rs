//! `werify ctl` and `werify mesh status`: connecting to a node, running one command or a
//! batch from stdin, printing results and choosing the exit code. Parsing command words
//! is in [`crate::cli::command`]; formats are in [`crate::cli::output`].

use std::io::{BufRead, IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::base::NodeId;
use crate::base::clock::duration_ms;
use crate::checks::spec::load_operations_file;
use crate::cli::args::{ConnectArgs, CtlArgs, IdentityArgs, OutputFormat, StatusArgs};
use crate::cli::command::{CtlCommand, parse_command, split_batch_line};
use crate::cli::identity::identity_from_args;
use crate::cli::output;
use crate::mesh::member::State;
use crate::rpc::hostaddr::parse_host;
use crate::rpc::identity::Role;
use crate::rpc::protocol::OperationReport;
use crate::rpc::protocol::{Request, Response, StatusReport, TargetFilter};
use crate::rpc::transport::{Transport, response_name};

/// Writes to stdout; a closed pipe (`werify ctl list | head -1`) ends the process quietly
/// with success, as Unix tools do, instead of a panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout().lock(), $($arg)*) {
            crate::cli::ctl::stdout_failed(e);
        }
    }};
}

/// [`out!`] with a newline.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            crate::cli::ctl::stdout_failed(e);
        }
    }};
}

/// What to do when stdout cannot be written.
pub fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("Error: cannot write to stdout: {e}");
    std::process::exit(i32::from(EXIT_ERROR));
}

/// Exit code: every check on every host succeeded (or the command worked).
pub const EXIT_OK: u8 = 0;
/// Exit code: a check was false or errored, or a host did not answer.
pub const EXIT_CHECKS_FAILED: u8 = 1;
/// Exit code: usage, connection, authentication or input error.
pub const EXIT_ERROR: u8 = 2;

/// What a command produced: the exit code it asks for.
type CmdResult = Result<u8, String>;

/// How long a finished command waits for its connection's close to leave. The close
/// frame goes out as soon as the endpoint's driver runs, which a 1–2 ms timer lets it do;
/// waiting for the whole drain (three probe timeouts) would only answer late packets. If
/// the close is lost anyway, the node drops the connection after
/// [`crate::rpc::tls::CTL_IDLE_TIMEOUT`].
const CLOSE_GRACE: Duration = Duration::from_millis(2);

/// A connected `ctl` session: one endpoint, one connection reused by every command.
struct Session {
    transport: Transport,
    addr: SocketAddr,
    connect_text: String,
    output: OutputFormat,
    hint_flags: String,
}

impl Session {
    async fn call(&self, req: &Request, timeout: Duration) -> Result<Response, String> {
        match self.transport.call(self.addr, req, timeout).await {
            Ok(Response::Error { message, .. }) => Err(message),
            Ok(r) => Ok(r),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn status(&self) -> Result<StatusReport, String> {
        match self.call(&Request::Status, Duration::from_secs(30)).await? {
            Response::Status(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }
}

fn unexpected(r: &Response) -> String {
    format!(
        "the node answered with an unexpected {} response",
        response_name(r)
    )
}

fn session(connect: &ConnectArgs, identity: &IdentityArgs) -> Result<Session, String> {
    let addr = parse_host(connect.target()).map_err(|e| format!("--connect: {e}"))?;
    let ips: [IpAddr; 0] = [];
    let id = identity_from_args(identity, Role::Client, NodeId::random(), &ips)?;
    let mut hint_flags = String::new();
    if id.env().to_string() != "dev" {
        hint_flags.push_str(&format!(" --env {}", id.env()));
    }
    if let Some(f) = &identity.secret_file {
        hint_flags.push_str(&format!(" --secret-file {}", f.display()));
    }
    if let (Some(c), Some(k)) = (&identity.ca_cert, &identity.ca_key) {
        hint_flags.push_str(&format!(
            " --ca-cert {} --ca-key {}",
            c.display(),
            k.display()
        ));
    }
    let transport = Transport::client(Arc::new(id), addr).map_err(|e| e.to_string())?;
    Ok(Session {
        transport,
        addr,
        connect_text: connect.target().to_string(),
        output: connect.output,
        hint_flags,
    })
}

/// Runs `werify ctl`.
pub async fn run_ctl(args: CtlArgs) -> ExitCode {
    if args.command.is_empty() {
        eprintln!(
            "Usage: werify ctl [OPTION]... COMMAND [PARAMS...]\n\n{}\nRun `werify ctl --help` for the options.",
            crate::cli::command::commands_usage()
        );
        return ExitCode::from(EXIT_ERROR);
    }
    let batch = args.command.first().is_some_and(|c| c == "-");
    // Parse before connecting: a typo needs no reachable node.
    let single = if batch {
        None
    } else {
        match parse_command(&args.command) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("Error: {e}");
                return ExitCode::from(EXIT_ERROR);
            }
        }
    };
    let timeout = args.connect.timeout;
    let work = async {
        let s = session(&args.connect, &args.identity)?;
        let code = match single {
            Some(cmd) => run_one(&s, cmd, timeout).await?,
            None => run_batch(&s, timeout).await?,
        };
        s.transport.shutdown(CLOSE_GRACE).await;
        Ok::<u8, String>(code)
    };
    finish(bounded(work, timeout, needs_longer(&args.command)).await)
}

fn needs_longer(words: &[String]) -> bool {
    words.iter().any(|w| w == "--wait") || words.first().is_some_and(|w| w == "-")
}

/// Bounds the whole call by `timeout` (commands that wait get the longer of it and the
/// wait itself, which they bound on their own), and stops on Ctrl-C.
async fn bounded(
    work: impl std::future::Future<Output = CmdResult>,
    timeout: Duration,
    waits: bool,
) -> CmdResult {
    let limit = if waits {
        timeout.max(Duration::from_secs(3600))
    } else {
        timeout
    };
    tokio::select! {
        r = tokio::time::timeout(limit, work) => match r {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {} (--timeout)", output::go_duration(timeout))),
        },
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
    }
}

fn finish(r: CmdResult) -> ExitCode {
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn run_batch(s: &Session, timeout: Duration) -> CmdResult {
    let stdin = std::io::stdin();
    let mut processed = 0usize;
    let mut worst = EXIT_OK;
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| format!("reading stdin: {e}"))?;
        let Some(words) = split_batch_line(&line) else {
            continue;
        };
        let r = match parse_command(&words) {
            Ok(cmd) => run_one(s, cmd, timeout).await,
            Err(e) => Err(e),
        };
        match r {
            Ok(code) => worst = worst.max(code),
            Err(e) => {
                // The seed's wording: the whole line, then the message; earlier output stays.
                eprintln!("Error running {}: {e}", line.trim());
                return Ok(EXIT_ERROR);
            }
        }
        processed += 1;
    }
    outln!("Commands processed: {processed}");
    Ok(worst)
}

fn print_json(v: &serde_json::Value) {
    outln!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into())
    );
}

async fn run_one(s: &Session, cmd: CtlCommand, timeout: Duration) -> CmdResult {
    let json = s.output == OutputFormat::Json;
    match cmd {
        CtlCommand::Add(host) => {
            s.call(&Request::Add { host: host.clone() }, timeout)
                .await?;
            if json {
                print_json(&serde_json::json!({"added": host}));
            } else {
                outln!("Added host {host}");
            }
            Ok(EXIT_OK)
        }
        CtlCommand::Del(host) => {
            s.call(&Request::Del { host: host.clone() }, timeout)
                .await?;
            if json {
                print_json(&serde_json::json!({"removed": host}));
            } else {
                outln!("Removed host {host}");
            }
            Ok(EXIT_OK)
        }
        CtlCommand::List { active, inactive } => {
            let report = s.status().await?;
            if json {
                print_json(&output::list_json(&report, active, inactive));
            } else {
                out!("{}", output::list_text(&report, active, inactive));
            }
            Ok(EXIT_OK)
        }
        CtlCommand::Operation {
            file,
            wait,
            nodes,
            tags,
            deadline,
        } => {
            let checks =
                load_operations_file(std::path::Path::new(&file)).map_err(|e| e.to_string())?;
            let req = Request::Submit {
                checks,
                filter: TargetFilter { nodes, tags },
                deadline_ms: duration_ms(deadline),
            };
            let (handle, targeted) = match s.call(&req, timeout).await? {
                Response::Submitted {
                    handle, targeted, ..
                } => (handle, targeted),
                other => return Err(unexpected(&other)),
            };
            if wait {
                return wait_for(s, &handle.to_string(), deadline + Duration::from_secs(10)).await;
            }
            if json {
                print_json(&serde_json::json!({
                    "handle": handle.to_string(),
                    "coordinator": s.addr.to_string(),
                    "targeted": targeted,
                }));
            } else {
                outln!(
                    "Operation submitted. To check progress, run: werify ctl --connect {}{} get {handle}",
                    s.connect_text,
                    s.hint_flags
                );
            }
            Ok(EXIT_OK)
        }
        CtlCommand::Get { handle, wait } => {
            if wait {
                return wait_for(s, &handle, Duration::from_secs(3600)).await;
            }
            let rec = get(s, &handle, Duration::ZERO).await?;
            print_record(s, &rec);
            Ok(EXIT_OK)
        }
        CtlCommand::Refresh { wait } => refresh(s, wait, timeout).await,
    }
}

async fn get(s: &Session, handle: &str, wait: Duration) -> Result<OperationReport, String> {
    let handle: crate::ops::handle::Handle = handle
        .parse()
        .map_err(|e: crate::ops::handle::ParseHandleError| e.to_string())?;
    let req = Request::Get {
        handle: handle.into(),
        wait_ms: duration_ms(wait),
    };
    match s.call(&req, wait + Duration::from_secs(15)).await? {
        Response::Operation(rec) => Ok(rec),
        other => Err(unexpected(&other)),
    }
}

fn print_record(s: &Session, rec: &OperationReport) {
    if s.output == OutputFormat::Json {
        print_json(&output::operation_json(rec));
    } else {
        out!("{}", output::operation_text(rec));
    }
}

async fn wait_for(s: &Session, handle: &str, max: Duration) -> CmdResult {
    let started = Instant::now();
    let progress = std::io::stderr().is_terminal();
    loop {
        let rec = get(s, handle, Duration::from_secs(1)).await?;
        let done = rec.ended_unix_ms.is_some();
        if done || started.elapsed() >= max {
            if progress {
                eprint!("\r\x1b[K");
            }
            print_record(s, &rec);
            let sum = output::summarize(&rec);
            return Ok(if done && sum.all_passed() {
                EXIT_OK
            } else {
                EXIT_CHECKS_FAILED
            });
        }
        if progress {
            let sum = output::summarize(&rec);
            eprint!(
                "\r{} of {} hosts answered ({} unreachable)…",
                sum.hosts_answered, sum.hosts_targeted, sum.hosts_unreachable
            );
            let _ = std::io::stderr().flush();
        }
    }
}

async fn refresh(s: &Session, wait: bool, timeout: Duration) -> CmdResult {
    let (refresh_id, targeted) = match s.call(&Request::Refresh, timeout).await? {
        Response::RefreshStarted {
            refresh_id,
            targeted,
        } => (refresh_id, targeted),
        other => return Err(unexpected(&other)),
    };
    if !wait {
        if s.output == OutputFormat::Json {
            print_json(&serde_json::json!({"refresh_id": refresh_id, "targeted": targeted}));
        } else {
            outln!("Initiated refresh");
        }
        return Ok(EXIT_OK);
    }
    let started = Instant::now();
    let limit = timeout.max(Duration::from_secs(30));
    loop {
        let report = s.status().await?;
        let alive: Vec<_> = report
            .members
            .iter()
            .filter(|m| m.state == State::Alive)
            .collect();
        let fresh = alive
            .iter()
            .filter(|m| {
                m.health
                    .as_ref()
                    .is_some_and(|h| h.refresh_id >= refresh_id)
            })
            .count();
        if fresh == alive.len() || started.elapsed() >= limit {
            return print_refresh(s, &report, refresh_id, fresh == alive.len());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn print_refresh(s: &Session, report: &StatusReport, refresh_id: u64, complete: bool) -> CmdResult {
    let mut all_ok = complete;
    let mut rows = Vec::new();
    for m in report.members.iter().filter(|m| m.state == State::Alive) {
        let h = m.health.as_ref().filter(|h| h.refresh_id >= refresh_id);
        if h.is_none_or(|h| h.failing > 0 || h.erroring > 0) {
            all_ok = false;
        }
        rows.push((m.addr.clone(), h.cloned()));
    }
    if s.output == OutputFormat::Json {
        print_json(&serde_json::json!({
            "refresh_id": refresh_id,
            "complete": complete,
            "hosts": rows.iter().map(|(a, h)| serde_json::json!({"host": a, "health": h})).collect::<Vec<_>>(),
        }));
    } else {
        outln!("Initiated refresh");
        for (addr, h) in &rows {
            match h {
                Some(h) => {
                    let mut line = format!(
                        "Host:{addr} Health: {} passing, {} failing, {} erroring",
                        h.passing, h.failing, h.erroring
                    );
                    if !h.failing_names.is_empty() {
                        line.push_str(&format!(" ({})", h.failing_names.join(", ")));
                    }
                    outln!("{line}");
                }
                None => outln!("Host:{addr} Error:no new health summary arrived"),
            }
        }
        let reported = rows.iter().filter(|(_, h)| h.is_some()).count();
        outln!(
            "Refresh complete: {reported} of {} alive hosts reported",
            rows.len()
        );
    }
    Ok(if all_ok { EXIT_OK } else { EXIT_CHECKS_FAILED })
}

/// Runs `werify mesh status`.
pub async fn run_status(args: StatusArgs) -> ExitCode {
    let timeout = args.connect.timeout;
    let work = async {
        let s = session(&args.connect, &args.identity)?;
        let report = s.status().await?;
        if s.output == OutputFormat::Json {
            print_json(&output::status_json(&report));
        } else {
            out!("{}", output::status_text(&report));
        }
        s.transport.shutdown(CLOSE_GRACE).await;
        Ok(EXIT_OK)
    };
    finish(bounded(work, timeout, false).await)
}
