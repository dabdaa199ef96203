//! Forwards raft-rs's `slog` records to `tracing`, tagged with the region and peer.

use slog::{Drain, OwnedKVList, Record, KV};
use types::{PeerId, RegionId};

struct TracingDrain;

struct Fields(String);

impl slog::Serializer for Fields {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
        use std::fmt::Write;
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut fields = Fields(String::new());
        let _ = values.serialize(record, &mut fields);
        let _ = record.kv().serialize(record, &mut fields);
        let message = record.msg();
        match record.level() {
            slog::Level::Critical | slog::Level::Error => {
                tracing::error!(target: "raft", "{message}{}", fields.0)
            }
            slog::Level::Warning => tracing::warn!(target: "raft", "{message}{}", fields.0),
            slog::Level::Info => tracing::info!(target: "raft", "{message}{}", fields.0),
            slog::Level::Debug => tracing::debug!(target: "raft", "{message}{}", fields.0),
            slog::Level::Trace => tracing::trace!(target: "raft", "{message}{}", fields.0),
        }
        Ok(())
    }
}

/// A logger for one peer's raft-rs state machine.
pub fn raft_logger(region_id: RegionId, peer_id: PeerId) -> slog::Logger {
    slog::Logger::root(
        TracingDrain.fuse(),
        slog::o!("region_id" => region_id.get(), "peer_id" => peer_id.get()),
    )
}
