//! Starting and stopping server processes on loopback ports: used by the end-to-end tests, the
//! benchmarks and the playground.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a process may take to start serving.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The `[raftstore]` setting of tests that crash, pause and partition stores over and over:
/// 200 ms raft ticks, so that a lost leader is replaced after 2-4 s rather than TiKV's default
/// 10-20 s and a run of a few minutes goes through many elections.
pub const FAST_ELECTIONS: &str = "raft-base-tick-interval = \"200ms\"\n";

/// Returns a loopback port that was free a moment ago.
///
/// # Panics
///
/// If the OS has no free port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral loopback port")
        .port()
}

/// The ports of a local cluster. `None` takes free ports (tests and benchmarks run many
/// clusters side by side); the playground gives tiup's fixed ones.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ports {
    /// PD's client port; its peer port is the next one.
    pub pd: Option<u16>,
    /// The first store's port; store `i` (from 0) listens on `tikv + i`.
    pub tikv: Option<u16>,
    /// The first store's status port, numbered as `tikv`.
    pub tikv_status: Option<u16>,
}

impl Ports {
    /// `tiup playground`'s: PD at 2379 (peers 2380), stores at 20160, 20161, ... with status
    /// ports 20180, 20181, ...
    pub const TIUP: Ports = Ports {
        pd: Some(2379),
        tikv: Some(20160),
        tikv_status: Some(20180),
    };

    /// Every fixed port a cluster of `stores` stores would listen on, with what it is for.
    /// (Two uses of one port show up as that port twice.)
    pub fn fixed(&self, stores: usize) -> Vec<(u16, String)> {
        let mut ports = Vec::new();
        if let Some(pd) = self.pd {
            ports.push((pd, "PD client port".to_string()));
            ports.push((pd.saturating_add(1), "PD peer port".to_string()));
        }
        for i in 0..stores {
            if let Some(port) = self.tikv_port(i) {
                ports.push((port, format!("store {} port", i + 1)));
            }
            if let Some(port) = self.tikv_status_port(i) {
                ports.push((port, format!("store {} status port", i + 1)));
            }
        }
        ports
    }

    fn tikv_port(&self, index: usize) -> Option<u16> {
        self.tikv.map(|base| base.saturating_add(index as u16))
    }

    fn tikv_status_port(&self, index: usize) -> Option<u16> {
        self.tikv_status
            .map(|base| base.saturating_add(index as u16))
    }
}

/// Where a server process runs: the address it listens on, the network namespace it runs in
/// (a name under `/var/run/netns`, as `ip netns` makes them), and extra environment variables.
/// The default is loopback in this process's namespace.
#[derive(Clone, Debug)]
pub struct Placement {
    pub host: String,
    pub netns: Option<String>,
    pub env: Vec<(String, String)>,
}

impl Default for Placement {
    fn default() -> Self {
        Placement {
            host: "127.0.0.1".into(),
            netns: None,
            env: Vec::new(),
        }
    }
}

/// What a server process of either kind has: the child, its binary, where it runs, and the
/// file collecting its log and standard error. Killed when dropped.
struct ServerProcess {
    name: &'static str,
    binary: PathBuf,
    placement: Placement,
    log_path: PathBuf,
    child: Option<Child>,
}

impl ServerProcess {
    fn new(name: &'static str, binary: &Path, placement: Placement, log_path: PathBuf) -> Self {
        ServerProcess {
            name,
            binary: binary.to_path_buf(),
            placement,
            log_path,
            child: None,
        }
    }

    /// Spawns the binary with `args` unless it is running, then waits until `ready` holds.
    fn start(
        &mut self,
        args: Vec<OsString>,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), String> {
        self.exited();
        if self.child.is_some() {
            return Ok(());
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| format!("open {}: {e}", self.log_path.display()))?;
        let mut command = Command::new(&self.binary);
        die_with_parent(&mut command);
        // Held open until the child is spawned: it enters the namespace through this file.
        let _netns = match &self.placement.netns {
            Some(name) => Some(enter_netns(&mut command, name)?),
            None => None,
        };
        let child = command
            .args(args)
            .envs(self.placement.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.binary.display()))?;
        let child = self.child.insert(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if ready() {
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(format!(
                    "{} exited with {status}: {}",
                    self.name,
                    self.log_tail()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not serve within {START_TIMEOUT:?}: {}",
                    self.name,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// If the process exited (by itself: a kill reaps it at once), reaps it and returns how.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the process, as a long GC pause or a stalled VM
    /// would; a stopped process holds its ports and answers nothing.
    fn pause(&self, paused: bool) {
        if let Some(child) = &self.child {
            signal(child, if paused { libc::SIGSTOP } else { libc::SIGCONT });
        }
    }

    fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        terminate(&child);
        child.wait().map(|s| s.success()).unwrap_or(false)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Implements the methods both process kinds expose from their `ServerProcess`.
macro_rules! server_process_methods {
    () => {
        /// Path of the file that collects the process's log and standard error.
        pub fn log_path(&self) -> PathBuf {
            self.process.log_path.clone()
        }

        pub fn is_running(&self) -> bool {
            self.process.child.is_some()
        }

        /// The process id while it runs.
        pub fn pid(&self) -> Option<u32> {
            self.process.child.as_ref().map(Child::id)
        }

        /// If the process exited since it was started (crashed, or stopped itself), reaps it
        /// and returns its exit status; a later `restart` starts it again.
        pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
            self.process.exited()
        }

        /// Returns the last lines of the log.
        pub fn log_tail(&self) -> String {
            self.process.log_tail()
        }

        /// Kills the process with SIGKILL, as a crash would, and reaps it.
        pub fn kill(&mut self) {
            self.process.kill();
        }

        /// Freezes the process with SIGSTOP until [`Self::resume`].
        pub fn pause(&self) {
            self.process.pause(true);
        }

        /// Thaws a process frozen by [`Self::pause`].
        pub fn resume(&self) {
            self.process.pause(false);
        }

        /// Stops the process with SIGTERM and waits for it to exit; returns whether it
        /// exited cleanly (status 0).
        pub fn stop(&mut self) -> bool {
            self.process.stop()
        }
    };
}

/// A running `pd-server`, killed when dropped.
pub struct PdProcess {
    process: ServerProcess,
    data_dir: PathBuf,
    port: u16,
    /// Fixed peer port, or a free one at each start.
    peer_port: Option<u16>,
    config: Option<PathBuf>,
}

impl PdProcess {
    /// Starts `binary` with its data in `data_dir`, listening on a free port, and waits until
    /// it answers HTTP health checks.
    ///
    /// # Errors
    ///
    /// A message with the end of the process's output if it exits or does not come up.
    pub fn start(binary: &Path, data_dir: &Path) -> Result<PdProcess, String> {
        Self::start_with_config(binary, data_dir, None)
    }

    /// As [`PdProcess::start`], with a config file.
    ///
    /// # Errors
    ///
    /// As [`PdProcess::start`].
    pub fn start_with_config(
        binary: &Path,
        data_dir: &Path,
        config: Option<&Path>,
    ) -> Result<PdProcess, String> {
        Self::start_placed(binary, data_dir, config, Placement::default())
    }

    /// As [`PdProcess::start_with_config`], listening on `placement`'s host in its namespace.
    ///
    /// # Errors
    ///
    /// As [`PdProcess::start`].
    pub fn start_placed(
        binary: &Path,
        data_dir: &Path,
        config: Option<&Path>,
        placement: Placement,
    ) -> Result<PdProcess, String> {
        Self::start_on(binary, data_dir, config, placement, None)
    }

    /// As [`PdProcess::start_placed`], on the client port `port` (and the next one for peers)
    /// when given.
    ///
    /// # Errors
    ///
    /// As [`PdProcess::start`].
    pub fn start_on(
        binary: &Path,
        data_dir: &Path,
        config: Option<&Path>,
        placement: Placement,
        port: Option<u16>,
    ) -> Result<PdProcess, String> {
        let log_path = data_dir.with_extension("log");
        let mut pd = PdProcess {
            process: ServerProcess::new("pd-server", binary, placement, log_path),
            data_dir: data_dir.to_path_buf(),
            port: port.unwrap_or_else(free_port),
            peer_port: port.map(|p| p.saturating_add(1)),
            config: config.map(Path::to_path_buf),
        };
        pd.restart()?;
        Ok(pd)
    }

    /// `host:port` of the client URL.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.process.placement.host, self.port)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    server_process_methods!();

    /// Starts the process again (same port, same data) if it is not running.
    ///
    /// # Errors
    ///
    /// As [`PdProcess::start`].
    pub fn restart(&mut self) -> Result<(), String> {
        let mut args: Vec<OsString> = Vec::new();
        if let Some(config) = &self.config {
            args.extend(["--config".into(), config.into()]);
        }
        args.extend([
            "--name".into(),
            "pd".into(),
            "--data-dir".into(),
            self.data_dir.clone().into(),
            "--client-urls".into(),
            format!("http://{}", self.addr()).into(),
            "--peer-urls".into(),
            format!(
                "http://{}:{}",
                self.process.placement.host,
                self.peer_port.unwrap_or_else(free_port)
            )
            .into(),
        ]);
        let addr = self.addr();
        self.process.start(args, || {
            matches!(http_get(&addr, "/pd/api/v1/health"), Ok((200, _)))
        })
    }
}

/// Makes the spawned process die with the process (thread) that started it, so a crashed
/// test or playground leaves no servers behind.
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl(2) is async-signal-safe and only changes the child's own attributes.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Makes the spawned process join the network namespace `name` (made by `ip netns add`);
/// returns the namespace's file, which must stay open until the process is spawned.
fn enter_netns(command: &mut Command, name: &str) -> Result<File, String> {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let path = Path::new("/var/run/netns").join(name);
    let file = File::open(&path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let fd = file.as_raw_fd();
    // SAFETY: setns(2) is async-signal-safe; it moves only the child into the namespace, through
    // a descriptor the parent keeps open until the spawn returns.
    unsafe {
        command.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    Ok(file)
}

/// Sends SIGTERM to `child`.
pub fn terminate(child: &Child) {
    signal(child, libc::SIGTERM);
}

/// Sends `signal` to a child process.
fn signal(child: &Child, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a pid we spawned and have not reaped; it only sends a signal.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Sends an HTTP/1.1 request and returns the status code and body.
///
/// # Errors
///
/// A connection or protocol error.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let response = read_response(&mut stream)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed HTTP response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(bad)?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(bad)?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

/// Reads an HTTP response: up to its `Content-Length` if it has one (some servers keep the
/// connection open whatever the request asked), else to the end of the stream.
fn read_response(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut response = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse::<usize>().ok());
            if length.is_some_and(|length| response.len() >= end + 4 + length) {
                break;
            }
        }
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..read]);
    }
    String::from_utf8(response).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// `GET` shorthand for [`http_request`].
///
/// # Errors
///
/// As [`http_request`].
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    http_request(addr, "GET", path, "")
}

/// `GET path` from the PD at `pd`, parsed as JSON; `None` unless PD answers 200 with JSON.
fn pd_json(pd: &str, path: &str) -> Option<serde_json::Value> {
    let (status, body) = http_get(pd, path).ok()?;
    (status == 200).then(|| serde_json::from_str(&body).ok())?
}

/// The regions the PD at `pd` knows (`{"count": .., "regions": [..]}`).
pub fn pd_regions(pd: &str) -> Option<serde_json::Value> {
    pd_json(pd, "/pd/api/v1/regions")
}

/// The PD at `pd`'s view of the region holding `key`, in PD's key space (raw keys as they
/// are, transactional keys memcomparable-encoded).
pub fn pd_region_of(pd: &str, key: &[u8]) -> Option<serde_json::Value> {
    let hex = pd_server::cluster::hex_upper(key);
    pd_json(pd, &format!("/pd/api/v1/region/key/{hex}?format=hex"))
}

/// A PD config that turns PD's leader balancer off, for tests that place leaders themselves
/// (a balancer could move them back before the test looks).
pub const PD_WITHOUT_LEADER_BALANCE: &str = "[schedule]\nleader-schedule-limit = 0\n";

/// How many regions each store leads, as the PD at `pd` shows them (`/pd/api/v1/stores`).
pub fn pd_leader_counts(pd: &str) -> Option<Vec<u64>> {
    let stores = pd_json(pd, "/pd/api/v1/stores")?;
    stores["stores"]
        .as_array()?
        .iter()
        .map(|s| s["status"]["leader_count"].as_u64())
        .collect()
}

/// The address the PD at `pd` has for store `store_id`.
pub fn pd_store_address(pd: &str, store_id: u64) -> Option<String> {
    let store = pd_json(pd, &format!("/pd/api/v1/store/{store_id}"))?;
    Some(store["store"]["address"].as_str()?.to_string())
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Waits until `condition` holds, checking every 50 ms, for at most `timeout`.
///
/// # Errors
///
/// A message naming `what` on timeout.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A running `tikv-server`, killed when dropped.
pub struct TikvProcess {
    process: ServerProcess,
    data_dir: PathBuf,
    pd_addr: String,
    port: u16,
    status_port: u16,
    extra_args: Vec<String>,
}

impl TikvProcess {
    /// Starts a store against `pd_addr` with its data in `data_dir` on free ports, and waits
    /// until PD lists it.
    ///
    /// # Errors
    ///
    /// A message with the end of the log if it exits or does not register in time.
    pub fn start(
        binary: &Path,
        data_dir: &Path,
        pd_addr: &str,
        extra_args: &[&str],
    ) -> Result<TikvProcess, String> {
        Self::start_placed(binary, data_dir, pd_addr, extra_args, Placement::default())
    }

    /// As [`TikvProcess::start`], listening on `placement`'s host in its namespace.
    ///
    /// # Errors
    ///
    /// As [`TikvProcess::start`].
    pub fn start_placed(
        binary: &Path,
        data_dir: &Path,
        pd_addr: &str,
        extra_args: &[&str],
        placement: Placement,
    ) -> Result<TikvProcess, String> {
        Self::start_on(
            binary,
            data_dir,
            pd_addr,
            extra_args,
            placement,
            (None, None),
        )
    }

    /// As [`TikvProcess::start_placed`], on the given port and status port where they are
    /// `Some`.
    ///
    /// # Errors
    ///
    /// As [`TikvProcess::start`].
    pub fn start_on(
        binary: &Path,
        data_dir: &Path,
        pd_addr: &str,
        extra_args: &[&str],
        placement: Placement,
        (port, status_port): (Option<u16>, Option<u16>),
    ) -> Result<TikvProcess, String> {
        let log_path = data_dir.with_extension("log");
        let mut tikv = TikvProcess {
            process: ServerProcess::new("tikv-server", binary, placement, log_path),
            data_dir: data_dir.to_path_buf(),
            pd_addr: pd_addr.to_string(),
            port: port.unwrap_or_else(free_port),
            status_port: status_port.unwrap_or_else(free_port),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        };
        tikv.restart()?;
        Ok(tikv)
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.process.placement.host, self.port)
    }

    pub fn status_addr(&self) -> String {
        format!("{}:{}", self.process.placement.host, self.status_port)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    server_process_methods!();

    /// Starts the store again (same ports and data) if it is not running.
    ///
    /// # Errors
    ///
    /// As [`TikvProcess::start`].
    pub fn restart(&mut self) -> Result<(), String> {
        let mut args: Vec<OsString> = vec![
            "--pd".into(),
            self.pd_addr.clone().into(),
            "--addr".into(),
            self.addr().into(),
            "--status-addr".into(),
            self.status_addr().into(),
            "--data-dir".into(),
            self.data_dir.clone().into(),
        ];
        args.extend(self.extra_args.iter().map(OsString::from));
        let (addr, pd_addr, status_addr) = (self.addr(), self.pd_addr.clone(), self.status_addr());
        self.process.start(args, || {
            let registered = http_get(&pd_addr, "/pd/api/v1/stores").is_ok_and(|(status, body)| {
                status == 200 && body.contains(&format!("\"address\":\"{addr}\""))
            });
            registered && matches!(http_get(&status_addr, "/status"), Ok((200, _)))
        })
    }
}

/// The config of `stores` stores that share this machine (the local cluster's, unless the caller
/// brings its own): each store's runtime gets its share of the CPUs (`server.grpc-concurrency`),
/// not one thread per CPU.
pub fn colocated_tikv_config(stores: usize) -> String {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cpus / stores.max(1)).max(1);
    format!(
        "# Written by the local cluster: its {stores} stores share this machine's {cpus} CPUs.\n\
         [server]\ngrpc-concurrency = {threads}\n"
    )
}

/// The config of `stores` colocated stores under faults: their share of the CPUs
/// ([`colocated_tikv_config`]), many elections in a run of minutes ([`FAST_ELECTIONS`]), and
/// [`FAST_STALE_CHECKS`].
pub fn colocated_fault_tikv_config(stores: usize) -> String {
    format!(
        "{}[raftstore]\n{FAST_ELECTIONS}{FAST_STALE_CHECKS}",
        colocated_tikv_config(stores)
    )
}

/// Replicas that hear from no leader for 3 s ask PD whether they are still members of their
/// regions (the default is 2 h), so that under faults, which last seconds, the replicas cut
/// off, paused or restarted take the path that may destroy a replica while the workloads'
/// checkers watch.
pub const FAST_STALE_CHECKS: &str = "peer-stale-state-check-interval = \"1s\"\n\
     abnormal-leader-missing-duration = \"2s\"\n\
     max-leader-missing-duration = \"3s\"\n";

/// PD and its stores on loopback ports, all under one directory.
pub struct LocalCluster {
    pub pd: PdProcess,
    pub stores: Vec<TikvProcess>,
    dir: PathBuf,
    bin_dir: PathBuf,
    tikv_args: Vec<String>,
    ports: Ports,
}

impl LocalCluster {
    /// Starts PD and `stores` stores from the binaries in `bin_dir`, and waits until every
    /// region has a leader.
    ///
    /// # Errors
    ///
    /// A message naming the process that failed and why.
    pub fn start(
        bin_dir: &Path,
        dir: &Path,
        stores: usize,
        pd_config: Option<&Path>,
        tikv_args: &[&str],
    ) -> Result<LocalCluster, String> {
        Self::start_on(bin_dir, dir, stores, pd_config, tikv_args, Ports::default())
    }

    /// As [`LocalCluster::start`], on `ports`.
    ///
    /// # Errors
    ///
    /// As [`LocalCluster::start`].
    pub fn start_on(
        bin_dir: &Path,
        dir: &Path,
        stores: usize,
        pd_config: Option<&Path>,
        tikv_args: &[&str],
        ports: Ports,
    ) -> Result<LocalCluster, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let mut tikv_args: Vec<String> = tikv_args.iter().map(|s| s.to_string()).collect();
        if !tikv_args.iter().any(|arg| arg == "--config") {
            let path = dir.join("tikv-colocated.toml");
            std::fs::write(&path, colocated_tikv_config(stores))
                .map_err(|e| format!("write {}: {e}", path.display()))?;
            tikv_args.extend(["--config".into(), path.to_string_lossy().into_owned()]);
        }
        let pd = PdProcess::start_on(
            &bin_dir.join("pd-server"),
            &dir.join("pd"),
            pd_config,
            Placement::default(),
            ports.pd,
        )?;
        let mut cluster = LocalCluster {
            pd,
            stores: Vec::new(),
            dir: dir.to_path_buf(),
            bin_dir: bin_dir.to_path_buf(),
            tikv_args,
            ports,
        };
        for _ in 0..stores {
            cluster.add_store()?;
        }
        cluster.wait_until_serving(START_TIMEOUT)?;
        Ok(cluster)
    }

    /// Starts PD and `stores` stores as [`LocalCluster::start`] does, with config files written
    /// under `dir` from `pd_config` (if any) and `tikv_config`, and waits up to `timeout` until
    /// every region has `min(stores, 3)` replicas.
    ///
    /// # Errors
    ///
    /// As [`LocalCluster::start`], or a timeout message with PD's view of the regions.
    pub fn start_configured(
        bin_dir: &Path,
        dir: &Path,
        stores: usize,
        pd_config: Option<&str>,
        tikv_config: &str,
        timeout: Duration,
    ) -> Result<LocalCluster, String> {
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text)
                .map(|()| path)
                .map_err(|e| format!("write {name}: {e}"))
        };
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let tikv = write("tikv.toml", tikv_config)?;
        let pd = pd_config.map(|text| write("pd.toml", text)).transpose()?;
        let tikv = tikv.to_str().ok_or("config path is not UTF-8")?;
        let cluster = LocalCluster::start(
            bin_dir,
            &dir.join("cluster"),
            stores,
            pd.as_deref(),
            &["--config", tikv],
        )?;
        cluster
            .wait_for_replicas(stores.min(3), timeout)
            .map_err(|e| format!("{e}: {:?}", cluster.regions_json()))?;
        Ok(cluster)
    }

    /// Starts one more store.
    ///
    /// # Errors
    ///
    /// As [`TikvProcess::start`].
    pub fn add_store(&mut self) -> Result<(), String> {
        let index = self.stores.len();
        let args: Vec<&str> = self.tikv_args.iter().map(String::as_str).collect();
        let store = TikvProcess::start_on(
            &self.bin_dir.join("tikv-server"),
            &self.dir.join(format!("tikv{}", index + 1)),
            &self.pd.addr(),
            &args,
            Placement::default(),
            (
                self.ports.tikv_port(index),
                self.ports.tikv_status_port(index),
            ),
        )?;
        self.stores.push(store);
        Ok(())
    }

    /// PD's view of the regions, as JSON.
    pub fn regions_json(&self) -> Option<serde_json::Value> {
        pd_regions(&self.pd.addr())
    }

    /// Waits until PD knows at least one region and every region has a leader.
    ///
    /// # Errors
    ///
    /// A timeout message.
    pub fn wait_until_serving(&self, timeout: Duration) -> Result<(), String> {
        wait_until("every region to have a leader", timeout, || {
            self.regions_with_leaders().is_some_and(|count| count > 0)
        })
    }

    /// How many regions PD knows, if every one of them has a leader.
    fn regions_with_leaders(&self) -> Option<u64> {
        let regions = self.regions_json()?;
        let all_led = regions["regions"]
            .as_array()
            .is_some_and(|list| list.iter().all(|r| !r["leader"].is_null()));
        all_led.then(|| regions["count"].as_u64().unwrap_or(0))
    }

    /// Waits until every region has `replicas` peers.
    ///
    /// # Errors
    ///
    /// A timeout message.
    pub fn wait_for_replicas(&self, replicas: usize, timeout: Duration) -> Result<(), String> {
        wait_until(
            &format!("every region to have {replicas} replicas"),
            timeout,
            || {
                self.regions_json().is_some_and(|regions| {
                    regions["regions"].as_array().is_some_and(|list| {
                        !list.is_empty()
                            && list.iter().all(|r| {
                                r["peers"].as_array().map_or(0, Vec::len) == replicas
                                    && !r["leader"].is_null()
                            })
                    })
                })
            },
        )
    }

    /// Waits until PD knows `count` regions, each with a leader.
    ///
    /// # Errors
    ///
    /// A message naming what was awaited, after `timeout`.
    pub fn wait_for_regions(&self, count: u64, timeout: Duration) -> Result<(), String> {
        wait_until(&format!("{count} regions with leaders"), timeout, || {
            self.regions_with_leaders() == Some(count)
        })
    }
}

impl LocalCluster {
    /// Returns the index in `stores` of the store PD knows as `store_id`.
    pub fn store_index(&self, store_id: u64) -> Option<usize> {
        let address = pd_store_address(&self.pd.addr(), store_id)?;
        self.stores.iter().position(|s| s.addr() == address)
    }

    /// The process ids of PD and the running stores (for CPU accounting in the benchmarks).
    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(self.pd.pid())
            .chain(self.stores.iter().map(TikvProcess::pid))
            .flatten()
            .collect()
    }

    /// The sum over every store's `/metrics` of the samples of `metric` whose labels contain
    /// `label` (for example `tag="deleted"`); stores that do not answer count nothing.
    pub fn metric_total(&self, metric: &str, label: &str) -> f64 {
        let prefix = format!("{metric}{{");
        self.stores
            .iter()
            .filter_map(|store| http_get(&store.status_addr(), "/metrics").ok())
            .map(|(_, body)| {
                body.lines()
                    .filter(|line| line.starts_with(&prefix) && line.contains(label))
                    .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum::<f64>()
            })
            .sum()
    }

    /// Returns the store id of the leader of the region holding `key` (raw, PD key space).
    pub fn leader_store_of(&self, key: &[u8]) -> Option<u64> {
        pd_region_of(&self.pd.addr(), key)?["leader"]["store_id"].as_u64()
    }
}
