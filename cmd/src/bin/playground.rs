//! playground: PD and three stores on loopback ports, for trying the cluster out.
//!
//! ```text
//! cargo build --locked -p cmd --bins && target/debug/playground --data-dir /tmp/rtikv
//! target/debug/playground --kv 3 --kv.config etc/tikv.toml --pd.config etc/pd.toml
//! ```
//!
//! Prints the PD address for clients once every region has a leader, and stops everything on
//! Ctrl-C or SIGTERM (data stays under --data-dir; running it again restarts the same cluster).
//! The flags follow `tiup playground`'s where they overlap (`--kv`, `--kv.config`, `--pd.config`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cmd::process::LocalCluster;

/// Starts a local cluster: pd-server and tikv-servers on free loopback ports.
#[derive(Parser, Debug)]
#[command(name = "playground", version)]
struct Flags {
    /// Directory for all data and logs.
    #[arg(long = "data-dir", default_value = "./playground-data")]
    data_dir: PathBuf,
    /// Number of stores.
    #[arg(long, visible_alias = "kv", default_value_t = 3)]
    stores: usize,
    /// Config file for every store (tikv-server --config).
    #[arg(long = "kv.config", visible_alias = "kv-config", value_name = "FILE")]
    kv_config: Option<PathBuf>,
    /// Config file for PD (pd-server --config).
    #[arg(long = "pd.config", visible_alias = "pd-config", value_name = "FILE")]
    pd_config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let mut flags = Flags::parse();
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
        flags.data_dir.display()
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
    let cluster = match LocalCluster::start(
        &bin_dir,
        &flags.data_dir,
        flags.stores,
        flags.pd_config.as_deref(),
        &tikv_args,
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
