//! Host checks: the operations-file format, every check type, and the runner.

pub mod outcome;

pub use outcome::Outcome;
