//! Checkers: each reads a whole history and reports the anomalies it finds.

pub mod bank;
pub mod list_append;
pub mod register;
pub mod set;
pub mod tso;
