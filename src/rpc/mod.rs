//! The wire between werify processes, and nothing above it: the TLS identity, the QUIC
//! transport and its connection cache, CBOR frames, the request/response protocol with
//! typed error codes, and the limits on what a peer may send. What a node does with a
//! request is in `crate::node`; operations are in `crate::ops`.

pub mod fault;
pub mod frame;
pub mod hostaddr;
pub mod identity;
pub mod limits;
pub mod protocol;
pub mod tls;
pub mod transport;
#[cfg(test)]
mod wire_tests;
