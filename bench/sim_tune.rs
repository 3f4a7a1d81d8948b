//! Side-by-side tuning runs of the membership protocol in the deterministic simulator:
//! for the `lan` profile and any variants of it given on the command line, how fast a crash
//! is seen dead by everyone, how many healthy nodes datagram loss marks dead, and how fast
//! a mass join and joins of one host after another converge. Every variant runs on the
//! same seeds, so differences between rows come from the settings, not from luck. Virtual
//! time only: the figures do not depend on the machine. (Scale and memory are
//! `sim_scale`'s job, not this one's.)
//!
//! ```text
//! cargo bench --bench sim_tune                       # the lan profile as it is
//! cargo bench --bench sim_tune -- suspicion_mult=2 retransmit_mult=4,suspicion_mult=2
//! ```
//!
//! A variant is a comma-separated list of `field=value` over `suspicion_mult`,
//! `suspicion_max_mult`, `suspicion_confirmations`, `retransmit_mult`, `probe_interval_ms`,
//! `probe_timeout_ms`, `gossip_interval_ms`, `fresh_gossip_interval_ms`, `gossip_fanout`,
//! `indirect_checks`, `contact_follow_ups`, `contact_follow_ups_rapid`,
//! `contact_follow_ups_idle`.
//! Environment: `SIM_TUNE_LOSS_SECS` (default 300) virtual seconds per loss rate;
//! `SIM_TUNE_ROWS` (default all: `crash,loss,join,1by1,split`) the rows to run.

use std::process::ExitCode;
use std::time::Duration;

use werify::mesh::sim::{Sim, SimConfig};
use werify::mesh::{Config, Profile, State};

/// Nodes of the crash and join runs (the size of the side-by-side benchmark against Serf).
const NODES: usize = 64;
/// Nodes of the loss runs (as tests/sim.rs).
const LOSS_NODES: usize = 128;
const CRASH_SEEDS: u64 = 3;
const CRASHES_PER_SEED: usize = 10;
const JOIN_SEEDS: u64 = 25;
const JOIN_SPREAD: Duration = Duration::from_millis(400);
/// What a first contact costs in the second join row: the real mesh's QUIC handshake,
/// slowed by a join storm's CPU contention on a small machine.
const JOIN_HANDSHAKE: Duration = Duration::from_millis(50);
/// Time between two hosts in the one-by-one join rows: a `werify ctl add` process (or a
/// node start with `--join`) after the previous one ended, on a small machine.
const ONE_BY_ONE_STEP: Duration = Duration::from_millis(30);
/// What a first contact costs in the one-by-one rows: a QUIC handshake on a quiet machine.
const ONE_BY_ONE_HANDSHAKE: Duration = Duration::from_millis(10);
const ONE_BY_ONE_SEEDS: u64 = 9;
/// Time between two adds of a batch (`werify ctl -` with one `add` line per host): each
/// line waits for the node's answer, a QUIC round trip and the join exchange on loopback.
const BATCH_STEP: Duration = Duration::from_millis(8);
/// Batches are run on more seeds than the one-by-one rows: a rumour that dies out shows
/// in a few of them only.
const BATCH_SEEDS: u64 = 25;
/// Nodes of the partition runs (as tests/sim.rs), split in two halves.
const PARTITION_NODES: usize = 100;
const PARTITION_SEEDS: u64 = 40;
const CHECK: Duration = Duration::from_millis(20);
/// The rows, in print order; `SIM_TUNE_ROWS` picks some.
const ALL_ROWS: [&str; 6] = ["crash", "loss", "join", "1by1", "batch", "split"];

fn main() -> ExitCode {
    let specs: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let mut variants = vec![("lan".to_string(), Config::for_profile(Profile::Lan))];
    for spec in specs {
        match parse_variant(&spec) {
            Ok(c) => variants.push((spec, c)),
            Err(e) => {
                eprintln!("sim_tune: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let loss_secs = match std::env::var("SIM_TUNE_LOSS_SECS") {
        Ok(v) => match v.parse::<u64>() {
            Ok(s) => s,
            Err(_) => {
                eprintln!("sim_tune: SIM_TUNE_LOSS_SECS={v:?} is not a whole number of seconds");
                return ExitCode::from(2);
            }
        },
        Err(_) => 300,
    };
    println!(
        "crash: {NODES} nodes, {} crashes over {CRASH_SEEDS} seeds, seconds until all list the victim dead \
         (and until the first suspicion, and from it to the first death), median / p90 / max",
        CRASH_SEEDS as usize * CRASHES_PER_SEED
    );
    println!(
        "loss: {LOSS_NODES} nodes, {loss_secs} s at 10% and at 5% datagram loss: healthy nodes declared dead"
    );
    println!(
        "join: {NODES} nodes joining over {} ms, {JOIN_SEEDS} seeds: seconds until all list all alive; \
         each through node 0 and a random earlier node, then (one seed) through node 0 alone with \
         first contacts costing {} ms, as in the benchmark against Serf",
        JOIN_SPREAD.as_millis(),
        JOIN_HANDSHAKE.as_millis()
    );
    println!(
        "one by one: {NODES} nodes started alone, {ONE_BY_ONE_SEEDS} seeds, first contacts costing {} ms: \
         node 0 adds one node every {} ms (`ctl add` one after another), or one node every {} ms joins \
         through node 0 (`--join` one after another); seconds from the first until all list all alive",
        ONE_BY_ONE_HANDSHAKE.as_millis(),
        ONE_BY_ONE_STEP.as_millis(),
        ONE_BY_ONE_STEP.as_millis()
    );
    println!(
        "batch: as one by one with `ctl add`, one node every {} ms (a `ctl -` batch of add lines), {BATCH_SEEDS} seeds",
        BATCH_STEP.as_millis()
    );
    println!(
        "partition: {PARTITION_NODES} nodes cut in halves, {PARTITION_SEEDS} seeds: seconds until every node \
         lists the whole other half dead, then from the heal until all list all alive\n"
    );
    let rows = std::env::var("SIM_TUNE_ROWS").unwrap_or_else(|_| ALL_ROWS.join(","));
    let row = |name: &str| rows.split(',').any(|r| r.trim() == name);
    if let Some(unknown) = rows.split(',').find(|r| !ALL_ROWS.contains(&r.trim())) {
        eprintln!(
            "sim_tune: SIM_TUNE_ROWS names {unknown:?}; the rows are {}",
            ALL_ROWS.join(",")
        );
        return ExitCode::from(2);
    }
    for (name, config) in &variants {
        println!("{name}");
        if row("crash") {
            let crash = crash_runs(config);
            println!(
                "  crash  all dead {}   first suspicion {}   suspicion to first death {}",
                spread(&crash.all_dead),
                spread(&crash.first_suspect),
                spread(&crash.suspect_to_dead)
            );
        }
        if row("loss") {
            let loss: Vec<(f64, u64)> = [0.10, 0.05]
                .iter()
                .map(|&l| (l, false_deaths(config, l, loss_secs)))
                .collect();
            println!(
                "  loss   false deaths {}",
                loss.iter()
                    .map(|(l, d)| format!("{d} at {:.0}%", l * 100.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if row("join") {
            println!(
                "  join   converged {}   one seed {}",
                spread(&join_runs(config, false)),
                spread(&join_runs(config, true))
            );
        }
        if row("1by1") {
            for (label, via_add) in [("ctl add", true), ("--join ", false)] {
                let runs = one_by_one_runs(config, via_add, ONE_BY_ONE_STEP, ONE_BY_ONE_SEEDS);
                let col = |f: fn(&OneByOne) -> f64| runs.iter().map(f).collect::<Vec<_>>();
                println!(
                    "  1by1   {label} {}   links opened {}   datagrams/node {}",
                    spread(&col(|r| r.converged_s)),
                    count_spread(&col(|r| r.links)),
                    count_spread(&col(|r| r.datagrams_per_node))
                );
            }
        }
        if row("batch") {
            let runs = one_by_one_runs(config, true, BATCH_STEP, BATCH_SEEDS);
            let col = |f: fn(&OneByOne) -> f64| runs.iter().map(f).collect::<Vec<_>>();
            let mut slow = col(|r| r.converged_s);
            slow.retain(|&s| s > 3.0);
            println!(
                "  batch  ctl add {}   over 3 s in {} of {} seeds   links opened {}",
                spread(&col(|r| r.converged_s)),
                slow.len(),
                runs.len(),
                count_spread(&col(|r| r.links)),
            );
        }
        if row("split") {
            let (apart, healed) = partition_runs(config);
            println!(
                "  split  all apart {}   healed {}",
                spread(&apart),
                spread(&healed)
            );
        }
    }
    ExitCode::SUCCESS
}

fn parse_variant(spec: &str) -> Result<Config, String> {
    let mut c = Config::for_profile(Profile::Lan);
    for kv in spec.split(',') {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("{kv:?} is not field=value (in variant {spec:?})"))?;
        let bad = |what: &str| format!("{k}={v:?}: expected {what}");
        let int = || v.parse::<u32>().map_err(|_| bad("a whole number"));
        let ms = || int().map(|n| Duration::from_millis(u64::from(n)));
        match k {
            "suspicion_mult" => {
                c.suspicion_mult = v.parse().map_err(|_| bad("a number such as 1.5"))?
            }
            "suspicion_max_mult" => c.suspicion_max_mult = int()?,
            "suspicion_confirmations" => c.suspicion_confirmations = int()?,
            "retransmit_mult" => c.retransmit_mult = int()?,
            "probe_interval_ms" => c.probe_interval = ms()?,
            "probe_timeout_ms" => c.probe_timeout = ms()?,
            "gossip_interval_ms" => c.gossip_interval = ms()?,
            "fresh_gossip_interval_ms" => c.fresh_gossip_interval = ms()?,
            "gossip_fanout" => c.gossip_fanout = int()? as usize,
            "indirect_checks" => c.indirect_checks = int()? as usize,
            "contact_follow_ups" => c.contact_follow_ups = int()?.min(255) as u8,
            "contact_follow_ups_rapid" => c.contact_follow_ups_rapid = int()?.min(255) as u8,
            "contact_follow_ups_idle" => c.contact_follow_ups_idle = int()?.min(255) as u8,
            other => {
                return Err(format!(
                    "unknown field {other:?} (see the list in bench/sim_tune.rs)"
                ));
            }
        }
    }
    Ok(c.sanitized())
}

struct Crash {
    all_dead: Vec<f64>,
    first_suspect: Vec<f64>,
    suspect_to_dead: Vec<f64>,
}

fn converged_mesh(seed: u64, n: usize, config: &Config) -> Option<Sim> {
    let mut sim = Sim::new(SimConfig::new(seed, n, config.clone()));
    sim.run_until(
        Duration::from_secs(60),
        Duration::from_millis(200),
        Sim::converged,
    )?;
    Some(sim)
}

fn crash_runs(config: &Config) -> Crash {
    let mut out = Crash {
        all_dead: Vec::new(),
        first_suspect: Vec::new(),
        suspect_to_dead: Vec::new(),
    };
    let limit = Duration::from_secs(20);
    for seed in 0..CRASH_SEEDS {
        let Some(mut sim) = converged_mesh(100 + seed, NODES, config) else {
            println!("  (seed {seed}: {NODES} nodes did not converge within 60 s; skipped)");
            continue;
        };
        sim.run_for(Duration::from_secs(20));
        for k in 0..CRASHES_PER_SEED {
            // Distinct victims (never node 0, the seed of the joins).
            let victim = 1 + (k * 6 + seed as usize * 3) % (NODES - 1);
            sim.crash(victim);
            let start = sim.now();
            let any = |s: &Sim, st: State| {
                (0..NODES).any(|o| o != victim && s.view(o, victim) == Some(st))
            };
            let since = |t: Option<Duration>| t.map(|t| (t - start).as_secs_f64());
            let suspect = since(sim.run_until(limit, CHECK, |s| {
                any(s, State::Suspect) || any(s, State::Dead)
            }));
            let dead = since(sim.run_until(limit, CHECK, |s| any(s, State::Dead)));
            let all = since(sim.run_until(limit, CHECK, |s| s.all_see(victim, State::Dead)));
            // A crash not seen within the limit counts as the limit (and shows as the max).
            out.all_dead.push(all.unwrap_or(limit.as_secs_f64()));
            if let Some(s) = suspect {
                out.first_suspect.push(s);
                if let Some(d) = dead {
                    out.suspect_to_dead.push(d - s);
                }
            }
            sim.run_for(Duration::from_secs(3));
        }
    }
    out
}

fn false_deaths(config: &Config, loss: f64, secs: u64) -> u64 {
    let Some(mut sim) = converged_mesh(7, LOSS_NODES, config) else {
        return u64::MAX;
    };
    let before = sim.counts().down;
    sim.set_loss(loss);
    sim.run_for(Duration::from_secs(secs));
    sim.counts().down - before
}

fn join_runs(config: &Config, one_seed: bool) -> Vec<f64> {
    (0..JOIN_SEEDS)
        .map(|seed| {
            let mut sc = SimConfig::new(300 + seed, NODES, config.clone());
            sc.join_spread = JOIN_SPREAD;
            if one_seed {
                sc.one_contact = true;
                sc.handshake = JOIN_HANDSHAKE;
            }
            let mut sim = Sim::new(sc);
            let limit = Duration::from_secs(60);
            sim.run_until(limit, Duration::from_millis(10), Sim::converged)
                .unwrap_or(limit)
                .as_secs_f64()
        })
        .collect()
}

/// Nodes started alone, then brought in one after another through node 0: added by it
/// (`via_add`, as `werify ctl add` through node 0) or joining it (as nodes started one
/// after another with `--join`). Seconds from the first until every node lists all alive.
struct OneByOne {
    converged_s: f64,
    /// Pairs of nodes that exchanged a message (each a QUIC handshake in a real mesh)
    /// by the time all converged.
    links: f64,
    datagrams_per_node: f64,
}

fn one_by_one_runs(config: &Config, via_add: bool, step: Duration, seeds: u64) -> Vec<OneByOne> {
    (0..seeds)
        .map(|seed| {
            let mut sc = SimConfig::new(700 + seed, NODES, config.clone());
            sc.start_alone = true;
            sc.handshake = ONE_BY_ONE_HANDSHAKE;
            let mut sim = Sim::new(sc);
            sim.run_for(Duration::from_secs(1));
            let start = sim.now();
            for k in 1..NODES {
                if via_add {
                    sim.add(0, k);
                } else {
                    sim.join(k, &[0]);
                }
                sim.run_for(step);
            }
            let limit = Duration::from_secs(60);
            let converged_s = sim
                .run_until(limit, Duration::from_millis(10), Sim::converged)
                .map_or(limit, |t| t - start)
                .as_secs_f64();
            OneByOne {
                converged_s,
                links: sim.links_open() as f64,
                datagrams_per_node: sim.total_stats().msgs_sent as f64 / NODES as f64,
            }
        })
        .collect()
}

/// "median / p90 / max" of counts.
fn count_spread(xs: &[f64]) -> String {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return "-".to_string();
    }
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!("{:.0} / {:.0} / {:.0}", at(0.5), at(0.9), at(1.0))
}

/// Cuts a settled mesh in halves until every node lists the other half dead, then heals
/// it until every node lists everyone alive. Seconds for each, per seed; a run that does
/// not get there within its limit counts as the limit (and shows as the max).
fn partition_runs(config: &Config) -> (Vec<f64>, Vec<f64>) {
    let n = PARTITION_NODES;
    let (apart_limit, heal_limit) = (Duration::from_secs(180), Duration::from_secs(60));
    let mut apart = Vec::new();
    let mut healed = Vec::new();
    for seed in 0..PARTITION_SEEDS {
        let Some(mut sim) = converged_mesh(500 + seed, n, config) else {
            println!("  (seed {seed}: {n} nodes did not converge within 60 s; skipped)");
            continue;
        };
        let groups: Vec<u32> = (0..n).map(|i| u32::from(i >= n / 2)).collect();
        sim.partition(&groups);
        let start = sim.now();
        let t = sim.run_until(
            apart_limit,
            Duration::from_millis(250),
            Sim::groups_see_each_other_dead,
        );
        apart.push(t.map_or(apart_limit, |t| t - start).as_secs_f64());
        sim.heal();
        let start = sim.now();
        let t = sim.run_until(heal_limit, Duration::from_millis(250), Sim::converged);
        healed.push(t.map_or(heal_limit, |t| t - start).as_secs_f64());
    }
    (apart, healed)
}

/// "median / p90 / max" of `xs` in seconds.
fn spread(xs: &[f64]) -> String {
    if xs.is_empty() {
        return "-".to_string();
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!("{:.2} / {:.2} / {:.2} s", at(0.5), at(0.9), at(1.0))
}
