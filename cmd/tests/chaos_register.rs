//! The register workload under crashes: raw get/put/CAS by five clients on three keys while a
//! seeded nemesis, over and over, kills a store with SIGKILL and restarts it, or freezes it with
//! SIGSTOP and thaws it (every other time the registers' leader); the whole history must be
//! linearizable per key. (The full harness, with every workload, partitions and clock jumps
//! in network namespaces, is the `chaos` binary; this test is its quick form, in `cargo test`.)

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chaos::checker::register;
use chaos::workload::register::run;
use chaos::workload::{Clock, Options};
use cmd::process::{colocated_fault_tikv_config, LocalCluster};

fn seed() -> u64 {
    std::env::var("TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED)
}

#[test]
fn raw_registers_stay_linearizable_while_stores_crash_and_pause() {
    let seed = seed();
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_pd-server")).parent().unwrap();
    let config = dir.path().join("tikv.toml");
    std::fs::write(&config, colocated_fault_tikv_config(3)).unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let mut cluster = LocalCluster::start(bin_dir, &dir.path().join("cluster"), 3, None, &args)
        .unwrap_or_else(|e| panic!("start cluster: {e}"));
    cluster
        .wait_for_replicas(3, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}"));
    let pd = vec![cluster.pd.addr()];

    let done = Arc::new(AtomicBool::new(false));
    let nemesis = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut kills, mut pauses) = (0, 0);
            let mut state = seed;
            for round in 0.. {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1500));
                // Every other fault hits the registers' leader, the others a store by the seed.
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let leader = cluster
                    .leader_store_of(b"chaos-register-0")
                    .and_then(|id| cluster.store_index(id));
                let victim = match leader {
                    Some(index) if round % 2 == 0 => index,
                    _ => (state >> 33) as usize % cluster.stores.len(),
                };
                let store = &mut cluster.stores[victim];
                // Two kills, then a pause, so that every seed exercises both.
                if round % 3 == 2 {
                    store.pause();
                    pauses += 1;
                    std::thread::sleep(Duration::from_millis(1500));
                    store.resume();
                } else {
                    store.kill();
                    kills += 1;
                    std::thread::sleep(Duration::from_millis(1500));
                    store
                        .restart()
                        .unwrap_or_else(|e| panic!("restart store {victim}: {e}"));
                }
            }
            (kills, pauses, cluster)
        })
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let history = runtime
        .block_on(run(
            pd,
            Options {
                clients: 5,
                keys: 3,
                duration: Duration::from_secs(20),
                seed,
                timeout: Duration::from_secs(2),
            },
            Clock::start(),
        ))
        .unwrap();
    done.store(true, Ordering::Relaxed);
    let (kills, pauses, _cluster) = nemesis.join().unwrap();
    let ok = history
        .iter()
        .filter(|op| matches!(op.outcome, chaos::history::Outcome::Ok(_)))
        .count();
    let unknown = history
        .iter()
        .filter(|op| op.outcome == chaos::history::Outcome::Unknown)
        .count();
    eprintln!(
        "register: {} operations ({ok} ok, {unknown} of unknown outcome), {kills} kills, {pauses} pauses, seed {seed}",
        history.len()
    );
    assert!(
        kills + pauses >= 6 && kills >= 2,
        "the nemesis acted too little: {kills} kills, {pauses} pauses"
    );
    assert!(
        ok >= 100,
        "only {ok} of {} operations succeeded",
        history.len()
    );
    // The search is bounded in practice, not in theory: a checker that runs away fails the
    // test rather than hanging CI.
    let (sender, receiver) = std::sync::mpsc::channel();
    let operations = history.len();
    std::thread::spawn(move || sender.send(register::check(&history)));
    let violations = receiver
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("seed {seed}: the checker did not finish within 120 s"));
    assert!(
        violations.is_empty(),
        "seed {seed}: {violations:?} in {operations} operations"
    );
}
