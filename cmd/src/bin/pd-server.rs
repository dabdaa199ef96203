//! pd-server: the placement driver.
//!
//! ```text
//! pd-server --name pd --data-dir /var/lib/pd --client-urls http://127.0.0.1:2379
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use pd_server::config::LoadedConfig;
use pd_server::{Config, Server};

/// The placement driver of a TiKV-compatible cluster: timestamps, IDs, cluster metadata,
/// keyspaces and scheduling. gRPC and the HTTP API share the client port.
#[derive(Parser, Debug)]
#[command(name = "pd-server", version)]
struct Flags {
    /// TOML config file, which may be one written for PD; flags override it (see
    /// etc/pd.toml).
    #[arg(long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Human-readable name of this member [default: pd].
    #[arg(long)]
    name: Option<String>,
    /// Directory for metadata [default: default.<name>].
    #[arg(long = "data-dir", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Comma-separated URLs to listen on for clients [default: http://127.0.0.1:2379].
    #[arg(long = "client-urls", value_name = "URLS")]
    client_urls: Option<String>,
    /// URLs advertised to clients [default: --client-urls].
    #[arg(long = "advertise-client-urls", value_name = "URLS")]
    advertise_client_urls: Option<String>,
    /// URLs for other PD members [default: http://127.0.0.1:2380].
    #[arg(long = "peer-urls", value_name = "URLS")]
    peer_urls: Option<String>,
    /// URLs advertised to other PD members [default: --peer-urls].
    #[arg(long = "advertise-peer-urls", value_name = "URLS")]
    advertise_peer_urls: Option<String>,
    #[command(flatten)]
    log: cmd::LogFlags,
}

impl Flags {
    /// The config to run with, and the PD keys in its file that have no effect here.
    fn into_config(self) -> Result<LoadedConfig, String> {
        let mut loaded = match &self.config {
            Some(path) => Config::from_file(path).map_err(|e| e.to_string())?,
            None => LoadedConfig {
                config: Config::default(),
                ignored: Vec::new(),
            },
        };
        let config = &mut loaded.config;
        let set = |target: &mut String, value: Option<String>| {
            if let Some(value) = value {
                *target = value;
            }
        };
        set(&mut config.name, self.name);
        set(&mut config.client_urls, self.client_urls);
        set(
            &mut config.advertise_client_urls,
            self.advertise_client_urls,
        );
        set(&mut config.peer_urls, self.peer_urls);
        set(&mut config.advertise_peer_urls, self.advertise_peer_urls);
        self.log
            .apply(&mut config.log.file.filename, &mut config.log.level);
        if let Some(dir) = self.data_dir {
            config.data_dir = dir;
        }
        Ok(loaded)
    }
}

fn main() -> ExitCode {
    cmd::server_main(
        "pd-server",
        Flags::parse().into_config(),
        |loaded: &LoadedConfig| {
            let log = &loaded.config.log;
            (log.level.clone(), log.file.filename.clone())
        },
        |_| None,
        |loaded| async move {
            // Logging is up by now; each PD key without effect is named once.
            for ignored in &loaded.ignored {
                tracing::warn!(
                    key = %ignored.key,
                    reason = ignored.reason,
                    "config key is accepted but not used by this PD"
                );
            }
            let server = Server::open(loaded.config).await?;
            server.run(cmd::shutdown_signal()).await
        },
    )
}
