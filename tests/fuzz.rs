//! Property-based fuzz harness for everything werify decodes or parses from untrusted
//! input: request/response frames (`rpc::frame::decode`), membership messages
//! (`Message::decode_from`), check sets received from peers (`CheckSet::validate`), the
//! operations-file parser (JSON and YAML) and writer, handles, host strings and durations.
//!
//! Each target generates arbitrary *structured* values (every message variant, valid and
//! invalid field values), checks round-trip properties on them, then mutates their
//! encodings (bit flips, truncation, splices of two encodings, huge CBOR length headers,
//! deep nesting, …) and also feeds plain random bytes. Every decode runs under
//! `catch_unwind` (a panic fails the test with the target, seed and input in hex) and under
//! a counting global allocator: the peak of live heap bytes during one decode must stay
//! below [`DECODE_ALLOC_LIMIT`] (or [`VALIDATE_ALLOC_LIMIT`] where regexes are
//! compiled) — hostile input must not make a node allocate without bound.
//!
//! Knobs (environment variables):
//! - `WERIFY_FUZZ_ITERS`: inputs per target (default [`DEFAULT_ITERS`], a few seconds in a
//!   debug build). The recorded 10-million-input run is in SECURITY.md.
//! - `WERIFY_FUZZ_SEED`: base seed (default fixed, so CI runs are reproducible).
//!
//! Host strings are fuzzed through `parse_host_syntax` only: the resolver half of
//! `parse_host` would send DNS queries for random names, and tests stay on loopback.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use werify::base::NodeId;
use werify::checks::author::{add_to_text, render_file};
use werify::checks::duration::{format_duration, parse_duration};
use werify::checks::{
    CheckSet, Facts, FileFormat, Observation, Outcome, parse_operations, parse_operations_as,
};
use werify::mesh::digest::StateDigest;
use werify::mesh::member::{HealthSummary, Peer, State, Tags};
use werify::mesh::message::{DecodeError, MemberState, Message, PushPull, Update};
use werify::ops::handle::{HANDLE_ALPHABET, Handle};
use werify::ops::store::OperationRecord;
use werify::rpc::frame;
use werify::rpc::hostaddr::{HostSpec, parse_host_syntax};
use werify::rpc::protocol::{ErrorCode, HostReport};
use werify::rpc::protocol::{
    MemberReport, Request, Response, StatusReport, Submitter, TargetFilter,
};

// ---------------------------------------------------------------------------------------
// Counting allocator: per-thread live bytes and their peak, so parallel test threads do
// not disturb each other's measurements.
// ---------------------------------------------------------------------------------------

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + size as isize;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
    let _ = TOTAL.try_with(|t| t.set(t.get().saturating_add(size)));
}

fn note_free(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get() - size as isize));
}

// SAFETY: every method forwards to the system allocator unchanged and only updates
// thread-local counters (const-initialised, no destructor, so touching them never
// allocates or re-enters the allocator).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) };
        note_free(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note_free(layout.size());
            note_alloc(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Most heap one CBOR decode or one parse of a handle, host or duration (input at most
/// [`MAX_INPUT`] bytes) may hold at once. serde pre-allocates at most 1 MiB per sequence
/// from a CBOR length header, and werify's types nest sequences at most three deep.
const DECODE_ALLOC_LIMIT: usize = 4 << 20;
/// Most heap one `CheckSet::validate` or `parse_operations` may hold at once: they compile
/// `file_matches` regexes, each under an 8 MiB size limit (one at a time).
const VALIDATE_ALLOC_LIMIT: usize = 32 << 20;
/// Largest input the harness builds (inputs grow by splicing and inserting).
const MAX_INPUT: usize = 64 * 1024;
/// Inputs per target unless `WERIFY_FUZZ_ITERS` says otherwise.
const DEFAULT_ITERS: u64 = 3_000;

/// Runs `f`, returning its result and the peak of heap bytes it held above the start.
fn measure<R>(f: impl FnOnce() -> R) -> (R, usize, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let total_before = TOTAL.with(Cell::get);
    let r = f();
    let peak = PEAK.with(Cell::get) - start;
    let total = TOTAL.with(Cell::get) - total_before;
    (r, peak.max(0) as usize, total)
}

// ---------------------------------------------------------------------------------------
// Random numbers: xoshiro256** seeded by SplitMix64, so a failure is reproducible from the
// printed seed.
// ---------------------------------------------------------------------------------------

struct Rng([u64; 4]);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    fn u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.u64() % n as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn bool(&mut self) -> bool {
        self.u64() & 1 == 1
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A number biased towards edge cases.
    fn edgy_u64(&mut self) -> u64 {
        match self.below(8) {
            0 => 0,
            1 => u64::MAX,
            2 => self.below(24) as u64,
            3 => 1 << self.below(64),
            4 => (1u64 << self.below(64)).wrapping_sub(1),
            _ => self.u64() >> self.below(64),
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u64() as u8).collect()
    }
}

fn base_seed() -> u64 {
    std::env::var("WERIFY_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f00d_2024)
}

fn iterations() -> u64 {
    std::env::var("WERIFY_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(DEFAULT_ITERS)
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes.iter().take(4096) {
        let _ = write!(s, "{b:02x}");
    }
    if bytes.len() > 4096 {
        s.push('…');
    }
    s
}

/// What one target saw, printed at the end (`--nocapture` shows it).
#[derive(Default)]
struct Stats {
    inputs: u64,
    accepted: u64,
    peak_bytes: usize,
    peak_input_len: usize,
    max_total_bytes: usize,
    slowest: Duration,
    slowest_input_len: usize,
}

impl Stats {
    fn report(&self, target: &str, took: Duration) {
        eprintln!(
            "fuzz {target}: {} inputs in {:.1}s, {} accepted; peak heap per input {} KiB \
             (input of {} B), most allocated per input {} KiB; slowest input {:.2} ms ({} B)",
            self.inputs,
            took.as_secs_f64(),
            self.accepted,
            self.peak_bytes / 1024,
            self.peak_input_len,
            self.max_total_bytes / 1024,
            self.slowest.as_secs_f64() * 1e3,
            self.slowest_input_len,
        );
    }
}

/// Runs one decode of `input` under `catch_unwind`, the timer and the allocation counter;
/// fails the test with everything needed to reproduce on a panic or an allocation over
/// the limit. Returns what `f` returned.
fn probe<R>(
    limit: usize,
    stats: &mut Stats,
    target: &str,
    seed: u64,
    iter: u64,
    input: &[u8],
    f: impl FnOnce() -> R,
) -> R {
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| measure(f)));
    let took = started.elapsed();
    let (r, peak, total) = match outcome {
        Ok(v) => v,
        Err(_) => panic!(
            "{target} panicked (seed {seed}, iteration {iter}) on {} bytes: {}",
            input.len(),
            hex(input)
        ),
    };
    assert!(
        peak <= limit,
        "{target} held {peak} bytes at once (limit {limit}) for an input of {} bytes \
         (seed {seed}, iteration {iter}): {}",
        input.len(),
        hex(input)
    );
    stats.inputs += 1;
    if peak > stats.peak_bytes {
        stats.peak_bytes = peak;
        stats.peak_input_len = input.len();
    }
    stats.max_total_bytes = stats.max_total_bytes.max(total);
    if took > stats.slowest {
        stats.slowest = took;
        stats.slowest_input_len = input.len();
    }
    r
}

// ---------------------------------------------------------------------------------------
// Generators of structured values.
// ---------------------------------------------------------------------------------------

/// Strings that mean something somewhere in werify.
const NOTABLE: &[&str] = &[
    "",
    "/etc/hosts",
    "/",
    "localhost",
    "127.0.0.1",
    "127.0.0.1:30035",
    "[::1]:30035",
    "::1",
    "gxm12-hkpw",
    "aaa0-aaaa",
    "file_exists",
    "type",
    "\0",
    "a\nb",
    "é",
    "\u{202e}",
    "root",
    "0",
    "a:b",
    "-x",
    "cron.service",
    "http://127.0.0.1:8080/",
    "ftp://x",
    "5s",
    "1m30s",
    "0ms",
    "99999999999999999999ms",
];

fn text(rng: &mut Rng) -> String {
    match rng.below(10) {
        0..=2 => rng.pick(NOTABLE).to_string(),
        3 => {
            // Long: around the 128-byte name and 4096-byte value limits.
            let n = *rng.pick(&[127usize, 128, 129, 4095, 4096, 4097, 5000]);
            "x".repeat(n)
        }
        4 => {
            let n = rng.below(12);
            (0..n)
                .map(|_| char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('?'))
                .collect()
        }
        _ => {
            let n = rng.below(24);
            (0..n)
                .map(|_| (b' ' + rng.below(95) as u8) as char)
                .collect()
        }
    }
}

fn node_id(rng: &mut Rng) -> NodeId {
    let mut b = [0u8; 16];
    for x in &mut b {
        *x = rng.u64() as u8;
    }
    NodeId(b)
}

fn socket_addr(rng: &mut Rng) -> SocketAddr {
    let ip = if rng.chance(4) {
        IpAddr::V6(Ipv6Addr::from_bits(
            u128::from(rng.u64()) << 64 | u128::from(rng.u64()),
        ))
    } else {
        IpAddr::V4(Ipv4Addr::from_bits(rng.u64() as u32))
    };
    SocketAddr::new(ip, rng.u64() as u16)
}

fn peer(rng: &mut Rng) -> Peer {
    Peer {
        id: node_id(rng),
        addr: socket_addr(rng),
    }
}

fn state(rng: &mut Rng) -> State {
    *rng.pick(&[State::Alive, State::Suspect, State::Dead, State::Left])
}

fn tags(rng: &mut Rng) -> Tags {
    (0..rng.below(4)).map(|_| (text(rng), text(rng))).collect()
}

fn health(rng: &mut Rng) -> HealthSummary {
    HealthSummary {
        version: rng.edgy_u64(),
        passing: rng.u64() as u32,
        failing: rng.u64() as u32,
        erroring: rng.u64() as u32,
        failing_names: (0..rng.below(10)).map(|_| text(rng)).collect(),
        erroring_names: (0..rng.below(3)).map(|_| text(rng)).collect(),
        names_omitted: rng.below(3) as u32,
        at_unix_ms: rng.edgy_u64(),
        refresh_id: rng.edgy_u64(),
    }
}

fn update(rng: &mut Rng) -> Update {
    let (id, incarnation, by) = (node_id(rng), rng.edgy_u64(), node_id(rng));
    match rng.below(5) {
        0 => Update::Alive {
            peer: peer(rng),
            incarnation,
            tags: tags(rng),
        },
        1 => Update::Suspect {
            id,
            incarnation,
            by,
        },
        2 => Update::Dead {
            id,
            incarnation,
            by,
        },
        3 => Update::Left {
            id,
            incarnation,
            by,
        },
        _ => Update::Health {
            id,
            incarnation,
            summary: health(rng),
        },
    }
}

fn updates(rng: &mut Rng) -> Vec<Update> {
    (0..rng.below(6)).map(|_| update(rng)).collect()
}

fn push_pull(rng: &mut Rng) -> PushPull {
    PushPull {
        from: peer(rng),
        join: rng.bool(),
        members: (0..rng.below(5))
            .map(|_| MemberState {
                peer: peer(rng),
                incarnation: rng.edgy_u64(),
                state: state(rng),
                tags: tags(rng),
                health: rng.bool().then(|| (rng.edgy_u64(), health(rng))),
                by: rng.bool().then(|| node_id(rng)),
            })
            .collect(),
        digest: rng.bool().then(|| StateDigest(node_id(rng).0)),
    }
}

/// The node whose connection carries the fuzzed datagrams.
const FUZZ_SENDER: Peer = Peer {
    id: NodeId([0xf5; 16]),
    addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 9), 30035)),
};

/// The node the fuzzed datagrams reach.
const FUZZ_RECEIVER: NodeId = NodeId([0xe7; 16]);

/// The peer that sent `msg`: a ping's prober, else the node it names.
fn sent_by(msg: &Message) -> Peer {
    match msg {
        Message::Ping { from, .. } => *from,
        other => Peer {
            id: other.sender(),
            ..FUZZ_SENDER
        },
    }
}

/// The node a message reached: a ping's target (it is not on the wire), else the fuzzing
/// receiver.
fn received_by(msg: &Message) -> NodeId {
    match msg {
        Message::Ping { target, .. } => *target,
        _ => FUZZ_RECEIVER,
    }
}

fn message(rng: &mut Rng) -> Message {
    match rng.below(6) {
        0 => Message::Ping {
            from: peer(rng),
            seq: rng.u64() as u32,
            target: node_id(rng),
            updates: updates(rng),
        },
        1 => Message::Ack {
            from: node_id(rng),
            seq: rng.u64() as u32,
            updates: updates(rng),
        },
        2 => Message::PingReq {
            from: peer(rng),
            seq: rng.u64() as u32,
            target: peer(rng),
        },
        3 => Message::Nack {
            from: node_id(rng),
            seq: rng.u64() as u32,
        },
        4 => Message::Gossip {
            from: node_id(rng),
            updates: updates(rng),
        },
        _ => Message::PushPull(push_pull(rng)),
    }
}

/// One check in two spellings: the serde form of `werify::checks::Check` (to build a
/// `CheckSet` the way a peer's CBOR would) and the operations-file form a user writes.
struct ModelCheck {
    serde: Value,
    file: serde_json::Map<String, Value>,
}

const PATTERNS: &[&str] = &[
    "^127\\.0\\.0\\.1\\s+localhost",
    "a+",
    "(a+)+$",
    "(",
    "[",
    "\\",
    "x{2,1}",
    "\\w{1000}{1000}",
    "(?:x{0,200}){0,200}",
    "[[:alpha:]]+",
    "(?i)ROOT",
    "\\p{Greek}+",
    "(?m)^$",
    "a|b|c|d|e|f|g|h",
    ".*.*.*.*.*.*=.*",
];

fn timeout_ms(rng: &mut Rng) -> Option<u64> {
    match rng.below(4) {
        0 => None,
        1 => Some(*rng.pick(&[0, 1, 500, 5_000, 600_000, 600_001, 3_600_000])),
        2 => Some(rng.below(700_000) as u64),
        _ => None,
    }
}

fn duration_serde(ms: u64) -> Value {
    json!({"secs": ms / 1000, "nanos": (ms % 1000) * 1_000_000})
}

fn opt_text(rng: &mut Rng) -> Option<String> {
    rng.bool().then(|| text(rng))
}

fn model_check(rng: &mut Rng) -> ModelCheck {
    let mut file = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        file.insert(k.to_string(), v);
    };
    let kind = match rng.below(13) {
        0 => {
            let path = text(rng);
            put("type", json!("file_exists"));
            put("path", json!(path));
            json!({"FileExists": {"path": path}})
        }
        1 => {
            let (path, check) = (text(rng), text(rng));
            put("type", json!("file_contains"));
            put("path", json!(path));
            put("check", json!(check));
            json!({"FileContains": {"path": path, "check": check}})
        }
        2 => {
            let path = text(rng);
            let pattern = if rng.chance(3) {
                let n = rng.below(16);
                (0..n)
                    .map(|_| {
                        *rng.pick(&[
                            'a', '(', ')', '[', ']', '*', '+', '?', '{', '}', '|', '\\', '^', '$',
                            '.', '1', ',', 'w',
                        ])
                    })
                    .collect()
            } else {
                rng.pick(PATTERNS).to_string()
            };
            put("type", json!("file_matches"));
            put("path", json!(path));
            put("pattern", json!(pattern));
            json!({"FileMatches": {"path": path, "pattern": pattern}})
        }
        3 => {
            let path = text(rng);
            let sha: String = if rng.chance(4) {
                text(rng).to_ascii_lowercase()
            } else {
                let n = *rng.pick(&[63usize, 64, 64, 64, 65]);
                (0..n)
                    .map(|_| *rng.pick(&b"0123456789abcdefg"[..]) as char)
                    .collect()
            };
            put("type", json!("file_hash"));
            put("path", json!(path));
            put("sha256", json!(sha));
            json!({"FileHash": {"path": path, "sha256": sha}})
        }
        4 => {
            let path = text(rng);
            let mode = *rng.pick(&[0o644u32, 0o4755, 0o7777, 0o10000, 0o77777, 0, 0o600]);
            let (owner, group) = (opt_text(rng), opt_text(rng));
            put("type", json!("file_mode"));
            put("path", json!(path));
            put("mode", json!(format!("{mode:o}")));
            if let Some(o) = &owner {
                put("owner", json!(o));
            }
            if let Some(g) = &group {
                put("group", json!(g));
            }
            json!({"FileMode": {"path": path, "mode": mode, "owner": owner, "group": group}})
        }
        5 => {
            let (path, check) = (opt_text(rng), opt_text(rng));
            put("type", json!("process_running"));
            if let Some(p) = &path {
                put("path", json!(p));
            }
            if let Some(c) = &check {
                put("check", json!(c));
            }
            json!({"ProcessRunning": {"path": path, "check": check}})
        }
        6 => {
            let port = if rng.chance(5) { 0 } else { rng.u64() as u16 };
            let udp = rng.bool();
            let address: Option<IpAddr> = rng.bool().then(|| socket_addr(rng).ip());
            put("type", json!("port_listening"));
            put("port", json!(port));
            if udp {
                put("proto", json!("udp"));
            } else if rng.bool() {
                put("proto", json!("tcp"));
            }
            if let Some(a) = address {
                put("address", json!(a.to_string()));
            }
            json!({"PortListening": {"port": port, "proto": if udp {"Udp"} else {"Tcp"}, "address": address}})
        }
        7 => {
            let command = text(rng);
            let nargs = if rng.chance(6) {
                *rng.pick(&[64usize, 65])
            } else {
                rng.below(4)
            };
            let args: Vec<String> = (0..nargs).map(|_| text(rng)).collect();
            let exit_status = *rng.pick(&[0i32, 1, -1, 255, i32::MAX, i32::MIN]);
            let stdout_contains = opt_text(rng);
            put("type", json!("command"));
            put("command", json!(command));
            if !args.is_empty() || rng.bool() {
                put("args", json!(args));
            }
            if exit_status != 0 || rng.bool() {
                put("exit_status", json!(exit_status));
            }
            if let Some(s) = &stdout_contains {
                put("stdout_contains", json!(s));
            }
            json!({"Command": {"command": command, "args": args, "exit_status": exit_status, "stdout_contains": stdout_contains}})
        }
        8 => {
            let url = if rng.bool() {
                format!(
                    "{}{}",
                    rng.pick(&["http://", "https://", "HTTP://", "ftp://", ""]),
                    text(rng)
                )
            } else {
                text(rng)
            };
            let status = *rng.pick(&[0u16, 99, 100, 200, 404, 599, 600, 65535]);
            put("type", json!("http_status"));
            put("url", json!(url));
            put("status", json!(status));
            json!({"HttpStatus": {"url": url, "status": status}})
        }
        9 => {
            let path = text(rng);
            let min = *rng.pick(&[0.0f64, 10.0, 100.0, 100.5, -0.1, 55.5, 1e-300]);
            put("type", json!("disk_free"));
            put("path", json!(path));
            put("min_percent", json!(min));
            json!({"DiskFree": {"path": path, "min_percent": min}})
        }
        11 => {
            let name = match rng.below(3) {
                0 => rng
                    .pick(&[
                        "net.ipv4.ip_forward",
                        "kernel.pid_max",
                        "net..x",
                        "a/b",
                        ".",
                    ])
                    .to_string(),
                _ => text(rng),
            };
            let value = text(rng);
            put("type", json!("kernel_param"));
            put("name", json!(name));
            put("value", json!(value));
            json!({"KernelParam": {"name": name, "value": value}})
        }
        10 => {
            let name = text(rng);
            put("type", json!("user_exists"));
            put("name", json!(name));
            json!({"UserExists": {"name": name}})
        }
        _ => {
            let name = text(rng);
            put("type", json!("service_active"));
            put("name", json!(name));
            json!({"ServiceActive": {"name": name}})
        }
    };
    let expect = !rng.chance(4);
    if !expect || rng.chance(3) {
        file.insert("expect".into(), json!(expect));
    }
    let timeout = timeout_ms(rng);
    if let Some(ms) = timeout {
        file.insert("timeout".into(), json!(format!("{ms}ms")));
    }
    let serde = json!({
        "kind": kind,
        "expect": expect,
        "timeout": timeout.map(duration_serde),
    });
    ModelCheck { serde, file }
}

/// A check set in both spellings; names are unique (a file may not repeat a name, a map
/// cannot).
fn model_set(rng: &mut Rng) -> (CheckSet, String) {
    let n = match rng.below(20) {
        0 => 0,
        1 => *rng.pick(&[256usize, 257]),
        _ => 1 + rng.below(5),
    };
    let mut serde = serde_json::Map::new();
    let mut file = serde_json::Map::new();
    while serde.len() < n {
        let name = if n > 10 {
            format!("c{}", serde.len())
        } else {
            text(rng)
        };
        if serde.contains_key(&name) {
            continue;
        }
        let check = model_check(rng);
        serde.insert(name.clone(), check.serde);
        file.insert(name, Value::Object(check.file));
    }
    let set: CheckSet = serde_json::from_value(json!({ "checks": serde }))
        .unwrap_or_else(|e| panic!("the model builds type-correct check sets: {e}"));
    let text = if rng.bool() {
        serde_json::to_string_pretty(&Value::Object(file))
    } else {
        serde_json::to_string(&Value::Object(file))
    }
    .unwrap_or_default();
    (set, text)
}

fn handle(rng: &mut Rng) -> Handle {
    let counter = if rng.bool() {
        rng.below(1000) as u64
    } else {
        rng.edgy_u64()
    };
    Handle::new(rng.u64(), counter, node_id(rng))
}

fn outcome(rng: &mut Rng) -> Outcome {
    if rng.bool() {
        Outcome::Success(rng.bool())
    } else {
        Outcome::Error(text(rng))
    }
}

fn facts(rng: &mut Rng) -> Facts {
    (0..rng.below(4)).fold(Facts::new(), |f, _| f.with(&text(rng), text(rng)))
}

fn observations(rng: &mut Rng) -> BTreeMap<String, Observation> {
    (0..rng.below(3))
        .map(|_| {
            let o = Observation {
                found: facts(rng),
                expected: facts(rng),
                negated: rng.bool(),
            };
            (text(rng), o)
        })
        .collect()
}

fn results(rng: &mut Rng) -> BTreeMap<String, Outcome> {
    (0..rng.below(5))
        .map(|_| (text(rng), outcome(rng)))
        .collect()
}

fn opt_ms(rng: &mut Rng) -> Option<Duration> {
    rng.bool()
        .then(|| Duration::from_millis(rng.edgy_u64() >> 12))
}

fn status_report(rng: &mut Rng) -> StatusReport {
    StatusReport {
        env: text(rng),
        node_id: node_id(rng),
        addr: text(rng),
        profile: text(rng),
        local_health: rng.u64() as u32,
        local_health_max: rng.u64() as u32,
        connections: rng.below(5000),
        members: (0..rng.below(4))
            .map(|_| MemberReport {
                addr: socket_addr(rng).to_string(),
                node_id: node_id(rng),
                state: state(rng),
                incarnation: rng.edgy_u64(),
                is_self: rng.bool(),
                last_heard_ago: opt_ms(rng),
                rtt: opt_ms(rng),
                rtt_us: opt_ms(rng),
                state_for: opt_ms(rng),
                tags: tags(rng),
                health: rng.bool().then(|| health(rng)),
                suspected_by: rng.bool().then(|| node_id(rng)),
                confirmations: rng.below(40),
                protocol: rng.bool().then(|| rng.u64() as u32),
            })
            .collect(),
        not_joined: rng.bool().then(|| text(rng)),
    }
}

fn operation_record(rng: &mut Rng) -> OperationRecord {
    OperationRecord {
        handle: handle(rng),
        coordinator: socket_addr(rng).to_string(),
        submitted_unix_ms: rng.edgy_u64(),
        deadline_unix_ms: rng.edgy_u64(),
        ended_unix_ms: rng.bool().then(|| rng.edgy_u64()),
        check_names: (0..rng.below(5)).map(|_| text(rng)).collect(),
        hosts: (0..rng.below(4))
            .map(|_| {
                let r = match rng.below(3) {
                    0 => HostReport::Pending,
                    1 => HostReport::Answered {
                        results: results(rng),
                        took_ms: rng.edgy_u64(),
                        observations: observations(rng),
                    },
                    _ => HostReport::Failed(text(rng)),
                };
                (socket_addr(rng).to_string(), r)
            })
            .collect(),
        submitted_by: rng.bool().then(|| Submitter {
            operator: rng.bool().then(|| text(rng)),
            from: socket_addr(rng).to_string(),
            certificate: text(rng),
        }),
    }
}

fn target_filter(rng: &mut Rng) -> TargetFilter {
    TargetFilter {
        nodes: (0..rng.below(3)).map(|_| text(rng)).collect(),
        tags: (0..rng.below(3)).map(|_| (text(rng), text(rng))).collect(),
    }
}

fn request(rng: &mut Rng) -> Request {
    match rng.below(10) {
        0 => Request::Hello {
            version: rng.u64() as u32,
            min_version: rng.bool().then(|| rng.u64() as u32),
        },
        1 => Request::PushPull(push_pull(rng)),
        2 => Request::RunChecks {
            checks: model_set(rng).0,
            timeout_ms: rng.edgy_u64(),
        },
        3 => Request::RunRefresh {
            refresh_id: rng.edgy_u64(),
        },
        4 => Request::Add { host: text(rng) },
        5 => Request::Del { host: text(rng) },
        6 => Request::Status,
        7 => Request::Submit {
            checks: model_set(rng).0,
            filter: target_filter(rng),
            deadline_ms: rng.edgy_u64(),
        },
        8 => Request::Get {
            handle: handle(rng).into(),
            wait_ms: rng.edgy_u64(),
            known_answers: rng.bool().then(|| rng.edgy_u64()),
        },
        _ => Request::Refresh,
    }
}

fn response(rng: &mut Rng) -> Response {
    match rng.below(9) {
        0 => Response::Hello {
            version: rng.u64() as u32,
            node_id: node_id(rng),
            addr: text(rng),
        },
        1 => Response::PushPull(push_pull(rng)),
        2 => Response::CheckResults {
            results: results(rng),
            took_ms: rng.edgy_u64(),
            observations: observations(rng),
        },
        3 => Response::Done,
        4 => Response::Status(status_report(rng)),
        5 => Response::Submitted {
            handle: handle(rng).into(),
            coordinator: text(rng),
            targeted: rng.below(1 << 20),
        },
        6 => Response::Operation(operation_record(rng).into()),
        7 => Response::RefreshStarted {
            refresh_id: rng.edgy_u64(),
            targeted: rng.below(1 << 20),
        },
        _ => Response::error(ErrorCode::Invalid, text(rng)),
    }
}

// ---------------------------------------------------------------------------------------
// Mutations.
// ---------------------------------------------------------------------------------------

/// Byte values that change CBOR structure: length headers of every width, indefinite
/// lengths, breaks, tags, floats, simple values.
const CBOR_BYTES: &[u8] = &[
    0x00, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1f, 0x20, 0x38, 0x3b, 0x40, 0x57, 0x58, 0x5a, 0x5b,
    0x5f, 0x60, 0x77, 0x78, 0x7a, 0x7b, 0x7f, 0x80, 0x81, 0x97, 0x98, 0x9a, 0x9b, 0x9f, 0xa0, 0xa1,
    0xb7, 0xb8, 0xba, 0xbb, 0xbf, 0xc0, 0xc2, 0xc6, 0xd8, 0xdb, 0xe0, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa, 0xfb, 0xfc, 0xff,
];

/// Headers that claim huge sizes, and deep nesting.
fn hostile_chunk(rng: &mut Rng) -> Vec<u8> {
    let ff8 = [0xff; 8];
    match rng.below(9) {
        0 => [&[0x9b][..], &ff8].concat(), // array of 2^64-1 items
        1 => [&[0xbb][..], &ff8].concat(), // map of 2^64-1 entries
        2 => [&[0x7b][..], &ff8].concat(), // text of 2^64-1 bytes
        3 => [&[0x5b][..], &ff8].concat(), // bytes of 2^64-1
        4 => vec![0x9a, 0xff, 0xff, 0xff, 0xff],
        5 => vec![0x81; 1 + rng.below(600)], // nested one-element arrays
        6 => vec![0xa1; 1 + rng.below(600)], // nested maps
        7 => {
            // Text claiming 1 MiB, followed by a little of it.
            let n = rng.below(64);
            [&[0x7a, 0x00, 0x10, 0x00, 0x00][..], &rng.bytes(n)].concat()
        }
        _ => vec![0x9f; 1 + rng.below(300)], // indefinite arrays, never closed
    }
}

fn mutate(rng: &mut Rng, data: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        match rng.below(11) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = *rng.pick(CBOR_BYTES);
            }
            2 => data.truncate(rng.below(len + 1)),
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(16)).min(len);
                data.drain(a..b);
            }
            4 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let chunk = rng.bytes(n);
                data.splice(at..at, chunk);
            }
            5 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                let chunk = data[a..b].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, chunk);
            }
            6 if !corpus.is_empty() => {
                let other = rng.pick(corpus);
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            7 => {
                let at = rng.below(len + 1);
                let chunk = hostile_chunk(rng);
                data.splice(at..at, chunk);
            }
            8 if len > 0 => {
                let i = rng.below(len);
                data[i] = data[i].wrapping_add(if rng.bool() { 1 } else { 255 });
            }
            9 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.below(24) as u8;
            }
            _ => {
                let at = rng.below(len + 1);
                let b = *rng.pick(CBOR_BYTES);
                data.insert(at, b);
            }
        }
    }
    data.truncate(MAX_INPUT);
}

/// Plain random bytes, half of them CBOR structure bytes.
fn random_input(rng: &mut Rng) -> Vec<u8> {
    let n = match rng.below(4) {
        0 => rng.below(16),
        1 => rng.below(1100),
        _ => rng.below(200),
    };
    (0..n)
        .map(|_| {
            if rng.bool() {
                *rng.pick(CBOR_BYTES)
            } else {
                rng.u64() as u8
            }
        })
        .collect()
}

/// A bounded ring of recent seed encodings, the raw material for mutations and splices.
struct Corpus {
    items: Vec<Vec<u8>>,
    next: usize,
}

impl Corpus {
    const SIZE: usize = 64;

    fn new() -> Corpus {
        Corpus {
            items: Vec::new(),
            next: 0,
        }
    }

    fn add(&mut self, item: Vec<u8>) {
        if self.items.len() < Self::SIZE {
            self.items.push(item);
        } else {
            self.items[self.next] = item;
            self.next = (self.next + 1) % Self::SIZE;
        }
    }

    /// A mutated copy of a corpus item, or plain random bytes (one time in eight).
    fn input(&self, rng: &mut Rng) -> Vec<u8> {
        if self.items.is_empty() || rng.chance(8) {
            return random_input(rng);
        }
        let mut data = rng.pick(&self.items).clone();
        mutate(rng, &mut data, &self.items);
        data
    }
}

// ---------------------------------------------------------------------------------------
// Targets.
// ---------------------------------------------------------------------------------------

/// Runs `iterations()` inputs of one target: every 8th iteration adds a fresh seed made by
/// `seed` (after checking its round-trip property), the others feed `check` one mutated or
/// random input. `check` returns whether the input was accepted.
fn run_target(
    name: &str,
    salt: u64,
    mut seed: impl FnMut(&mut Rng) -> Vec<u8>,
    mut check: impl FnMut(&mut Stats, u64, u64, &[u8]) -> bool,
) {
    let seed_value = base_seed() ^ salt;
    let mut rng = Rng::new(seed_value);
    let mut corpus = Corpus::new();
    let mut stats = Stats::default();
    let started = Instant::now();
    let iters = iterations();
    for i in 0..iters {
        if i % 8 == 0 {
            let bytes = seed(&mut rng);
            corpus.add(bytes);
        }
        let input = corpus.input(&mut rng);
        if check(&mut stats, seed_value, i, &input) {
            stats.accepted += 1;
        }
    }
    stats.report(name, started.elapsed());
    assert!(
        stats.inputs >= iters,
        "{name}: ran {} of {iters}",
        stats.inputs
    );
}

/// A decoded request's check set must survive validation (whatever its verdict), and a
/// decoded message must encode again to something that decodes to the same bytes.
fn check_request(stats: &mut Stats, seed: u64, iter: u64, input: &[u8]) -> bool {
    let decoded = probe(
        DECODE_ALLOC_LIMIT,
        stats,
        "decode::<Request>",
        seed,
        iter,
        input,
        || frame::decode::<Request>(input),
    );
    let Ok(req) = decoded else { return false };
    let again = frame::encode(&req).expect("a decoded request re-encodes");
    let back = frame::decode::<Request>(&again).expect("a re-encoded request decodes");
    assert_eq!(
        frame::encode(&back).expect("encodes"),
        again,
        "request re-encoding is not stable for input {}",
        hex(input)
    );
    if let Request::RunChecks { checks, .. } | Request::Submit { checks, .. } = &req {
        let _ = probe(
            VALIDATE_ALLOC_LIMIT,
            stats,
            "CheckSet::validate",
            seed,
            iter,
            input,
            || checks.validate(),
        );
    }
    true
}

#[test]
fn fuzz_request_frames() {
    run_target(
        "decode::<Request>",
        1,
        |rng| {
            let req = request(rng);
            let bytes = frame::encode(&req).expect("generated requests encode");
            let back: Request = frame::decode(&bytes).expect("generated requests decode");
            assert_eq!(frame::encode(&back).expect("encodes"), bytes, "{req:?}");
            bytes
        },
        check_request,
    );
}

#[test]
fn fuzz_response_frames() {
    run_target(
        "decode::<Response>",
        2,
        |rng| {
            let resp = response(rng);
            let bytes = frame::encode(&resp).expect("generated responses encode");
            let back: Response = frame::decode(&bytes).expect("generated responses decode");
            assert_eq!(frame::encode(&back).expect("encodes"), bytes, "{resp:?}");
            bytes
        },
        |stats, seed, iter, input| {
            let decoded = probe(
                DECODE_ALLOC_LIMIT,
                stats,
                "decode::<Response>",
                seed,
                iter,
                input,
                || frame::decode::<Response>(input),
            );
            let Ok(resp) = decoded else { return false };
            let again = frame::encode(&resp).expect("a decoded response re-encodes");
            let back: Response = frame::decode(&again).expect("a re-encoded response decodes");
            assert_eq!(frame::encode(&back).expect("encodes"), again);
            true
        },
    );
}

#[test]
fn fuzz_membership_messages() {
    run_target(
        "Message::decode_from",
        3,
        |rng| {
            let msg = message(rng);
            let bytes = msg.encode();
            let sender = sent_by(&msg);
            assert_eq!(
                Message::decode_from(&bytes, sender, received_by(&msg)),
                Ok(msg.clone()),
                "round trip"
            );
            bytes
        },
        |stats, seed, iter, input| {
            let decoded = probe(
                DECODE_ALLOC_LIMIT,
                stats,
                "Message::decode_from",
                seed,
                iter,
                input,
                // A message naming another sender is refused; decoding it as sent by
                // the node it names reaches the rest of the decoder.
                || match Message::decode_from(input, FUZZ_SENDER, FUZZ_RECEIVER) {
                    Err(DecodeError::NotFromSender { claimed, .. }) => Message::decode_from(
                        input,
                        Peer {
                            id: claimed,
                            ..FUZZ_SENDER
                        },
                        FUZZ_RECEIVER,
                    ),
                    other => other,
                },
            );
            let Ok(msg) = decoded else { return false };
            // What decodes means the same after a round trip.
            let sender = Peer {
                id: msg.sender(),
                ..FUZZ_SENDER
            };
            assert_eq!(
                Message::decode_from(&msg.encode(), sender, received_by(&msg)),
                Ok(msg.clone())
            );
            true
        },
    );
}

/// Check sets as a peer sends them (CBOR), mutated: decode, then validate what decodes.
#[test]
fn fuzz_check_sets_from_peers() {
    run_target(
        "CheckSet decode+validate",
        4,
        |rng| {
            let (set, _) = model_set(rng);
            let bytes = frame::encode(&set).expect("check sets encode");
            let back: CheckSet = frame::decode(&bytes).expect("check sets decode");
            assert_eq!(back, set, "check set CBOR round trip");
            bytes
        },
        |stats, seed, iter, input| {
            let decoded = probe(
                DECODE_ALLOC_LIMIT,
                stats,
                "decode::<CheckSet>",
                seed,
                iter,
                input,
                || frame::decode::<CheckSet>(input),
            );
            let Ok(set) = decoded else { return false };
            probe(
                VALIDATE_ALLOC_LIMIT,
                stats,
                "CheckSet::validate",
                seed,
                iter,
                input,
                || set.validate(),
            )
            .is_ok()
        },
    );
}

/// The parser and `CheckSet::validate` must agree: the same checks spelled as an
/// operations file parse exactly when the structured set validates, to the same set.
/// Then the file text is mutated: the parser must not panic, and whatever it accepts
/// must validate.
#[test]
fn fuzz_operations_files_and_validate_agree() {
    let mut agreed = 0u64;
    let mut valid_sets = 0u64;
    run_target(
        "parse_operations",
        5,
        |rng| {
            let (set, text) = model_set(rng);
            let verdict = set.validate();
            let parsed = parse_operations(&text, "fuzz.json");
            match (&verdict, &parsed) {
                (Ok(()), Ok(p)) => {
                    assert_eq!(p, &set, "parsed file differs from the set for {text}");
                    valid_sets += 1;
                }
                (Err(_), Err(_)) => {}
                _ => panic!(
                    "parser and validate disagree on {text}:\n validate: {verdict:?}\n parse: {:?}",
                    parsed.as_ref().map(|_| "ok")
                ),
            }
            agreed += 1;
            text.into_bytes()
        },
        |stats, seed, iter, input| {
            let text = String::from_utf8_lossy(input);
            let parsed = probe(
                VALIDATE_ALLOC_LIMIT,
                stats,
                "parse_operations",
                seed,
                iter,
                input,
                || parse_operations(&text, "fuzz.json"),
            );
            match parsed {
                Ok(set) => {
                    let verdict = set.validate();
                    assert!(
                        verdict.is_ok(),
                        "the parser accepted a set validate refuses ({verdict:?}): {text}"
                    );
                    true
                }
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        msg.starts_with("fuzz.json"),
                        "error without file label: {msg}"
                    );
                    false
                }
            }
        },
    );
    eprintln!("fuzz parse_operations: {agreed} structured sets agreed ({valid_sets} valid)");
    assert!(valid_sets > 0, "the model never produced a valid set");
}

/// The YAML reader and the file writer under the same model: every valid set, written
/// one check at a time as `checks add --file` does (into a JSON and into a YAML file),
/// parses back to itself in both formats. Then YAML text is mutated: the parser must not
/// panic or allocate without bound, and whatever it accepts must validate.
#[test]
fn fuzz_yaml_operations_files_and_the_writer() {
    let mut written = 0u64;
    run_target(
        "parse_operations_as(yaml)",
        11,
        |rng| {
            let (set, json_text) = model_set(rng);
            if set.validate().is_err() {
                // JSON is nearly YAML: mutation material all the same.
                return json_text.into_bytes();
            }
            let (mut yaml, mut json) = (String::new(), String::new());
            for (name, check) in set.iter() {
                if set.len() > 10 {
                    // Large sets: concatenated one-check files, to keep the run short.
                    yaml.push_str(&render_file(name, check, FileFormat::Yaml));
                    continue;
                }
                let add = |text: &str, format| {
                    add_to_text(text, "fuzz", format, name, check)
                        .unwrap_or_else(|e| panic!("adding {name:?} to {text:?}: {e}"))
                };
                yaml = add(&yaml, FileFormat::Yaml);
                json = add(&json, FileFormat::Json);
            }
            let back = parse_operations_as(&yaml, "fuzz.yaml", FileFormat::Yaml)
                .unwrap_or_else(|e| panic!("the written YAML does not parse: {e}\n{yaml}"));
            assert_eq!(back, set, "written YAML differs from the set:\n{yaml}");
            if !json.is_empty() {
                let back = parse_operations(&json, "fuzz.json")
                    .unwrap_or_else(|e| panic!("the written JSON does not parse: {e}\n{json}"));
                assert_eq!(back, set, "written JSON differs from the set:\n{json}");
            }
            written += 1;
            yaml.into_bytes()
        },
        |stats, seed, iter, input| {
            let text = String::from_utf8_lossy(input);
            let parsed = probe(
                VALIDATE_ALLOC_LIMIT,
                stats,
                "parse_operations_as(yaml)",
                seed,
                iter,
                input,
                || parse_operations_as(&text, "fuzz.yaml", FileFormat::Yaml),
            );
            match parsed {
                Ok(set) => {
                    let verdict = set.validate();
                    assert!(
                        verdict.is_ok(),
                        "the YAML parser accepted a set validate refuses ({verdict:?}): {text}"
                    );
                    true
                }
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        msg.starts_with("fuzz.yaml"),
                        "error without file label: {msg}"
                    );
                    false
                }
            }
        },
    );
    eprintln!("fuzz YAML files: {written} valid sets written and read back");
    assert!(written > 0, "the model never produced a valid set");
}

/// Handles, host strings and durations: parsed from arbitrary text and from mutations of
/// valid ones; what parses must print back to itself.
#[test]
fn fuzz_handles_hosts_and_durations() {
    run_target(
        "handles/hosts/durations",
        6,
        |rng| match rng.below(3) {
            0 => {
                let h = handle(rng);
                let parsed: Handle = h.as_str().parse().expect("own handles parse");
                assert_eq!(parsed, h);
                h.to_string().into_bytes()
            }
            1 => {
                let addr = socket_addr(rng);
                addr.to_string().into_bytes()
            }
            _ => format_duration(Duration::from_millis(rng.edgy_u64() >> 20)).into_bytes(),
        },
        |stats, seed, iter, input| {
            let text = String::from_utf8_lossy(input);
            let handle = probe(
                DECODE_ALLOC_LIMIT,
                stats,
                "Handle::from_str",
                seed,
                iter,
                input,
                || text.parse::<Handle>(),
            );
            let mut accepted = false;
            if let Ok(h) = handle {
                assert_eq!(h.as_str(), text, "a handle prints as it was written");
                assert!(h.as_str().len() <= 28, "{h}");
                assert_eq!(h.node_tag().len(), 4);
                assert!(h.node_tag().bytes().all(|b| HANDLE_ALPHABET.contains(&b)));
                assert_eq!(h.to_string().parse::<Handle>().ok(), Some(h.clone()));
                let cbor = frame::encode(&h).expect("handles encode");
                assert_eq!(frame::decode::<Handle>(&cbor).ok(), Some(h));
                accepted = true;
            }
            // Handles also arrive inside CBOR: the serde path must refuse what parsing does.
            let as_cbor = frame::encode(&text.as_ref()).expect("strings encode");
            let via_serde = frame::decode::<Handle>(&as_cbor);
            assert_eq!(
                via_serde.is_ok(),
                accepted,
                "serde and FromStr disagree on {text:?}"
            );

            let host = probe(
                DECODE_ALLOC_LIMIT,
                stats,
                "parse_host_syntax",
                seed,
                iter,
                input,
                || parse_host_syntax(&text),
            );
            match host {
                Ok(HostSpec::Addr(a)) => {
                    assert_ne!(a.port(), 0, "{text:?}");
                    assert_eq!(
                        parse_host_syntax(&a.to_string()).ok(),
                        Some(HostSpec::Addr(a)),
                        "{text:?} -> {a} does not parse back"
                    );
                    accepted = true;
                }
                Ok(HostSpec::Name { name, port }) => {
                    assert_ne!(port, 0);
                    assert!(!name.is_empty());
                    assert!(!name.contains(|c: char| c.is_whitespace() || c == '/'));
                    accepted = true;
                }
                Err(e) => assert!(e.to_string().contains("expected IP"), "{e}"),
            }

            let duration = probe(
                DECODE_ALLOC_LIMIT,
                stats,
                "parse_duration",
                seed,
                iter,
                input,
                || parse_duration(&text),
            );
            if let Ok(d) = duration {
                // Printing and parsing again gives the same duration (whole ms).
                assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{text:?}");
                accepted = true;
            }
            accepted
        },
    );
}
