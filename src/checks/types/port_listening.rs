//! `port_listening`: is a local socket listening on a port, read from the kernel's
//! socket tables `/proc/net/{tcp,tcp6}` or `/proc/net/{udp,udp6}`.
//!
//! TCP passes for a socket in the LISTEN state; UDP for an unconnected socket bound to
//! the port (UDP has no listen state). With `address`, the socket must be bound to that
//! address or to the wildcard (`0.0.0.0` for IPv4, `::` for either family, since a
//! dual-stack `::` socket also accepts IPv4). IPv4-mapped IPv6 addresses count as IPv4.
//! Only sockets in this node's network namespace are seen. A table that does not exist
//! (no IPv6) is skipped; if neither can be read, the check is an `Error`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::checks::check_type::{
    CheckType, FieldProblem, FieldSpec, FieldType, Fields, Typed, opt, req,
};
use crate::checks::outcome::{CheckResult, Facts};
use crate::checks::procfs::{TCP_LISTEN, UDP_UNCONNECTED, parse_socket_table};
use crate::checks::run::{CheckContext, blocking};

/// Transport protocol for [`PortListening`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proto {
    /// A TCP socket in the LISTEN state.
    Tcp,
    /// An unconnected UDP socket bound to the port.
    Udp,
}

/// `port_listening`: a local socket listens on `port`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PortListening {
    /// Port number, 1–65535.
    pub port: u16,
    /// TCP (default) or UDP.
    pub proto: Proto,
    /// Local address the socket must be bound to (a wildcard bind also counts).
    pub address: Option<IpAddr>,
}

impl CheckType for PortListening {
    const NAME: &'static str = "port_listening";
    const DOC: &'static str =
        "passes when a local tcp (default) or udp socket listens on port (and address)";
    const FIELDS: &'static [FieldSpec] = &[
        req("port", FieldType::Integer),
        opt("proto", FieldType::String),
        opt("address", FieldType::String),
    ];

    fn from_fields(fields: &Fields) -> Result<Self, FieldProblem> {
        let port = fields.int("port").unwrap_or_default();
        let port = u16::try_from(port)
            .map_err(|_| FieldProblem::on("port", "port must be between 1 and 65535"))?;
        let proto = match fields.string("proto").as_deref() {
            None | Some("tcp") => Proto::Tcp,
            Some("udp") => Proto::Udp,
            Some(other) => {
                return Err(FieldProblem::on(
                    "proto",
                    format!("proto must be \"tcp\" or \"udp\", got {other:?}"),
                ));
            }
        };
        let address = match fields.string("address") {
            None => None,
            Some(text) => Some(text.parse::<IpAddr>().map_err(|_| {
                FieldProblem::on(
                    "address",
                    format!("address must be an IP address such as 127.0.0.1 or ::1, got {text:?}"),
                )
            })?),
        };
        Ok(PortListening {
            port,
            proto,
            address,
        })
    }

    fn to_fields(&self) -> Vec<(&'static str, Typed)> {
        let mut fields = vec![("port", Typed::Int(self.port.into()))];
        if self.proto == Proto::Udp {
            fields.push(("proto", Typed::Str("udp".into())));
        }
        fields.extend(self.address.map(|a| ("address", Typed::Str(a.to_string()))));
        fields
    }

    fn validate(&self) -> Result<(), FieldProblem> {
        if self.port == 0 {
            return Err(FieldProblem::on("port", "port must be between 1 and 65535"));
        }
        Ok(())
    }

    fn expected(&self) -> Facts {
        let proto = match self.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        };
        let address = match self.address {
            None => "*".to_string(),
            Some(IpAddr::V4(a)) => a.to_string(),
            Some(IpAddr::V6(a)) => format!("[{a}]"),
        };
        Facts::new().with("listener", format!("{proto} {address}:{}", self.port))
    }

    async fn run(self, _ctx: CheckContext) -> CheckResult {
        blocking(move || port_listening(self.port, self.proto, self.address)).await
    }
}

/// Most listening sockets named in `found`.
const MAX_LISTED: usize = 8;

/// Found: `listeners`, the local addresses of every socket listening on the port (any
/// address; `none` if there is none), comma-separated.
fn port_listening(port: u16, proto: Proto, address: Option<IpAddr>) -> CheckResult {
    let tables = match proto {
        Proto::Tcp => ["/proc/net/tcp", "/proc/net/tcp6"],
        Proto::Udp => ["/proc/net/udp", "/proc/net/udp6"],
    };
    listening_in(tables, port, proto, address)
}

/// `port_listening` over these socket tables (IPv4's and IPv6's); an error only when
/// neither can be read.
fn listening_in(
    tables: [&str; 2],
    port: u16,
    proto: Proto,
    address: Option<IpAddr>,
) -> CheckResult {
    let wanted_state = match proto {
        Proto::Tcp => TCP_LISTEN,
        Proto::Udp => UDP_UNCONNECTED,
    };
    let mut read_any = false;
    let mut last_error = None;
    let mut holds = false;
    let mut listeners = Vec::new();
    for table in tables {
        let text = match std::fs::read_to_string(table) {
            Ok(text) => text,
            Err(e) => {
                last_error = Some(format!("reading {table}: {e}"));
                continue;
            }
        };
        read_any = true;
        for socket in parse_socket_table(&text) {
            if socket.port != port || socket.state != wanted_state {
                continue;
            }
            holds |= address.is_none_or(|a| bound_to(socket.address, a));
            let shown = std::net::SocketAddr::from((socket.address, port)).to_string();
            if !listeners.contains(&shown) {
                listeners.push(shown);
            }
        }
    }
    if let (false, Some(e)) = (read_any, last_error) {
        return CheckResult::error(e);
    }
    let listed = if listeners.is_empty() {
        "none".to_string()
    } else if listeners.len() > MAX_LISTED {
        let more = listeners.len() - MAX_LISTED;
        listeners.truncate(MAX_LISTED);
        format!("{} and {more} more", listeners.join(","))
    } else {
        listeners.join(",")
    };
    CheckResult::holds(holds, Facts::new().with("listeners", listed))
}

/// Does a socket bound to `bound` accept connections addressed to `wanted`?
fn bound_to(bound: IpAddr, wanted: IpAddr) -> bool {
    let bound = bound.to_canonical();
    let wanted = wanted.to_canonical();
    bound == wanted
        || match bound {
            IpAddr::V4(v4) => v4.is_unspecified() && wanted.is_ipv4(),
            IpAddr::V6(v6) => v6.is_unspecified(),
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;

    #[test]
    fn wildcard_binds_accept_specific_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(bound_to(ip("0.0.0.0"), ip("127.0.0.1")));
        assert!(!bound_to(ip("0.0.0.0"), ip("::1")));
        assert!(bound_to(ip("::"), ip("127.0.0.1")));
        assert!(bound_to(ip("::ffff:127.0.0.1"), ip("127.0.0.1")));
        assert!(!bound_to(ip("127.0.0.1"), ip("127.0.0.2")));
    }

    #[test]
    fn sees_real_tcp_and_udp_sockets_on_loopback() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        let localhost = Some(IpAddr::from([127, 0, 0, 1]));
        assert_eq!(
            port_listening(port, Proto::Tcp, None),
            Outcome::Success(true)
        );
        assert_eq!(
            port_listening(port, Proto::Tcp, localhost),
            Outcome::Success(true)
        );
        let elsewhere = port_listening(port, Proto::Tcp, Some(IpAddr::from([127, 0, 0, 2])));
        assert_eq!(elsewhere, Outcome::Success(false));
        // What does listen on the port is what was found.
        let listeners = elsewhere.observation.found.get("listeners").unwrap_or("");
        assert!(
            listeners
                .split(',')
                .any(|l| l == format!("127.0.0.1:{port}")),
            "{listeners}"
        );
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp_port = udp.local_addr().unwrap().port();
        assert_eq!(
            port_listening(udp_port, Proto::Udp, localhost),
            Outcome::Success(true)
        );
        drop(tcp);
        // Ask about the exact address: on a shared machine another process may listen on
        // the same port number at another address. The socket can outlive the drop for a
        // moment: a child that another test forks at that instant holds a copy of the
        // descriptor until its exec closes it. So wait for it to go (bounded).
        let mut after_drop = port_listening(port, Proto::Tcp, localhost).outcome;
        for _ in 0..200 {
            if after_drop != Outcome::Success(true) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            after_drop = port_listening(port, Proto::Tcp, localhost).outcome;
        }
        assert_eq!(after_drop, Outcome::Success(false));
    }

    #[test]
    fn unreadable_tables_are_an_error_with_nothing_found() {
        let missing = listening_in(
            ["/no/such/werify/tcp", "/no/such/werify/tcp6"],
            22,
            Proto::Tcp,
            None,
        );
        match &missing.outcome {
            Outcome::Error(e) => assert!(e.starts_with("reading /no/such/werify/tcp6: "), "{e}"),
            other => panic!("expected an error, got {other:?}"),
        }
        assert!(missing.observation.found.is_empty());
    }
}
