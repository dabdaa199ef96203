use engine_traits::{KvEngine, Mutable, Peekable, WriteBatch, WriteOptions, CF_DEFAULT, CF_WRITE};
use tempfile::TempDir;

use crate::{RocksConfig, RocksEngine};

fn new_engine() -> (RocksEngine, TempDir) {
    let dir = tempfile::Builder::new()
        .prefix("engine-rocks")
        .tempdir()
        .expect("tempdir");
    let engine = RocksEngine::open(dir.path(), &RocksConfig::default()).expect("open");
    (engine, dir)
}

engine_traits::conformance_tests!(new_engine);

#[test]
fn synced_writes_survive_reopen() {
    let (engine, dir) = new_engine();
    let mut wb = engine.write_batch();
    wb.put_cf(CF_WRITE, b"k", b"v").unwrap();
    wb.put_cf(CF_DEFAULT, b"k2", b"v2").unwrap();
    wb.write_opt(WriteOptions { sync: true }).unwrap();
    // A write batch holds its engine open; both must go before the directory can reopen.
    drop(wb);
    drop(engine);
    let engine = RocksEngine::open(dir.path(), &RocksConfig::default()).unwrap();
    assert_eq!(
        engine.get_value_cf(CF_WRITE, b"k").unwrap(),
        Some(b"v".to_vec())
    );
    assert_eq!(
        engine.get_value_cf(CF_DEFAULT, b"k2").unwrap(),
        Some(b"v2".to_vec())
    );
}

#[test]
fn second_open_of_a_locked_directory_is_an_error() {
    let (_engine, dir) = new_engine();
    let second = RocksEngine::open(dir.path(), &RocksConfig::default());
    let err = second
        .err()
        .expect("the directory is locked by the first engine");
    assert!(err.to_string().contains("lock"), "error says why: {err}");
}
