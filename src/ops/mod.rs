//! Operations: a named set of checks run on every targeted host. The [`handle`] that names
//! one, the [`store`] that keeps its record across restarts, and the [`coordinator`] that
//! fans it out and gathers the answers. The wire format is in `crate::rpc`; running checks
//! is in `crate::checks`; serving requests is in `crate::node`.

pub mod coordinator;
pub mod error;
pub mod handle;
pub mod store;
