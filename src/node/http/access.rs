//! Who may read the HTTP endpoint. On a loopback address anyone who can connect may (the
//! host's own users), unless a token file is given; anywhere else the node refuses to
//! start without `--http-token-file`, and then every path but `/healthz` needs
//! `Authorization: Bearer TOKEN`. The token is compared in constant time (SHA-256 digests
//! of both sides, compared with `subtle`), so neither its content nor its length leaks
//! through timing. Without a token, requests must name the host by IP address or
//! `localhost`: a web page elsewhere cannot reach the endpoint through a DNS name it
//! rebinds to 127.0.0.1.
//!
//! Not here: routing and the connection limits ([`super`]), what the paths answer.

use std::io::Read as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use hyper::HeaderMap;
use hyper::header::{AUTHORIZATION, HOST};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A token file larger than this is refused rather than read.
pub const MAX_TOKEN_FILE_BYTES: u64 = 4096;
/// Shortest token accepted: 16 characters of base64 are 96 bits.
pub const MIN_TOKEN_CHARS: usize = 16;
/// How to make a good token, for error messages and docs.
pub const MAKE_TOKEN: &str = "head -c 32 /dev/urandom | base64 > FILE && chmod 600 FILE";

/// Why the endpoint's access rule cannot be set up: the operator's configuration.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(
        "--http {addr} is not a loopback address, so the HTTP endpoint requires a bearer token: \
         pass --http-token-file FILE (make one with `{MAKE_TOKEN}`), or listen on 127.0.0.1"
    )]
    TokenNeeded { addr: SocketAddr },
    #[error("cannot read the HTTP token file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the HTTP token file {} is larger than {MAX_TOKEN_FILE_BYTES} bytes; it holds one line, the token",
        path.display()
    )]
    TooLarge { path: PathBuf },
    #[error(
        "the HTTP token in {} has {chars} characters; use at least {MIN_TOKEN_CHARS} (make one with `{MAKE_TOKEN}`)",
        path.display()
    )]
    TooShort { path: PathBuf, chars: usize },
    #[error(
        "the HTTP token in {} holds a space, a control character or non-ASCII text; it travels \
         in an HTTP header, so use printable ASCII (make one with `{MAKE_TOKEN}`)",
        path.display()
    )]
    BadCharacters { path: PathBuf },
}

/// Whether an address needs a token: anything but loopback (IPv4-mapped loopback counts
/// as loopback; the unspecified address 0.0.0.0 or :: listens everywhere, so it needs one).
pub fn needs_token(ip: IpAddr) -> bool {
    !ip.to_canonical().is_loopback()
}

/// Who may read the endpoint.
#[derive(Clone)]
pub struct Access {
    /// SHA-256 of the token every request but `/healthz` must carry; `None`: no token.
    token_digest: Option<[u8; 32]>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("token", &self.token_digest.map(|_| "<set>"))
            .finish()
    }
}

/// What [`Access::admit`] decided about one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// No `Authorization: Bearer` header, or the wrong token.
    NeedsToken,
    /// No token is set and the `Host` header names neither an IP address nor localhost.
    ForeignHost,
}

impl Access {
    /// The rule for an endpoint listening on `addr`, with the token from `token_file`.
    pub fn new(addr: SocketAddr, token_file: Option<&Path>) -> Result<Access, AccessError> {
        match token_file {
            Some(path) => Ok(Access::with_token(&read_token_file(path)?)),
            None if needs_token(addr.ip()) => Err(AccessError::TokenNeeded { addr }),
            None => Ok(Access { token_digest: None }),
        }
    }

    /// A rule that asks for `token`.
    pub fn with_token(token: &str) -> Access {
        Access {
            token_digest: Some(digest(token.as_bytes())),
        }
    }

    /// Whether requests need a token.
    pub fn requires_token(&self) -> bool {
        self.token_digest.is_some()
    }

    /// Whether a request with these headers may be answered (`/healthz` always may; the
    /// caller does not ask for it).
    pub fn admit(&self, headers: &HeaderMap) -> Admission {
        let Some(want) = &self.token_digest else {
            return match headers.get(HOST).map(|h| h.to_str()) {
                None => Admission::Admitted,
                Some(Ok(host)) if host_is_local_name(host) => Admission::Admitted,
                Some(_) => Admission::ForeignHost,
            };
        };
        let presented = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        match presented {
            Some(token) if bool::from(digest(token.as_bytes()).ct_eq(want)) => Admission::Admitted,
            _ => Admission::NeedsToken,
        }
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(bytes));
    out
}

/// The token of an `Authorization: Bearer TOKEN` value (the scheme is case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim_start())
}

/// Whether a `Host` header names this machine by address or `localhost`, with or without
/// a port.
fn host_is_local_name(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // `[v6]` or `[v6]:port`.
        Some(rest) => {
            return rest
                .split_once(']')
                .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.parse::<IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || name.to_ascii_lowercase().ends_with(".localhost")
}

/// Reads the token: one line, trailing whitespace dropped; warns when other users may
/// read the file, as for the CA key.
pub fn read_token_file(path: &Path) -> Result<String, AccessError> {
    let read_err = |source| AccessError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    warn_if_readable_by_others(&file, path);
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(AccessError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| AccessError::BadCharacters {
        path: path.to_path_buf(),
    })?;
    let token = text.trim_end();
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AccessError::BadCharacters {
            path: path.to_path_buf(),
        });
    }
    if token.len() < MIN_TOKEN_CHARS {
        return Err(AccessError::TooShort {
            path: path.to_path_buf(),
            chars: token.len(),
        });
    }
    Ok(token.to_string())
}

fn warn_if_readable_by_others(file: &std::fs::File, path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = file.metadata()
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "the HTTP token file is readable by other users; run chmod 600 on it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (file, path);
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;

    use super::*;

    const TOKEN: &str = "c2VjcmV0LXRva2VuLWZvci10ZXN0cw==";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header value"));
        }
        h
    }

    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch() -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "werify-http-access-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    #[test]
    fn only_loopback_goes_without_a_token() {
        for ip in ["127.0.0.1", "127.0.0.99", "::1", "::ffff:127.0.0.1"] {
            assert!(!needs_token(ip.parse().expect("ip")), "{ip}");
        }
        for ip in [
            "0.0.0.0",
            "::",
            "10.0.0.1",
            "192.168.1.2",
            "::ffff:10.0.0.1",
            "fe80::1",
        ] {
            assert!(needs_token(ip.parse().expect("ip")), "{ip}");
        }
        let err = Access::new("0.0.0.0:30036".parse().expect("addr"), None)
            .expect_err("a token is needed");
        assert!(matches!(err, AccessError::TokenNeeded { .. }));
        assert!(err.to_string().contains("--http-token-file FILE"), "{err}");
        let open = Access::new("127.0.0.1:30036".parse().expect("addr"), None).expect("open");
        assert!(!open.requires_token());
    }

    #[test]
    fn the_token_is_checked_as_a_bearer_header() {
        let access = Access::with_token(TOKEN);
        let bearer = format!("Bearer {TOKEN}");
        assert_eq!(
            access.admit(&headers(&[("authorization", &bearer)])),
            Admission::Admitted
        );
        assert_eq!(
            access.admit(&headers(&[("authorization", &format!("bearer  {TOKEN}"))])),
            Admission::Admitted
        );
        for wrong in [
            String::new(),
            "Bearer".into(),
            "Bearer ".into(),
            format!("Basic {TOKEN}"),
            format!("Bearer {TOKEN}x"),
            format!("Bearer {}", &TOKEN[1..]),
            "Bearer c2VjcmV0LXRva2VuLWZvci10ZXN0cw=-".into(),
        ] {
            assert_eq!(
                access.admit(&headers(&[("authorization", &wrong)])),
                Admission::NeedsToken,
                "{wrong:?}"
            );
        }
        assert_eq!(access.admit(&HeaderMap::new()), Admission::NeedsToken);
        // With a token, any Host is fine: the token is what keeps others out.
        assert_eq!(
            access.admit(&headers(&[
                ("authorization", &bearer),
                ("host", "mesh.example")
            ])),
            Admission::Admitted
        );
    }

    #[test]
    fn without_a_token_the_host_must_be_an_address_or_localhost() {
        let open = Access { token_digest: None };
        for host in [
            "127.0.0.1:30036",
            "127.0.0.5",
            "[::1]:30036",
            "[::1]",
            "localhost:8080",
            "LOCALHOST",
            "web.localhost:1",
        ] {
            assert_eq!(
                open.admit(&headers(&[("host", host)])),
                Admission::Admitted,
                "{host}"
            );
        }
        assert_eq!(open.admit(&HeaderMap::new()), Admission::Admitted);
        for host in [
            "evil.example",
            "evil.example:30036",
            "localhost.evil.example",
            "[nope]:1",
        ] {
            assert_eq!(
                open.admit(&headers(&[("host", host)])),
                Admission::ForeignHost,
                "{host}"
            );
        }
    }

    #[test]
    fn token_files_are_one_printable_line_of_sixteen_characters_or_more() {
        let dir = scratch();
        let file = |name: &str, bytes: &[u8]| {
            let path = dir.0.join(name);
            std::fs::write(&path, bytes).expect("write");
            path
        };
        let good = file("good", format!("{TOKEN}\n").as_bytes());
        assert_eq!(read_token_file(&good).expect("good"), TOKEN);
        let access = Access::new("0.0.0.0:1".parse().expect("addr"), Some(&good)).expect("ok");
        assert!(access.requires_token());
        // A token on loopback is asked for too.
        let access = Access::new("127.0.0.1:1".parse().expect("addr"), Some(&good)).expect("ok");
        assert!(access.requires_token());

        let short = file("short", b"abc\n");
        assert!(matches!(
            read_token_file(&short),
            Err(AccessError::TooShort { chars: 3, .. })
        ));
        let empty = file("empty", b"\n");
        assert!(matches!(
            read_token_file(&empty),
            Err(AccessError::TooShort { chars: 0, .. })
        ));
        for bad in [
            &b"two words in one token\n"[..],
            "tökentökentökentöken".as_bytes(),
            b"\xff\xfe0123456789abcdef",
        ] {
            let path = file("bad", bad);
            assert!(
                matches!(
                    read_token_file(&path),
                    Err(AccessError::BadCharacters { .. })
                ),
                "{bad:?}"
            );
        }
        let huge = file("huge", &vec![b'a'; MAX_TOKEN_FILE_BYTES as usize + 1]);
        assert!(matches!(
            read_token_file(&huge),
            Err(AccessError::TooLarge { .. })
        ));
        let missing = dir.0.join("missing");
        let err = read_token_file(&missing).expect_err("missing");
        assert!(
            err.to_string()
                .starts_with("cannot read the HTTP token file"),
            "{err}"
        );
    }
}
