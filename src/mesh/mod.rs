//! Mesh membership: the sans-IO SWIM + Lifeguard state machine and its simulator. No
//! I/O, no clock, no async runtime: time, messages and commands go in; messages, timers
//! and events come out. The tokio driver that runs one over QUIC is in `crate::node`.
//!
//! State machine files: [`config`] (tuning and formulas), [`member`] (records),
//! [`message`] (wire format), [`membership`] (the machine), with its helpers `suspicion`,
//! `awareness`, `broadcast`, `cbor_len` (encoded sizes without encoding), `index`
//! (compact slot index) and `record` (per-member records and the running state digest).
//! `sim` (with the `sim` feature, and in tests) drives many machines in virtual time.

mod awareness;
mod broadcast;
pub(crate) mod cbor_len;
pub mod config;
pub mod digest;
pub(crate) mod index;
pub mod member;
pub mod membership;
pub mod message;
mod record;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
mod suspicion;

pub use crate::base::NodeId;
pub use config::{Config, Profile};
pub use member::{HealthSummary, Member, Peer, State, Tags};
pub use membership::{Event, Membership, RemoveError, Snapshot, Transmit};
pub use message::{DecodeError, Message, PushPull, Update};
