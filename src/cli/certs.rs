//! `werify certs init`: writes a new env CA for PEM mode. The cryptography is in
//! [`crate::rpc::identity`].

use std::path::Path;

use crate::cli::error::{CliError, EXIT_OK};
use crate::rpc::identity::{Env, init_ca};

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
        "Start nodes with: werify node --ca-cert {} --ca-key {}",
        files.cert.display(),
        files.key.display()
    );
    Ok(EXIT_OK)
}
