//! Why an operation request failed, grouped by whose fault it is; each maps to the wire's
//! [`ErrorCode`] so a client can act on it without reading the text.

use std::net::IpAddr;

use crate::ops::handle::ParseHandleError;
use crate::ops::store::StoreError;
use crate::rpc::protocol::ErrorCode;

/// An operation request that could not be served.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    // The caller's input.
    #[error("invalid operation: {0}")]
    InvalidChecks(String),
    #[error("deadline {shown} is out of range: use more than 0s and at most {max_secs}s")]
    DeadlineOutOfRange { shown: String, max_secs: u64 },
    #[error("invalid {flag} regex {regex:?}: {reason}")]
    InvalidFilter {
        flag: &'static str,
        regex: String,
        reason: String,
    },
    #[error(
        "no alive member matches {filter}, so nothing was run{}; alive members ({alive}): {candidates}",
        matched_gone(.gone)
    )]
    NoMatch {
        /// The filters as given on the command line.
        filter: String,
        /// How many members are alive (or suspect).
        alive: usize,
        /// The alive members, described (address, short id, tags), bounded.
        candidates: String,
        /// Members the filters match that are dead or left, if any.
        gone: String,
    },
    #[error(transparent)]
    InvalidHandle(#[from] ParseHandleError),
    #[error("unknown handle {handle}: {why}")]
    UnknownHandle { handle: String, why: String },

    // Refused for now.
    #[error(
        "too many {what} from {client}: at most {per_second} per second; retry in {retry_ms} ms"
    )]
    RateLimited {
        what: &'static str,
        client: IpAddr,
        per_second: u32,
        retry_ms: u128,
    },
    #[error(
        "this node already coordinates {0} running operations; wait for some to finish or submit to another node"
    )]
    TooManyRunning(usize),

    // This node or its environment.
    #[error("the node is shutting down")]
    ShuttingDown,
    #[error("cannot record the operation: {0}")]
    Record(StoreError),
    #[error("cannot read operation {handle}: {source}")]
    Read { handle: String, source: StoreError },
    #[error("the result store failed: {0}")]
    StoreTask(String),

    // Another node.
    #[error("{message}")]
    Remote { code: ErrorCode, message: String },
}

/// The part of [`OpsError::NoMatch`]'s message about matched members that are not alive.
fn matched_gone(gone: &str) -> String {
    if gone.is_empty() {
        String::new()
    } else {
        format!(" (it matches only members that are not alive: {gone})")
    }
}

impl OpsError {
    /// The wire code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            OpsError::InvalidChecks(_)
            | OpsError::DeadlineOutOfRange { .. }
            | OpsError::InvalidFilter { .. }
            | OpsError::InvalidHandle(_) => ErrorCode::Invalid,
            OpsError::UnknownHandle { .. } => ErrorCode::NotFound,
            OpsError::NoMatch { .. } => ErrorCode::NoMatch,
            OpsError::RateLimited { .. } | OpsError::TooManyRunning(_) => ErrorCode::RateLimited,
            OpsError::ShuttingDown
            | OpsError::Record(_)
            | OpsError::Read { .. }
            | OpsError::StoreTask(_) => ErrorCode::Unavailable,
            OpsError::Remote { code, .. } => *code,
        }
    }
}
