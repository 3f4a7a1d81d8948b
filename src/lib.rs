//! werify: a gossip-based peer-to-peer host-check mesh.
//!
//! # Layout
//! - [`mesh`]: who is in the mesh. A sans-IO SWIM + Lifeguard membership state machine
//!   (time, messages and commands in; messages, timers and events out), the deterministic
//!   simulator that drives thousands of them, and the thin tokio runtime that drives one
//!   for real.
//! - [`rpc`]: everything that crosses the wire between processes: the env-derived TLS
//!   identity, the QUIC endpoint, length-prefixed CBOR frames, the request/response
//!   protocol, the node's request handlers, operation coordination and the result store.
//! - [`checks`]: the host checks themselves (file, process, port, command, http, …), the
//!   operations-file parser and the runner with per-check timeouts.
//! - [`cli`]: the `werify` command line: argument parsing, output formats, exit codes.
#![forbid(unsafe_code)]

pub mod base;
pub mod checks;
pub mod cli;
pub mod mesh;
pub mod node;
pub mod ops;
pub mod rpc;
