//! Everything that crosses the wire between werify processes.
