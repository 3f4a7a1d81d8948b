//! Turning the identity flags (`--env`, `--secret-file`, `WERIFY_SECRET`, `--ca-cert`,
//! `--ca-key`) into a TLS [`Identity`]. The cryptography is in [`crate::rpc::identity`].

use std::net::IpAddr;

use crate::base::NodeId;
use crate::cli::args::IdentityArgs;
use crate::cli::error::CliError;
use crate::rpc::identity::{CaSource, Env, Identity, Role, read_secret_file};

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

/// Where the env CA comes from.
pub fn ca_source(args: &IdentityArgs) -> Result<CaSource, CliError> {
    if let (Some(cert), Some(key)) = (&args.ca_cert, &args.ca_key) {
        return Ok(CaSource::Pem {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    let secret = match (
        &args.secret_file,
        args.secret.as_deref().filter(|s| !s.is_empty()),
    ) {
        (Some(path), _) => Some(read_secret_file(path)?),
        (None, Some(s)) => Some(s.as_bytes().to_vec()),
        (None, None) => None,
    };
    Ok(CaSource::Derived { secret })
}
