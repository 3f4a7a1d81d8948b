//! Memory a long-lived werify connection keeps per request must stop growing: quinn parks
//! the receive state of every finished stream for reuse, one per allowed concurrent stream
//! (`rpc::tls::MAX_CONCURRENT_BIDI_STREAMS`), so a node's heap grows with each request on
//! a connection until that many are parked and then stays flat. The allowance is kept small
//! so that plateau comes early and a node under steady load holds steady memory.
//!
//! This file is its own test binary because it installs a counting global allocator and
//! measures the live heap of the whole process; one test only, so nothing else allocates
//! meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use werify::base::NodeId;
use werify::rpc::frame::{read_frame, write_frame};
use werify::rpc::identity::{CaSource, Identity, Role};
use werify::rpc::tls::{self, MAX_CONCURRENT_BIDI_STREAMS, SERVER_NAME};

/// Requests after which a connection's heap must be flat: twice the 64 streams a peer may
/// have open at once. Raising `MAX_CONCURRENT_BIDI_STREAMS` past 64 brings back growth
/// beyond this point (one parked stream per request up to the new allowance), and fails
/// this test on purpose: the soak's flat RSS depends on the plateau coming this early.
const WARM_UP: u64 = 128;

/// Counts the bytes currently allocated through the global allocator.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` with the same arguments; the counter is
// only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_bytes() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// A request about the size of the soak's `RunChecks` (three checks).
#[derive(Debug, Serialize, Deserialize)]
struct Req {
    n: u64,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Resp {
    n: u64,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
}

fn identity() -> Identity {
    Identity::new(
        Some(&"soak".parse().expect("valid env")),
        &CaSource::derived(Some(b"stream-memory")),
        Role::Node,
        NodeId::random(),
        &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
    )
    .expect("identity")
}

fn endpoint(id: &Identity) -> quinn::Endpoint {
    let mut e = quinn::Endpoint::server(
        tls::server_config(id).expect("server config"),
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
    )
    .expect("bind 127.0.0.1");
    e.set_default_client_config(tls::client_config(id).expect("client config"));
    e
}

/// One request/response on a new stream of `conn`, as a coordinator sends `RunChecks`.
async fn request(conn: &quinn::Connection, n: u64) {
    let (mut send, mut recv) = conn.open_bi().await.expect("open stream");
    write_frame(
        &mut send,
        &Req {
            n,
            body: vec![7; 400],
        },
    )
    .await
    .expect("send request");
    send.finish().expect("finish request");
    let resp: Resp = read_frame(&mut recv, 1 << 20).await.expect("read response");
    assert_eq!(resp.n, n, "answer to another request");
}

/// Sequential requests on one connection: the heap may grow while quinn parks stream
/// state (at most one per allowed stream), then must stay flat however many follow.
#[tokio::test(flavor = "current_thread")]
async fn heap_per_connection_stops_growing_after_the_stream_allowance() {
    let server = endpoint(&identity());
    let client = endpoint(&identity());
    let addr = server.local_addr().expect("server address");
    let serve = tokio::spawn(async move {
        let conn = server
            .accept()
            .await
            .expect("incoming")
            .await
            .expect("handshake");
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            let Ok(req) = read_frame::<Req>(&mut recv, 1 << 20).await else {
                continue;
            };
            let _ = write_frame(
                &mut send,
                &Resp {
                    n: req.n,
                    body: vec![1; 200],
                },
            )
            .await;
            let _ = send.finish();
        }
    });
    let conn = tokio::time::timeout(
        Duration::from_secs(20),
        client.connect(addr, SERVER_NAME).expect("dial"),
    )
    .await
    .expect("handshake within 20 s (hang guard)")
    .expect("handshake");

    let run = async {
        let mut n = 0;
        let start = live_bytes();
        // Past the allowance every stream slot has held a stream once: all that quinn
        // parks is parked now.
        for _ in 0..WARM_UP {
            request(&conn, n).await;
            n += 1;
        }
        let warm = live_bytes();
        eprintln!(
            "{WARM_UP} warm-up requests ({MAX_CONCURRENT_BIDI_STREAMS} streams allowed): \
             heap +{} bytes",
            warm - start
        );
        // As many more requests as a peer connection saw in the 5,000-operation soak.
        let more = 1_000;
        for _ in 0..more {
            request(&conn, n).await;
            n += 1;
        }
        // Let acknowledgements and stream closes settle on both sides.
        tokio::time::sleep(Duration::from_millis(300)).await;
        request(&conn, n).await;
        let after = live_bytes();
        eprintln!("{} more requests: heap {:+} bytes", more + 1, after - warm);
        (warm, after, more)
    };
    let (warm, after, more) = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("requests within 120 s (hang guard)");
    let grown = after - warm;
    // Both ends live in this process. 16 KiB is far below what one parked stream per
    // request would add (~360 B each, 350 KiB here) and above the noise of buffers that
    // are in flight at the moment of the reading.
    assert!(
        grown < 16 * 1024,
        "the heap grew by {grown} bytes over {more} requests on one connection after \
         {WARM_UP} warm-up requests ({} bytes per request): something is kept per request \
         (is MAX_CONCURRENT_BIDI_STREAMS, now {MAX_CONCURRENT_BIDI_STREAMS}, above 64?)",
        grown / more as isize
    );
    conn.close(0u32.into(), b"done");
    serve.abort();
}
