//! playground: PD and three stores on loopback ports, for trying the cluster out.
//!
//! ```text
//! cargo build --release --locked -p cmd --bins && target/release/playground
//! target/release/playground --kv 3 --kv.config etc/tikv.toml --pd.config etc/pd.toml
//! target/release/playground --pd-port 0 --kv-port 0     # free ports, beside another cluster
//! ```
//!
//! As `tiup playground`: PD at 127.0.0.1:2379 and the stores at 20160, 20161, ... (status ports
//! 20180, 20181, ...). Prints the addresses once every region has a leader, and stops everything
//! on Ctrl-C or SIGTERM (data and logs stay under the data directory; running it again with the
//! same one restarts the same cluster). The flags follow tiup's where they overlap (`--kv`,
//! `--kv.config`, `--pd.config`, `--tag`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cmd::process::{LocalCluster, Ports};

/// Starts a local cluster: pd-server and tikv-servers on loopback ports.
#[derive(Parser, Debug)]
#[command(name = "playground", version)]
struct Flags {
    /// Directory for all data and logs [default: ./playground-data, or
    /// ./playground-data/TAG with --tag].
    #[arg(long = "data-dir")]
    data_dir: Option<PathBuf>,
    /// Names the cluster: its data goes to ./playground-data/TAG unless --data-dir is given.
    #[arg(long)]
    tag: Option<String>,
    /// Number of stores.
    #[arg(long, visible_alias = "kv", default_value_t = 3)]
    stores: usize,
    /// PD's client port (its peer port is the next one); 0 takes free ports.
    #[arg(long = "pd-port", default_value_t = Ports::TIUP.pd.unwrap_or_default())]
    pd_port: u16,
    /// The first store's port (the next stores take the ports after it, their status ports
    /// start 20 higher); 0 takes free ports.
    #[arg(long = "kv-port", default_value_t = Ports::TIUP.tikv.unwrap_or_default())]
    kv_port: u16,
    /// Config file for every store (tikv-server --config).
    #[arg(long = "kv.config", visible_alias = "kv-config", value_name = "FILE")]
    kv_config: Option<PathBuf>,
    /// Config file for PD (pd-server --config).
    #[arg(long = "pd.config", visible_alias = "pd-config", value_name = "FILE")]
    pd_config: Option<PathBuf>,
}

impl Flags {
    fn data_dir(&self) -> PathBuf {
        let root = PathBuf::from("./playground-data");
        match (&self.data_dir, &self.tag) {
            (Some(dir), _) => dir.clone(),
            (None, Some(tag)) => root.join(tag),
            (None, None) => root,
        }
    }

    fn ports(&self) -> Ports {
        let fixed = |port: u16| (port != 0).then_some(port);
        let status_offset = STATUS_OFFSET.unwrap_or_default();
        Ports {
            pd: fixed(self.pd_port),
            tikv: fixed(self.kv_port),
            tikv_status: fixed(self.kv_port).map(|port| port.saturating_add(status_offset)),
        }
    }
}

/// How far above a store's port its status port is: 20, as tiup's 20160 and 20180.
const STATUS_OFFSET: Option<u16> = match (Ports::TIUP.tikv, Ports::TIUP.tikv_status) {
    (Some(port), Some(status)) => Some(status - port),
    _ => None,
};

/// Returns an error naming the first of `ports` that two servers would share, or that another
/// process holds on loopback.
fn check_ports_free(ports: &[(u16, String)]) -> Result<(), String> {
    for (i, (port, what)) in ports.iter().enumerate() {
        if let Some((_, other)) = ports[..i].iter().find(|(p, _)| p == port) {
            return Err(format!(
                "{other} and {what} would both be 127.0.0.1:{port}; choose ports further apart \
                 with --pd-port / --kv-port (store i takes --kv-port + i, its status port 20 more)"
            ));
        }
    }
    for (port, what) in ports {
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", *port)) {
            return Err(format!(
                "{what} 127.0.0.1:{port} is not available ({e}): is another playground, PD or \
                 TiKV running? Stop it, or choose other ports with --pd-port / --kv-port \
                 (0 takes free ports)"
            ));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut flags = Flags::parse();
    let data_dir = flags.data_dir();
    let ports = flags.ports();
    if let Err(e) = check_ports_free(&ports.fixed(flags.stores)) {
        eprintln!("playground: {e}");
        return ExitCode::FAILURE;
    }
    let bin_dir = match std::env::current_exe() {
        Ok(exe) => exe.parent().map(PathBuf::from).unwrap_or_default(),
        Err(e) => {
            eprintln!("playground: cannot locate its own binary: {e}");
            return ExitCode::FAILURE;
        }
    };
    for binary in ["pd-server", "tikv-server"] {
        if !bin_dir.join(binary).exists() {
            eprintln!(
                "playground: {binary} not found next to playground in {}; build it with `cargo build --locked -p cmd --bins`",
                bin_dir.display()
            );
            return ExitCode::FAILURE;
        }
    }
    // The servers run in this directory too, but absolute paths make their logs unambiguous.
    let mut config_paths = [&mut flags.kv_config, &mut flags.pd_config];
    for path in config_paths.iter_mut().filter_map(|p| p.as_mut()) {
        match std::fs::canonicalize(&**path) {
            Ok(absolute) => *path = absolute,
            Err(e) => {
                eprintln!("playground: config file {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "starting PD and {} stores under {} ...",
        flags.stores,
        data_dir.display()
    );
    let tikv_args: Vec<&str> = match &flags.kv_config {
        Some(path) => match path.to_str() {
            Some(path) => vec!["--config", path],
            None => {
                eprintln!("playground: --kv.config path is not UTF-8");
                return ExitCode::FAILURE;
            }
        },
        None => Vec::new(),
    };
    let cluster = match LocalCluster::start_on(
        &bin_dir,
        &data_dir,
        flags.stores,
        flags.pd_config.as_deref(),
        &tikv_args,
        ports,
    ) {
        Ok(cluster) => cluster,
        Err(e) => {
            eprintln!("playground: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("cluster is serving");
    println!("pd: log {}", cluster.pd.log_path().display());
    for (i, store) in cluster.stores.iter().enumerate() {
        println!(
            "store {}: {} (status {}), log {}",
            i + 1,
            store.addr(),
            store.status_addr(),
            store.log_path().display()
        );
    }
    println!("dashboard: http://{}/dashboard", cluster.pd.addr());
    println!(
        "metrics: PD http://{}/metrics, stores' status ports /metrics (etc/prometheus.yml, \
         etc/grafana/rtikv-cluster.json)",
        cluster.pd.addr()
    );
    // Last, so that a script waiting for this line finds everything above already printed.
    println!("PD address: {}", cluster.pd.addr());
    println!("press Ctrl-C to stop");
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("playground: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(cmd::shutdown_signal());
    let mut cluster = cluster;
    for store in &mut cluster.stores {
        store.stop();
    }
    cluster.pd.stop();
    println!("stopped");
    ExitCode::SUCCESS
}
