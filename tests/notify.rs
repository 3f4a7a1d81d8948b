//! The node's readiness protocol with a service manager (systemd's `Type=notify`), seen
//! from a real unix datagram socket standing in for systemd's: a real `werify node`
//! process started with `NOTIFY_SOCKET` pointing at it sends `READY=1` once its QUIC
//! port is open (and answers) and its first join attempt has gone out, and `STOPPING=1`
//! on SIGTERM, before it leaves the mesh and exits. Loopback 127.0.0.1, ports
//! 32210-32211.

mod common;

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TempDir, stderr, stdout, werify_in};

const NODE_PORT: u16 = 32210;
/// A contact that takes the join's datagrams and never answers.
const CONTACT_PORT: u16 = 32211;

/// Bound on every wait below; not a speed assertion.
const DEADLINE: Duration = Duration::from_secs(30);

/// The node process, killed by PID on drop if still running.
struct NodeProcess(Child);

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The next notification on `socket`, or `None` if none came within `limit`.
fn next_message(socket: &UnixDatagram, limit: Duration) -> Option<String> {
    socket.set_read_timeout(Some(limit)).expect("read timeout");
    let mut buf = [0u8; 4096];
    match socket.recv(&mut buf) {
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(_) => None,
    }
}

#[test]
fn ready_once_serving_and_joining_stopping_on_sigterm() {
    let dir = TempDir::new("notify");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    let contact = UdpSocket::bind(("127.0.0.1", CONTACT_PORT)).expect("bind the contact");
    let log_path = dir.path().join("node.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let node_addr = format!("127.0.0.1:{NODE_PORT}");
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let child = werify_in(
        None,
        &[
            "node",
            "--bind",
            "127.0.0.1",
            "--port",
            &NODE_PORT.to_string(),
            "--profile",
            "local",
            "--join",
            &format!("127.0.0.1:{CONTACT_PORT}"),
        ],
    )
    .arg("--data-dir")
    .arg(dir.path().join("data"))
    .env("NOTIFY_SOCKET", &socket_path)
    .env("RUST_LOG", "info")
    .stdout(Stdio::null())
    .stderr(log)
    .spawn()
    .expect("spawn werify node");
    let mut node = NodeProcess(child);
    let pid = node.0.id();

    let ready = next_message(&socket, DEADLINE)
        .unwrap_or_else(|| panic!("no READY=1 within {DEADLINE:?}\n{}", log_text()));
    assert!(
        ready.lines().any(|l| l == "READY=1"),
        "first notification is not READY=1: {ready:?}"
    );
    assert!(
        ready.contains(&format!("STATUS=serving on {node_addr}")),
        "{ready:?}"
    );

    // At READY the QUIC port is taken, and it answers at once (a single call, no retry).
    let taken = UdpSocket::bind(("127.0.0.1", NODE_PORT));
    assert!(
        matches!(&taken, Err(e) if e.kind() == std::io::ErrorKind::AddrInUse),
        "port {NODE_PORT} is not bound at READY: {taken:?}"
    );
    let o = werify_in(
        None,
        &["ctl", "--connect", &node_addr, "--timeout", "10s", "list"],
    )
    .output()
    .expect("run werify ctl list");
    assert!(
        o.status.success() && stdout(&o).contains(&node_addr),
        "ctl list at READY: {}{}\n{}",
        stdout(&o),
        stderr(&o),
        log_text()
    );

    // The join attempt reached the contact: a QUIC long-header packet (an Initial).
    contact.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut buf = [0u8; 2048];
    let (n, from) = contact
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("the contact got no join attempt: {e}\n{}", log_text()));
    assert_eq!(from.port(), NODE_PORT, "from {from}");
    assert!(
        n > 0 && buf[0] & 0x80 != 0,
        "not a QUIC long header: {:02x}",
        buf[0]
    );

    // Nothing else is said while the node runs.
    assert_eq!(next_message(&socket, Duration::from_millis(500)), None);

    let st = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -TERM {pid}");
    let stopping = next_message(&socket, DEADLINE)
        .unwrap_or_else(|| panic!("no STOPPING=1 after SIGTERM\n{}", log_text()));
    assert!(
        stopping.lines().any(|l| l == "STOPPING=1"),
        "after SIGTERM: {stopping:?}"
    );

    // Then it leaves the mesh and exits cleanly.
    let give_up = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = node.0.try_wait().expect("wait for the node") {
            break status;
        }
        assert!(Instant::now() < give_up, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}\n{}", log_text());
    assert!(log_text().contains("leaving the mesh"), "{}", log_text());
    assert_eq!(next_message(&socket, Duration::from_millis(200)), None);
}
