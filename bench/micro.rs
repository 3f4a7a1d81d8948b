//! Criterion micro-benchmarks (`cargo bench --bench micro`):
//! - `frame/*`: CBOR encode/decode of a `Request::RunChecks` with 20 checks, of a
//!   `Response::Operation` record of 64 hosts (`werify::rpc::frame`), and of a full gossip
//!   datagram (`werify::mesh::Message`);
//! - `membership/*`: one `handle_timeout` + drain of `poll_transmit`/`poll_event` of a state
//!   machine that knows 1,000 alive members, right after learning them (piggyback queue
//!   full) and once settled;
//! - `file_contains/*`: `run_checks` with one `file_contains` check whose needle is absent
//!   on a page-cached 1 GiB file, with `grep -F -c` timed on the same file in the same run;
//! - `fanout/*`: 64 nodes in this process (`run_until`) on 127.0.0.1–64; one operation,
//!   submit until all 64 hosts answered, through a ctl-like QUIC client.
//!
//! Environment: `MICRO_ONLY=frame,membership,file,fanout` picks groups (default all);
//! `MICRO_FILE_MB` (default 1024) sizes the file; `MICRO_PORT` (default 31735) is the UDP
//! port of the 64 nodes. Criterion's own filter (`-- NAME`) works too, but the expensive
//! set-ups (file, nodes) only honour `MICRO_ONLY`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use werify::checks::{Outcome, RunOptions, parse_operations, run_checks};
use werify::mesh::message::MemberState;
use werify::mesh::{Config, Membership, Message, NodeId, Peer, Profile, PushPull, State, Tags};
use werify::ops::handle::Handle;
use werify::ops::store::OperationRecord;
use werify::rpc::frame::{decode, encode};
use werify::rpc::protocol::HostReport;
use werify::rpc::protocol::{Request, Response, TargetFilter};

// ----- helpers ---------------------------------------------------------------------------

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn wanted(group: &str) -> bool {
    match std::env::var("MICRO_ONLY") {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|g| g.trim() == group),
        _ => true,
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn gbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64().max(1e-9) / 1e9
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("werify-micro-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An operations file of 20 checks of the kinds an operator typically runs.
fn twenty_checks_json() -> String {
    let mut checks = Vec::new();
    for i in 0..4 {
        checks.push(format!(
            r#""file_exists_{i}": {{"type": "file_exists", "path": "/etc/app{i}/config.yaml"}}"#
        ));
        checks.push(format!(
            r#""file_contains_{i}": {{"type": "file_contains", "path": "/etc/hosts", "check": "10.0.0.{i} db{i}.internal", "timeout": "2s"}}"#
        ));
        checks.push(format!(
            r#""process_{i}": {{"type": "process_running", "path": "/usr/sbin/daemon{i}", "check": "daemon{i}"}}"#
        ));
    }
    for i in 0..2 {
        checks.push(format!(
            r#""hash_{i}": {{"type": "file_hash", "path": "/usr/local/bin/tool{i}", "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}}"#
        ));
        checks.push(format!(
            r#""port_{i}": {{"type": "port_listening", "port": {}, "proto": "tcp"}}"#,
            8080 + i
        ));
    }
    checks.push(r#""matches": {"type": "file_matches", "path": "/etc/hosts", "pattern": "^127\\.0\\.0\\.1\\s+\\S*localhost"}"#.into());
    checks.push(r#""passwd_mode": {"type": "file_mode", "path": "/etc/passwd", "mode": "0644", "owner": "root", "group": "0"}"#.into());
    checks.push(
        r#""no_virus": {"type": "file_exists", "path": "/tmp/virus.exe", "expect": false}"#.into(),
    );
    checks.push(r#""nobody": {"type": "user_exists", "name": "nobody"}"#.into());
    format!("{{\n{}\n}}\n", checks.join(",\n"))
}

fn peer(i: usize) -> Peer {
    Peer {
        id: NodeId(
            (i as u128)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
                .to_le_bytes(),
        ),
        addr: werify::mesh::sim::sim_addr(i),
    }
}

/// A state machine (node 0) that has just learned 1,000 alive members from a push-pull.
fn membership_with_1000(base: Instant, seed: u64) -> Membership {
    let config = Config::for_profile(Profile::Lan);
    let mut m = Membership::new(peer(0), Tags::new(), config, seed, base);
    let members = (1..=1000).map(|i| MemberState::alive(peer(i))).collect();
    let _reply = m.handle_push_pull(
        base,
        PushPull {
            from: peer(1),
            join: false,
            members,
            digest: None,
        },
    );
    while m.poll_transmit().is_some() {}
    while m.poll_event().is_some() {}
    assert_eq!(
        m.live_members(),
        1000,
        "the push-pull did not add 1,000 members"
    );
    m
}

/// Drains everything `m` produced; returns the pings to answer as (target, seq).
fn drain(m: &mut Membership, pings: &mut Vec<(NodeId, u32)>) -> usize {
    let mut sent = 0;
    while let Some(t) = m.poll_transmit() {
        sent += 1;
        if let Message::Ping { target, seq, .. } = &t.msg {
            pings.push((*target, *seq));
        }
        black_box(t);
    }
    while let Some(e) = m.poll_event() {
        black_box(e);
    }
    sent
}

/// Every probed member answers at once (untimed), so the mesh stays healthy.
fn answer_pings(m: &mut Membership, now: Instant, pings: &mut Vec<(NodeId, u32)>) {
    let mut more = Vec::new();
    for (target, seq) in pings.drain(..) {
        m.handle_message(
            now,
            Message::Ack {
                from: target,
                seq,
                updates: Vec::new(),
            },
        );
        drain(m, &mut more);
    }
}

/// One timed tick at the machine's next deadline; returns its duration.
fn tick(m: &mut Membership, pings: &mut Vec<(NodeId, u32)>) -> Duration {
    let Some(now) = m.poll_timeout() else {
        panic!("an active membership always has a next deadline");
    };
    let t0 = Instant::now();
    m.handle_timeout(now);
    drain(m, pings);
    let took = t0.elapsed();
    answer_pings(m, now, pings);
    took
}

// ----- frame codec ------------------------------------------------------------------------

fn operation_record(names: &[String]) -> OperationRecord {
    let mut hosts = BTreeMap::new();
    for h in 1..=64u32 {
        let mut results = BTreeMap::new();
        for (k, name) in names.iter().enumerate() {
            let outcome = match (h as usize + k) % 17 {
                0 => Outcome::Error(format!(
                    "cannot read /etc/app{k}/config.yaml: Permission denied (os error 13)"
                )),
                1 | 2 => Outcome::Success(false),
                _ => Outcome::Success(true),
            };
            results.insert(name.clone(), outcome);
        }
        hosts.insert(
            format!("10.1.{}.{}:30035", h / 250, h % 250),
            HostReport::Answered {
                results,
                observations: Default::default(),
                took_ms: u64::from(h % 7) + 2,
            },
        );
    }
    OperationRecord {
        handle: Handle::new(12_345, 42, NodeId([7; 16])),
        coordinator: "10.1.0.1:30035".into(),
        submitted_unix_ms: 1_764_000_000_000,
        deadline_unix_ms: 1_764_000_010_000,
        ended_unix_ms: Some(1_764_000_000_031),
        check_names: names.to_vec(),
        hosts,
    }
}

/// The largest gossip datagram a node sends right after learning 1,000 members.
fn full_gossip_datagram() -> Message {
    let base = Instant::now();
    let mut m = membership_with_1000(base, 1);
    let budget = m.config().max_datagram_bytes;
    let mut best: Option<(usize, Message)> = None;
    for _ in 0..20 {
        let Some(now) = m.poll_timeout() else { break };
        m.handle_timeout(now);
        while let Some(t) = m.poll_transmit() {
            if let Message::Gossip { .. } = t.msg {
                let len = t.msg.encode().len();
                if best.as_ref().is_none_or(|(l, _)| len > *l) {
                    best = Some((len, t.msg));
                }
            }
        }
        while m.poll_event().is_some() {}
    }
    let Some((len, msg)) = best else {
        panic!("no gossip datagram after learning 1,000 members");
    };
    assert!(
        len * 10 >= budget * 9,
        "gossip datagram of {len} bytes is not full (budget {budget})"
    );
    msg
}

fn bench_frame(c: &mut Criterion) {
    let checks = match parse_operations(&twenty_checks_json(), "twenty.json") {
        Ok(c) => c,
        Err(e) => panic!("the 20-check set does not parse: {e}"),
    };
    assert_eq!(checks.len(), 20);
    let names: Vec<String> = checks.names().map(str::to_string).collect();
    let request = Request::RunChecks {
        checks,
        timeout_ms: 10_000,
    };
    let response = Response::Operation(operation_record(&names).into());
    let gossip = full_gossip_datagram();

    let mut g = c.benchmark_group("frame");
    let req_bytes = encode(&request).expect("encode request");
    let resp_bytes = encode(&response).expect("encode response");
    let gossip_bytes = gossip.encode();
    eprintln!(
        "frame sizes: RunChecks(20 checks) {} B, Operation(64 hosts x 20) {} B, gossip datagram {} B ({} updates)",
        req_bytes.len(),
        resp_bytes.len(),
        gossip_bytes.len(),
        match &gossip {
            Message::Gossip { updates, .. } => updates.len(),
            _ => 0,
        }
    );
    assert!(matches!(
        decode::<Request>(&req_bytes),
        Ok(Request::RunChecks { .. })
    ));
    assert!(matches!(
        decode::<Response>(&resp_bytes),
        Ok(Response::Operation(r)) if r.hosts.len() == 64
    ));
    let sender = Peer {
        id: gossip.sender(),
        addr: SocketAddr::from(([127, 0, 0, 1], 30035)),
    };
    assert_eq!(
        Message::decode_from(&gossip_bytes, sender, NodeId([8; 16])).as_ref(),
        Ok(&gossip)
    );

    g.throughput(Throughput::Bytes(req_bytes.len() as u64));
    g.bench_function("encode_run_checks_20", |b| {
        b.iter(|| encode(black_box(&request)))
    });
    g.bench_function("decode_run_checks_20", |b| {
        b.iter(|| decode::<Request>(black_box(&req_bytes)))
    });
    g.throughput(Throughput::Bytes(resp_bytes.len() as u64));
    g.bench_function("encode_operation_64_hosts", |b| {
        b.iter(|| encode(black_box(&response)))
    });
    g.bench_function("decode_operation_64_hosts", |b| {
        b.iter(|| decode::<Response>(black_box(&resp_bytes)))
    });
    g.throughput(Throughput::Bytes(gossip_bytes.len() as u64));
    g.bench_function("encode_gossip_datagram", |b| {
        b.iter(|| black_box(&gossip).encode())
    });
    g.bench_function("decode_gossip_datagram", |b| {
        b.iter(|| Message::decode_from(black_box(&gossip_bytes), sender, NodeId([8; 16])))
    });
    g.finish();
}

// ----- membership tick --------------------------------------------------------------------

fn bench_membership(c: &mut Criterion) {
    let mut g = c.benchmark_group("membership");
    g.throughput(Throughput::Elements(1));

    // Right after learning 1,000 members: every tick gossips from a full piggyback queue.
    // The machine is rebuilt (untimed) every 200 ticks so the queue stays busy.
    const TICKS_PER_MACHINE: u32 = 200;
    g.bench_function("tick_1000_members_after_join", |b| {
        let base = Instant::now();
        let mut seed = 0;
        let mut m = membership_with_1000(base, seed);
        let mut ticks = 0;
        let mut pings = Vec::new();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                if ticks == TICKS_PER_MACHINE {
                    seed += 1;
                    m = membership_with_1000(base, seed);
                    ticks = 0;
                }
                total += tick(&mut m, &mut pings);
                ticks += 1;
            }
            total
        })
    });

    // Settled: queue drained, every probe acked; ticks are probes, indirect-probe checks,
    // push-pull, rejoin and reap timers.
    g.bench_function("tick_1000_members_settled", |b| {
        let base = Instant::now();
        let mut m = membership_with_1000(base, 99);
        let mut pings = Vec::new();
        let mut warm = 0;
        while m.queued_updates() > 0 {
            tick(&mut m, &mut pings);
            warm += 1;
            assert!(warm < 1_000_000, "piggyback queue never drained");
        }
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += tick(&mut m, &mut pings);
            }
            assert_eq!(m.live_members(), 1000, "a healthy member was lost");
            total
        })
    });

    // A periodic sync's opening (the digest of 1,001 member states: since branch sim10k
    // this node's own term plus the running sum kept over its records, not a pass over
    // them) beside the full member list it replaces, encoded as it would go on the wire.
    let m = membership_with_1000(Instant::now(), 7);
    g.bench_function("sync_digest_1000_members", |b| {
        b.iter(|| black_box(m.sync_request()))
    });
    g.bench_function("sync_full_list_1000_members_encoded", |b| {
        b.iter(|| black_box(Message::PushPull(m.push_pull_request(false)).encode()))
    });
    g.finish();
}

// ----- file_contains ----------------------------------------------------------------------

const NEEDLE: &str = "no-such-needle-xyz";

/// Writes `mb` MiB of log-like text lines without the needle (same line as
/// bench/file-contains.sh) and reads it once so it is page-cached.
fn write_big_file(path: &Path, mb: u64) -> u64 {
    use std::io::Write;
    let line = b"2026-11-25T13:00:00Z INFO request served path=/api/v1/items status=200 bytes=5123 took=3ms\n";
    let mut block = Vec::with_capacity((1 << 20) + line.len());
    while block.len() < 1 << 20 {
        block.extend_from_slice(line);
    }
    let total = mb << 20;
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display())),
    );
    let mut left = total;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        left -= n as u64;
    }
    f.flush().expect("flush big file");
    drop(f);
    let _ = std::fs::read(path).map(|b| black_box(b.len()));
    total
}

fn time_grep(path: &Path) -> Duration {
    let t0 = Instant::now();
    let out = std::process::Command::new("grep")
        .args(["-F", "-c", NEEDLE])
        .arg(path)
        .output();
    let took = t0.elapsed();
    match out {
        Ok(o) => assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            "0",
            "grep found the needle"
        ),
        Err(e) => panic!("cannot run grep: {e}"),
    }
    took
}

fn bench_file_contains(c: &mut Criterion) {
    let mb: u64 = env_or("MICRO_FILE_MB", 1024);
    let dir = TempDir::new("file");
    let path = dir.0.join("big.txt");
    let t0 = Instant::now();
    let bytes = write_big_file(&path, mb);
    eprintln!(
        "file_contains: wrote and cached {mb} MiB in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let json = format!(
        r#"{{"big": {{"type": "file_contains", "path": {}, "check": "{NEEDLE}", "timeout": "5m"}}}}"#,
        serde_json::Value::String(path.display().to_string())
    );
    let set = parse_operations(&json, "bench.json").expect("file_contains check parses");
    let opts = RunOptions::default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let check = |rt: &tokio::runtime::Runtime| {
        let results = rt.block_on(run_checks(&set, &opts));
        assert_eq!(
            results.get("big").map(|r| &r.outcome),
            Some(&Outcome::Success(false)),
            "file_contains did not read the whole file and answer false"
        );
    };

    let mut werify_times = Vec::new();
    let mut grep_times = Vec::new();
    let mut g = c.benchmark_group("file_contains");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::BytesDecimal(bytes));
    g.bench_function(format!("run_checks_{mb}MiB_needle_absent"), |b| {
        // grep runs right after each timed run_checks (untimed here): both see the same
        // machine load.
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t0 = Instant::now();
                check(&rt);
                let took = t0.elapsed();
                werify_times.push(took);
                total += took;
                grep_times.push(time_grep(&path));
            }
            total
        })
    });
    g.finish();
    let w = median(&mut werify_times);
    let gr = median(&mut grep_times);
    println!(
        "file_contains {mb} MiB, needle absent: werify run_checks median {:.3} s = {:.2} GB/s ({} runs); grep -F -c median {:.3} s = {:.2} GB/s ({} runs); werify/grep throughput {:.2}",
        w.as_secs_f64(),
        gbps(bytes, w),
        werify_times.len(),
        gr.as_secs_f64(),
        gbps(bytes, gr),
        grep_times.len(),
        gr.as_secs_f64() / w.as_secs_f64().max(1e-9),
    );
}

// ----- operation fan-out ------------------------------------------------------------------

const FANOUT_NODES: usize = 64;

fn node_config(k: usize, port: u16, dir: &Path) -> werify::node::NodeConfig {
    werify::node::NodeConfig {
        env: Some(bench_env()),
        bind: std::net::IpAddr::from([127, 0, 0, k as u8]),
        port,
        data_dir: Some(dir.join(format!("n{k}"))),
        join: if k > 1 {
            vec![format!("127.0.0.1:{port}")]
        } else {
            Vec::new()
        },
        ..werify::node::NodeConfig::default()
    }
}

fn bench_env() -> werify::base::Env {
    "micro-bench".parse().expect("a valid env")
}

/// Alive members `addr` reports, or the error.
async fn alive_seen_by(
    client: &werify::rpc::transport::Transport,
    addr: SocketAddr,
) -> Result<usize, String> {
    match client
        .call(addr, &Request::Status, Duration::from_secs(5))
        .await
    {
        Ok(Response::Status(r)) => Ok(r.members.iter().filter(|m| m.state == State::Alive).count()),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Nodes accept at most 20 operations per second from one address (src/rpc/limits.rs):
/// submits are spaced at least this far apart, untimed.
const SUBMIT_SPACING: Duration = Duration::from_millis(60);

/// Submit to node 1, then `Get` with `wait_ms` until the operation ended; checks that all
/// 64 hosts answered. Returns the time from submit to the answer that said it ended; the
/// wait for the rate limiter (spacing, and any refused submit) is not counted.
async fn one_operation(
    client: &werify::rpc::transport::Transport,
    coordinator: SocketAddr,
    checks: &werify::checks::CheckSet,
    last_submit: &mut Instant,
) -> Duration {
    let submit = Request::Submit {
        checks: checks.clone(),
        filter: TargetFilter::default(),
        deadline_ms: 10_000,
    };
    let mut refused = 0;
    let (t0, handle) = loop {
        tokio::time::sleep(SUBMIT_SPACING.saturating_sub(last_submit.elapsed())).await;
        *last_submit = Instant::now();
        let t0 = Instant::now();
        match client
            .call(coordinator, &submit, Duration::from_secs(15))
            .await
        {
            Ok(Response::Submitted {
                handle, targeted, ..
            }) => {
                assert_eq!(targeted, FANOUT_NODES, "not every node was targeted");
                break (t0, handle);
            }
            Ok(Response::Error { message, .. })
                if message.contains("too many operations") && refused < 10 =>
            {
                refused += 1;
            }
            other => panic!("submit failed: {other:?}"),
        }
    };
    loop {
        let get = Request::Get {
            handle: handle.clone(),
            wait_ms: 10_000,
            known_answers: None,
        };
        match client
            .call(coordinator, &get, Duration::from_secs(25))
            .await
        {
            Ok(Response::Operation(rec)) if rec.ended_unix_ms.is_some() => {
                let took = t0.elapsed();
                let answered = rec
                    .hosts
                    .values()
                    .filter(|h| matches!(h, HostReport::Answered { .. }))
                    .count();
                assert_eq!(answered, FANOUT_NODES, "hosts did not all answer: {rec:?}");
                return took;
            }
            Ok(Response::Operation(_)) => continue,
            other => panic!("get failed: {other:?}"),
        }
    }
}

fn bench_fanout(c: &mut Criterion) {
    let port: u16 = env_or("MICRO_PORT", 31_735);
    let dir = TempDir::new("fanout");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let configs: Vec<_> = (1..=FANOUT_NODES)
        .map(|k| node_config(k, port, &dir.0))
        .collect();
    let mut stops = Vec::new();
    let mut nodes = Vec::new();
    for config in configs {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        stops.push(tx);
        let shutdown = async move {
            let _ = rx.await;
        };
        nodes.push(rt.spawn(werify::node::run(config, shutdown)));
    }
    let coordinator: SocketAddr = ([127, 0, 0, 1], port).into();
    let client = rt.block_on(async {
        let id = werify::rpc::identity::Identity::new(
            Some(&bench_env()),
            &werify::rpc::identity::CaSource::Derived { secret: None },
            werify::rpc::identity::Role::Client,
            NodeId::random(),
            &[],
        )
        .expect("client identity");
        werify::rpc::transport::Transport::client(Arc::new(id), coordinator)
            .expect("client endpoint")
    });
    // Converged: every node sees all 64 alive (bounded).
    let t0 = Instant::now();
    rt.block_on(async {
        let addrs: Vec<SocketAddr> = (1..=FANOUT_NODES)
            .map(|k| SocketAddr::from(([127, 0, 0, k as u8], port)))
            .collect();
        loop {
            let mut all = true;
            let mut last = String::new();
            for &a in &addrs {
                match alive_seen_by(&client, a).await {
                    Ok(n) if n == FANOUT_NODES => {}
                    Ok(n) => {
                        all = false;
                        last = format!("{a} sees {n} alive");
                        break;
                    }
                    Err(e) => {
                        all = false;
                        last = format!("{a}: {e}");
                        break;
                    }
                }
            }
            if all {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "64 in-process nodes did not converge within 120 s ({last})"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    eprintln!(
        "fanout: 64 in-process nodes converged after {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let checks = parse_operations(include_str!("../examples/ops.json"), "examples/ops.json")
        .expect("examples/ops.json parses");

    let mut g = c.benchmark_group("fanout");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(FANOUT_NODES as u64));
    g.bench_function("operation_64_nodes_submit_to_all_answered", |b| {
        let mut last_submit = Instant::now();
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += one_operation(&client, coordinator, &checks, &mut last_submit).await;
                }
                total
            })
        })
    });
    g.finish();

    // Shut every node down (graceful leave) and wait for them, bounded.
    for tx in stops {
        let _ = tx.send(());
    }
    rt.block_on(async {
        client.shutdown(Duration::from_millis(10)).await;
        for n in nodes {
            match tokio::time::timeout(Duration::from_secs(30), n).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => eprintln!("a node ended with an error: {e}"),
                Ok(Err(e)) => eprintln!("a node task failed: {e}"),
                Err(_) => eprintln!("a node did not stop within 30 s"),
            }
        }
    });
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    if wanted("frame") {
        bench_frame(&mut c);
    }
    if wanted("membership") {
        bench_membership(&mut c);
    }
    if wanted("file") {
        bench_file_contains(&mut c);
    }
    if wanted("fanout") {
        bench_fanout(&mut c);
    }
    c.final_summary();
}
