//! `werify node`: turns the node's flags into a [`NodeConfig`] and runs it until Ctrl-C or
//! SIGTERM. Assembling the node is [`crate::node`]'s job.

use std::collections::BTreeMap;
use std::process::ExitCode;

use crate::cli::args::NodeArgs;
use crate::cli::identity::{ca_source, env_of};
use crate::node::{self, NodeConfig};

/// Runs a node until it is told to stop.
pub async fn run_node(args: NodeArgs) -> ExitCode {
    let config = match node_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(2);
        }
    };
    match node::run(config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The node configuration the flags describe; reads the secret file if one is named.
pub fn node_config(args: &NodeArgs) -> Result<NodeConfig, String> {
    Ok(NodeConfig {
        env: env_of(&args.identity)?,
        ca: ca_source(&args.identity)?,
        bind: args.bind,
        port: args.port,
        advertise: args.advertise.clone(),
        join: args.join.clone(),
        tags: parse_tags(&args.tag)?,
        workers: args.workers as usize,
        data_dir: args.data_dir.clone(),
        profile: args.profile,
        checks: args.checks.clone(),
        check_interval: args.check_interval,
        allow_command: args.allow_command,
        http: args.http,
    })
}

fn parse_tags(tags: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for t in tags {
        match t.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            _ => return Err(format!("invalid --tag {t:?}: expected KEY=VALUE")),
        }
    }
    Ok(out)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
