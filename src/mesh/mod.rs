//! Mesh membership: node identity, the sans-IO SWIM + Lifeguard state machine, its
//! simulator, and the tokio runtime that drives it over QUIC.
//!
//! State machine files: [`config`] (tuning and formulas), [`member`] (records),
//! [`message`] (wire format), [`membership`] (the machine), with its helpers `suspicion`,
//! `awareness`, `broadcast`, `cbor_len` (encoded sizes without encoding), `index`
//! (compact slot index) and `record` (per-member records and the running state digest).
//! [`sim`] drives many machines in virtual time.
//! Runtime files: [`runtime`] (the tokio driver), [`snapshot`] (persisted membership),
//! [`health`] (periodic checks published into the gossiped state).

mod awareness;
mod broadcast;
mod cbor_len;
pub mod config;
pub mod digest;
pub mod health;
pub mod id;
pub(crate) mod index;
pub mod member;
pub mod membership;
pub mod message;
mod record;
pub mod runtime;
pub mod sim;
pub mod snapshot;
mod suspicion;

pub use config::{Config, Profile};
pub use id::NodeId;
pub use member::{HealthSummary, Member, Peer, State, Tags};
pub use membership::{Event, Membership, RemoveError, Snapshot, Transmit};
pub use message::{DecodeError, Message, PushPull, Update};
