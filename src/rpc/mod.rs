//! Everything that crosses the wire between werify processes: the TLS identity, the QUIC
//! transport, CBOR frames, the request protocol, the node's request handlers, operation
//! coordination, handles and the result store.

pub mod coordinator;
pub mod frame;
pub mod handle;
pub mod hostaddr;
pub mod identity;
pub mod limits;
pub mod protocol;
pub mod server;
pub mod store;
pub mod tls;
pub mod transport;
