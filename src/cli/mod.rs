//! The `werify` command line.

use std::process::ExitCode;

/// Entry point of the `werify` binary.
pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
