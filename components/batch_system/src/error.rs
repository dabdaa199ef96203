//! Errors of the batch system.
//!
//! Send errors hand the undelivered message back to the caller, because
//! messages often carry callbacks that must be answered rather than dropped.
//! Their `Debug` output never prints the message, so they stay usable for
//! message types that are not `Debug` and never leak user data into logs.

use std::fmt;

/// Errors from starting or configuring a batch system.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration field holds a value the batch system cannot run with.
    #[error("invalid batch system config: {field} {reason}")]
    InvalidConfig {
        /// The offending field of [`crate::Config`].
        field: &'static str,
        /// Why the value is rejected.
        reason: String,
    },
    /// `spawn` was called on a system whose pollers are already running.
    #[error("batch system {name_prefix} is already started")]
    AlreadyStarted {
        /// Name prefix of the running pollers.
        name_prefix: String,
    },
    /// The operating system refused to start a poller thread.
    #[error("spawn poller thread {name}")]
    SpawnThread {
        /// Name of the thread that could not be started.
        name: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Result of the batch system's fallible operations.
pub type Result<T> = std::result::Result<T, Error>;

/// Why a message could not be queued without blocking; carries the message.
#[derive(PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The mailbox holds as many messages as its capacity allows.
    Full(T),
    /// The mailbox is closed, its FSM is gone, or the address is unknown.
    Disconnected(T),
}

impl<T> TrySendError<T> {
    /// Returns the message that was not delivered.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(msg) | TrySendError::Disconnected(msg) => msg,
        }
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("mailbox is full"),
            TrySendError::Disconnected(_) => f.write_str("mailbox is disconnected"),
        }
    }
}

impl<T> std::error::Error for TrySendError<T> {}

/// Why a message could not be force-sent; carries the message.
///
/// Force sends ignore the mailbox capacity, so the only failure is a mailbox
/// that no FSM will ever read again.
#[derive(PartialEq, Eq)]
pub enum SendError<T> {
    /// The mailbox is closed, its FSM is gone, or the address is unknown.
    Disconnected(T),
}

impl<T> SendError<T> {
    /// Returns the message that was not delivered.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Disconnected(msg) => msg,
        }
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Disconnected(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mailbox is disconnected")
    }
}

impl<T> std::error::Error for SendError<T> {}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(err: SendError<T>) -> Self {
        TrySendError::Disconnected(err.into_inner())
    }
}
