//! `werify ctl` and `werify mesh status`: connecting to a node, running one command or a
//! batch from stdin, and choosing the exit code. The commands' clap definitions are in
//! [`crate::cli::command`]; formats in [`crate::cli::output`]; errors and their exit
//! codes in [`crate::cli::error`].

use std::io::{BufRead, IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::base::NodeId;
use crate::base::clock::duration_ms;
use crate::checks::spec::{
    CheckSet, FileFormat, load_operations_file, parse_operations_as, read_operations,
};
use crate::cli::args::{ConnectArgs, CtlArgs, IdentityArgs, StatusArgs};
use crate::cli::command::{CtlCommand, CtlSubcommand, Line, OperationArgs, parse_batch_line};
use crate::cli::error::{CliError, EXIT_OK, report, report_batch_line};
use crate::cli::identity::identity_from_args;
use crate::cli::output::{self, CommandOutput, OutputFormat, RefreshResult, RenderOptions};
use crate::mesh::member::State;
use crate::ops::handle::Handle;
use crate::rpc::hostaddr::parse_host;
use crate::rpc::identity::Role;
use crate::rpc::protocol::{
    HostReport, OperationReport, Request, Response, StatusReport, TargetFilter,
};
use crate::rpc::transport::{Transport, response_name};

/// Writes to stdout; a closed pipe (`werify ctl list | head -1`) ends the process quietly
/// with success, as Unix tools do, instead of a panic.
pub fn print(text: &str) {
    if let Err(e) = std::io::stdout().lock().write_all(text.as_bytes()) {
        stdout_failed(e);
    }
}

/// Flushes stdout, so a line streamed to a pipe leaves now.
fn flush() {
    if let Err(e) = std::io::stdout().lock().flush() {
        stdout_failed(e);
    }
}

/// What to do when stdout cannot be written.
fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    std::process::exit(i32::from(report(&CliError::Stdout(e))));
}

/// How long a finished command waits for its connection's close to leave. The close
/// frame goes out as soon as the endpoint's driver runs, which a 1–2 ms timer lets it do;
/// waiting for the whole drain (three probe timeouts) would only answer late packets. If
/// the close is lost anyway, the node drops the connection after
/// [`crate::rpc::tls::CTL_IDLE_TIMEOUT`].
const CLOSE_GRACE: Duration = Duration::from_millis(2);

/// Bound on the whole call of a command that waits (`--wait`, batch mode), unless
/// `--timeout` is longer; each wait bounds itself more tightly.
const WAITING_CALL_LIMIT: Duration = Duration::from_secs(3600);

/// A connected `ctl` session: one endpoint, one connection reused by every command.
struct Session {
    transport: Transport,
    addr: SocketAddr,
    connect_text: String,
    output: OutputFormat,
    render: RenderOptions,
    hint_flags: String,
}

impl Session {
    async fn call(&self, req: &Request, timeout: Duration) -> Result<Response, CliError> {
        match self.transport.call(self.addr, req, timeout).await? {
            Response::Error { code, message } => Err(CliError::Refused { code, message }),
            r => Ok(r),
        }
    }

    async fn status(&self) -> Result<StatusReport, CliError> {
        match self.call(&Request::Status, Duration::from_secs(30)).await? {
            Response::Status(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    fn show(&self, out: CommandOutput<'_>) {
        print(&output::render(self.output, &out, self.render));
    }

    /// Refuses a results-only `--output` (junit, tap, nagios, prometheus) for a command
    /// that shows no check results, before it runs.
    fn check_format(&self, cmd: &CtlCommand) -> Result<(), CliError> {
        check_format(self.output, cmd.shows_results(), cmd.name())
    }
}

/// Refuses `format` for a command that shows no check results when it only shows results.
pub fn check_format(
    format: OutputFormat,
    shows_results: bool,
    command: &str,
) -> Result<(), CliError> {
    if format.results_only() && !shows_results {
        return Err(CliError::OutputFormat {
            format: format.name(),
            command: command.to_string(),
        });
    }
    Ok(())
}

fn unexpected(r: &Response) -> CliError {
    CliError::Unexpected(response_name(r))
}

fn session(connect: &ConnectArgs, identity: &IdentityArgs) -> Result<Session, CliError> {
    let addr = parse_host(connect.target()).map_err(CliError::Connect)?;
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
    let transport = Transport::client(Arc::new(id), addr)?;
    Ok(Session {
        transport,
        addr,
        connect_text: connect.target().to_string(),
        output: connect.output,
        render: RenderOptions {
            verbose: connect.verbose,
        },
        hint_flags,
    })
}

/// Runs `werify ctl`; the exit code, or the error that stopped it.
pub async fn run_ctl(args: CtlArgs) -> Result<u8, CliError> {
    let timeout = args.connect.timeout;
    let waits = match &args.command {
        CtlSubcommand::Run(cmd) => cmd.waits(),
        CtlSubcommand::Batch => true,
    };
    if let CtlSubcommand::Run(cmd) = &args.command {
        check_format(args.connect.output, cmd.shows_results(), cmd.name())?;
    }
    let work = async {
        let s = session(&args.connect, &args.identity)?;
        let code = match args.command {
            CtlSubcommand::Run(cmd) => run_one(&s, cmd, timeout).await?,
            CtlSubcommand::Batch => run_batch(&s, timeout).await?,
        };
        s.transport.shutdown(CLOSE_GRACE).await;
        Ok(code)
    };
    bounded(work, timeout, waits).await
}

/// Bounds the whole call by `timeout` (commands that wait get the longer of it and
/// [`WAITING_CALL_LIMIT`], and bound each wait on their own), and stops on Ctrl-C.
async fn bounded(
    work: impl std::future::Future<Output = Result<u8, CliError>>,
    timeout: Duration,
    waits: bool,
) -> Result<u8, CliError> {
    let limit = if waits {
        timeout.max(WAITING_CALL_LIMIT)
    } else {
        timeout
    };
    tokio::select! {
        r = tokio::time::timeout(limit, work) => r.unwrap_or(Err(CliError::Timeout(timeout))),
        _ = tokio::signal::ctrl_c() => Err(CliError::Interrupted),
    }
}

/// How standard input is named in errors about an operations file read from it.
pub const STDIN_LABEL: &str = "<stdin>";

/// Reads an operations file from standard input (all of it, up to the size limit): JSON
/// when it starts with `{`, YAML otherwise ([`FileFormat::sniff`]). Errors name
/// [`STDIN_LABEL`].
pub(crate) async fn read_stdin_operations() -> Result<CheckSet, CliError> {
    // A blocking read: off the thread that drives the connection.
    let text =
        tokio::task::spawn_blocking(|| read_operations(std::io::stdin().lock(), STDIN_LABEL))
            .await
            .map_err(|e| CliError::Stdin(std::io::Error::other(e)))??;
    Ok(parse_operations_as(
        &text,
        STDIN_LABEL,
        FileFormat::sniff(&text),
    )?)
}

/// Batch mode: one command per stdin line until the first error, which is reported here
/// (its exit code is returned); then the count of commands run.
async fn run_batch(s: &Session, timeout: Duration) -> Result<u8, CliError> {
    let stdin = std::io::stdin();
    let mut processed = 0usize;
    let mut worst = EXIT_OK;
    for line in stdin.lock().lines() {
        let line = line.map_err(CliError::Stdin)?;
        let r = match parse_batch_line(&line) {
            Ok(Line::Skip) => continue,
            Ok(Line::Help(text)) => {
                print(&text);
                Ok(EXIT_OK)
            }
            // Standard input is the batch: it holds no operations file.
            Ok(Line::Run(CtlCommand::Operation(op))) if op.reads_stdin() => {
                Err(CliError::StdinIsBatch)
            }
            Ok(Line::Run(cmd)) => run_one(s, cmd, timeout).await,
            Err(e) => Err(e),
        };
        match r {
            Ok(code) => worst = worst.max(code),
            // The whole line, then the message; earlier output stays.
            Err(e) => return Ok(report_batch_line(line.trim(), &e)),
        }
        processed += 1;
    }
    print(&output::batch_end(processed));
    Ok(worst)
}

async fn run_one(s: &Session, cmd: CtlCommand, timeout: Duration) -> Result<u8, CliError> {
    s.check_format(&cmd)?;
    match cmd {
        CtlCommand::Add { host } => {
            s.call(&Request::Add { host: host.clone() }, timeout)
                .await?;
            s.show(CommandOutput::Added { host: &host });
            Ok(EXIT_OK)
        }
        CtlCommand::Del { host } => {
            s.call(&Request::Del { host: host.clone() }, timeout)
                .await?;
            s.show(CommandOutput::Removed { host: &host });
            Ok(EXIT_OK)
        }
        CtlCommand::List => list(s, true, true).await,
        CtlCommand::Listactive => list(s, true, false).await,
        CtlCommand::Listinactive => list(s, false, true).await,
        CtlCommand::Operation(op) => operation(s, op, timeout).await,
        CtlCommand::Get { handle, wait } => {
            if wait {
                return wait_for(s, &handle, WAITING_CALL_LIMIT).await;
            }
            let rec = get(s, &handle, Duration::ZERO, None).await?;
            let out = CommandOutput::Operation(&rec);
            s.show(out);
            Ok(match s.output {
                OutputFormat::Nagios => output::results_exit_code(s.output, &out, true),
                _ => EXIT_OK,
            })
        }
        CtlCommand::Refresh { wait } => refresh(s, wait, timeout).await,
    }
}

async fn list(s: &Session, active: bool, inactive: bool) -> Result<u8, CliError> {
    let report = s.status().await?;
    s.show(CommandOutput::List {
        report: &report,
        active,
        inactive,
    });
    Ok(EXIT_OK)
}

async fn operation(s: &Session, op: OperationArgs, timeout: Duration) -> Result<u8, CliError> {
    let checks = if op.reads_stdin() {
        read_stdin_operations().await?
    } else {
        load_operations_file(&op.file)?
    };
    let req = Request::Submit {
        checks,
        filter: TargetFilter {
            nodes: op.nodes,
            tags: op.tags,
        },
        deadline_ms: duration_ms(op.deadline),
    };
    let (handle, targeted) = match s.call(&req, timeout).await? {
        Response::Submitted {
            handle, targeted, ..
        } => (handle, targeted),
        other => return Err(unexpected(&other)),
    };
    if op.wait {
        return wait_for(s, &handle, op.deadline + Duration::from_secs(10)).await;
    }
    let get_command = format!(
        "werify ctl --connect {}{} get {handle}",
        s.connect_text, s.hint_flags
    );
    s.show(CommandOutput::Submitted {
        handle: &handle,
        coordinator: s.addr,
        targeted,
        get_command: &get_command,
    });
    Ok(EXIT_OK)
}

async fn get(
    s: &Session,
    handle: &str,
    wait: Duration,
    known_answers: Option<u64>,
) -> Result<OperationReport, CliError> {
    let handle: Handle = handle.parse()?;
    let req = Request::Get {
        handle: handle.into(),
        wait_ms: duration_ms(wait),
        known_answers,
    };
    match s.call(&req, wait + Duration::from_secs(15)).await? {
        Response::Operation(rec) => Ok(rec),
        other => Err(unexpected(&other)),
    }
}

/// Polls an operation until it ended or `max` passed, then prints it: exit 0 if every
/// targeted host answered and every check passed, else 1 (with `--output nagios`, the
/// plugin's status). With `--output jsonl`, each host's line is printed as soon as the
/// host answers, and the hosts still silent at the end after them.
async fn wait_for(s: &Session, handle: &str, max: Duration) -> Result<u8, CliError> {
    let started = Instant::now();
    let progress = std::io::stderr().is_terminal();
    let streaming = s.output == OutputFormat::Jsonl;
    let mut streamed = std::collections::BTreeSet::new();
    loop {
        let known = streaming.then_some(streamed.len() as u64);
        let rec = get(s, handle, Duration::from_secs(1), known).await?;
        let done = rec.ended_unix_ms.is_some();
        let finished = done || started.elapsed() >= max;
        if streaming {
            for (host, r) in &rec.hosts {
                let answered = !matches!(r, HostReport::Pending);
                if (answered || finished) && streamed.insert(host.clone()) {
                    if progress {
                        eprint!("\r\x1b[K");
                    }
                    print(&format!(
                        "{}\n",
                        output::json::operation_host_line(&rec, host, r)
                    ));
                    flush();
                }
            }
        }
        if finished {
            if progress {
                eprint!("\r\x1b[K");
            }
            let out = CommandOutput::Operation(&rec);
            if !streaming {
                s.show(out);
            }
            let passed = done && output::summarize(&rec).all_passed();
            return Ok(output::results_exit_code(s.output, &out, passed));
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

async fn refresh(s: &Session, wait: bool, timeout: Duration) -> Result<u8, CliError> {
    let (refresh_id, targeted) = match s.call(&Request::Refresh, timeout).await? {
        Response::RefreshStarted {
            refresh_id,
            targeted,
        } => (refresh_id, targeted),
        other => return Err(unexpected(&other)),
    };
    if !wait {
        s.show(CommandOutput::RefreshStarted {
            refresh_id,
            targeted,
        });
        return Ok(EXIT_OK);
    }
    let started = Instant::now();
    let limit = timeout.max(Duration::from_secs(30));
    loop {
        let report = s.status().await?;
        let alive = || report.members.iter().filter(|m| m.state == State::Alive);
        let fresh = |m: &&crate::rpc::protocol::MemberReport| {
            m.health
                .as_ref()
                .is_some_and(|h| h.refresh_id >= refresh_id)
        };
        let complete = alive().all(|m| fresh(&m));
        if complete || started.elapsed() >= limit {
            let result = RefreshResult {
                refresh_id,
                complete,
                hosts: alive()
                    .map(|m| (m.addr.clone(), m.health.clone().filter(|_| fresh(&m))))
                    .collect(),
            };
            let out = CommandOutput::Refreshed(&result);
            s.show(out);
            return Ok(output::results_exit_code(
                s.output,
                &out,
                result.all_passed(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `werify mesh status`.
pub async fn run_status(args: StatusArgs) -> Result<u8, CliError> {
    let timeout = args.connect.timeout;
    check_format(args.connect.output, false, "mesh status")?;
    let work = async {
        let s = session(&args.connect, &args.identity)?;
        let report = s.status().await?;
        s.show(CommandOutput::Status(&report));
        s.transport.shutdown(CLOSE_GRACE).await;
        Ok(EXIT_OK)
    };
    bounded(work, timeout, false).await
}
