//! Every check type, one file each, and the one list that registers them.
//!
//! Each file holds the type's struct (its parameters, which are also its wire form), its
//! `CheckType` implementation (name, fields, rules, how it runs) and its tests. Adding a
//! type is its file, its `pub mod` line and its line in the list below, kept sorted by
//! type name; the registry's `check_types!` generates [`CheckKind`] and [`CHECK_TYPES`]
//! from the list.

pub mod command;
pub mod disk_free;
pub mod file_contains;
pub mod file_exists;
pub mod file_hash;
pub mod file_matches;
pub mod file_mode;
pub mod http_status;
pub mod kernel_param;
pub mod port_listening;
pub mod process_running;
pub mod service_active;
pub mod user_exists;

use super::registry::check_types;

check_types! {
    command::Command,
    disk_free::DiskFree,
    file_contains::FileContains,
    file_exists::FileExists,
    file_hash::FileHash,
    file_matches::FileMatches,
    file_mode::FileMode,
    http_status::HttpStatus,
    kernel_param::KernelParam,
    port_listening::PortListening,
    process_running::ProcessRunning,
    service_active::ServiceActive,
    user_exists::UserExists,
}
