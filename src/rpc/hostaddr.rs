//! How users name hosts: `IP`, `IP:PORT`, `[IPv6]:PORT`, a bare IPv6 address, or a host
//! name that resolves locally (`localhost`). A missing port means the default 30035.
//! Two spellings of one address are the same host, unlike the seed tool.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// The port a node listens on unless told otherwise (UDP, QUIC).
pub const DEFAULT_PORT: u16 = 30035;

/// Why a host string is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid host {input:?}: {reason} (expected IP, IP:PORT or [IPv6]:PORT)")]
pub struct HostError {
    pub input: String,
    pub reason: String,
}

/// A host as typed, before any name resolution: an address, or a name and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSpec {
    /// An IP address (with the default port if none was given).
    Addr(SocketAddr),
    /// A host name still to be resolved, and the port.
    Name { name: String, port: u16 },
}

/// Parses a host as users type it, resolving names through the system resolver.
pub fn parse_host(input: &str) -> Result<SocketAddr, HostError> {
    match parse_host_syntax(input)? {
        HostSpec::Addr(addr) => Ok(addr),
        HostSpec::Name { name, port } => resolve(input, &name, port),
    }
}

/// The syntax half of [`parse_host`]: never touches the resolver or the network, so it can
/// be fuzzed and used where a lookup is not wanted.
pub fn parse_host_syntax(input: &str) -> Result<HostSpec, HostError> {
    let err = |reason: &str| HostError {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(HostSpec::Addr(SocketAddr::new(ip, DEFAULT_PORT)));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err(err("port 0 is not a port a node can listen on"));
        }
        return Ok(HostSpec::Addr(addr));
    }
    if let Some(v6) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return v6
            .parse::<IpAddr>()
            .map(|ip| HostSpec::Addr(SocketAddr::new(ip, DEFAULT_PORT)))
            .map_err(|_| err("not an IPv6 address inside the brackets"));
    }
    let (name, port) = match s.rsplit_once(':') {
        Some((name, port)) => {
            let port: u16 = port
                .parse()
                .map_err(|_| err("the port is not a number from 1 to 65535"))?;
            if port == 0 {
                return Err(err("port 0 is not a port a node can listen on"));
            }
            (name, port)
        }
        None => (s, DEFAULT_PORT),
    };
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(err("not an address or host name"));
    }
    Ok(HostSpec::Name {
        name: name.to_string(),
        port,
    })
}

/// Resolves a host name through the system resolver, preferring an IPv4 address.
fn resolve(input: &str, name: &str, port: u16) -> Result<SocketAddr, HostError> {
    let err = |reason: &str| HostError {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let mut addrs = (name, port)
        .to_socket_addrs()
        .map_err(|e| err(&format!("cannot resolve {name}: {e}")))?;
    let all: Vec<SocketAddr> = addrs.by_ref().collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| err(&format!("{name} resolves to no address")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_ip_gets_the_default_port() {
        assert_eq!(
            parse_host("127.0.0.2").unwrap(),
            "127.0.0.2:30035".parse().unwrap()
        );
        assert_eq!(parse_host("::1").unwrap(), "[::1]:30035".parse().unwrap());
        assert_eq!(parse_host("[::1]").unwrap(), "[::1]:30035".parse().unwrap());
    }

    #[test]
    fn explicit_ports_are_kept() {
        assert_eq!(
            parse_host("127.0.0.1:4000").unwrap(),
            "127.0.0.1:4000".parse().unwrap()
        );
        assert_eq!(
            parse_host("[::1]:4000").unwrap(),
            "[::1]:4000".parse().unwrap()
        );
        assert_eq!(parse_host("localhost:4000").unwrap().port(), 4000);
    }

    #[test]
    fn bad_hosts_are_rejected_with_a_reason() {
        for bad in [
            "",
            "127.0.0.1:",
            "127.0.0.1:0",
            "127.0.0.1:99999",
            "a b",
            "127.0.0.1:x",
        ] {
            let e = parse_host(bad).unwrap_err();
            assert!(e.to_string().contains("expected IP"), "{bad}: {e}");
        }
    }
}
