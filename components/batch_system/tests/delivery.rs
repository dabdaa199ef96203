//! Messages reach the right FSM, complete and in order, and an FSM is only
//! ever run by one poller at a time.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;

use batch_system::Config;
use common::{
    fsm_mailbox, register_fsms, report, start_system, Msg, Stats, TestBuilder, TestRouter,
};

/// Spawns `senders` threads, each sending sequence numbers `1..=per_fsm` to
/// every FSM in `0..fsms`, interleaving the FSMs.
fn flood(router: &TestRouter, senders: usize, fsms: u64, per_fsm: u64) {
    let threads: Vec<_> = (0..senders)
        .map(|sender| {
            let router = router.clone();
            thread::spawn(move || {
                for seq in 1..=per_fsm {
                    for addr in 0..fsms {
                        router
                            .send(addr, Msg::Seq { sender, seq })
                            .unwrap_or_else(|err| panic!("send to {addr}: {err}"));
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("sender thread");
    }
}

#[test]
fn no_message_lost_or_reordered_under_concurrent_senders() {
    const FSMS: u64 = 200;
    const SENDERS: usize = 8;
    const PER_FSM: u64 = 200;
    let stats = Arc::new(Stats::default());
    let (router, mut system) = start_system(&Config::default(), TestBuilder::new(&stats));
    register_fsms(&router, &stats, FSMS);

    flood(&router, SENDERS, FSMS, PER_FSM);

    let total = FSMS * SENDERS as u64 * PER_FSM;
    assert!(
        stats.handled.wait_for(total),
        "handled {} of {total}",
        stats.handled.get()
    );
    assert_eq!(stats.order_errors.load(Ordering::SeqCst), 0);
    for addr in 0..FSMS {
        let report = report(&router, addr);
        assert_eq!(report.last_seq, vec![PER_FSM; SENDERS], "fsm {addr}");
        assert_eq!(report.handled, SENDERS as u64 * PER_FSM, "fsm {addr}");
    }
    system.shutdown();
}

#[test]
fn fsm_never_run_by_two_pollers_at_once() {
    const FSMS: u64 = 32;
    const SENDERS: usize = 4;
    const PER_FSM: u64 = 400;
    let stats = Arc::new(Stats::default());
    let config = Config {
        pool_size: 4,
        max_batch_size: 4,
        ..Config::default()
    };
    let builder = TestBuilder {
        yield_inside: true,
        ..TestBuilder::new(&stats)
    };
    let (router, mut system) = start_system(&config, builder);
    register_fsms(&router, &stats, FSMS);

    flood(&router, SENDERS, FSMS, PER_FSM);

    let total = FSMS * SENDERS as u64 * PER_FSM;
    assert!(
        stats.handled.wait_for(total),
        "handled {} of {total}",
        stats.handled.get()
    );
    assert_eq!(stats.overlaps.load(Ordering::SeqCst), 0);
    assert_eq!(stats.order_errors.load(Ordering::SeqCst), 0);
    system.shutdown();
}

#[test]
fn broadcast_normal_reaches_every_fsm() {
    const FSMS: u64 = 50;
    let stats = Arc::new(Stats::default());
    let (router, mut system) = start_system(&Config::default(), TestBuilder::new(&stats));
    register_fsms(&router, &stats, FSMS);

    router.broadcast_normal(|| Msg::Noop);

    assert!(stats.handled.wait_for(FSMS));
    for addr in 0..FSMS {
        assert_eq!(report(&router, addr).handled, 1, "fsm {addr}");
    }
    system.shutdown();
}

#[test]
fn a_filtered_broadcast_reaches_only_the_wanted_fsms() {
    const FSMS: u64 = 50;
    let stats = Arc::new(Stats::default());
    let (router, mut system) = start_system(&Config::default(), TestBuilder::new(&stats));
    register_fsms(&router, &stats, FSMS);

    router.broadcast_normal_to(|addr| addr % 2 == 0, || Msg::Noop);

    assert!(stats.handled.wait_for(FSMS / 2));
    for addr in 0..FSMS {
        let expected = u64::from(addr % 2 == 0);
        assert_eq!(report(&router, addr).handled, expected, "fsm {addr}");
    }
    system.shutdown();
}

#[test]
fn reregistered_address_reaches_new_fsm_through_stale_cache() {
    let stats = Arc::new(Stats::default());
    let (router, mut system) = start_system(&Config::default(), TestBuilder::new(&stats));
    router.register(1, fsm_mailbox(&stats, 1, |_| {}));
    // This clone caches generation 1's mailbox.
    let stale = router.clone();
    assert_eq!(report(&stale, 1).generation, 1);

    router.close(1);
    router.register(1, fsm_mailbox(&stats, 2, |_| {}));

    assert_eq!(report(&stale, 1).generation, 2);
    assert!(stats.fsm_drops.wait_for(1), "generation 1 was dropped");
    system.shutdown();
}
