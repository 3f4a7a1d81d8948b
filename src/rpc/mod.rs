//! Everything that crosses the wire between werify processes.

pub mod frame;
pub mod identity;
pub mod tls;
