//! Tells the service manager how the node is doing, by the sd_notify protocol (systemd's
//! `Type=notify`): `READY=1` once the node is serving, `STOPPING=1` when it starts to shut
//! down. Nothing is sent unless `NOTIFY_SOCKET` is set (the service manager sets it);
//! when it is set and sending fails, the node logs it and runs on.

use sd_notify::NotifyState;

/// The node is serving: its endpoint is open and its first join attempt made.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// The node is shutting down (leaving the mesh).
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("leaving the mesh"),
    ]);
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(
            "cannot tell the service manager through NOTIFY_SOCKET {:?}: {e}",
            std::env::var_os("NOTIFY_SOCKET").unwrap_or_default()
        );
    }
}
