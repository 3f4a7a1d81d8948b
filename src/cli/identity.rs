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

/// Where the trusted CAs and this process's certificate come from.
pub fn ca_source(args: &IdentityArgs) -> Result<CaSource, CliError> {
    match (&args.cert, &args.key, &args.ca_key) {
        (Some(cert), Some(key), _) => {
            return Ok(CaSource::Issued {
                ca_certs: args.ca_cert.clone(),
                cert: cert.clone(),
                key: key.clone(),
            });
        }
        (None, None, Some(key)) => {
            return Ok(CaSource::Pem {
                certs: args.ca_cert.clone(),
                key: key.clone(),
            });
        }
        _ => {}
    }
    if !args.ca_cert.is_empty() {
        return Err(CliError::CaCertAlone);
    }
    let secret = match (
        &args.secret_file,
        args.secret.as_deref().filter(|s| !s.is_empty()),
    ) {
        (Some(path), _) => Secret::File(path.clone()),
        (None, Some(s)) => Secret::Given(s.as_bytes().to_vec()),
        (None, None) => Secret::None,
    };
    Ok(CaSource::Derived { secret })
}
