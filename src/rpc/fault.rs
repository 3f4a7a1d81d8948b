//! Whose fault a failure is: what the rpc error types tell a caller that has to choose an
//! exit code, a log level, or whether retrying can help, without reading their text.

/// Whose fault a failure is, from the point of view of the process that saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The other process: it refused us, broke the protocol or answered wrongly. Its
    /// operator has to act (or the caller tries another peer).
    Peer,
    /// The caller's input or configuration: a wrong address, env, secret, CA, or request.
    /// Fix it and try again.
    Caller,
    /// The surroundings: the network, a peer that is down, restarting or busy, a port
    /// already taken, the clock. Trying again later may help.
    Environment,
    /// A bug in werify: report it.
    Bug,
}
