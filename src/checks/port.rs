//! The `port_listening` check: is a local socket listening on a port, read from the
//! kernel's socket tables `/proc/net/{tcp,tcp6}` or `/proc/net/{udp,udp6}`.
//!
//! TCP passes for a socket in the LISTEN state; UDP for an unconnected socket bound to
//! the port (UDP has no listen state). With `address`, the socket must be bound to that
//! address or to the wildcard (`0.0.0.0` for IPv4, `::` for either family, since a
//! dual-stack `::` socket also accepts IPv4). IPv4-mapped IPv6 addresses count as IPv4.
//! Only sockets in this node's network namespace are seen. A table that does not exist
//! (no IPv6) is skipped; if neither can be read, the check is an `Error`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Outcome;
use super::spec::Proto;

/// Socket state numbers in `/proc/net/*` (include/net/tcp_states.h).
const TCP_LISTEN: u8 = 0x0A;
/// An unconnected UDP socket shows as TCP_CLOSE.
const UDP_UNCONNECTED: u8 = 0x07;

/// One row of a `/proc/net` socket table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Socket {
    address: IpAddr,
    port: u16,
    state: u8,
}

/// Runs `port_listening`.
pub(crate) fn port_listening(port: u16, proto: Proto, address: Option<IpAddr>) -> Outcome {
    let (tables, wanted_state) = match proto {
        Proto::Tcp => (["/proc/net/tcp", "/proc/net/tcp6"], TCP_LISTEN),
        Proto::Udp => (["/proc/net/udp", "/proc/net/udp6"], UDP_UNCONNECTED),
    };
    let mut read_any = false;
    let mut last_error = None;
    for table in tables {
        let text = match std::fs::read_to_string(table) {
            Ok(text) => text,
            Err(e) => {
                last_error = Some(format!("reading {table}: {e}"));
                continue;
            }
        };
        read_any = true;
        let found = parse_table(&text).any(|s| {
            s.port == port
                && s.state == wanted_state
                && address.is_none_or(|a| bound_to(s.address, a))
        });
        if found {
            return Outcome::Success(true);
        }
    }
    match (read_any, last_error) {
        (false, Some(e)) => Outcome::Error(e),
        _ => Outcome::Success(false),
    }
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

/// Parses the rows of a `/proc/net/{tcp,udp}[6]` table, skipping the header and any
/// malformed row.
fn parse_table(text: &str) -> impl Iterator<Item = Socket> + '_ {
    text.lines().skip(1).filter_map(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1)?;
        let state = u8::from_str_radix(fields.nth(1)?, 16).ok()?;
        let (address, port) = local.split_once(':')?;
        Some(Socket {
            address: parse_address(address)?,
            port: u16::from_str_radix(port, 16).ok()?,
            state,
        })
    })
}

/// The kernel prints each 32-bit word of the address in host byte order as hex.
fn parse_address(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| -> Option<[u8; 4]> {
        let text = hex.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(text, 16).ok()?.to_ne_bytes())
    };
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(0)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(i)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv4_and_ipv6_rows() {
        if cfg!(target_endian = "big") {
            return; // the sample below is little-endian
        }
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n\
           1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0\n\
           garbage line\n";
        let rows: Vec<_> = parse_table(tcp).collect();
        assert_eq!(
            rows,
            [
                Socket {
                    address: "127.0.0.1".parse().unwrap(),
                    port: 8080,
                    state: TCP_LISTEN
                },
                Socket {
                    address: "0.0.0.0".parse().unwrap(),
                    port: 22,
                    state: TCP_LISTEN
                },
            ]
        );
        let tcp6 = "header\n   0: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 0A 0 0 0 0\n\
           1: 0000000000000000FFFF00000100007F:01BB 00000000000000000000000000000000:0000 0A 0 0 0 0\n";
        let rows: Vec<_> = parse_table(tcp6).collect();
        assert_eq!(rows[0].address, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(rows[0].port, 53);
        assert_eq!(
            rows[1].address,
            "::ffff:127.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(rows[1].port, 443);
    }

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
        assert_eq!(
            port_listening(port, Proto::Tcp, Some(IpAddr::from([127, 0, 0, 2]))),
            Outcome::Success(false)
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
        let mut after_drop = port_listening(port, Proto::Tcp, localhost);
        for _ in 0..200 {
            if after_drop != Outcome::Success(true) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            after_drop = port_listening(port, Proto::Tcp, localhost);
        }
        assert_eq!(after_drop, Outcome::Success(false));
    }
}
