//! tikv-server: one store of the cluster.
//!
//! ```text
//! tikv-server --pd 127.0.0.1:2379 --addr 127.0.0.1:20160 --status-addr 127.0.0.1:20180 \
//!             --data-dir /var/lib/tikv
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use server::config::LoadedConfig;
use server::Config;

/// jemalloc, as TiKV links it: per-thread caches for the many small, short-lived buffers of
/// messages, entries and write batches that cross the pollers.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A store of a TiKV-compatible cluster: replicated raw KV over multi-raft.
#[derive(Parser, Debug)]
#[command(name = "tikv-server", version)]
struct Flags {
    /// TOML config file, which may be one written for TiKV; flags override it (see
    /// etc/tikv.toml).
    #[arg(short = 'C', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// PD endpoints, comma-separated [default: 127.0.0.1:2379].
    #[arg(
        long = "pd-endpoints",
        visible_alias = "pd",
        value_name = "ADDRS",
        value_delimiter = ','
    )]
    pd_endpoints: Option<Vec<String>>,
    /// Address to listen on [default: 127.0.0.1:20160].
    #[arg(short = 'A', long = "addr", value_name = "ADDR")]
    addr: Option<String>,
    /// Address advertised to PD, clients and other stores [default: --addr].
    #[arg(long = "advertise-addr", value_name = "ADDR")]
    advertise_addr: Option<String>,
    /// Address of the status server (/metrics, /status) [default: 127.0.0.1:20180].
    #[arg(long = "status-addr", value_name = "ADDR")]
    status_addr: Option<String>,
    /// Directory for data and raft logs [default: ./tikv-data].
    #[arg(short = 's', long = "data-dir", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    log: cmd::LogFlags,
}

impl Flags {
    /// The config to run with, and the TiKV keys in its file that have no effect here.
    fn into_config(self) -> Result<LoadedConfig, String> {
        let mut loaded = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => LoadedConfig {
                config: Config::default(),
                ignored: Vec::new(),
            },
        };
        let config = &mut loaded.config;
        if let Some(endpoints) = self.pd_endpoints {
            config.pd.endpoints = endpoints;
        }
        if let Some(addr) = self.addr {
            config.server.addr = addr;
        }
        if let Some(addr) = self.advertise_addr {
            config.server.advertise_addr = addr;
        }
        if let Some(addr) = self.status_addr {
            config.server.status_addr = addr;
        }
        if let Some(dir) = self.data_dir {
            config.storage.data_dir = dir;
        }
        self.log
            .apply(&mut config.log.file.filename, &mut config.log.level);
        Ok(loaded)
    }
}

fn main() -> ExitCode {
    cmd::server_main(
        "tikv-server",
        Flags::parse().into_config(),
        |loaded: &LoadedConfig| {
            let log = &loaded.config.log;
            (log.level.clone(), log.file.filename.clone())
        },
        |loaded| Some(loaded.config.server.grpc_threads()),
        |loaded| {
            // Logging is up by now; each TiKV key without effect is named once.
            for ignored in &loaded.ignored {
                tracing::warn!(
                    key = %ignored.key,
                    reason = ignored.reason,
                    "config key is accepted but not used by this store"
                );
            }
            server::run(loaded.config, cmd::shutdown_signal())
        },
    )
}
