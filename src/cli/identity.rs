//! Turning the identity flags (`--env`, `--secret-file`, `WERIFY_SECRET`, `--ca-cert`,
//! `--ca-key`, `--cert`, `--key`) into a TLS [`Identity`]. The cryptography is in [`crate::rpc::identity`].

use std::net::IpAddr;

use crate::base::NodeId;
use crate::cli::args::IdentityArgs;
use crate::cli::error::CliError;
use crate::rpc::identity::{CaSource, Env, Identity, Role, Secret};

/// Builds this process's identity from the flags.
pub fn identity_from_args(
    args: &IdentityArgs,
    role: Role,
    node_id: NodeId,
    ips: &[IpAddr],
) -> Result<Identity, CliError> {
    let env = env_of(args)?;
    let ca = ca_source(args)?;
    Ok(Identity::new(env.as_ref(), &ca, role, node_id, ips)?)
}

/// The env the flags name; an empty `--env` or `WERIFY_ENV` counts as unset.
pub fn env_of(args: &IdentityArgs) -> Result<Option<Env>, CliError> {
    match args.env.as_deref().filter(|e| !e.is_empty()) {
        Some(e) => Ok(Some(e.parse::<Env>()?)),
        None => Ok(None),
    }
}

/// Where the trusted CAs and this process's certificate come from: `--ca-cert` with
/// `--ca-key` (minted here) or with `--cert` and `--key` (issued), else derived mode.
pub fn ca_source(args: &IdentityArgs) -> Result<CaSource, CliError> {
    let pem = !args.ca_cert.is_empty();
    let wrong = |what: &'static str| Err(CliError::IdentityFlags(what));
    match (pem, &args.ca_key, &args.cert, &args.key) {
        (_, Some(_), Some(_), _) => wrong(
            "--ca-key and --cert cannot be used together: sign this process's own \
             certificate with the CA key, or present one from werify certs issue",
        ),
        (_, _, Some(_), None) => wrong("--cert needs --key, the certificate's private key"),
        (_, _, None, Some(_)) => wrong("--key needs --cert, the certificate it belongs to"),
        (false, _, Some(_), Some(_)) => wrong("--cert needs --ca-cert, the CA or CAs to trust"),
        (false, Some(_), _, _) => wrong("--ca-key needs --ca-cert, the CA it belongs to"),
        (true, None, None, None) => wrong(
            "--ca-cert needs --ca-key (this process signs its own certificate with the CA \
             key) or --cert and --key (a certificate from werify certs issue)",
        ),
        (true, _, Some(cert), Some(key)) => Ok(CaSource::Issued {
            ca_certs: args.ca_cert.clone(),
            cert: cert.clone(),
            key: key.clone(),
        }),
        (true, Some(key), None, None) => Ok(CaSource::Pem {
            certs: args.ca_cert.clone(),
            key: key.clone(),
        }),
        (false, None, None, None) => Ok(CaSource::Derived {
            secret: secret_of(args),
        }),
    }
}

/// The derived mode secret the flags name (a file, or `WERIFY_SECRET`).
fn secret_of(args: &IdentityArgs) -> Secret {
    match (
        &args.secret_file,
        args.secret.as_deref().filter(|s| !s.is_empty()),
    ) {
        (Some(path), _) => Secret::File(path.clone()),
        (None, Some(s)) => Secret::Given(s.as_bytes().to_vec()),
        (None, None) => Secret::None,
    }
}
