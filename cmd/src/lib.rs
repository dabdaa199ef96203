//! Shared code of the binaries: logging, signal handling, and [`process`] for starting servers
//! from tests, benchmarks and the playground.

pub mod baseline;
pub mod chaos;
pub mod ctl;
pub mod load;
pub mod process;
pub mod ycsb;

use std::fmt::Display;
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::{fs::OpenOptions, io::IsTerminal, path::Path, sync::Mutex};

use tracing_subscriber::EnvFilter;

/// The logging flags both servers take: `--log-file` (`-f`) and `--log-level` (`-L`).
#[derive(clap::Args, Debug)]
pub struct LogFlags {
    /// Log file [default: standard error].
    #[arg(short = 'f', long = "log-file", value_name = "FILE")]
    log_file: Option<String>,
    /// Log level: error, warn, info, debug, trace [default: info].
    #[arg(short = 'L', long = "log-level", value_name = "LEVEL")]
    log_level: Option<String>,
}

impl LogFlags {
    /// Overrides the config file's log file and level with the flags given.
    pub fn apply(self, file: &mut String, level: &mut String) {
        if let Some(value) = self.log_file {
            *file = value;
        }
        if let Some(value) = self.log_level {
            *level = value;
        }
    }
}

/// The body of a server's `main`: logging (at `log(&config)` = level and file, empty for
/// standard error) and the panic hook, a runtime (of `threads(&config)` worker threads, or one
/// per CPU), then `serve` until it returns. Exits with 2 for bad flags or configuration and 1
/// when serving fails, saying why on standard error.
pub fn server_main<C, E, Fut>(
    name: &str,
    config: Result<C, String>,
    log: impl FnOnce(&C) -> (String, String),
    threads: impl FnOnce(&C) -> Option<usize>,
    serve: impl FnOnce(C) -> Fut,
) -> ExitCode
where
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    let (level, file) = log(&config);
    let file = (!file.is_empty()).then(|| PathBuf::from(file));
    if let Err(e) = init_logging(&level, file.as_deref()) {
        eprintln!("{name}: {e}");
        return ExitCode::from(2);
    }
    abort_on_panic();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // A task woken by another runs next on the same thread (tokio's LIFO slot): each gRPC
    // response then wakes its connection's task, which writes that response alone. Without
    // the slot the connection task queues behind the other handlers and writes their
    // responses together. Measured on gets: 23 instead of 29-30 µs of server CPU each
    // (ARCHITECTURE.md). The option is unstable, hence `--cfg tokio_unstable` in
    // `.cargo/config.toml`; a build without it keeps the slot.
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    if let Some(threads) = threads(&config) {
        builder.worker_threads(threads.max(1));
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => {
            tracing::info!("{name} stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "{name} failed");
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

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
