//! Mesh membership: node identity, the sans-IO SWIM + Lifeguard state machine, its
//! simulator, and the tokio runtime that drives it over QUIC.

pub mod health;
pub mod id;
pub mod runtime;
pub mod snapshot;
