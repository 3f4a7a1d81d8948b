//! What every layer may import: the node id, the env tag, clock helpers and hex digits. Imports
//! nothing else from werify; protocol logic, I/O and configuration live elsewhere.

pub mod clock;
pub mod env;
pub mod hex;
pub mod node_id;

pub use env::{Env, ParseEnvError};
pub use node_id::NodeId;
