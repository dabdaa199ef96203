//! Shared code of the binaries: logging, signal handling, and [`process`] for starting servers
//! from tests, benchmarks and the playground.

pub mod load;
pub mod process;

use std::{fs::OpenOptions, io::IsTerminal, path::Path, sync::Mutex};

use tracing_subscriber::EnvFilter;

/// Sends logs to `file` (appending) or to standard error, at `level` unless `RUST_LOG` says
/// otherwise.
///
/// # Errors
///
/// A message naming the file if it cannot be opened.
pub fn init_logging(level: &str, file: Option<&Path>) -> Result<(), String> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .map_err(|e| format!("invalid log level {level:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match file {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .init();
        }
        None => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init(),
    }
    Ok(())
}

/// Makes a panic on any thread fatal, as in TiKV: the message and a backtrace go to the log,
/// then the process aborts. Otherwise a server that lost a thread (a raftstore poller, with the
/// regions it was running) would go on half-alive; after an abort, a restart recovers from disk.
pub fn abort_on_panic() {
    let print = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let backtrace = std::backtrace::Backtrace::force_capture();
        tracing::error!(%info, %backtrace, "panic; aborting the process");
        print(info);
        std::process::abort();
    }));
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown signal received");
}
