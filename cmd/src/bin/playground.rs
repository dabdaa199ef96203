//! playground: PD and three stores on loopback ports, for trying the cluster out.
//!
//! ```text
//! cargo build --locked -p cmd --bins && target/debug/playground --data-dir /tmp/rtikv
//! ```
//!
//! Prints the PD address for clients once every region has a leader, and stops everything on
//! Ctrl-C (data stays under --data-dir; running it again restarts the same cluster).

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
    #[arg(long, default_value_t = 3)]
    stores: usize,
}

fn main() -> ExitCode {
    let flags = Flags::parse();
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
    println!(
        "starting PD and {} stores under {} ...",
        flags.stores,
        flags.data_dir.display()
    );
    let cluster = match LocalCluster::start(&bin_dir, &flags.data_dir, flags.stores, None, &[]) {
        Ok(cluster) => cluster,
        Err(e) => {
            eprintln!("playground: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("cluster is serving");
    println!("PD address: {}", cluster.pd.addr());
    for (i, store) in cluster.stores.iter().enumerate() {
        println!(
            "store {}: {} (status {}), log {}",
            i + 1,
            store.addr(),
            store.status_addr(),
            store.log_path().display()
        );
    }
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
