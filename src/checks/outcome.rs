//! The result of one check on one host, as reported back to the coordinator and stored.
//! How a check is run lives in the runner; how results are printed lives in the CLI.

use serde::{Deserialize, Serialize};

/// What one check concluded on one host.
///
/// `Success(true)` means the check holds (after applying `"expect": false`, if any);
/// `Success(false)` means it does not; `Error` means it could not be decided (unreadable
/// file, timeout, refused, …) and carries a one-line reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The check ran and its condition held (`true`) or did not (`false`).
    Success(bool),
    /// The check could not run or could not decide; a one-line human-readable reason.
    Error(String),
}

impl Outcome {
    /// True only for `Success(true)`.
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Success(true))
    }
}
