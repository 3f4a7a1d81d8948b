//! Everything that crosses the wire between werify processes.

pub mod handle;
pub mod limits;
pub mod store;
