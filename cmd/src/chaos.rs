//! The `chaos` tool's cluster and nemesis: PD and the stores as real processes, each in its
//! own network namespace (see [`chaos::net`]), and a seeded schedule of faults against them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chaos::net::{partition, Network};
use chaos::report::Event;
use chaos::workload::Clock;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::process::{
    colocated_fault_tikv_config, http_request, pd_region_of, pd_regions, pd_store_address,
    wait_until, PdProcess, Placement, TikvProcess,
};

/// Where Debian's libfaketime lives (package `faketime`).
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// PD (node 0) and the stores (nodes 1..), each in its own namespace.
pub struct ChaosCluster {
    // Dropped last: the processes die before their namespaces go.
    pub pd: PdProcess,
    pub stores: Vec<TikvProcess>,
    /// Per node, the file libfaketime reads the node's clock offset from, if clocks are faked.
    clock_files: Vec<Option<PathBuf>>,
    pub network: Network,
}

impl ChaosCluster {
    /// Makes the network and starts PD and `stores` stores from the binaries in `bin_dir`,
    /// with data and logs under `dir`, and waits until every region has 3 replicas. With
    /// `fake_clocks`, every process runs under libfaketime so that the nemesis can move its
    /// wall clock (its monotonic clock stays true, as NTP leaves `CLOCK_MONOTONIC_RAW` alone).
    ///
    /// # Errors
    ///
    /// What failed to start, and why.
    pub fn start(
        bin_dir: &Path,
        dir: &Path,
        stores: usize,
        fake_clocks: bool,
    ) -> Result<ChaosCluster, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let network = Network::create("chaos", stores + 1)?;
        let mut clock_files = vec![];
        let mut placements = vec![];
        for (i, node) in network.nodes().iter().enumerate() {
            let mut placement = Placement {
                host: node.ip.to_string(),
                netns: Some(node.netns.clone()),
                env: vec![],
            };
            let clock_file = if fake_clocks {
                let path = dir.join(format!("clock{i}"));
                std::fs::write(&path, "+0").map_err(|e| format!("write clock file: {e}"))?;
                placement.env = vec![
                    ("LD_PRELOAD".into(), LIBFAKETIME.into()),
                    ("FAKETIME_TIMESTAMP_FILE".into(), path.display().to_string()),
                    ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
                    ("FAKETIME_CACHE_DURATION".into(), "1".into()),
                ];
                Some(path)
            } else {
                None
            };
            clock_files.push(clock_file);
            placements.push(placement);
        }
        let mut placements = placements.into_iter();
        let pd = PdProcess::start_placed(
            &bin_dir.join("pd-server"),
            &dir.join("pd"),
            None,
            placements.next().expect("node 0 is PD"),
        )?;
        let mut cluster = ChaosCluster {
            pd,
            stores: vec![],
            clock_files,
            network,
        };
        // The stores share the machine as the local cluster's do, with fast elections.
        let config = dir.join("tikv.toml");
        std::fs::write(&config, colocated_fault_tikv_config(stores))
            .map_err(|e| format!("write {}: {e}", config.display()))?;
        let config = config.to_str().ok_or("config path is not UTF-8")?;
        for (i, placement) in placements.enumerate() {
            let store = TikvProcess::start_placed(
                &bin_dir.join("tikv-server"),
                &dir.join(format!("tikv{}", i + 1)),
                &cluster.pd.addr(),
                &["--config", config],
                placement,
            )?;
            cluster.stores.push(store);
        }
        wait_until(
            "every region to have 3 replicas and a leader",
            Duration::from_secs(120),
            || {
                cluster.regions().is_some_and(|regions| {
                    !regions.is_empty()
                        && regions.iter().all(|r| {
                            r["peers"].as_array().map_or(0, Vec::len) == 3.min(stores)
                                && !r["leader"].is_null()
                        })
                })
            },
        )?;
        Ok(cluster)
    }

    pub fn pd_addr(&self) -> String {
        self.pd.addr()
    }

    /// Every process's log file: PD's first, then the stores'.
    pub fn log_paths(&self) -> Vec<PathBuf> {
        std::iter::once(self.pd.log_path())
            .chain(self.stores.iter().map(TikvProcess::log_path))
            .collect()
    }

    fn regions(&self) -> Option<Vec<serde_json::Value>> {
        pd_regions(&self.pd.addr())?["regions"].as_array().cloned()
    }

    /// PD's view of the region holding `key` (in PD's key space).
    fn region_of(&self, key: &[u8]) -> Option<serde_json::Value> {
        pd_region_of(&self.pd.addr(), key)
    }

    /// Index in `stores` of the store with PD id `store_id`.
    fn store_index(&self, store_id: u64) -> Option<usize> {
        let address = pd_store_address(&self.pd.addr(), store_id)?;
        self.stores.iter().position(|s| s.addr() == address)
    }

    /// Sets node `node`'s wall clock `offset_secs` from the true time.
    fn set_clock(&self, node: usize, offset_secs: i64) -> Result<(), String> {
        let Some(Some(path)) = self.clock_files.get(node) else {
            return Err("clocks are not faked".into());
        };
        std::fs::write(path, format!("{offset_secs:+}s")).map_err(|e| format!("set clock: {e}"))
    }
}

/// What the nemesis may do, and how often.
#[derive(Clone, Debug)]
pub struct NemesisOptions {
    pub seed: u64,
    /// Keys the workloads use, in PD's key space: faults aim at their regions' leaders.
    pub hot_keys: Vec<Vec<u8>>,
    /// Where splits may fall (keys that are valid region boundaries for every client).
    pub split_keys: Vec<Vec<u8>>,
    /// How long a fault lasts, at most (at least a fifth of it).
    pub hold: Duration,
    /// The quiet time between faults, at most.
    pub quiet: Duration,
    pub clock_jumps: bool,
}

/// The kinds of fault, in the order the report lists them.
pub const FAULT_KINDS: [&str; 8] = [
    "kill",
    "kill-pd",
    "pause",
    "partition",
    "transfer-leader",
    "split",
    "clock",
    "failed",
];

/// What the nemesis did, and what it saw.
pub struct NemesisReport {
    pub events: Vec<Event>,
    /// How many faults of each kind it made (`failed`: faults that could not be applied).
    pub counts: BTreeMap<&'static str, usize>,
    /// Servers that exited without being killed (each a description with the end of its
    /// log), and whatever the final heal could not restore.
    pub crashes: Vec<String>,
}

impl ChaosCluster {
    /// Servers that exited by themselves since the last look, each with its status and the
    /// end of its log; they are reaped, so `restart` brings them back.
    fn crashed(&mut self) -> Vec<String> {
        let mut crashes = vec![];
        if let Some(status) = self.pd.exited() {
            crashes.push(format!(
                "pd exited by itself ({status}):\n{}",
                self.pd.log_tail()
            ));
        }
        for (i, store) in self.stores.iter_mut().enumerate() {
            if let Some(status) = store.exited() {
                let tail = store.log_tail();
                crashes.push(format!(
                    "store {} exited by itself ({status}):\n{tail}",
                    i + 1
                ));
            }
        }
        crashes
    }
}

/// Runs faults on `cluster` until `stop` is set, then heals everything.
pub fn run_nemesis(
    cluster: &mut ChaosCluster,
    clock: Clock,
    options: &NemesisOptions,
    stop: &AtomicBool,
) -> NemesisReport {
    let mut rng = StdRng::seed_from_u64(options.seed ^ 0x004E_454D_4553_4953);
    let mut events = vec![];
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut crashes = vec![];
    let nodes = cluster.stores.len() + 1;
    let mut log = |events: &mut Vec<Event>, what: String| {
        tracing::info!(target: "nemesis", "{what}");
        events.push(Event {
            at: clock.now(),
            what,
        });
    };
    let sleep = |rng: &mut StdRng, max: Duration| {
        let min = max / 5;
        std::thread::sleep(rng.gen_range(min..=max));
    };
    while !stop.load(Ordering::Relaxed) {
        sleep(&mut rng, options.quiet);
        for crash in cluster.crashed() {
            log(
                &mut events,
                crash.lines().next().unwrap_or_default().to_string(),
            );
            crashes.push(crash);
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut weighted = vec![("kill", 4), ("kill-pd", 1), ("pause", 1), ("partition", 5)];
        weighted.extend([("transfer-leader", 1), ("split", 1)]);
        if options.clock_jumps {
            weighted.push(("clock", 1));
        }
        let kind = weighted
            .choose_weighted(&mut rng, |(_, w)| *w)
            .expect("weights are positive")
            .0;
        let hot_key = options
            .hot_keys
            .choose(&mut rng)
            .cloned()
            .unwrap_or_default();
        // Half the store faults hit the leader of a workload's region.
        let leader = cluster
            .region_of(&hot_key)
            .and_then(|r| r["leader"]["store_id"].as_u64())
            .and_then(|id| cluster.store_index(id));
        let victim = match leader {
            Some(index) if rng.gen_bool(0.5) => index,
            _ => rng.gen_range(0..cluster.stores.len()),
        };
        let result: Result<(), String> = match kind {
            "kill" => {
                log(&mut events, format!("kill -9 store {}", victim + 1));
                cluster.stores[victim].kill();
                sleep(&mut rng, options.hold);
                log(&mut events, format!("restart store {}", victim + 1));
                cluster.stores[victim].restart()
            }
            "kill-pd" => {
                log(&mut events, KILL_PD.into());
                cluster.pd.kill();
                sleep(&mut rng, options.hold);
                log(&mut events, RESTART_PD.into());
                cluster.pd.restart()
            }
            "pause" => {
                let node = if rng.gen_bool(0.2) { 0 } else { victim + 1 };
                log(&mut events, format!("SIGSTOP {}", node_name(node)));
                let pause = |paused: bool| match node {
                    0 if paused => cluster.pd.pause(),
                    0 => cluster.pd.resume(),
                    n if paused => cluster.stores[n - 1].pause(),
                    n => cluster.stores[n - 1].resume(),
                };
                pause(true);
                sleep(&mut rng, options.hold);
                log(&mut events, format!("SIGCONT {}", node_name(node)));
                pause(false);
                Ok(())
            }
            "partition" => {
                let (name, cuts) = match rng.gen_range(0..3) {
                    0 => {
                        let node = if rng.gen_bool(0.2) { 0 } else { victim + 1 };
                        (
                            format!("isolate {}", node_name(node)),
                            partition::isolate(nodes, node),
                        )
                    }
                    1 => {
                        let mut order: Vec<usize> = (0..nodes).collect();
                        order.shuffle(&mut rng);
                        let side: BTreeSet<usize> = order[..nodes / 2].iter().copied().collect();
                        (
                            format!("halves {}", names(side.iter().copied())),
                            partition::halves(nodes, &side),
                        )
                    }
                    _ => {
                        let mut order: Vec<usize> = (0..nodes).collect();
                        order.shuffle(&mut rng);
                        (
                            format!("ring {}", names(order.iter().copied())),
                            partition::ring(&order),
                        )
                    }
                };
                log(&mut events, format!("partition: {name}"));
                let applied = cluster.network.apply(&cuts);
                sleep(&mut rng, options.hold);
                log(&mut events, "heal".into());
                applied.and(cluster.network.heal())
            }
            "transfer-leader" => {
                transfer_leader(cluster, &hot_key, &mut rng, &mut events, &mut log)
            }
            "split" => split(
                cluster,
                &options.split_keys,
                &mut rng,
                &mut events,
                &mut log,
            ),
            "clock" => {
                let node = rng.gen_range(0..nodes);
                let offset = rng.gen_range(1..=120) * if rng.gen_bool(0.5) { 1 } else { -1 };
                log(
                    &mut events,
                    format!("clock of {} {offset:+}s", node_name(node)),
                );
                let set = cluster.set_clock(node, offset);
                sleep(&mut rng, options.hold);
                log(&mut events, format!("clock of {} reset", node_name(node)));
                set.and(cluster.set_clock(node, 0))
            }
            _ => unreachable!("unknown fault kind {kind}"),
        };
        match result {
            Ok(()) => *counts.entry(kind).or_default() += 1,
            Err(e) => {
                log(&mut events, format!("{kind} failed: {e}"));
                *counts.entry("failed").or_default() += 1;
            }
        }
    }
    crashes.extend(cluster.crashed());
    crashes.extend(heal_all(cluster, &mut events, &mut log));
    NemesisReport {
        events,
        counts,
        crashes,
    }
}

const KILL_PD: &str = "kill -9 pd";
const RESTART_PD: &str = "restart pd";
/// How long after its restart or thaw PD may still fail a client: it has to start serving,
/// and the client to reconnect.
const PD_RECOVERY: Duration = Duration::from_secs(5);

/// When PD was down (killed or paused), from the nemesis's events: each interval widened by
/// [`PD_RECOVERY`]; an outage not ended by the events lasts to the end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PdOutages(Vec<(u64, u64)>);

impl PdOutages {
    /// Whether PD was down at some moment of an operation invoked at `invoked` and completed at
    /// `completed` (nanoseconds on the history's clock).
    pub fn overlap(&self, invoked: u64, completed: u64) -> bool {
        self.0
            .iter()
            .any(|&(down, up)| down <= completed && invoked <= up)
    }
}

/// PD's outages in the nemesis's `events`.
pub fn pd_outages(events: &[Event]) -> PdOutages {
    let (pause, thaw) = (
        format!("SIGSTOP {}", node_name(0)),
        format!("SIGCONT {}", node_name(0)),
    );
    let mut outages = vec![];
    let mut down_since = None;
    for event in events {
        if event.what == KILL_PD || event.what == pause {
            down_since.get_or_insert(event.at);
        } else if event.what == RESTART_PD || event.what == thaw {
            if let Some(start) = down_since.take() {
                outages.push((start, event.at + PD_RECOVERY.as_nanos() as u64));
            }
        }
    }
    if let Some(start) = down_since {
        outages.push((start, u64::MAX));
    }
    PdOutages(outages)
}

fn node_name(node: usize) -> String {
    if node == 0 {
        "pd".into()
    } else {
        format!("store {node}")
    }
}

fn names(nodes: impl Iterator<Item = usize>) -> String {
    nodes.map(node_name).collect::<Vec<_>>().join(", ")
}

type Log<'a> = dyn FnMut(&mut Vec<Event>, String) + 'a;

/// Asks PD to move the leadership of `key`'s region to a random follower.
fn transfer_leader(
    cluster: &ChaosCluster,
    key: &[u8],
    rng: &mut StdRng,
    events: &mut Vec<Event>,
    log: &mut Log<'_>,
) -> Result<(), String> {
    let region = cluster.region_of(key).ok_or("no region for the key")?;
    let leader = region["leader"]["store_id"].as_u64();
    let followers: Vec<u64> = region["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["store_id"].as_u64())
        .filter(|&id| Some(id) != leader)
        .collect();
    let to = *followers.choose(rng).ok_or("the region has no follower")?;
    let id = region["id"].as_u64().ok_or("region without id")?;
    log(
        events,
        format!("transfer leader of region {id} to store id {to}"),
    );
    operator(
        cluster,
        &format!(r#"{{"name":"transfer-leader","region_id":{id},"to_store_id":{to}}}"#),
    )
}

/// Asks PD to split the region holding a random one of `keys` at that key (one that is not
/// already a region's start: a region cannot split at its own start).
fn split(
    cluster: &ChaosCluster,
    keys: &[Vec<u8>],
    rng: &mut StdRng,
    events: &mut Vec<Event>,
    log: &mut Log<'_>,
) -> Result<(), String> {
    let mut keys: Vec<&Vec<u8>> = keys.iter().collect();
    keys.shuffle(rng);
    for key in keys {
        let hex = pd_server::cluster::hex_upper(key);
        let region = cluster.region_of(key).ok_or("no region for the key")?;
        if region["start_key"].as_str() == Some(hex.as_str()) {
            continue;
        }
        let id = region["id"].as_u64().ok_or("region without id")?;
        log(
            events,
            format!("split region {id} at {}", key.escape_ascii()),
        );
        return operator(
            cluster,
            &format!(r#"{{"name":"split-region","region_id":{id},"keys":["{hex}"]}}"#),
        );
    }
    Err("every split key already starts a region".into())
}

fn operator(cluster: &ChaosCluster, body: &str) -> Result<(), String> {
    match http_request(&cluster.pd.addr(), "POST", "/pd/api/v1/operators", body) {
        Ok((200, _)) => Ok(()),
        Ok((status, body)) => Err(format!("PD answered {status}: {body}")),
        Err(e) => Err(format!("PD: {e}")),
    }
}

/// Ends every fault: heals the network, resets clocks, thaws and restarts every process.
/// Returns what it could not do: the run cannot vouch for a cluster left faulty.
fn heal_all(cluster: &mut ChaosCluster, events: &mut Vec<Event>, log: &mut Log<'_>) -> Vec<String> {
    log(events, "heal all".into());
    let mut problems = vec![];
    if let Err(e) = cluster.network.heal() {
        problems.push(format!("the network could not be healed: {e}"));
    }
    if cluster.clock_files.iter().any(Option::is_some) {
        for node in 0..=cluster.stores.len() {
            if let Err(e) = cluster.set_clock(node, 0) {
                problems.push(format!(
                    "the clock of {} could not be reset: {e}",
                    node_name(node)
                ));
            }
        }
    }
    cluster.pd.resume();
    if let Err(e) = cluster.pd.restart() {
        problems.push(format!("pd could not be restarted: {e}"));
    }
    for (i, store) in cluster.stores.iter_mut().enumerate() {
        store.resume();
        if let Err(e) = store.restart() {
            problems.push(format!("store {} could not be restarted: {e}", i + 1));
        }
    }
    for problem in &problems {
        log(
            events,
            problem.lines().next().unwrap_or_default().to_string(),
        );
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at_secs: u64, what: &str) -> Event {
        Event {
            at: at_secs * 1_000_000_000,
            what: what.into(),
        }
    }

    #[test]
    fn pd_is_down_from_its_kill_or_pause_until_a_while_after_it_is_back() {
        let events = [
            event(1, "kill -9 store 1"),
            event(2, KILL_PD),
            event(4, RESTART_PD),
            event(10, "SIGSTOP store 2"),
            event(11, "SIGCONT store 2"),
            event(20, "SIGSTOP pd"),
            event(22, "SIGCONT pd"),
            event(30, KILL_PD),
        ];
        let secs = |s: u64| s * 1_000_000_000;
        let outages = pd_outages(&events);
        assert_eq!(
            outages,
            PdOutages(vec![
                (secs(2), secs(9)),
                (secs(20), secs(27)),
                (secs(30), u64::MAX)
            ])
        );
        // Operations wholly before or between the outages do not overlap them; one that ends
        // as PD goes down, starts while it recovers, or falls in the unended outage does.
        assert!(!outages.overlap(0, secs(1)));
        assert!(!outages.overlap(secs(10), secs(19)));
        assert!(outages.overlap(secs(1), secs(2)));
        assert!(outages.overlap(secs(8), secs(10)));
        assert!(outages.overlap(secs(40), secs(41)));
    }
}
