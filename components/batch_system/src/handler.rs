//! The hooks a poller calls; the user's logic lives behind them.

use crate::batch::NormalFsm;
use crate::fsm::Fsm;

/// What a handler wants done with a normal FSM after handling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleResult {
    /// Keep the FSM in the batch and handle it again next round.
    KeepProcessing,
    /// The FSM is done for now, leaving `progress` messages queued on
    /// purpose (usually 0). It is parked only if the mailbox still holds
    /// exactly `progress` messages; more means new mail, so it stays.
    StopAt {
        /// How many messages the handler expects to remain queued.
        progress: usize,
        /// Park the FSM right away, before `light_end`/`end`, because those
        /// have nothing to do for it.
        skip_end: bool,
    },
}

impl HandleResult {
    /// Returns `StopAt` with the given progress and `skip_end` unset.
    pub fn stop_at(progress: usize) -> Self {
        HandleResult::StopAt {
            progress,
            skip_end: false,
        }
    }
}

/// Handles the FSMs of one poller thread; one handler per thread, so it
/// needs no `Sync` and can keep per-thread buffers.
///
/// Each round goes:
///
/// ```text
/// begin(batch size)
/// handle_control            if the control FSM is in the batch
/// handle_normal             for each normal FSM in the batch
/// light_end, end            with the FSMs still in the batch
/// pause                     when the poller is about to block for work
/// ```
///
/// A stopped FSM whose mailbox still holds messages stays in the batch and
/// is handed to `handle_normal` again until the mailbox is empty, so the
/// handler can answer what was queued; it must drain a stopped FSM.
pub trait PollHandler<N: Fsm, C: Fsm> {
    /// Called at the start of every round with the number of FSMs in it.
    fn begin(&mut self, batch_size: usize);

    /// Handles the control FSM. `Some(progress)` lets it be parked as in
    /// [`HandleResult::StopAt`]; `None` keeps it for the next round.
    fn handle_control(&mut self, control: &mut C) -> Option<usize>;

    /// Handles one normal FSM.
    fn handle_normal(&mut self, normal: &mut N) -> HandleResult;

    /// Called after every `handle_normal` of the round, before `end`.
    /// Slots of FSMs already parked (`skip_end`) are `None`.
    fn light_end(&mut self, _normals: &mut [Option<NormalFsm<N>>]) {}

    /// Called at the end of every round; slots as in `light_end`.
    fn end(&mut self, normals: &mut [Option<NormalFsm<N>>]);

    /// Called when the poller has nothing to do and is about to block.
    fn pause(&mut self) {}
}

/// Builds one handler per poller thread.
pub trait HandlerBuilder<N: Fsm, C: Fsm> {
    /// The handler type built.
    type Handler: PollHandler<N, C>;

    /// Builds the handler for the next poller thread.
    fn build(&mut self) -> Self::Handler;
}
