use std::time::{Duration, Instant};
use werify::mesh::sim::{Sim, SimConfig};
use werify::mesh::{Config, Profile, State};

#[test]
#[ignore]
fn explore() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let loss: f64 = std::env::var("LOSS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    let seed: u64 = std::env::var("SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let wall = Instant::now();
    let mut cfg = SimConfig::new(seed, n, Config::for_profile(Profile::Lan));
    cfg.decode = std::env::var("DECODE").is_err();
    cfg.join_spread = Duration::from_secs(2);
    let mut sim = Sim::new(cfg);
    let t = sim.run_until(
        Duration::from_secs(120),
        Duration::from_millis(200),
        Sim::converged,
    );
    let st = sim.total_stats();
    println!(
        "converged at {t:?} wall {:?} msgs {} bytes {} pp {} maxdg {} counts {:?}",
        wall.elapsed(),
        st.msgs_sent,
        st.bytes_sent,
        st.push_pulls_sent,
        st.max_datagram,
        sim.counts()
    );
    sim.set_loss(loss);
    sim.run_for(Duration::from_secs(5));
    let mut dets = vec![];
    for k in 0..5 {
        let victim = 1 + k * (n / 6);
        sim.crash(victim);
        let start = sim.now();
        let t = sim.run_until(Duration::from_secs(60), Duration::from_millis(50), |s| {
            s.all_see(victim, State::Dead)
        });
        dets.push(t.map(|t| t - start));
        sim.run_for(Duration::from_secs(3));
    }
    println!("detections {dets:?} wall {:?}", wall.elapsed());
    let downs_before = sim.downs().len();
    sim.record_events(std::env::var("TRACE").is_ok());
    let dur: u64 = std::env::var("DUR")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    sim.run_for(Duration::from_secs(dur));
    for d in &sim.downs()[downs_before..] {
        let subj = (0..n)
            .find(|&i| sim.peer(i).unwrap().id == d.subject)
            .unwrap();
        let by = (0..n).find(|&i| sim.peer(i).unwrap().id == d.by).unwrap();
        println!(
            "  down at {:?} observer {} subject {} up={} by {}",
            d.at,
            d.observer,
            subj,
            sim.is_up(subj),
            by
        );
    }
    if let Ok(t) = std::env::var("TRACE") {
        let subj: usize = t.parse().unwrap();
        let id = sim.peer(subj).unwrap().id;
        let name =
            |x: werify::mesh::NodeId| (0..n).find(|&i| sim.peer(i).unwrap().id == x).unwrap();
        for (at, node, e) in sim.events() {
            let about = match e {
                werify::mesh::Event::MemberSuspect { peer, by } => {
                    peer.id == id && {
                        println!("{at:?} {node}: suspect {subj} by {}", name(*by));
                        true
                    }
                }
                werify::mesh::Event::MemberDown { peer, by } => {
                    peer.id == id && {
                        println!("{at:?} {node}: DOWN {subj} by {}", name(*by));
                        true
                    }
                }
                werify::mesh::Event::MemberRefuted(peer) => {
                    peer.id == id && {
                        println!("{at:?} {node}: refuted {subj}");
                        true
                    }
                }
                werify::mesh::Event::Refuted { incarnation, by } if *node == subj => {
                    println!(
                        "{at:?} {node}: self refute inc {incarnation} by {:?}",
                        by.map(name)
                    );
                    true
                }
                _ => false,
            };
            let _ = about;
        }
    }
    let st = sim.total_stats();
    println!(
        "after 60s more: false downs {} counts {:?} msgs {} wall {:?}",
        sim.downs().len() - downs_before,
        sim.counts(),
        st.msgs_sent,
        wall.elapsed()
    );
}
