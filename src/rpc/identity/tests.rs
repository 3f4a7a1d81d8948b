//! Tests of the identity module: derived and PEM CAs, minted and issued certificates,
//! the secret file and the deny list.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use x509_parser::extensions::GeneralName;

use super::ca::derived_ca;
use super::files::MAX_SECRET_FILE_BYTES;
use super::uri::parse_werify_uri;
use super::*;

fn env(s: &str) -> Env {
    s.parse().unwrap()
}

fn derived(secret: Option<&[u8]>) -> CaSource {
    CaSource::derived(secret)
}

fn pem(files: &CaFiles) -> CaSource {
    CaSource::Pem {
        certs: vec![files.cert.clone()],
        key: files.key.clone(),
    }
}

/// A fresh empty directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "werify-identity-{tag}-{}-{}",
            std::process::id(),
            NodeId::random().short()
        ));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn node(ca: &CaSource) -> Result<Identity, IdentityError> {
    Identity::new(None, ca, Role::Node, NodeId::random(), &[])
}

fn client(ca: &CaSource) -> Result<Identity, IdentityError> {
    Identity::new(None, ca, Role::Client, NodeId::random(), &[])
}

#[test]
fn env_accepts_only_the_documented_alphabet() {
    for ok in ["dev", "prod", "eu-west-1", "a", &"x".repeat(63)] {
        assert_eq!(ok.parse::<Env>().unwrap().as_str(), ok);
    }
    for bad in ["", "Prod", "a_b", "a.b", "é", "a b", &"x".repeat(64)] {
        let err = bad.parse::<Env>().unwrap_err();
        assert!(err.to_string().contains("a-z"), "{err}");
    }
    assert_eq!(Env::default().to_string(), "dev");
}

#[test]
fn env_serde_validates() {
    let good: Env = serde_json::from_str("\"prod\"").unwrap();
    assert_eq!(good, env("prod"));
    assert!(serde_json::from_str::<Env>("\"PROD\"").is_err());
    assert_eq!(serde_json::to_string(&good).unwrap(), "\"prod\"");
}

#[test]
fn derived_ca_is_byte_identical_across_computations() {
    let (_, a) = derived_ca(&env("prod"), b"s3cret").unwrap();
    let (_, b) = derived_ca(&env("prod"), b"s3cret").unwrap();
    assert_eq!(a, b);
    let ca = derived(Some(b"s3cret"));
    let id1 = Identity::new(Some(&env("prod")), &ca, Role::Node, NodeId::random(), &[]).unwrap();
    let id2 = Identity::new(Some(&env("prod")), &ca, Role::Client, NodeId::random(), &[]).unwrap();
    assert_eq!(id1.trusted_cas(), id2.trusted_cas());
    assert_eq!(id1.ca_fingerprint(), id2.ca_fingerprint());
    assert_eq!(id1.ca_fingerprint().len(), 64);
    // Fresh leaf keys per process.
    assert_ne!(id1.leaf_cert(), id2.leaf_cert());
    assert_eq!(id1.presented(), Presented::Minted);
}

#[test]
fn derived_ca_depends_on_env_and_secret() {
    let (_, base) = derived_ca(&env("prod"), b"s").unwrap();
    let (_, other_secret) = derived_ca(&env("prod"), b"t").unwrap();
    let (_, other_env) = derived_ca(&env("staging"), b"s").unwrap();
    // Length prefixes keep ("prod", "s") apart from ("pro", "ds").
    let (_, shifted) = derived_ca(&env("pro"), b"ds").unwrap();
    assert_ne!(base, other_secret);
    assert_ne!(base, other_env);
    assert_ne!(base, shifted);
}

#[test]
fn derived_ca_has_the_fixed_fields() {
    let (_, der) = derived_ca(&env("prod"), b"").unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert!(cert.is_ca());
    assert_eq!(werify_uri_of(&der).unwrap(), WerifyUri::Ca(env("prod")));
    let bc = cert.basic_constraints().unwrap().unwrap().value;
    assert_eq!(bc.path_len_constraint, Some(0));
    assert_eq!(cert.validity().not_before.to_datetime().year(), 2024);
    assert_eq!(cert.validity().not_after.to_datetime().year(), 2100);
    let subject = cert.subject().to_string();
    assert!(subject.contains("werify env CA prod"), "{subject}");
}

#[test]
fn secret_less_is_reported() {
    let secret_less = |ca: &CaSource| node(ca).unwrap().is_secret_less();
    assert!(secret_less(&derived(None)));
    assert!(secret_less(&derived(Some(b""))));
    assert!(!secret_less(&derived(Some(b"x"))));
    assert_eq!(node(&derived(None)).unwrap().env(), &Env::default());
}

#[test]
fn two_secrets_present_the_first_and_trust_both() {
    let dir = TempDir::new("two-secrets");
    let path = dir.0.join("secret");
    fs::write(&path, b"new\nold\n").unwrap();
    let rotating = node(&CaSource::Derived {
        secret: Secret::File(path.clone()),
    })
    .unwrap();
    let new = node(&derived(Some(b"new"))).unwrap();
    let old = node(&derived(Some(b"old"))).unwrap();
    assert_eq!(rotating.ca_fingerprint(), new.ca_fingerprint());
    assert_eq!(
        rotating.trusted_fingerprints(),
        vec![new.ca_fingerprint(), old.ca_fingerprint()]
    );
    // The file is read again whenever the identity is built.
    fs::write(&path, b"new\n").unwrap();
    let done = node(&CaSource::Derived {
        secret: Secret::File(path),
    })
    .unwrap();
    assert_eq!(done.trusted_fingerprints(), vec![new.ca_fingerprint()]);
}

#[test]
fn leaf_carries_env_role_id_ips_and_dns_name() {
    let node_id = NodeId::random();
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7));
    let id = Identity::new(
        Some(&env("prod")),
        &derived(Some(b"k")),
        Role::Client,
        node_id,
        &[ip],
    )
    .unwrap();
    assert_eq!((id.role(), id.node_id()), (Role::Client, node_id));
    assert_eq!(
        werify_uri_of(id.leaf_cert()).unwrap(),
        WerifyUri::Leaf {
            env: env("prod"),
            holder: Holder::Client(node_id),
        }
    );
    let (_, cert) = x509_parser::parse_x509_certificate(id.leaf_cert()).unwrap();
    assert!(!cert.is_ca());
    let names = &cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names;
    let dns = format!("{node_id}.prod.werify");
    assert!(names.contains(&GeneralName::DNSName(&dns)));
    assert!(names.contains(&GeneralName::IPAddress(&[127, 0, 0, 7])));
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
}

#[test]
fn uri_parsing_rejects_malformed_uris() {
    let id = NodeId::random();
    assert_eq!(
        parse_werify_uri(&format!("werify://e/node/{id}")).unwrap(),
        WerifyUri::Leaf {
            env: env("e"),
            holder: Holder::Node(id),
        }
    );
    assert_eq!(
        parse_werify_uri("werify://e/operator/alice@example.org").unwrap(),
        WerifyUri::Leaf {
            env: env("e"),
            holder: Holder::Operator("alice@example.org".into()),
        }
    );
    for bad in [
        "https://e/ca".to_string(),
        "werify://E/ca".to_string(),
        "werify://e/ca/x".to_string(),
        "werify://e/node".to_string(),
        "werify://e/node/zz".to_string(),
        format!("werify://e/admin/{id}"),
        format!("werify://e/node/{id}/x"),
        "werify://e/operator/".to_string(),
        "werify://e/operator/a b".to_string(),
        "werify://e/operator/a/b".to_string(),
        "werify://".to_string(),
    ] {
        assert!(parse_werify_uri(&bad).is_err(), "{bad} parsed");
    }
}

#[test]
fn operator_names_are_checked() {
    for ok in [
        "alice",
        "a",
        "bob.smith@example.org",
        "ci-deploy_2",
        &"x".repeat(64),
    ] {
        assert_eq!(validate_operator_name(ok), Ok(()), "{ok}");
    }
    for bad in ["", "a b", "a/b", "é", &"x".repeat(65), &"ab".repeat(32)] {
        let err = validate_operator_name(bad).unwrap_err().to_string();
        assert!(err.starts_with("invalid operator name"), "{bad}: {err}");
    }
    // 64 hex digits would read as a fingerprint in a deny file.
    assert!(
        validate_operator_name(&"ab".repeat(32))
            .unwrap_err()
            .to_string()
            .contains("fingerprint")
    );
}

#[test]
fn pem_init_and_load_round_trip() {
    let dir = TempDir::new("roundtrip");
    let files = init_ca(&env("staging"), &dir.0.join("certs"), false).unwrap();
    assert_eq!(files.cert, dir.0.join("certs").join(CA_CERT_FILE));
    // No env given: the CA's env is used.
    let id = node(&pem(&files)).unwrap();
    assert_eq!(id.env(), &env("staging"));
    assert_eq!(id.ca_fingerprint(), files.fingerprint);
    assert!(!id.is_secret_less());
    // The matching env given explicitly is fine too, and loads the same CA.
    let again = Identity::new(
        Some(&env("staging")),
        &pem(&files),
        Role::Client,
        NodeId::random(),
        &[],
    )
    .unwrap();
    assert_eq!(again.trusted_cas(), id.trusted_cas());
}

#[test]
fn several_cas_are_trusted_and_the_key_picks_the_issuer() {
    let a = TempDir::new("multi-a");
    let b = TempDir::new("multi-b");
    let ca_a = init_ca(&env("prod"), &a.0, false).unwrap();
    let ca_b = init_ca(&env("prod"), &b.0, false).unwrap();
    // B's key with both certificates, as two files: B signs, both are trusted.
    let id = node(&CaSource::Pem {
        certs: vec![ca_a.cert.clone(), ca_b.cert.clone()],
        key: ca_b.key.clone(),
    })
    .unwrap();
    assert_eq!(id.ca_fingerprint(), ca_b.fingerprint);
    assert_eq!(
        id.trusted_fingerprints(),
        vec![ca_b.fingerprint.clone(), ca_a.fingerprint.clone()]
    );
    // The same as one bundle file.
    let bundle = a.0.join("bundle.pem");
    let text = fs::read_to_string(&ca_a.cert).unwrap() + &fs::read_to_string(&ca_b.cert).unwrap();
    fs::write(&bundle, text).unwrap();
    let from_bundle = node(&CaSource::Pem {
        certs: vec![bundle.clone()],
        key: ca_a.key.clone(),
    })
    .unwrap();
    assert_eq!(from_bundle.ca_fingerprint(), ca_a.fingerprint);
    assert_eq!(from_bundle.trusted_cas().len(), 2);
    // CAs of two envs cannot be trusted together.
    let c = TempDir::new("multi-c");
    let ca_c = init_ca(&env("staging"), &c.0, false).unwrap();
    let err = node(&CaSource::Pem {
        certs: vec![ca_a.cert.clone(), ca_c.cert],
        key: ca_a.key,
    })
    .unwrap_err();
    assert!(matches!(err, IdentityError::CaEnvsDiffer { .. }), "{err}");
    assert!(err.to_string().contains("\"staging\""), "{err}");
}

#[cfg(unix)]
#[test]
fn pem_key_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("mode");
    let files = init_ca(&env("prod"), &dir.0, false).unwrap();
    let mode = fs::metadata(&files.key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Forcing replaces the file with a private one even if the old one was open.
    fs::set_permissions(&files.key, fs::Permissions::from_mode(0o644)).unwrap();
    let files = init_ca(&env("prod"), &dir.0, true).unwrap();
    let mode = fs::metadata(&files.key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn pem_init_never_overwrites_without_force() {
    let dir = TempDir::new("force");
    let first = init_ca(&env("prod"), &dir.0, false).unwrap();
    let err = init_ca(&env("prod"), &dir.0, false).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(CA_CERT_FILE) && msg.contains("--force"),
        "{msg}"
    );
    // Unchanged.
    assert_eq!(
        node(&pem(&first)).unwrap().ca_fingerprint(),
        first.fingerprint
    );
    // Only the key left over also blocks.
    fs::remove_file(&first.cert).unwrap();
    let msg = init_ca(&env("prod"), &dir.0, false)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(CA_KEY_FILE) && msg.contains("--force"),
        "{msg}"
    );
    let forced = init_ca(&env("prod"), &dir.0, true).unwrap();
    assert_ne!(forced.fingerprint, first.fingerprint);
}

#[test]
fn pem_env_mismatch_is_refused() {
    let dir = TempDir::new("envmismatch");
    let files = init_ca(&env("prod"), &dir.0, false).unwrap();
    let err = Identity::new(
        Some(&env("staging")),
        &pem(&files),
        Role::Node,
        NodeId::random(),
        &[],
    )
    .unwrap_err();
    assert!(matches!(err, IdentityError::EnvMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("\"prod\"") && msg.contains("\"staging\""),
        "{msg}"
    );
}

#[test]
fn pem_key_must_match_cert() {
    let a = TempDir::new("keya");
    let b = TempDir::new("keyb");
    let fa = init_ca(&env("prod"), &a.0, false).unwrap();
    let fb = init_ca(&env("prod"), &b.0, false).unwrap();
    let crossed = CaSource::Pem {
        certs: vec![fa.cert],
        key: fb.key,
    };
    let err = node(&crossed).unwrap_err();
    assert!(matches!(err, IdentityError::KeyMismatch { .. }), "{err}");
}

#[test]
fn pem_garbage_is_a_clear_error() {
    let dir = TempDir::new("garbage");
    let files = init_ca(&env("prod"), &dir.0, false).unwrap();
    fs::write(&files.cert, b"not a certificate").unwrap();
    let err = node(&pem(&files)).unwrap_err();
    assert!(matches!(err, IdentityError::BadCaCert { .. }), "{err}");
    assert!(err.to_string().contains(CA_CERT_FILE));

    let missing = CaSource::Pem {
        certs: vec![dir.0.join("nope.pem")],
        key: files.key,
    };
    let err = node(&missing).unwrap_err();
    assert!(matches!(err, IdentityError::Read { .. }), "{err}");
    assert!(err.to_string().contains("nope.pem"));
}

/// Issues a certificate for `subject` from `ca` into `out`.
fn issue_for(ca: &CaFiles, out: &Path, subject: IssueFor) -> Result<IssuedFiles, IdentityError> {
    issue(&IssueRequest {
        ca_cert: &ca.cert,
        ca_key: &ca.key,
        env: None,
        subject,
        days: 30,
        out_dir: out,
        force: false,
    })
}

fn issued_source(ca: &CaFiles, files: &IssuedFiles) -> CaSource {
    CaSource::Issued {
        ca_certs: vec![ca.cert.clone()],
        cert: files.cert.clone(),
        key: files.key.clone(),
    }
}

#[test]
fn issued_operator_certificates_work_without_the_ca_key() {
    let dir = TempDir::new("issue-operator");
    let ca = init_ca(&env("prod"), &dir.0.join("ca"), false).unwrap();
    let out = dir.0.join("out");
    let files = issue_for(&ca, &out, IssueFor::Operator("alice".into())).unwrap();
    assert_eq!(files.cert, out.join("operator-alice.crt.pem"));
    assert_eq!(files.key, out.join("operator-alice.key.pem"));
    assert_eq!(files.holder, Holder::Operator("alice".into()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&files.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let id = client(&issued_source(&ca, &files)).unwrap();
    assert_eq!(id.role(), Role::Operator);
    assert_eq!(id.holder(), &Holder::Operator("alice".into()));
    assert_eq!(id.presented(), Presented::Issued);
    assert_eq!(id.leaf_fingerprint(), files.fingerprint);
    assert_eq!(id.ca_fingerprint(), ca.fingerprint);
    assert_eq!(id.env(), &env("prod"));
    // An operator certificate cannot run a node.
    let err = node(&issued_source(&ca, &files)).unwrap_err();
    assert!(matches!(err, IdentityError::WrongCertRole { .. }), "{err}");
    assert!(err.to_string().contains("certs issue --node"), "{err}");
    // Never overwritten without --force.
    let err = issue_for(&ca, &out, IssueFor::Operator("alice".into())).unwrap_err();
    assert!(matches!(err, IdentityError::AlreadyExists { .. }), "{err}");
    assert_eq!(
        client(&issued_source(&ca, &files))
            .unwrap()
            .leaf_fingerprint(),
        files.fingerprint
    );
}

#[test]
fn issued_node_certificates_keep_their_id_when_reissued() {
    let dir = TempDir::new("issue-node");
    let ca = init_ca(&env("prod"), &dir.0.join("ca"), false).unwrap();
    let first = issue_for(
        &ca,
        &dir.0.join("one"),
        IssueFor::Node {
            host: "web-1.example.org".into(),
            node_id: None,
        },
    )
    .unwrap();
    let again = issue_for(
        &ca,
        &dir.0.join("two"),
        IssueFor::Node {
            host: "WEB-1.example.org".into(),
            node_id: None,
        },
    )
    .unwrap();
    let expected = derived_node_id(&env("prod"), "web-1.example.org");
    assert_eq!(first.holder, Holder::Node(expected));
    assert_eq!(again.holder, first.holder);
    let id = node(&issued_source(&ca, &first)).unwrap();
    // The node id comes from the certificate, whatever id the caller had.
    assert_eq!(id.node_id(), expected);
    assert_eq!(id.role(), Role::Node);
    // A node certificate used from the CLI is a node's (it may read).
    assert_eq!(
        client(&issued_source(&ca, &first)).unwrap().role(),
        Role::Node
    );
    // An explicit id is kept; an IP host gets an IP name.
    let pinned = NodeId::random();
    let ip = issue_for(
        &ca,
        &dir.0.join("three"),
        IssueFor::Node {
            host: "::1".into(),
            node_id: Some(pinned),
        },
    )
    .unwrap();
    assert_eq!(ip.holder, Holder::Node(pinned));
    assert_eq!(ip.cert, dir.0.join("three").join("node-__1.crt.pem"));
    for bad in ["", "-x", "a..b", "a b", "a/b"] {
        let err = issue_for(
            &ca,
            &dir.0.join("bad"),
            IssueFor::Node {
                host: bad.into(),
                node_id: None,
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, IdentityError::InvalidHost { .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
fn issued_certificates_must_match_their_key_and_a_trusted_ca() {
    let dir = TempDir::new("issue-checks");
    let ca = init_ca(&env("prod"), &dir.0.join("ca"), false).unwrap();
    let other = init_ca(&env("prod"), &dir.0.join("other"), false).unwrap();
    let alice = issue_for(&ca, &dir.0.join("a"), IssueFor::Operator("alice".into())).unwrap();
    let bob = issue_for(&ca, &dir.0.join("b"), IssueFor::Operator("bob".into())).unwrap();
    let crossed = CaSource::Issued {
        ca_certs: vec![ca.cert.clone()],
        cert: alice.cert.clone(),
        key: bob.key.clone(),
    };
    let err = client(&crossed).unwrap_err();
    assert!(
        matches!(err, IdentityError::LeafKeyMismatch { .. }),
        "{err}"
    );
    // Trusting only another CA: refused at start, naming the files.
    let untrusted = CaSource::Issued {
        ca_certs: vec![other.cert.clone()],
        cert: alice.cert.clone(),
        key: alice.key.clone(),
    };
    let err = client(&untrusted).unwrap_err();
    assert!(
        matches!(err, IdentityError::NotIssuedByTrustedCa { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("--ca-cert"), "{err}");
    // Trusting both: fine, and the issuer is the CA that signed it.
    let both = CaSource::Issued {
        ca_certs: vec![other.cert.clone(), ca.cert.clone()],
        cert: alice.cert.clone(),
        key: alice.key.clone(),
    };
    let id = client(&both).unwrap();
    assert_eq!(id.ca_fingerprint(), ca.fingerprint);
    assert_eq!(id.trusted_fingerprints()[1], other.fingerprint);
    // A CA certificate is not a leaf.
    let ca_as_leaf = CaSource::Issued {
        ca_certs: vec![ca.cert.clone()],
        cert: ca.cert.clone(),
        key: ca.key.clone(),
    };
    let err = client(&ca_as_leaf).unwrap_err();
    assert!(matches!(err, IdentityError::BadCert { .. }), "{err}");
    // Bad validity and names are refused before anything is written.
    let err = issue(&IssueRequest {
        ca_cert: &ca.cert,
        ca_key: &ca.key,
        env: None,
        subject: IssueFor::Operator("carol".into()),
        days: 0,
        out_dir: &dir.0.join("c"),
        force: false,
    })
    .unwrap_err();
    assert!(matches!(err, IdentityError::Days(0)), "{err}");
    let err = issue_for(&ca, &dir.0.join("c"), IssueFor::Operator("no one".into())).unwrap_err();
    assert!(matches!(err, IdentityError::InvalidOperator(_)), "{err}");
    assert!(!dir.0.join("c").exists());
}

#[test]
fn secret_file_reads_one_or_two_secrets() {
    let dir = TempDir::new("secret");
    let path = dir.0.join("secret");
    let read = |bytes: &[u8]| {
        fs::write(&path, bytes).unwrap();
        read_secret_file(&path)
    };
    let one = read(b"hunter2\r\n").unwrap();
    assert_eq!(
        (one.current.as_slice(), one.previous),
        (&b"hunter2"[..], None)
    );
    assert_eq!(read(b"two words \n\n").unwrap().current, b"two words ");
    let two = read(b"new\r\nold\n").unwrap();
    assert_eq!(two.current, b"new");
    assert_eq!(two.previous.as_deref(), Some(&b"old"[..]));
    let err = read(b"\n").unwrap_err();
    assert!(matches!(err, IdentityError::EmptySecret { .. }), "{err}");
    for bad in [&b"\nold\n"[..], b"a\nb\nc\n", b"same\nsame\n"] {
        let err = read(bad).unwrap_err();
        assert!(matches!(err, IdentityError::BadSecretFile { .. }), "{err}");
    }
    let err = read(&vec![b'a'; MAX_SECRET_FILE_BYTES as usize + 1]).unwrap_err();
    assert!(matches!(err, IdentityError::FileTooLarge { .. }), "{err}");
}

#[test]
fn deny_files_name_fingerprints_and_operators() {
    let hex = "ab".repeat(32);
    let colons = hex
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
        .collect::<Vec<_>>()
        .join(":");
    let text = format!(
        "# leaked laptop\n{hex}\n\n  sha256:{colons}  # the same, as openssl prints it\n\
         operator:mallory\neve@example.org\n"
    );
    let list = DenyList::parse(&text, Path::new("deny.txt")).unwrap();
    assert_eq!(list.len(), 3);
    let node = Holder::Node(NodeId::random());
    assert_eq!(
        list.denies(&hex, &node),
        Some(DenyEntry::Fingerprint(hex.clone()))
    );
    assert_eq!(list.denies(&"cd".repeat(32), &node), None);
    let mallory = Holder::Operator("mallory".into());
    assert_eq!(
        list.denies(&"cd".repeat(32), &mallory),
        Some(DenyEntry::Operator("mallory".into()))
    );
    assert!(
        list.denies("x", &Holder::Operator("eve@example.org".into()))
            .is_some()
    );
    assert_eq!(list.denies("x", &Holder::Operator("alice".into())), None);
    let err = DenyList::parse("alice\nnot a name\n", Path::new("deny.txt")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "deny.txt:2: \"not a name\" is neither a certificate fingerprint (64 hex digits) nor an \
         operator name"
    );
    assert!(DenyList::parse("", Path::new("d")).unwrap().is_empty());
}

#[test]
fn debug_output_hides_secrets() {
    let ca = derived(Some(b"topsecret"));
    assert!(!format!("{ca:?}").contains("topsecret"));
    let shown = format!("{:?}", node(&ca).unwrap());
    assert!(shown.contains("ca_fingerprint") && !shown.contains("leaf_key"));
    let dir = TempDir::new("debug");
    let path = dir.0.join("s");
    fs::write(&path, b"topsecret\nold\n").unwrap();
    assert!(!format!("{:?}", read_secret_file(&path).unwrap()).contains("topsecret"));
}
