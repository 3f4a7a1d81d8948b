//! Handshake tests: who is accepted and refused, how each refusal reads on both sides,
//! and the transport settings.

use super::*;
use crate::rpc::frame::{read_frame, write_frame};
use crate::rpc::identity::{CaFiles, CaSource, DenyEntry, IssueFor, IssueRequest, init_ca, issue};
use rustls::{AlertDescription, CertificateError};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Bound on any one test's network exchange: a hang guard, not a speed assertion.
const TEST_DEADLINE: Duration = Duration::from_secs(20);

fn env(s: &str) -> Env {
    s.parse().unwrap()
}

fn identity(env_name: &str, secret: &[u8], role: Role) -> Identity {
    Identity::new(
        Some(&env(env_name)),
        &CaSource::derived(Some(secret)),
        role,
        NodeId::random(),
        &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
    )
    .unwrap()
}

fn endpoint_with(tls: &Handshakes) -> quinn::Endpoint {
    let mut endpoint = quinn::Endpoint::server(
        tls.server_config().unwrap(),
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
    )
    .unwrap();
    endpoint.set_default_client_config(tls.client_config().unwrap());
    endpoint
}

fn endpoint(id: &Identity) -> quinn::Endpoint {
    endpoint_with(&Handshakes::new(id).unwrap())
}

/// An endpoint and the TLS settings it dials and accepts with.
struct Side {
    endpoint: quinn::Endpoint,
    tls: Handshakes,
}

fn side(id: &Identity) -> Side {
    side_with(Handshakes::new(id).unwrap())
}

fn side_with(tls: Handshakes) -> Side {
    Side {
        endpoint: endpoint_with(&tls),
        tls,
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Request {
    check: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Response {
    passed: bool,
    #[serde(with = "serde_bytes")]
    detail: Vec<u8>,
}

/// Dials `acceptor` from `dialer`, exchanges one framed request/response and returns
/// what each side read from the other's certificate: (dialer's view, acceptor's view).
async fn exchange(dialer: &Identity, acceptor: &Identity) -> (PeerCert, PeerCert) {
    let server = endpoint(acceptor);
    let client = endpoint(dialer);
    let addr = server.local_addr().unwrap();
    let serve = async {
        let conn = server.accept().await.unwrap().await.unwrap();
        let seen = peer_cert(&conn).unwrap();
        let (mut send, mut recv) = conn.accept_bi().await.unwrap();
        let req: Request = read_frame(&mut recv, 1024).await.unwrap();
        let resp = Response {
            passed: req.check == "file_exists",
            detail: vec![0, 1, 2],
        };
        write_frame(&mut send, &resp).await.unwrap();
        send.finish().unwrap();
        // Keep the connection until the dialer has read the answer and closed.
        conn.closed().await;
        seen
    };
    let dial = async {
        let conn = client.connect(addr, SERVER_NAME).unwrap().await.unwrap();
        let seen = peer_cert(&conn).unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let req = Request {
            check: "file_exists".to_string(),
        };
        write_frame(&mut send, &req).await.unwrap();
        send.finish().unwrap();
        let resp: Response = read_frame(&mut recv, 1024).await.unwrap();
        assert_eq!(
            resp,
            Response {
                passed: true,
                detail: vec![0, 1, 2]
            }
        );
        conn.close(0u32.into(), b"done");
        seen
    };
    tokio::time::timeout(TEST_DEADLINE, async { tokio::join!(dial, serve) })
        .await
        .expect("exchange did not finish")
}

/// Runs a handshake that must fail, each side with its own verdict as the transport
/// does, and returns each side's typed failure: (dialer's, acceptor's).
async fn refused_typed(server: &Side, client: &Side) -> (ConnectionFailure, ConnectionFailure) {
    let addr = server.endpoint.local_addr().unwrap();
    let accept = async {
        let incoming = server.endpoint.accept().await.unwrap();
        let from = incoming.remote_address();
        let verdict = server.tls.verdict();
        let config = server.tls.server_config_for(&verdict).unwrap();
        match incoming.accept_with(Arc::new(config)).unwrap().await {
            Err(e) => verdict.failure(from, &e),
            Ok(conn) => verdict.failure(from, &conn.closed().await),
        }
    };
    let dial = async {
        let verdict = client.tls.verdict();
        let config = client.tls.client_config_for(&verdict).unwrap();
        match client
            .endpoint
            .connect_with(config, addr, SERVER_NAME)
            .unwrap()
            .await
        {
            Err(e) => verdict.failure(addr, &e),
            // Pitfall 3: the dialer may finish before the acceptor refuses it.
            Ok(conn) => verdict.failure(addr, &conn.closed().await),
        }
    };
    tokio::time::timeout(TEST_DEADLINE, async { tokio::join!(dial, accept) })
        .await
        .expect("handshake neither failed nor finished")
}

/// [`refused_typed`], as the lines users read.
async fn refused(server: &Side, client: &Side) -> (String, String) {
    let (dialer, acceptor) = refused_typed(server, client).await;
    (dialer.to_string(), acceptor.to_string())
}

#[tokio::test]
async fn same_env_and_secret_handshake_and_exchange_frames() {
    let a = identity("prod", b"secret", Role::Node);
    let b = identity("prod", b"secret", Role::Node);
    let (dialer_saw, acceptor_saw) = exchange(&b, &a).await;
    assert_eq!(
        dialer_saw,
        PeerCert {
            env: env("prod"),
            holder: Holder::Node(a.node_id()),
            fingerprint: a.leaf_fingerprint(),
        }
    );
    assert_eq!(
        acceptor_saw,
        PeerCert {
            env: env("prod"),
            holder: Holder::Node(b.node_id()),
            fingerprint: b.leaf_fingerprint(),
        }
    );
}

#[tokio::test]
async fn ctl_client_role_is_accepted_by_a_node() {
    let node = identity("prod", b"secret", Role::Node);
    let ctl = identity("prod", b"secret", Role::Client);
    let (dialer_saw, acceptor_saw) = exchange(&ctl, &node).await;
    assert_eq!(dialer_saw.role(), Role::Node);
    assert_eq!(acceptor_saw.holder, Holder::Client(ctl.node_id()));
}

#[tokio::test]
async fn pem_ca_identities_handshake() {
    let dir = std::env::temp_dir().join(format!(
        "werify-tls-pem-{}-{}",
        std::process::id(),
        NodeId::random().short()
    ));
    let files = crate::rpc::identity::init_ca(&env("lab"), &dir, false).unwrap();
    let pem = CaSource::Pem {
        certs: vec![files.cert],
        key: files.key,
    };
    let a = Identity::new(None, &pem, Role::Node, NodeId::random(), &[]).unwrap();
    let b = Identity::new(None, &pem, Role::Node, NodeId::random(), &[]).unwrap();
    let (dialer_saw, _) = exchange(&b, &a).await;
    assert_eq!(dialer_saw.env, env("lab"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn other_env_fails_on_both_sides_with_the_env_message() {
    let prod = side(&identity("prod", b"secret", Role::Node));
    let staging = side(&identity("staging", b"secret", Role::Node));
    let (dialer, acceptor) = refused(&prod, &staging).await;
    let prod_addr = prod.endpoint.local_addr().unwrap();
    assert_eq!(
        dialer,
        format!("peer {prod_addr} is in env \"prod\", this mesh is \"staging\"")
    );
    // The dialer refused before sending its certificate: all the acceptor learns is
    // the alert, so it names its own env only.
    assert!(
        acceptor.contains("is not in env \"prod\" and refused our certificate"),
        "{acceptor}"
    );
    assert!(acceptor.starts_with("peer 127.0.0.1:"), "{acceptor}");
}

#[tokio::test]
async fn same_env_other_secret_fails_with_the_not_signed_message() {
    let a = side(&identity("prod", b"secret-a", Role::Node));
    let b = side(&identity("prod", b"secret-b", Role::Node));
    let (dialer, acceptor) = refused(&a, &b).await;
    let a_addr = a.endpoint.local_addr().unwrap();
    assert_eq!(
        dialer,
        format!(
            "peer {a_addr}'s certificate is not signed by this mesh's CA for env \"prod\" \
             (different secret or CA)"
        )
    );
    assert!(acceptor.contains("not signed"), "{acceptor}");
    assert!(acceptor.contains("\"prod\""), "{acceptor}");
}

#[tokio::test]
async fn secret_less_and_secret_meshes_do_not_mix() {
    let open = Identity::new(
        Some(&env("prod")),
        &CaSource::derived(None),
        Role::Node,
        NodeId::random(),
        &[],
    )
    .unwrap();
    let (dialer, acceptor) = refused(
        &side(&open),
        &side(&identity("prod", b"secret", Role::Node)),
    )
    .await;
    assert!(dialer.contains("not signed"), "{dialer}");
    assert!(acceptor.contains("not signed"), "{acceptor}");
}

#[tokio::test]
async fn dialer_refuses_a_ctl_certificate_posing_as_a_node() {
    let ctl = identity("prod", b"secret", Role::Client);
    let node = identity("prod", b"secret", Role::Node);
    let (dialer, acceptor) = refused(&side(&ctl), &side(&node)).await;
    assert!(
        dialer.ends_with("presented a ctl certificate where a node was expected"),
        "{dialer}"
    );
    assert!(acceptor.contains("refused our certificate"), "{acceptor}");
}

#[tokio::test]
async fn acceptor_refusal_reaches_a_dialer_whose_connect_succeeded() {
    // An acceptor whose verifier wants env "other" while presenting a "prod" leaf: the
    // dialer accepts it and finishes first (pitfall 3), then learns the reason.
    let acceptor_id = identity("prod", b"secret", Role::Node);
    let dialer_id = identity("prod", b"secret", Role::Node);
    let server = side_with(
        Handshakes::checking(
            &acceptor_id,
            &env("other"),
            DenyList::default(),
            LinkEnd::NodeDialer,
        )
        .unwrap(),
    );
    let client = side(&dialer_id);
    let (dialer, acceptor) = refused(&server, &client).await;
    let addr = server.endpoint.local_addr().unwrap();
    // From the alert alone: the dialer knows its own env, not the one the acceptor
    // wanted.
    assert_eq!(
        dialer,
        format!(
            "peer {addr} is not in env \"prod\" and refused our certificate (check the \
             address and the --env of both sides)"
        )
    );
    assert!(
        acceptor.ends_with("is in env \"prod\", this mesh is \"other\""),
        "{acceptor}"
    );
}

#[tokio::test]
async fn both_sides_of_a_refusal_get_its_kind_and_fault() {
    let a = side(&identity("prod", b"secret-a", Role::Node));
    let b = side(&identity("prod", b"secret-b", Role::Node));
    let (dialer, acceptor) = refused_typed(&a, &b).await;
    assert!(
        matches!(
            &dialer,
            ConnectionFailure::WeRefused {
                kind: RejectionKind::NotSigned,
                rejection: Some(PeerRejection::NotSigned { .. }),
                ..
            }
        ),
        "{dialer:?}"
    );
    assert!(
        matches!(
            &acceptor,
            ConnectionFailure::PeerRefused {
                kind: RejectionKind::NotSigned,
                ..
            }
        ),
        "{acceptor:?}"
    );
    assert_eq!(dialer.fault(), Fault::Caller);
    assert_eq!(acceptor.fault(), Fault::Caller);
    assert_eq!(dialer.peer(), a.endpoint.local_addr().unwrap());
}

/// The alert rustls sends when a certificate verifier returns `err` (what its
/// `send_cert_verify_error_alert` does).
fn alert_sent_for(err: &rustls::Error) -> u8 {
    u8::from(match err {
        rustls::Error::InvalidCertificate(e) => AlertDescription::from(e.clone()),
        rustls::Error::PeerMisbehaved(_) => AlertDescription::IllegalParameter,
        _ => AlertDescription::HandshakeFailure,
    })
}

#[test]
fn each_rejection_is_sent_as_its_own_alert_and_mapped_back_by_code() {
    let peer: SocketAddr = "127.0.0.9:30035".parse().unwrap();
    let rejections = [
        PeerRejection::EnvMismatch {
            peer: env("staging"),
            ours: env("prod"),
        },
        PeerRejection::NotSigned { env: env("prod") },
        PeerRejection::WrongRole {
            expected: Role::Node,
            found: Role::Client,
        },
        PeerRejection::NotWerify(WerifyUriError::NoUri),
        PeerRejection::NotALeaf,
        PeerRejection::Denied(crate::rpc::identity::DenyEntry::Operator("eve".into())),
        PeerRejection::Invalid(CertificateError::Expired),
        PeerRejection::Invalid(CertificateError::NotValidYet),
        // webpki's wrong-usage alert is the one a wrong role gets: sent as another.
        PeerRejection::Invalid(CertificateError::InvalidPurpose),
        PeerRejection::Invalid(CertificateError::Revoked),
    ];
    let mut alerts = std::collections::HashMap::new();
    for rejection in rejections {
        let kind = rejection.kind();
        let alert = alert_sent_for(&rejection.clone().into_rustls());
        assert_eq!(alert, kind.alert(), "{rejection}");
        assert_eq!(RejectionKind::from_alert(alert), Some(kind));
        assert_eq!(*alerts.entry(kind).or_insert(alert), alert);

        // The refused side has the close code, and a reason it must not read.
        let remote = quinn::ConnectionError::ConnectionClosed(quinn::ConnectionClose {
            error_code: quinn::TransportErrorCode::crypto(alert),
            frame_type: None,
            reason: bytes::Bytes::from_static(b"peer is in env \"x\", this mesh is \"y\""),
        });
        match ConnectionFailure::new(peer, &remote, None) {
            ConnectionFailure::PeerRefused { kind: got, .. } => assert_eq!(got, kind),
            other => panic!("{rejection}: {other:?}"),
        }

        // The refusing side has the same code locally, and its verdict.
        let local = quinn::ConnectionError::TransportError(quinn_proto::TransportError {
            code: quinn::TransportErrorCode::crypto(alert),
            frame: None,
            reason: String::new(),
        });
        let verdict = Handshakes::new(&identity("prod", b"s", Role::Node))
            .unwrap()
            .verdict();
        match ConnectionFailure::new(peer, &local, None) {
            ConnectionFailure::WeRefused {
                kind: got,
                rejection: None,
                ..
            } => assert_eq!(got, kind),
            other => panic!("{rejection}: {other:?}"),
        }
        verdict.record(&rejection);
        match verdict.failure(peer, &local) {
            ConnectionFailure::WeRefused {
                kind: got,
                rejection: Some(recorded),
                ..
            } => {
                assert_eq!(got, kind);
                assert_eq!(recorded.to_string(), rejection.to_string());
            }
            other => panic!("{rejection}: {other:?}"),
        }
    }
    assert_eq!(alerts.len(), 7, "every kind has its own alert: {alerts:?}");
    let mut distinct: Vec<u8> = alerts.values().copied().collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 7, "{alerts:?}");

    // An alert that is not about the certificate is not a refusal, whatever it says.
    let handshake_failure = quinn::ConnectionError::ConnectionClosed(quinn::ConnectionClose {
        error_code: quinn::TransportErrorCode::crypto(40),
        frame_type: None,
        reason: bytes::Bytes::from_static(b"peer is in env \"x\", this mesh is \"y\""),
    });
    assert!(matches!(
        ConnectionFailure::new(peer, &handshake_failure, None),
        ConnectionFailure::Aborted { .. }
    ));
    assert_eq!(
        format!("{:?}", PeerRejection::NotALeaf),
        PeerRejection::NotALeaf.to_string()
    );
}

#[test]
fn connection_errors_read_as_one_line_naming_the_peer() {
    let peer: SocketAddr = "127.0.0.9:30035".parse().unwrap();
    let timed_out = describe_connection_error(peer, &quinn::ConnectionError::TimedOut);
    assert!(
        timed_out.starts_with("nothing answered at 127.0.0.9:30035"),
        "{timed_out}"
    );
    assert!(timed_out.contains("werify node running there"));
    let reset = describe_connection_error(peer, &quinn::ConnectionError::Reset);
    assert!(reset.contains("127.0.0.9:30035") && reset.contains("reset"));

    let alpn = quinn::ConnectionError::ConnectionClosed(quinn::ConnectionClose {
        error_code: quinn::TransportErrorCode::crypto(TLS_ALERT_NO_APPLICATION_PROTOCOL),
        frame_type: None,
        reason: bytes::Bytes::from_static(b"peer doesn't support any known protocol"),
    });
    let line = describe_connection_error(peer, &alpn);
    assert!(line.contains("does not speak werify/1"), "{line}");

    let hostile = quinn::ConnectionError::ConnectionClosed(quinn::ConnectionClose {
        error_code: quinn::TransportErrorCode::crypto(42),
        frame_type: None,
        reason: bytes::Bytes::from(format!("evil\nline{}", "x".repeat(5000))),
    });
    let line = describe_connection_error(peer, &hostile);
    assert!(!line.contains('\n'), "{line}");
    assert!(line.chars().count() < 500, "{line}");
    for code in [40, 46] {
        // A close whose reason is shown: a non-certificate alert, or an unspecific one.
        let hostile = quinn::ConnectionError::ConnectionClosed(quinn::ConnectionClose {
            error_code: quinn::TransportErrorCode::crypto(code),
            frame_type: None,
            reason: bytes::Bytes::from(format!("evil\nline{}", "x".repeat(5000))),
        });
        let line = describe_connection_error(peer, &hostile);
        assert!(line.contains("evilline"), "{line}");
        assert!(!line.contains('\n'), "{line}");
        assert!(line.chars().count() < 500, "{line}");
    }

    let app = quinn::ConnectionError::ApplicationClosed(quinn::ApplicationClose {
        error_code: 0u32.into(),
        reason: bytes::Bytes::from_static(b"shutting down"),
    });
    assert_eq!(
        describe_connection_error(peer, &app),
        "peer 127.0.0.9:30035 closed the connection (code 0): shutting down"
    );
    assert_eq!(
        ConnectionFailure::new(peer, &quinn::ConnectionError::TimedOut, None).fault(),
        Fault::Environment
    );
    assert_eq!(
        ConnectionFailure::new(peer, &alpn, None).fault(),
        Fault::Peer
    );
}

#[test]
fn transport_config_keeps_links_alive_inside_the_idle_timeout() {
    assert!(KEEP_ALIVE_INTERVAL * 3 <= IDLE_TIMEOUT);
    assert!(CTL_KEEP_ALIVE_INTERVAL * 3 <= CTL_IDLE_TIMEOUT);
    // Building them must not panic; the settings themselves are exercised by the
    // handshake tests.
    for end in [LinkEnd::NodeDialer, LinkEnd::Acceptor, LinkEnd::Ctl] {
        let _ = transport_config(end);
    }
}

/// A scratch directory removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "werify-tls-{tag}-{}-{}",
            std::process::id(),
            NodeId::random().short()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn ca(&self, name: &str) -> CaFiles {
        init_ca(&env("prod"), &self.0.join(name), false).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A node minting its leaf from `signer`, trusting `trusted` too.
fn pem_node(signer: &CaFiles, trusted: &[&CaFiles]) -> Identity {
    let mut certs = vec![signer.cert.clone()];
    certs.extend(trusted.iter().map(|c| c.cert.clone()));
    Identity::new(
        None,
        &CaSource::Pem {
            certs,
            key: signer.key.clone(),
        },
        Role::Node,
        NodeId::random(),
        &[],
    )
    .unwrap()
}

/// An operator certificate issued by `ca` and loaded by a client trusting `trusted`.
fn operator(dir: &Scratch, name: &str, ca: &CaFiles, trusted: &[&CaFiles]) -> Identity {
    let files = issue(&IssueRequest {
        ca_cert: &ca.cert,
        ca_key: &ca.key,
        env: None,
        subject: IssueFor::Operator(name.into()),
        days: 1,
        out_dir: &dir
            .0
            .join(format!("issued-{name}-{}", NodeId::random().short())),
        force: false,
    })
    .unwrap();
    Identity::new(
        None,
        &CaSource::Issued {
            ca_certs: trusted.iter().map(|c| c.cert.clone()).collect(),
            cert: files.cert,
            key: files.key,
        },
        Role::Client,
        NodeId::random(),
        &[],
    )
    .unwrap()
}

#[tokio::test]
async fn a_node_trusting_two_cas_accepts_certificates_of_either() {
    let dir = Scratch::new("two-cas");
    let (old, new) = (dir.ca("old"), dir.ca("new"));
    let node = pem_node(&old, &[&new]);
    let alice = operator(&dir, "alice", &new, &[&old, &new]);
    let (dialer_saw, acceptor_saw) = exchange(&alice, &node).await;
    assert_eq!(dialer_saw.holder, Holder::Node(node.node_id()));
    assert_eq!(acceptor_saw.holder, Holder::Operator("alice".into()));
    assert_eq!(acceptor_saw.fingerprint, alice.leaf_fingerprint());
    // A node of the new CA that still trusts the old one talks to a node of the old CA.
    let moved = pem_node(&new, &[&old]);
    exchange(&moved, &node).await;
    exchange(&node, &moved).await;
    // A node that trusts only the old CA refuses the new CA's certificates.
    let (dialer, acceptor) = refused_typed(&side(&pem_node(&old, &[])), &side(&alice)).await;
    assert!(
        matches!(
            acceptor,
            ConnectionFailure::WeRefused {
                kind: RejectionKind::NotSigned,
                ..
            }
        ),
        "{acceptor:?}"
    );
    assert!(dialer.to_string().contains("not signed"), "{dialer}");
}

#[tokio::test]
async fn a_denied_certificate_is_refused_on_both_sides_with_its_own_alert() {
    let dir = Scratch::new("deny");
    let ca = dir.ca("ca");
    let node = pem_node(&ca, &[]);
    let mallory = operator(&dir, "mallory", &ca, &[&ca]);
    let deny = DenyList::parse("operator:mallory\n", std::path::Path::new("deny")).unwrap();
    let server = side_with(Handshakes::for_end(&node, deny, LinkEnd::NodeDialer).unwrap());
    let (dialer, acceptor) = refused_typed(&server, &side(&mallory)).await;
    let addr = server.endpoint.local_addr().unwrap();
    assert!(
        matches!(
            &acceptor,
            ConnectionFailure::WeRefused {
                kind: RejectionKind::Denied,
                rejection: Some(PeerRejection::Denied(DenyEntry::Operator(name))),
                ..
            } if name == "mallory"
        ),
        "{acceptor:?}"
    );
    assert!(
        acceptor
            .to_string()
            .ends_with("'s certificate is denied by this node's deny list (operator \"mallory\")"),
        "{acceptor}"
    );
    assert_eq!(
        dialer.to_string(),
        format!(
            "peer {addr} refused our certificate: it is on that node's deny list (use another \
             certificate, or ask its operators)"
        )
    );
    assert_eq!(dialer.fault(), Fault::Caller);
    // Another operator of the same CA is let in.
    let alice = operator(&dir, "alice", &ca, &[&ca]);
    let dial = side(&alice);
    let conn = tokio::time::timeout(TEST_DEADLINE, async {
        let accept = async {
            let incoming = server.endpoint.accept().await.unwrap();
            let config = server.tls.server_config_for(&server.tls.verdict()).unwrap();
            incoming
                .accept_with(Arc::new(config))
                .unwrap()
                .await
                .unwrap()
        };
        let connect = async {
            dial.endpoint
                .connect(addr, SERVER_NAME)
                .unwrap()
                .await
                .unwrap()
        };
        tokio::join!(accept, connect).0
    })
    .await
    .unwrap();
    assert_eq!(
        peer_cert(&conn).unwrap().holder,
        Holder::Operator("alice".into())
    );
}

#[tokio::test]
async fn installed_trust_applies_to_new_handshakes_and_rechecks_live_connections() {
    let dir = Scratch::new("install");
    let (old, new) = (dir.ca("old"), dir.ca("new"));
    let node = pem_node(&old, &[]);
    let peer = pem_node(&old, &[&new]);
    let server = side(&node);
    let client = side(&peer);
    let addr = server.endpoint.local_addr().unwrap();
    let conn = tokio::time::timeout(TEST_DEADLINE, async {
        tokio::join!(
            async { server.endpoint.accept().await.unwrap().await.unwrap() },
            async {
                client
                    .endpoint
                    .connect(addr, SERVER_NAME)
                    .unwrap()
                    .await
                    .unwrap()
            }
        )
        .0
    })
    .await
    .unwrap();
    assert_eq!(server.tls.recheck(&conn, false), None);
    assert_eq!(server.tls.recheck(&conn, true), None);

    // Denying the peer's certificate: the live connection would now be refused.
    let deny = DenyList::parse(&peer.leaf_fingerprint(), std::path::Path::new("deny")).unwrap();
    server.tls.install(&node, deny).unwrap();
    assert_eq!(
        server.tls.recheck(&conn, false),
        Some(PeerRejection::Denied(DenyEntry::Fingerprint(
            peer.leaf_fingerprint()
        )))
    );
    assert_eq!(server.tls.trust().deny().len(), 1);

    // Trusting only the new CA (and presenting its certificate): the old CA's certificate
    // is not signed by anything trusted any more.
    let moved = pem_node(&new, &[]);
    server.tls.install(&moved, DenyList::default()).unwrap();
    assert_eq!(
        server.tls.identity().leaf_fingerprint(),
        moved.leaf_fingerprint()
    );
    assert_eq!(
        server.tls.trust().ca_fingerprints(),
        moved.trusted_fingerprints().as_slice()
    );
    assert!(
        matches!(
            server.tls.recheck(&conn, false),
            Some(PeerRejection::NotSigned { .. })
        ),
        "{:?}",
        server.tls.recheck(&conn, false)
    );
    // New handshakes use it: a node presenting an old-CA certificate is refused now.
    let (_, acceptor) = refused_typed(&server, &side(&pem_node(&old, &[&new]))).await;
    assert!(
        matches!(
            acceptor,
            ConnectionFailure::WeRefused {
                kind: RejectionKind::NotSigned,
                ..
            }
        ),
        "{acceptor:?}"
    );
    // An identity of another role or env is not installed.
    let err = server
        .tls
        .install(&identity("prod", b"s", Role::Client), DenyList::default())
        .unwrap_err();
    assert!(matches!(err, TlsError::OtherIdentity { .. }), "{err}");
}
