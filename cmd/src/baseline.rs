//! What the cluster benchmark compares our cluster with on the same machine: a three-member
//! etcd (Debian `etcd-server`) under the same load, and RocksDB's `db_bench --sync=1` (Debian
//! `rocksdb-tools`) as the bound of a single synced engine. Both are optional: a machine
//! without them skips their lines.

use crate::process::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Whether `program` is on the `PATH`.
pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// CPU time (user + system) the processes `pids` have used so far, in seconds; a process that
/// is gone counts nothing.
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    // SAFETY: sysconf(3) only reads a configuration value.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // Fields after the command name (which may hold spaces) in parentheses; utime and
            // stime are fields 14 and 15 of the whole line.
            let rest = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split(' ').collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) as f64 / ticks_per_second)
        })
        .sum()
}

/// Context switches (voluntary and not) of every thread of the processes `pids` so far; a
/// thread or process that is gone counts nothing. A thread that parks and is woken costs two,
/// so switches per request show how often a request hands work from one thread to another.
pub fn context_switches(pids: &[u32]) -> u64 {
    let mut total = 0;
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
                continue;
            };
            total += status
                .lines()
                .filter(|line| line.contains("ctxt_switches:"))
                .filter_map(|line| line.split(':').nth(1)?.trim().parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    total
}

/// The whole machine's CPU time so far, from the first line of `/proc/stat`: busy and total
/// clock ticks over all CPUs. Busy is everything but idle and I/O wait, so a run that leaves
/// the machine partly idle was held back by waits (a sync, a wake-up) rather than by the CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MachineTicks {
    pub busy: u64,
    pub total: u64,
}

impl MachineTicks {
    /// The machine's ticks now; zero where `/proc/stat` cannot be read.
    pub fn now() -> MachineTicks {
        std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|stat| MachineTicks::parse(&stat))
            .unwrap_or_default()
    }

    /// Reads the `cpu` line: user, nice, system, idle, iowait, irq, softirq, steal (guest time
    /// is already inside user and nice).
    fn parse(stat: &str) -> Option<MachineTicks> {
        let line = stat.lines().find(|line| line.starts_with("cpu "))?;
        let ticks: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|field| field.parse().ok())
            .collect::<Option<_>>()?;
        let total: u64 = ticks.iter().sum();
        let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
        Some(MachineTicks {
            busy: total - idle,
            total,
        })
    }

    /// The share of the machine's CPU time that was busy between `earlier` and `self`, from 0
    /// to 1; `None` when no time passed.
    pub fn busy_since(&self, earlier: &MachineTicks) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total).filter(|&t| t > 0)?;
        Some(self.busy.saturating_sub(earlier.busy) as f64 / total as f64)
    }
}

/// A three-member etcd cluster on loopback ports, killed when dropped.
pub struct EtcdCluster {
    members: Vec<Child>,
    client_urls: Vec<String>,
}

impl EtcdCluster {
    /// Starts `etcd` members under `dir`, each with its own data directory and log file.
    /// Readiness is the caller's to check (with a request), since it needs a client.
    ///
    /// # Errors
    ///
    /// A message when a member cannot be spawned.
    pub fn start(dir: &Path, members: usize) -> Result<EtcdCluster, String> {
        let ports: Vec<(u16, u16)> = (0..members).map(|_| (free_port(), free_port())).collect();
        let initial_cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            members: Vec::new(),
            client_urls: Vec::new(),
        };
        for (i, (client, peer)) in ports.iter().enumerate() {
            let data_dir: PathBuf = dir.join(format!("etcd-m{i}"));
            let log = std::fs::File::create(dir.join(format!("etcd-m{i}.log")))
                .map_err(|e| format!("create etcd log: {e}"))?;
            let client_url = format!("http://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let child = Command::new("etcd")
                .args(["--name", &format!("m{i}")])
                .arg("--data-dir")
                .arg(&data_dir)
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url])
                .args(["--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &initial_cluster])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", "bench"])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("spawn etcd: {e}"))?;
            cluster.members.push(child);
            cluster.client_urls.push(client_url);
        }
        Ok(cluster)
    }

    /// The members' client URLs (`http://127.0.0.1:port`).
    pub fn client_urls(&self) -> &[String] {
        &self.client_urls
    }

    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().map(Child::id).collect()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            let _ = member.kill();
            let _ = member.wait();
        }
    }
}

/// Runs `db_bench --benchmarks=fillrandom --sync=1` with `threads` writers of `value_size`
/// bytes for `seconds` in a directory under `dir`, and returns its writes per second.
///
/// # Errors
///
/// A message when `db_bench` fails or its report cannot be read.
pub fn db_bench_synced_writes(
    dir: &Path,
    threads: usize,
    value_size: usize,
    seconds: u64,
) -> Result<f64, String> {
    let db = dir.join("db_bench");
    let output = Command::new("db_bench")
        .arg("--benchmarks=fillrandom")
        .arg("--sync=1")
        .arg(format!("--threads={threads}"))
        .arg(format!("--value_size={value_size}"))
        .arg(format!("--duration={seconds}"))
        .arg("--num=100000000")
        .arg(format!("--db={}", db.display()))
        .output()
        .map_err(|e| format!("run db_bench: {e}"))?;
    let report = String::from_utf8_lossy(&output.stdout);
    parse_db_bench(&report).ok_or_else(|| {
        format!(
            "no fillrandom line in db_bench's report: {report}{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Reads the ops/sec of the `fillrandom` line of a `db_bench` report, as in
/// `fillrandom   :     1733.062 micros/op 36917 ops/sec 10.001 seconds 369257 operations;`.
fn parse_db_bench(report: &str) -> Option<f64> {
    let line = report.lines().find(|l| l.starts_with("fillrandom"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "ops/sec")?;
    words.get(at.checked_sub(1)?)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn db_bench_report_is_read() {
        let report = "Keys:       16 bytes each\n\
             fillrandom   :    1733.062 micros/op 36917 ops/sec 10.001 seconds 369257 operations;   37.1 MB/s\n";
        assert_eq!(parse_db_bench(report), Some(36917.0));
        assert_eq!(parse_db_bench("nothing here"), None);
    }

    #[test]
    fn machine_ticks_count_all_but_idle_and_io_wait_as_busy() {
        let stat = "cpu  100 10 50 800 40 0 5 0 30 0\ncpu0 50 5 25 400 20 0 2 0 15 0\n";
        let earlier = MachineTicks::parse(stat).unwrap();
        assert_eq!(
            earlier,
            MachineTicks {
                busy: 165,
                total: 1005
            }
        );
        let later = MachineTicks::parse("cpu  200 10 90 860 40 0 5 0 30 0\n").unwrap();
        assert_eq!(later.busy_since(&earlier), Some(140.0 / 200.0));
        assert_eq!(later.busy_since(&later), None);
        assert_eq!(MachineTicks::parse("intr 1 2 3\n"), None);
        assert!(MachineTicks::now().total > 0);
    }

    #[test]
    fn this_process_has_used_some_cpu_and_switched_context() {
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {}
        assert!(cpu_seconds(&[std::process::id()]) > 0.0);
        assert_eq!(cpu_seconds(&[u32::MAX]), 0.0);
        let before = context_switches(&[std::process::id()]);
        // A sleep blocks the thread: at least one voluntary switch.
        std::thread::sleep(Duration::from_millis(1));
        assert!(context_switches(&[std::process::id()]) > before);
        assert_eq!(context_switches(&[u32::MAX]), 0);
    }
}
