//! How FSMs share the pollers: time slices, release with progress, and
//! early release before `end`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use batch_system::Config;
use common::{fsm_mailbox, new_system, report, start_system, Msg, Stats, TestBuilder};

#[test]
fn hot_fsm_does_not_starve_others() {
    // One poller with room for one FSM: once the busy FSM holds the batch,
    // only rescheduling can let anything else run.
    let config = Config {
        pool_size: 1,
        max_batch_size: 1,
        reschedule_duration: Duration::ZERO,
    };
    let stats = Arc::new(Stats::default());
    let (router, mut system) = start_system(&config, TestBuilder::new(&stats));
    router.register(1, fsm_mailbox(&stats, 1, |fsm| fsm.always_busy = true));
    router.register(2, fsm_mailbox(&stats, 2, |_| {}));

    router.send(1, Msg::Noop).expect("registered");
    assert!(stats.handled.wait_for(1), "busy fsm is running");
    let calls_before = stats.handle_calls.get();

    assert_eq!(
        report(&router, 2).generation,
        2,
        "the quiet fsm got its turn"
    );
    assert_eq!(report(&router, 1).generation, 1, "the busy fsm still runs");
    assert!(stats.handle_calls.get() > calls_before);
    system.shutdown();
}

#[test]
fn stop_at_progress_parks_until_new_mail() {
    let stats = Arc::new(Stats::default());
    let (router, mut system) = start_system(&Config::default(), TestBuilder::new(&stats));
    let defer = Arc::new(AtomicBool::new(true));
    let fsm_defer = Arc::clone(&defer);
    router.register(1, fsm_mailbox(&stats, 1, |fsm| fsm.defer = Some(fsm_defer)));

    router
        .send(1, Msg::Seq { sender: 0, seq: 1 })
        .expect("registered");
    assert!(stats.handle_calls.wait_for(1));
    // It left the message queued and was parked: nothing runs it again, and
    // the message is still there.
    let mailbox = router.mailbox(1).expect("registered");
    assert_eq!(mailbox.len(), 1);
    assert_eq!(stats.handle_calls.get(), 1);

    defer.store(false, Ordering::SeqCst);
    router
        .send(1, Msg::Seq { sender: 0, seq: 2 })
        .expect("registered");

    assert!(
        stats.handled.wait_for(2),
        "new mail woke it and both were handled"
    );
    let report = report(&router, 1);
    assert_eq!(report.last_seq, vec![2]);
    assert_eq!(stats.order_errors.load(Ordering::SeqCst), 0);
    system.shutdown();
}

#[test]
fn skip_end_parks_before_end() {
    // (skip_end, occupied slots `end` sees): queued before the pollers start,
    // all ten messages are drained in one round with nothing arriving after.
    for (skip_end, expected_slots) in [(true, 0), (false, 1)] {
        let stats = Arc::new(Stats::default());
        let (router, mut system) = new_system(&Config {
            pool_size: 1,
            ..Config::default()
        });
        router.register(1, fsm_mailbox(&stats, 1, |_| {}));
        for seq in 1..=10 {
            router
                .send(1, Msg::Seq { sender: 0, seq })
                .expect("registered");
        }
        let builder = TestBuilder {
            skip_end,
            ..TestBuilder::new(&stats)
        };
        system.spawn("test", builder).expect("spawn pollers");

        assert!(stats.handled.wait_for(10));
        system.shutdown();
        assert_eq!(stats.ends.load(Ordering::SeqCst), 1, "skip_end {skip_end}");
        assert_eq!(
            stats.end_slots.load(Ordering::SeqCst),
            expected_slots,
            "skip_end {skip_end}"
        );
    }
}
