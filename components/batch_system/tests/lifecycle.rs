//! Closing, stopping and shutting down: messages come back to the sender,
//! FSMs are dropped, poller threads are joined.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use batch_system::{BasicMailbox, Config, Error, SendError, TrySendError};
use common::{
    fsm_mailbox, new_system, register_fsms, report, start_system, ControlMsg, Msg, Stats,
    TestBuilder, TestFsm, WAIT,
};
use crossbeam::channel;

/// Asserts that `result` is `Disconnected` carrying `Msg::Seq` number `seq`.
fn assert_returned<E>(result: Result<(), E>, seq: u64, into_msg: impl FnOnce(E) -> Option<Msg>) {
    match result.map_err(into_msg) {
        Err(Some(Msg::Seq {
            sender: 0,
            seq: got,
        })) => assert_eq!(got, seq),
        Err(_) => panic!("wrong error or message for {seq}"),
        Ok(()) => panic!("send {seq} unexpectedly succeeded"),
    }
}

fn disconnected(err: TrySendError<Msg>) -> Option<Msg> {
    match err {
        TrySendError::Disconnected(msg) => Some(msg),
        TrySendError::Full(_) => None,
    }
}

fn seq(seq: u64) -> Msg {
    Msg::Seq { sender: 0, seq }
}

#[test]
fn send_to_closed_mailbox_returns_message() {
    let stats = Arc::new(Stats::default());
    let (router, mut system) = start_system(&Config::default(), TestBuilder::new(&stats));
    router.register(7, fsm_mailbox(&stats, 0, |_| {}));
    let mailbox: BasicMailbox<TestFsm> = router.mailbox(7).expect("registered");
    // A second clone caches the mailbox before it is closed.
    let cached = router.clone();
    assert_eq!(report(&cached, 7).handled, 0);

    router.close(7);

    assert_returned(router.send(7, seq(1)), 1, disconnected);
    assert_returned(cached.send(7, seq(2)), 2, disconnected);
    assert_returned(router.force_send(7, seq(3)), 3, |err| {
        Some(err.into_inner())
    });
    let scheduler = router.normal_scheduler();
    assert_returned(mailbox.force_send(seq(4), scheduler), 4, |err| {
        let SendError::Disconnected(msg) = err;
        Some(msg)
    });
    assert!(!mailbox.is_connected());
    assert!(router.mailbox(7).is_none());
    assert_eq!(router.alive_count(), 0);
    system.shutdown();
}

#[test]
fn send_to_unknown_address_returns_message() {
    let stats = Arc::new(Stats::default());
    let (router, mut system) = start_system(&Config::default(), TestBuilder::new(&stats));
    assert_returned(router.send(404, seq(1)), 1, disconnected);
    assert_returned(router.force_send(404, seq(2)), 2, |err| {
        Some(err.into_inner())
    });
    system.shutdown();
}

#[test]
fn full_mailbox_returns_message() {
    // Not spawned: nothing drains the mailbox.
    let stats = Arc::new(Stats::default());
    let (router, _system) = new_system(&Config::default());
    let (sender, receiver) = channel::unbounded();
    let fsm = Box::new(TestFsm::new(receiver, 0, &stats));
    router.register(1, BasicMailbox::with_capacity(sender, fsm, 2));

    router.send(1, seq(1)).expect("room for one");
    router.send(1, seq(2)).expect("room for two");
    match router.send(1, seq(3)) {
        Err(TrySendError::Full(Msg::Seq { seq: 3, .. })) => {}
        other => panic!("expected Full(3), got {other:?}"),
    }
    router
        .force_send(1, seq(4))
        .expect("force ignores capacity");
    assert_eq!(router.mailbox(1).expect("registered").len(), 3);
}

#[test]
fn shutdown_joins_all_pollers() {
    const POOL: usize = 3;
    const FSMS: u64 = 10;
    let stats = Arc::new(Stats::default());
    let config = Config {
        pool_size: POOL,
        ..Config::default()
    };
    let (router, mut system) = start_system(&config, TestBuilder::new(&stats));
    register_fsms(&router, &stats, FSMS);
    for addr in 0..FSMS {
        router.send(addr, Msg::Noop).expect("registered");
    }
    assert!(stats.handled.wait_for(FSMS));

    system.shutdown();

    // Handlers are dropped on their threads, so joined threads dropped them.
    assert_eq!(stats.handler_drops.get(), POOL as u64);
    let names = stats.poller_names.lock().expect("names lock").clone();
    let expected: BTreeSet<String> = (0..POOL).map(|index| format!("test-{index}")).collect();
    assert_eq!(names, expected);
    assert_eq!(
        stats.fsm_drops.get(),
        FSMS,
        "closing dropped every idle fsm"
    );
    assert!(router.is_shutdown());
    assert!(matches!(
        router.send(0, Msg::Noop),
        Err(TrySendError::Disconnected(_))
    ));
    system.shutdown();
    assert_eq!(
        stats.handler_drops.get(),
        POOL as u64,
        "shutdown is idempotent"
    );
}

#[test]
fn dropping_the_system_shuts_it_down() {
    let stats = Arc::new(Stats::default());
    let (router, system) = start_system(&Config::default(), TestBuilder::new(&stats));
    register_fsms(&router, &stats, 3);
    drop(system);
    assert_eq!(stats.handler_drops.get(), 2);
    assert_eq!(stats.fsm_drops.get(), 3);
}

#[test]
fn stopped_fsm_is_dropped_and_unregistered() {
    let stats = Arc::new(Stats::default());
    let (router, mut system) = start_system(&Config::default(), TestBuilder::new(&stats));
    register_fsms(&router, &stats, 2);

    router.send(0, Msg::Stop).expect("registered");

    assert!(stats.fsm_drops.wait_for(1));
    assert!(matches!(
        router.send(0, Msg::Noop),
        Err(TrySendError::Disconnected(_))
    ));
    assert_eq!(router.alive_count(), 1);
    assert_eq!(report(&router, 1).generation, 0, "the other fsm still runs");
    system.shutdown();
}

#[test]
fn control_fsm_receives_control_messages() {
    let stats = Arc::new(Stats::default());
    let (router, mut system) = start_system(&Config::default(), TestBuilder::new(&stats));
    for _ in 0..3 {
        let (reply, answer) = channel::bounded(1);
        router
            .send_control(ControlMsg::Ping(reply))
            .expect("control is open");
        answer.recv_timeout(WAIT).expect("control fsm answered");
    }
    let (reply, answer) = channel::bounded(1);
    router
        .force_send_control(ControlMsg::Ping(reply))
        .expect("control is open");
    answer.recv_timeout(WAIT).expect("control fsm answered");
    assert_eq!(stats.control_handled.get(), 4);

    system.shutdown();
    let (reply, _answer) = channel::bounded(1);
    assert!(matches!(
        router.send_control(ControlMsg::Ping(reply)),
        Err(TrySendError::Disconnected(_))
    ));
}

#[test]
fn spawn_rejects_bad_config_and_second_start() {
    let stats = Arc::new(Stats::default());
    let (_router, mut system) = new_system(&Config {
        pool_size: 0,
        ..Config::default()
    });
    assert!(matches!(
        system.spawn("bad", TestBuilder::new(&stats)),
        Err(Error::InvalidConfig {
            field: "pool_size",
            ..
        })
    ));

    let (_router, mut system) = start_system(&Config::default(), TestBuilder::new(&stats));
    assert!(matches!(
        system.spawn("again", TestBuilder::new(&stats)),
        Err(Error::AlreadyStarted { .. })
    ));
}
