//! The `werify` command line: parses arguments, sets up logging and the tokio runtime, and
//! hands over to `node`, `ctl`, `mesh status` or `certs`. Exit codes: 0 success, 1 a check
//! failed or a host did not answer (`--wait` commands), 2 usage/connection/input error.

pub mod args;
pub mod command;
pub mod config_file;
pub mod ctl;
pub mod identity;
pub mod node;
pub mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::args::{CertsCommand, Cli, Command, MeshCommand};

/// Threads the async runtime may start for blocking work (checks, store commits).
const MAX_BLOCKING_THREADS: usize = 32;

/// Entry point of the `werify` binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(ctl::EXIT_ERROR),
            };
        }
    };
    init_logging(matches!(cli.command, Command::Node(_)));
    // One thread runs all async work, a node's included: its tasks never wait for another
    // thread to be woken, which on a busy host (the CPU shared with many others) is much
    // of a short command's time and of a node's CPU. 64 nodes joining at once on 2 cores,
    // against two worker threads each: convergence 441 against 511 ms (median of 6 runs),
    // 1.74-1.96 against 2.03-2.28 s of CPU in the 5 s after the joins.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        // What blocks (checks, store commits, snapshot writes) runs on the blocking pool.
        // Each extra thread costs a stack and, with glibc, often a malloc arena: bound the
        // pool so a busy node's memory stays flat (a check that hangs past its timeout
        // holds one thread).
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start the async runtime: {e}");
            return ExitCode::from(ctl::EXIT_ERROR);
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Node(args) => node::run_node(args).await,
            Command::Ctl(args) => ctl::run_ctl(args).await,
            Command::Mesh {
                command: MeshCommand::Status(args),
            } => ctl::run_status(args).await,
            Command::Certs {
                command: CertsCommand::Init { env, out, force },
            } => certs_init(&env, &out, force),
        }
    })
}

fn certs_init(env: &str, out: &std::path::Path, force: bool) -> ExitCode {
    let env = match env.parse::<crate::rpc::identity::Env>() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(ctl::EXIT_ERROR);
        }
    };
    match crate::rpc::identity::init_ca(&env, out, force) {
        Ok(files) => {
            println!("Wrote the CA for env {env:?}:");
            println!("  certificate: {}", files.cert.display());
            println!(
                "  key:         {} (mode 0600; keep it secret)",
                files.key.display()
            );
            println!("  fingerprint: {}", files.fingerprint);
            println!(
                "Start nodes with: werify node --ca-cert {} --ca-key {}",
                files.cert.display(),
                files.key.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(ctl::EXIT_ERROR)
        }
    }
}

/// Logs to stderr; `RUST_LOG` overrides the default (info for nodes, warn otherwise).
fn init_logging(node: bool) {
    let default = if node { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
