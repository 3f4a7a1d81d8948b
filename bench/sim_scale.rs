//! Simulator scale bench (`cargo bench --bench sim_scale`): drives `werify::mesh::sim`
//! (LAN profile) at each size and prints a table: initial convergence, how many gossip
//! intervals / virtual seconds until 99.9 % and 100 % of nodes know of a join and of a
//! death, messages and bytes per node per second over three settled simulated minutes
//! (and the wall time of each), false "dead" verdicts at 1 % / 5 % / 10 % datagram loss,
//! the simulation's peak memory (VmHWM); then Serf's logistic convergence model for
//! comparison.
//!
//! First, for each size, "settled minutes from a pre-converged start": the nodes start
//! already knowing each other (`SimConfig::preconverged`, nothing queued) and the wall
//! time of each simulated minute is printed (`pre_*` rows) — the settled cost without the
//! mass join and its backlog. Then the mass join from scratch and everything after it.
//!
//! Each size runs in a child process (this executable re-run with `SIM_SCALE_CHILD=N`) so
//! that VmHWM is that size's own peak. Every node holds every member, so memory grows with
//! N²: a size whose estimated peak exceeds 85 % of MemAvailable is skipped with a message
//! (`SIM_FORCE=1` runs it anyway). Environment:
//! - `SIM_SIZES` (default `1000,10000`): comma-separated node counts;
//! - `SIM_LOSS_SECS` (default 60): virtual seconds per loss rate;
//!   `SIM_LOSS_SECS_LARGE` (default 20): the same for sizes above 5,000;
//! - `SIM_LOSS_RATES` (default `0.01,0.05,0.10`; `none` skips the loss runs);
//! - `SIM_PRECONVERGED` (default 1; 0 skips the pre-converged minutes),
//!   `SIM_PRECONVERGED_ONLY=1` (only those), `SIM_PRECONVERGED_MINUTES` (default 3);
//! - `SIM_SEED` (default 1); `SIM_DECODE=1` decodes every datagram from its bytes
//!   (default: encoded for size accounting only, as in tests/sim.rs at 1,000 nodes);
//! - `SIM_MALLOC_STATS=1` prints glibc's heap statistics at the end of each size (live
//!   heap vs what the allocator holds); `SIM_MALLOC_DEFAULT=1` keeps glibc's default mmap
//!   threshold (see `fix_mmap_threshold`).
//!
//! - `SIM_ONE_SEED_MAX` (default 2000): sizes up to this also run the one-contact join
//!   (`one_seed_*` rows: every node joins node 0, spread over `SIM_ONE_SEED_SPREAD_SECS`,
//!   default 5; when the median / 90th-percentile / last node listed everyone, counted
//!   from the last join, and the push-pull bytes per node); `SIM_ONE_SEED_ONLY=1` runs
//!   only that; `SIM_FOLLOW_UPS` and `SIM_FOLLOW_UPS_RAPID` set the lan profile's
//!   `contact_follow_ups` and `contact_follow_ups_rapid` for it;
//!
//! Every phase has a virtual-time bound, so the run ends.

use std::collections::{BTreeMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use werify::mesh::sim::{Sim, SimConfig};
use werify::mesh::{Config, Profile, State};

const CHILD_VAR: &str = "SIM_SCALE_CHILD";
/// Settled minutes simulated (and timed one by one) for the traffic figures.
const STEADY_MINUTES: u32 = 3;
/// Peak memory per (node, known member) pair: every node holds an 80-byte record, two
/// slot-index entries, a probe-order slot and broadcast-queue links for every member.
/// Measured: 1,338 MiB VmHWM at 3,000 nodes = 156 B (bench/RESULTS-micro.md); rounded up.
const PEAK_BYTES_PER_PAIR: f64 = 170.0;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn env_list<T: std::str::FromStr>(name: &str, default: &str) -> Vec<T> {
    let text = std::env::var(name).unwrap_or_else(|_| default.to_string());
    text.split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// Peak and current resident memory of this process, in KiB (from /proc/self/status).
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// MemAvailable from /proc/meminfo, in bytes (0 if unreadable).
fn mem_available_bytes() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib * 1024.0)
}

/// Results of one size, in print order: (key, value as text).
struct Report(Vec<(String, String)>);

impl Report {
    fn put(&mut self, key: &str, value: impl std::fmt::Display) {
        let value = value.to_string();
        println!("RESULT\t{key}\t{value}");
        eprintln!("  {key}: {value}");
        self.0.push((key.to_string(), value));
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn opt_secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "never".to_string(), secs)
}

fn rounds(d: Option<Duration>, gossip: Duration) -> String {
    d.map_or_else(
        || "never".to_string(),
        |d| format!("{:.1}", d.as_secs_f64() / gossip.as_secs_f64()),
    )
}

/// Cheap necessary condition for convergence (O(N)); the full check is O(N²).
fn maybe_converged(sim: &Sim) -> bool {
    let up = (0..sim.len()).filter(|&i| sim.is_up(i)).count();
    (0..sim.len()).all(|i| sim.node(i).is_none_or(|m| m.live_members() + 1 == up))
}

/// Updates waiting in every node's piggyback queue.
fn queued_total(sim: &Sim) -> usize {
    (0..sim.len())
        .filter_map(|i| sim.node(i))
        .map(|m| m.queued_updates())
        .sum()
}

/// How many up nodes other than `subject` see `subject` in `state`, and how many there are.
fn seeing(sim: &Sim, subject: usize, state: State) -> (usize, usize) {
    let mut yes = 0;
    let mut total = 0;
    for i in 0..sim.len() {
        if i == subject || !sim.is_up(i) {
            continue;
        }
        total += 1;
        if sim.view(i, subject) == Some(state) {
            yes += 1;
        }
    }
    (yes, total)
}

/// Runs in `step`s until every observer sees `subject` in `state` or `max` passes.
/// Returns (time to 99.9 %, time to 100 %), measured from the call.
fn spread(
    sim: &mut Sim,
    subject: usize,
    state: State,
    step: Duration,
    max: Duration,
) -> (Option<Duration>, Option<Duration>) {
    let start = sim.now();
    let mut at999 = None;
    loop {
        let (yes, total) = seeing(sim, subject, state);
        let elapsed = sim.now() - start;
        if at999.is_none() && yes * 1000 >= total * 999 {
            at999 = Some(elapsed);
        }
        if yes == total {
            return (at999, Some(elapsed));
        }
        if elapsed >= max {
            return (at999, None);
        }
        sim.run_for(step);
    }
}

/// Lets the mesh settle without loss until it is converged again (bounded).
fn heal(sim: &mut Sim, max: Duration) -> Option<Duration> {
    let start = sim.now();
    let t = sim.run_until(max, Duration::from_millis(500), |s| {
        maybe_converged(s) && s.converged()
    });
    t.map(|t| t - start)
}

/// Runs `minutes` simulated minutes, timing each (`{prefix}minute{k}_wall_s`), and puts
/// the traffic per node per second over all of them (`{prefix}msgs_per_node_s`, …).
fn timed_minutes(r: &mut Report, sim: &mut Sim, n: usize, minutes: u32, prefix: &str) {
    let before = sim.total_stats();
    for minute in 1..=minutes {
        let wall = Instant::now();
        sim.run_for(Duration::from_secs(60));
        r.put(
            &format!("{prefix}minute{minute}_wall_s"),
            secs(wall.elapsed()),
        );
    }
    let after = sim.total_stats();
    let span = 60.0 * f64::from(minutes.max(1));
    let per = |a: u64, b: u64| (a - b) as f64 / n as f64 / span;
    let rows = [
        (
            "msgs_per_node_s",
            format!("{:.2}", per(after.msgs_sent, before.msgs_sent)),
        ),
        (
            "bytes_per_node_s",
            format!("{:.0}", per(after.bytes_sent, before.bytes_sent)),
        ),
        (
            "pushpulls_per_node_s",
            format!("{:.4}", per(after.push_pulls_sent, before.push_pulls_sent)),
        ),
        (
            "pushpull_bytes_per_node_s",
            format!("{:.0}", per(after.push_pull_bytes, before.push_pull_bytes)),
        ),
    ];
    for (name, value) in rows {
        r.put(&format!("{prefix}{name}"), value);
    }
}

/// Settled minutes from a pre-converged start (`SimConfig::preconverged`: every node
/// already knows every other, nothing queued): the wall time of each simulated minute and
/// the traffic over all of them. The first minute holds every node's first push-pull
/// (its phase is 15–30 s after start whatever the size); later ones are pure probing.
fn run_preconverged(r: &mut Report, n: usize, seed: u64) {
    let minutes: u32 = env_or("SIM_PRECONVERGED_MINUTES", 3);
    let mut cfg = SimConfig::new(seed, n, Config::for_profile(Profile::Lan));
    cfg.decode = env_or::<u8>("SIM_DECODE", 0) == 1;
    cfg.preconverged = true;
    let wall = Instant::now();
    let mut sim = Sim::new(cfg);
    r.put("pre_build_wall_s", secs(wall.elapsed()));
    r.put("pre_converged_at_start", maybe_converged(&sim));
    timed_minutes(r, &mut sim, n, minutes, "pre_");
    r.put("pre_false_downs", sim.counts().down);
    r.put("pre_still_converged", maybe_converged(&sim));
    r.put("pre_queued_updates", queued_total(&sim));
    r.put("pre_fingerprint", format!("{:016x}", sim.fingerprint()));
}

/// Joins through one contact (`one_contact`): `n` nodes start alone and join node 0 at
/// times spread evenly over `spread`. Puts when the median and the 90th-percentile node
/// first listed all `n` members alive (virtual seconds from the last join), when all did,
/// and the push-pull bytes per node (requests and replies, both ends) until then.
fn run_one_seed(r: &mut Report, n: usize, seed: u64) {
    let spread = Duration::from_secs(env_or("SIM_ONE_SEED_SPREAD_SECS", 5));
    let mut lan = Config::for_profile(Profile::Lan);
    lan.contact_follow_ups = env_or("SIM_FOLLOW_UPS", lan.contact_follow_ups);
    lan.contact_follow_ups_rapid = env_or("SIM_FOLLOW_UPS_RAPID", lan.contact_follow_ups_rapid);
    let mut cfg = SimConfig::new(seed, n, lan);
    cfg.decode = env_or::<u8>("SIM_DECODE", 0) == 1;
    cfg.one_contact = true;
    cfg.join_spread = spread;
    let wall = Instant::now();
    let mut sim = Sim::new(cfg);
    let mut knows_all: Vec<Option<Duration>> = vec![None; n];
    let limit = spread + Duration::from_secs(120);
    let step = Duration::from_millis(50);
    while sim.now() < limit && knows_all.iter().any(Option::is_none) {
        sim.run_for(step);
        let now = sim.now();
        for (i, t) in knows_all.iter_mut().enumerate() {
            if t.is_none() && sim.node(i).is_some_and(|m| m.live_members() + 1 == n) {
                *t = Some(now);
            }
        }
    }
    let last_join = spread.mul_f64((n - 1) as f64 / n as f64);
    let mut after: Vec<f64> = knows_all
        .iter()
        .map(|t| t.map_or(f64::INFINITY, |t| t.saturating_sub(last_join).as_secs_f64()))
        .collect();
    after.sort_by(f64::total_cmp);
    let at = |q: f64| after[((after.len() - 1) as f64 * q).round() as usize];
    let show = |x: f64| {
        if x.is_finite() {
            format!("{x:.2}")
        } else {
            "never".to_string()
        }
    };
    r.put("one_seed_spread_s", spread.as_secs());
    r.put("one_seed_knows_all_median_s", show(at(0.5)));
    r.put("one_seed_knows_all_p90_s", show(at(0.9)));
    r.put("one_seed_knows_all_max_s", show(at(1.0)));
    let stats = sim.total_stats();
    r.put(
        "one_seed_pushpull_bytes_per_node",
        stats.push_pull_bytes / n as u64,
    );
    r.put(
        "one_seed_pushpulls_per_node",
        format!("{:.1}", stats.push_pulls_sent as f64 / n as f64),
    );
    r.put(
        "one_seed_seed_pushpull_bytes",
        sim.stats(0).map_or(0, |s| s.push_pull_bytes),
    );
    r.put("one_seed_false_downs", sim.counts().down);
    r.put("one_seed_wall_s", secs(wall.elapsed()));
}

fn run_size(n: usize) -> Report {
    let mut r = Report(Vec::new());
    let seed: u64 = env_or("SIM_SEED", 1);
    if n <= env_or("SIM_ONE_SEED_MAX", 2000) {
        run_one_seed(&mut r, n, seed);
        if env_or::<u8>("SIM_ONE_SEED_ONLY", 0) == 1 {
            put_memory(&mut r);
            return r;
        }
    }
    if env_or::<u8>("SIM_PRECONVERGED", 1) == 1 {
        run_preconverged(&mut r, n, seed);
        if env_or::<u8>("SIM_PRECONVERGED_ONLY", 0) == 1 {
            put_memory(&mut r);
            return r;
        }
    }
    let lan = Config::for_profile(Profile::Lan);
    let gossip = lan.gossip_interval;
    // One extra node (the last) stays out at first: it is the late joiner.
    let mut cfg = SimConfig::new(seed, n + 1, lan);
    cfg.decode = env_or::<u8>("SIM_DECODE", 0) == 1;
    cfg.join_spread = Duration::from_secs_f64((n as f64 / 500.0).max(1.0));
    let late = n;
    let wall = Instant::now();
    let mut sim = Sim::new(cfg);
    sim.crash(late);
    r.put("nodes", n);

    // 1. Initial convergence: every node joins through node 0 and one earlier node.
    let t = sim.run_until(Duration::from_secs(300), Duration::from_millis(500), |s| {
        maybe_converged(s) && s.converged()
    });
    r.put("converge_virtual_s", opt_secs(t));
    r.put("converge_wall_s", secs(wall.elapsed()));
    r.put("converge_false_downs", sim.counts().down);
    if t.is_none() {
        return r;
    }

    // 2. Let the join-time broadcasts drain (every node queued an Alive update per member
    // it learned), then a steady simulated minute: traffic per node per second, wall time.
    let start = sim.now();
    let settled = sim.run_until(Duration::from_secs(120), Duration::from_millis(500), |s| {
        queued_total(s) == 0
    });
    r.put(
        "queues_drained_after_s",
        opt_secs(settled.map(|t| t - start)),
    );
    // Three minutes, each timed: a minute with a push-pull wave (nodes' push-pulls are
    // still roughly in step after the joins) costs more than one without.
    timed_minutes(&mut r, &mut sim, n, STEADY_MINUTES, "");
    r.put("max_datagram_bytes", sim.total_stats().max_datagram);
    r.put("steady_false_downs", sim.counts().down);

    // 3. A join: the late node starts and joins through one random member.
    let seed_node = 1 + (seed as usize * 7919) % (n - 1);
    sim.restart(late, &[seed_node]);
    let (a, b) = spread(
        &mut sim,
        late,
        State::Alive,
        Duration::from_millis(10),
        Duration::from_secs(60),
    );
    r.put("join_999_s", opt_secs(a));
    r.put("join_999_rounds", rounds(a, gossip));
    r.put("join_100_s", opt_secs(b));
    r.put("join_100_rounds", rounds(b, gossip));
    sim.run_for(Duration::from_secs(5));

    // 4. A death: one node crashes (kill -9). Time to the first "dead" verdict, then to
    // 99.9 % / 100 % of the others seeing it dead.
    let victim = 1 + (seed as usize * 104_729) % (n - 1);
    let victim_id = sim.peer(victim).map(|p| p.id);
    let downs_before = sim.downs().len();
    sim.crash(victim);
    let crash_at = sim.now();
    let (a, b) = spread(
        &mut sim,
        victim,
        State::Dead,
        Duration::from_millis(10),
        Duration::from_secs(180),
    );
    let first = sim.downs()[downs_before..]
        .iter()
        .find(|d| Some(d.subject) == victim_id)
        .map(|d| d.at - crash_at);
    r.put("death_first_verdict_s", opt_secs(first));
    r.put("death_999_s", opt_secs(a));
    r.put("death_100_s", opt_secs(b));
    let after_verdict = |t: Option<Duration>| match (t, first) {
        (Some(t), Some(f)) => Some(t.saturating_sub(f)),
        _ => None,
    };
    r.put("death_spread_999_s", opt_secs(after_verdict(a)));
    r.put("death_spread_999_rounds", rounds(after_verdict(a), gossip));
    r.put("death_spread_100_s", opt_secs(after_verdict(b)));
    r.put("death_spread_100_rounds", rounds(after_verdict(b), gossip));
    let healthy_downs = sim.downs()[downs_before..]
        .iter()
        .filter(|d| Some(d.subject) != victim_id)
        .count();
    r.put("death_false_downs", healthy_downs);

    // 5. False positives under datagram loss: every node but the victim is healthy.
    let loss_secs: u64 = if n > 5000 {
        env_or("SIM_LOSS_SECS_LARGE", 20)
    } else {
        env_or("SIM_LOSS_SECS", 60)
    };
    r.put("loss_virtual_s", loss_secs);
    for loss in env_list::<f64>("SIM_LOSS_RATES", "0.01,0.05,0.10") {
        let pct = format!("{:.0}pct", loss * 100.0);
        let counts = sim.counts().clone();
        let downs_before = sim.downs().len();
        sim.set_loss(loss);
        let wall = Instant::now();
        sim.run_for(Duration::from_secs(loss_secs));
        let loss_wall = wall.elapsed();
        sim.set_loss(0.0);
        let false_downs: Vec<_> = sim.downs()[downs_before..]
            .iter()
            .filter(|d| Some(d.subject) != victim_id)
            .collect();
        let subjects: HashSet<_> = false_downs.iter().map(|d| d.subject).collect();
        let now = sim.counts();
        r.put(&format!("loss_{pct}_false_down_events"), false_downs.len());
        r.put(&format!("loss_{pct}_false_down_nodes"), subjects.len());
        r.put(
            &format!("loss_{pct}_suspicions"),
            now.suspect - counts.suspect,
        );
        r.put(
            &format!("loss_{pct}_self_refutes"),
            now.self_refuted - counts.self_refuted,
        );
        r.put(&format!("loss_{pct}_wall_s"), secs(loss_wall));
        // Without loss again, everyone (the crashed victim aside) must be alive everywhere.
        let healed = heal(&mut sim, Duration::from_secs(60));
        r.put(&format!("loss_{pct}_healed_after_s"), opt_secs(healed));
    }
    r.put("oversized_datagrams", sim.counts().oversized);
    r.put("undecodable_datagrams", sim.counts().undecodable);
    print_malloc_stats();
    put_memory(&mut r);
    r
}

/// This process's peak and current memory (`peak_memory_mib`, `final_rss_mib`).
fn put_memory(r: &mut Report) {
    let (hwm, rss) = memory_kib();
    r.put("peak_memory_mib", format!("{:.0}", hwm as f64 / 1024.0));
    r.put("final_rss_mib", format!("{:.0}", rss as f64 / 1024.0));
}

/// Serf's convergence model (notes §1.4): fraction informed after `round` rounds is
/// `1 / (1 + (N+1)·e^(−fanout·0.5·round))`. Rounds until `frac` of N nodes know.
fn serf_rounds(n: usize, fanout: f64, frac: f64) -> f64 {
    ((n as f64 + 1.0) * frac / (1.0 - frac)).ln() / (fanout * 0.5)
}

/// glibc's `mallopt` parameter for the mmap threshold.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const M_MMAP_THRESHOLD: i32 = -3;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    fn mallopt(param: i32, value: i32) -> i32;
    fn malloc_stats();
}

/// Keeps big blocks (from 128 KiB: a node's member array beyond ~1,600 members, push-pull
/// states) in their own mappings rather than among the heap's short-lived blocks, where
/// glibc's default, self-raising mmap threshold puts them once the first such block is
/// freed. `SIM_MALLOC_DEFAULT=1` leaves glibc's default.
fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any other thread runs.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// With `SIM_MALLOC_STATS=1`: glibc's heap statistics (stderr), to tell live heap from
/// allocator overhead in the peak.
fn print_malloc_stats() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var("SIM_MALLOC_STATS").is_ok() {
        // SAFETY: prints the allocator's statistics to stderr; takes no arguments.
        unsafe { malloc_stats() };
    }
}

fn main() {
    if let Ok(n) = std::env::var(CHILD_VAR) {
        if std::env::var("SIM_MALLOC_DEFAULT").is_err() {
            fix_mmap_threshold();
        }
        let Ok(n) = n.parse::<usize>() else {
            eprintln!("{CHILD_VAR}={n:?} is not a node count");
            std::process::exit(2);
        };
        run_size(n.max(3));
        return;
    }
    // `cargo bench` passes `--bench`; anything else is ignored.
    let sizes: Vec<usize> = env_list("SIM_SIZES", "1000,10000");
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot find this executable to re-run it per size: {e}");
            std::process::exit(2);
        }
    };
    let mut table: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut walls = Vec::new();
    let mut skipped = Vec::new();
    for (col, &n) in sizes.iter().enumerate() {
        eprintln!("== {n} nodes ==");
        let need = PEAK_BYTES_PER_PAIR * (n as f64) * (n as f64);
        let avail = mem_available_bytes();
        if need > 0.85 * avail && std::env::var("SIM_FORCE").is_err() {
            let msg = format!(
                "skipped: needs ~{:.0} GiB ({n}² member records × ~{PEAK_BYTES_PER_PAIR} B), {:.0} GiB available (SIM_FORCE=1 runs it anyway)",
                need / f64::from(1u32 << 30),
                avail / f64::from(1u32 << 30)
            );
            eprintln!("  {msg}");
            skipped.push((n, msg));
            walls.push(None);
            continue;
        }
        let wall = Instant::now();
        let out = Command::new(&exe)
            .env(CHILD_VAR, n.to_string())
            .stderr(std::process::Stdio::inherit())
            .output();
        walls.push(Some(wall.elapsed()));
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                eprintln!("cannot run the {n}-node child: {e}");
                continue;
            }
        };
        if !out.status.success() {
            eprintln!("the {n}-node child failed: {}", out.status);
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut parts = line.splitn(3, '\t');
            if parts.next() != Some("RESULT") {
                continue;
            }
            let (Some(k), Some(v)) = (parts.next(), parts.next()) else {
                continue;
            };
            let row = table.entry(k.to_string()).or_insert_with(|| {
                order.push(k.to_string());
                Vec::new()
            });
            row.resize(col, "-".to_string());
            row.push(v.to_string());
        }
    }
    println!();
    let lan = Config::for_profile(Profile::Lan);
    println!(
        "werify membership simulator, LAN profile (gossip {} ms to {}, {} ms while news is unsent, probe {} ms); rounds = {} ms",
        lan.gossip_interval.as_millis(),
        lan.gossip_fanout,
        lan.fresh_gossip_interval.as_millis(),
        lan.probe_interval.as_millis(),
        lan.gossip_interval.as_millis(),
    );
    let width = order.iter().map(String::len).max().unwrap_or(10);
    for key in &order {
        let row = &table[key];
        let cells: Vec<String> = (0..sizes.len())
            .map(|i| format!("{:>10}", row.get(i).map_or("-", String::as_str)))
            .collect();
        println!("{key:<width$} {}", cells.join(" "));
    }
    let cells: Vec<String> = walls
        .iter()
        .map(|w| {
            w.map_or_else(
                || format!("{:>10}", "skipped"),
                |w| format!("{:>10.1}", w.as_secs_f64()),
            )
        })
        .collect();
    println!("{:<width$} {}", "total_wall_s", cells.join(" "));
    for (n, msg) in &skipped {
        println!("{n} nodes {msg}");
    }
    println!();
    println!("Serf's convergence model 1/(1+(N+1)e^(-fanout*0.5*round)), fanout 3:");
    for &n in &sizes {
        for frac in [0.999, 0.9999] {
            let r = serf_rounds(n, 3.0, frac);
            println!(
                "  N={n:>6} {:>6.2}%: {r:5.2} rounds = {:.2} s at 200 ms (Serf) = {:.2} s at 100 ms (werify lan)",
                frac * 100.0,
                r * 0.2,
                r * 0.1
            );
        }
    }
}
