//! Everything that crosses the wire between werify processes: the TLS identity, the QUIC
//! transport, CBOR frames, the request protocol, the node's request handlers, operation
//! coordination, handles and the result store.

pub mod coordinator;
pub mod hostaddr;
pub mod protocol;
pub mod server;
pub mod transport;
