//! Reading Linux's `/proc`: the kernel's socket tables (`/proc/net/{tcp,udp}[6]`, for
//! `port_listening`) and per-process entries (`/proc/PID`, for `process_running`).
//!
//! What the numbers mean for a check (which socket state counts as listening, which
//! process fields must match) is decided by the check; this module only reads. Only
//! this node's network and PID namespaces are seen.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Socket state numbers in `/proc/net/*` (include/net/tcp_states.h): a TCP socket in the
/// LISTEN state.
pub(crate) const TCP_LISTEN: u8 = 0x0A;
/// An unconnected UDP socket shows as TCP_CLOSE.
pub(crate) const UDP_UNCONNECTED: u8 = 0x07;

/// One row of a `/proc/net` socket table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Socket {
    /// Local address the socket is bound to.
    pub address: IpAddr,
    /// Local port.
    pub port: u16,
    /// Kernel socket state (see [`TCP_LISTEN`]).
    pub state: u8,
}

/// Parses the rows of a `/proc/net/{tcp,udp}[6]` table, skipping the header and any
/// malformed row.
pub(crate) fn parse_socket_table(text: &str) -> impl Iterator<Item = Socket> + '_ {
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

/// How much of `/proc/PID/cmdline` is read: enough for any argv\[0\] (PATH_MAX is 4096).
const MAX_CMDLINE_BYTES: u64 = 8192;

/// The `/proc/PID` directories of the processes visible now, in `/proc`'s order. Entries
/// that cannot be read are skipped; `Err` only when `/proc` itself cannot be listed.
pub(crate) fn process_dirs() -> std::io::Result<impl Iterator<Item = PathBuf>> {
    Ok(std::fs::read_dir("/proc")?.flatten().filter_map(|entry| {
        let name = entry.file_name();
        let is_pid = !name.is_empty() && name.as_bytes().iter().all(u8::is_ascii_digit);
        is_pid.then(|| entry.path())
    }))
}

/// One `/proc/PID` entry, reading each file at most once and only when needed. A process
/// that has exited, or whose files this node may not read, simply matches nothing.
pub(crate) struct Process<'a> {
    dir: &'a Path,
    argv0: Option<Option<Vec<u8>>>,
}

impl<'a> Process<'a> {
    /// The process whose `/proc` directory is `dir`.
    pub(crate) fn new(dir: &'a Path) -> Self {
        Process { dir, argv0: None }
    }

    /// The target of `/proc/PID/exe` is `wanted`. A binary replaced on disk (e.g. by an
    /// upgrade) shows as "PATH (deleted)" and still counts.
    pub(crate) fn exe_is(&self, wanted: &str) -> bool {
        let Ok(target) = std::fs::read_link(self.dir.join("exe")) else {
            return false;
        };
        let target = target.as_os_str().as_bytes();
        target == wanted.as_bytes() || target.strip_suffix(b" (deleted)") == Some(wanted.as_bytes())
    }

    /// argv\[0\] from `/proc/PID/cmdline`; `None` for kernel threads and unreadable
    /// entries.
    pub(crate) fn argv0(&mut self) -> Option<&[u8]> {
        if self.argv0.is_none() {
            let mut bytes = Vec::new();
            let read = std::fs::File::open(self.dir.join("cmdline"))
                .and_then(|f| f.take(MAX_CMDLINE_BYTES).read_to_end(&mut bytes));
            let first = match read {
                Ok(_) => bytes.split(|&b| b == 0).next().map(<[u8]>::to_vec),
                Err(_) => None,
            };
            self.argv0 = Some(first.filter(|a| !a.is_empty()));
        }
        self.argv0.as_ref().and_then(|a| a.as_deref())
    }

    /// `/proc/PID/comm` without its newline (the kernel cuts it at 15 bytes); empty when
    /// unreadable.
    pub(crate) fn comm(&self) -> Vec<u8> {
        let mut comm = std::fs::read(self.dir.join("comm")).unwrap_or_default();
        if comm.last() == Some(&b'\n') {
            comm.pop();
        }
        comm
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
        let rows: Vec<_> = parse_socket_table(tcp).collect();
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
        let rows: Vec<_> = parse_socket_table(tcp6).collect();
        assert_eq!(rows[0].address, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(rows[0].port, 53);
        assert_eq!(
            rows[1].address,
            "::ffff:127.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(rows[1].port, 443);
    }
}
