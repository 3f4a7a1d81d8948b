//! `werify certs`: `init` writes a new env CA for PEM mode, `issue` writes a certificate
//! and key for an operator or a node, `fingerprint` names certificates for deny files.
//! The cryptography is in [`crate::rpc::identity`].

use std::path::Path;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::base::NodeId;
use crate::cli::args::IssueArgs;
use crate::cli::error::{CliError, EXIT_OK};
use crate::rpc::identity::{
    Env, Holder, IdentityError, IssueFor, IssueRequest, fingerprint as sha256, init_ca, issue,
};

/// Writes the CA for `env` into `out` and says how to start nodes with it.
pub fn init(env: &str, out: &Path, force: bool) -> Result<u8, CliError> {
    let env = env.parse::<Env>()?;
    let files = init_ca(&env, out, force)?;
    println!("Wrote the CA for env {env:?}:");
    println!("  certificate: {}", files.cert.display());
    println!(
        "  key:         {} (mode 0600; keep it secret)",
        files.key.display()
    );
    println!("  fingerprint: {}", files.fingerprint);
    println!(
        "Issue certificates with: werify certs issue --ca-cert {} --ca-key {} --operator NAME \
         (or --node HOST)",
        files.cert.display(),
        files.key.display()
    );
    println!(
        "Or let nodes sign their own: werify node --ca-cert {} --ca-key {}",
        files.cert.display(),
        files.key.display()
    );
    Ok(EXIT_OK)
}

/// Issues an operator or node certificate and says how to use it.
pub fn issue_cert(args: &IssueArgs) -> Result<u8, CliError> {
    let env = match args.env.as_deref().filter(|e| !e.is_empty()) {
        Some(e) => Some(e.parse::<Env>()?),
        None => None,
    };
    // clap requires one of --operator and --node.
    let subject = match (&args.operator, &args.node) {
        (Some(name), _) => IssueFor::Operator(name.clone()),
        (None, host) => IssueFor::Node {
            host: host.clone().unwrap_or_default(),
            node_id: args
                .node_id
                .as_deref()
                .map(str::parse::<NodeId>)
                .transpose()?,
        },
    };
    let files = issue(&IssueRequest {
        ca_cert: &args.ca_cert,
        ca_key: &args.ca_key,
        env: env.as_ref(),
        subject,
        days: args.days,
        out_dir: &args.out,
        force: args.force,
    })?;
    let until = files.not_after.date();
    println!(
        "Wrote the certificate of {} in env {:?}, valid until {until}:",
        files.holder,
        files.env.to_string()
    );
    println!("  certificate: {}", files.cert.display());
    println!(
        "  key:         {} (mode 0600; keep it secret)",
        files.key.display()
    );
    println!(
        "  fingerprint: {} (what --deny files name)",
        files.fingerprint
    );
    let flags = format!(
        "--cert {} --key {} --ca-cert {}",
        files.cert.display(),
        files.key.display(),
        args.ca_cert.display()
    );
    match files.holder {
        Holder::Operator(_) => println!("Use it with: werify ctl {flags} …"),
        _ => println!("Use it with: werify node {flags} …"),
    }
    Ok(EXIT_OK)
}

/// Prints the SHA-256 fingerprint of every certificate in `file`, one per line.
pub fn fingerprint(file: &Path) -> Result<u8, CliError> {
    let pem = std::fs::read(file).map_err(|source| {
        CliError::Identity(IdentityError::Read {
            path: file.to_path_buf(),
            source,
        })
    })?;
    let mut found = 0;
    for der in CertificateDer::pem_slice_iter(&pem).flatten() {
        println!("{}", sha256(&der));
        found += 1;
    }
    if found == 0 {
        return Err(CliError::NoCertificate(file.display().to_string()));
    }
    Ok(EXIT_OK)
}
