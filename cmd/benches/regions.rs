//! The cost of many regions: splits a fresh cluster (PD + 3 stores, release build) into
//! `--regions` regions with the `SplitRegion` RPC, waits until PD sees them all with three
//! replicas, then measures the idle cluster's CPU (all server processes, from `/proc`) and how
//! many replicas hibernate, times a first get from each region (the client's region lookups
//! and the regions' wake-ups), measures the CPU of the awake cluster without load for up to
//! 5 s, and then runs put and get at each `--concurrency` over keys spread across every region.
//!
//! ```text
//! cargo bench -p cmd --bench regions [-- --regions 10000 --seconds 10 --concurrency 64]
//! COMPARE_DIR=dir      keep the cluster's data directories and logs in `dir`
//! BENCH_TIKV_CONFIG=f  start the stores with the config file `f`
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmd::baseline::cpu_seconds;
use cmd::load::{bench_cluster, bench_dir, closed_loop, closed_loop_over, number_flag, LoadFlags};
use cmd::process::{
    pd_leader_counts, pd_region_of, pd_regions, pd_store_address, wait_until, LocalCluster,
};
use kvproto::tikvpb::tikv_client::TikvClient;
use kvproto::{kvrpcpb, metapb};
use tikv_client::RawClient;

/// Split keys sent in one `SplitRegion` call.
const SPLITS_PER_CALL: usize = 500;

fn key(index: u64) -> Vec<u8> {
    format!("bench-{index:08}").into_bytes()
}

/// The region holding `key` and its leader, from PD's HTTP API.
fn region_of(pd: &str, key: &[u8]) -> Option<(kvrpcpb::Context, String)> {
    let region = pd_region_of(pd, key)?;
    let number = |v: &serde_json::Value| v.as_u64();
    let leader = metapb::Peer {
        id: number(&region["leader"]["id"])?,
        store_id: number(&region["leader"]["store_id"])?,
        ..Default::default()
    };
    let address = pd_store_address(pd, leader.store_id)?;
    let context = kvrpcpb::Context {
        region_id: number(&region["id"])?,
        region_epoch: Some(metapb::RegionEpoch {
            conf_ver: number(&region["epoch"]["conf_ver"])?,
            version: number(&region["epoch"]["version"])?,
        }),
        peer: Some(leader),
        ..Default::default()
    };
    Some((context, address))
}

/// Splits at every `step`-th key of `keys` keys, `SPLITS_PER_CALL` keys per call, retrying a
/// call that meets a region error (a leader not yet elected, a split PD has not seen yet).
async fn split(cluster: &LocalCluster, keys: u64, step: u64) {
    let pd = cluster.pd.addr();
    let split_keys: Vec<Vec<u8>> = (1..keys / step).map(|i| key(i * step)).collect();
    let started = Instant::now();
    let mut done = 0;
    for chunk in split_keys.chunks(SPLITS_PER_CALL) {
        loop {
            let Some((context, address)) = region_of(&pd, &chunk[0]) else {
                eprintln!("  PD does not know the region of the next split key yet");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let mut client = TikvClient::connect(format!("http://{address}"))
                .await
                .expect("connect to the leader");
            let response = client
                .split_region(kvrpcpb::SplitRegionRequest {
                    context: Some(context),
                    split_keys: chunk.to_vec(),
                    is_raw_kv: true,
                    ..Default::default()
                })
                .await
                .expect("SplitRegion")
                .into_inner();
            match response.region_error {
                None => break,
                Some(error) => eprintln!("  split: {}; retrying", error.message),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        done += chunk.len();
        eprintln!(
            "  split at {done} of {} keys ({:.0} s)",
            split_keys.len(),
            started.elapsed().as_secs_f64()
        );
    }
}

/// Regions PD knows with `replicas` replicas and a leader.
fn settled_regions(pd: &str, replicas: usize) -> usize {
    pd_regions(pd)
        .and_then(|r| r["regions"].as_array().cloned())
        .map_or(0, |regions| {
            regions
                .iter()
                .filter(|r| {
                    r["peers"].as_array().map_or(0, Vec::len) == replicas
                        && r["leader"]["id"].as_u64().is_some_and(|id| id != 0)
                })
                .count()
        })
}

/// Server CPU (PD and the stores) per operation, in microseconds.
fn cpu_us_per_op(cpu_seconds: f64, ops: u64) -> f64 {
    cpu_seconds * 1e6 / ops.max(1) as f64
}

fn main() {
    let regions = number_flag("--regions", 10_000);
    let flags = LoadFlags::parse(LoadFlags {
        seconds: 10,
        concurrency: vec![64],
        value_size: 1024,
    });
    let keys = regions * 10;
    let (_temp, dir) = bench_dir();
    let dir = dir.as_path();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_pd-server"))
        .parent()
        .expect("bin dir");
    let cluster = bench_cluster(bin_dir, dir);
    let pids = cluster.pids();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    eprintln!("splitting into {regions} regions");
    runtime.block_on(split(&cluster, keys, keys / regions));
    let pd = cluster.pd.addr();
    wait_until(
        "every region to have three replicas and a leader",
        Duration::from_secs(600),
        || settled_regions(&pd, 3) as u64 >= regions,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let total = pd_regions(&pd)
        .and_then(|r| r["count"].as_u64())
        .unwrap_or(0);
    // PD's leader balancer spreads the leaderships, all on one store after the splits; wait
    // until they are within its default tolerance (no store leads more than 10 regions more
    // than another), or have not moved for 10 s (the balancer is off).
    let balancing = Instant::now();
    let mut last = (Vec::new(), Instant::now());
    let settled = || {
        let counts = pd_leader_counts(&pd).unwrap_or_default();
        let (most, fewest) = (counts.iter().max(), counts.iter().min());
        let balanced = counts.len() == 3 && most.zip(fewest).is_some_and(|(m, f)| m - f <= 10);
        if counts != last.0 {
            last = (counts, Instant::now());
        }
        balanced || last.1.elapsed() > Duration::from_secs(10)
    };
    if let Err(e) = wait_until("the leaders to settle", Duration::from_secs(600), settled) {
        eprintln!("{e}; measuring anyway");
    }
    eprintln!(
        "leaders per store after {:.1} s: {:?}",
        balancing.elapsed().as_secs_f64(),
        pd_leader_counts(&pd).unwrap_or_default()
    );
    eprintln!("{total} regions settled; waiting for them to hibernate");
    let hibernated = || cluster.metric_total("tikv_raftstore_hibernated_peer_state", "hibernated");
    let all = (total * 3) as f64;
    if let Err(e) = wait_until(
        "99% of the replicas to hibernate",
        Duration::from_secs(60),
        || hibernated() >= all * 0.99,
    ) {
        eprintln!("{e}; measuring anyway");
    }
    let idle = Duration::from_secs(flags.seconds);
    let before = cpu_seconds(&pids);
    std::thread::sleep(idle);
    let idle_cores = (cpu_seconds(&pids) - before) / idle.as_secs_f64();
    println!(
        "{total} regions, idle: {:.1}% of a core for PD and 3 stores; {:.0} of {all} replicas hibernate",
        idle_cores * 100.0,
        hibernated(),
    );
    runtime.block_on(async {
        let client = Arc::new(
            RawClient::new(vec![cluster.pd.addr()])
                .await
                .expect("connect"),
        );
        // The first request to each region pays for the client's region lookup in PD and for
        // waking the region; the runs below measure the steady state after it.
        let step = keys / regions;
        let c = client.clone();
        let first = closed_loop_over(64, regions, move |n| {
            let client = c.clone();
            async move {
                client.get(key(n * step)).await.expect("get");
            }
        })
        .await;
        println!(
            "first get of each of {regions} regions (64 in flight): {:.1} s, {first}",
            first.duration.as_secs_f64()
        );
        // Every region is awake now and stays so for an election timeout without writes: the
        // cost of 10,000 replicas ticking and heartbeating with nothing to do.
        let awake = Duration::from_secs(flags.seconds.min(5));
        let before = cpu_seconds(&pids);
        tokio::time::sleep(awake).await;
        println!(
            "{total} regions, awake and idle: {:.1}% of a core for PD and 3 stores ({:.0} of {all} replicas hibernate)",
            (cpu_seconds(&pids) - before) / awake.as_secs_f64() * 100.0,
            hibernated(),
        );
        let value = vec![b'v'; flags.value_size];
        for &concurrency in &flags.concurrency {
            let (c, v) = (client.clone(), value.clone());
            let spread = move |task: u64, n: u64| key((n * 7919 + task * 104_729) % keys);
            let cpu_before = cpu_seconds(&pids);
            let puts = closed_loop(concurrency, flags.duration(), move |task, n| {
                let (client, value) = (c.clone(), v.clone());
                async move { client.put(spread(task, n), value).await.expect("put") }
            })
            .await;
            let put_cpu = cpu_us_per_op(cpu_seconds(&pids) - cpu_before, puts.count());
            let c = client.clone();
            let cpu_before = cpu_seconds(&pids);
            let gets = closed_loop(concurrency, flags.duration(), move |task, n| {
                let client = c.clone();
                async move {
                    client.get(spread(task, n)).await.expect("get");
                }
            })
            .await;
            let get_cpu = cpu_us_per_op(cpu_seconds(&pids) - cpu_before, gets.count());
            let shape = format!(
                "({concurrency} in flight, {} B values, {} s, {total} regions)",
                flags.value_size, flags.seconds
            );
            println!("raw put {puts}  {put_cpu:.0} µs CPU/op {shape}");
            println!("raw get {gets}  {get_cpu:.0} µs CPU/op {shape}");
        }
    });
}
