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

/// RocksDB records the options it runs with in the database's newest `OPTIONS-*` file.
#[test]
fn writeback_of_flushes_and_compactions_is_bounded() {
    let (_engine, dir) = new_engine();
    let newest = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.starts_with("OPTIONS-"))
        .max()
        .expect("RocksDB wrote its options file");
    let options = std::fs::read_to_string(dir.path().join(newest)).expect("read options file");
    assert!(options.contains("strict_bytes_per_sync=true"), "{options}");
    assert!(options.contains("  bytes_per_sync=1048576"), "{options}");
}

/// The files of `dir` as they are now, copied: what a `kill -9` or a power loss would leave
/// when the process holds nothing unwritten in the page cache (the memtables are lost).
fn crash_image(dir: &std::path::Path) -> TempDir {
    let image = tempfile::Builder::new()
        .prefix("engine-rocks-crash")
        .tempdir()
        .expect("tempdir");
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("dir entry");
        std::fs::copy(entry.path(), image.path().join(entry.file_name())).expect("copy");
    }
    image
}

fn without_wal() -> RocksConfig {
    RocksConfig {
        disable_wal: true,
        ..RocksConfig::default()
    }
}

fn value_after_crash(
    dir: &std::path::Path,
    cf: engine_traits::CfName,
    key: &[u8],
) -> Option<Vec<u8>> {
    let image = crash_image(dir);
    let engine = RocksEngine::open(image.path(), &without_wal()).expect("open crash image");
    engine.get_value_cf(cf, key).expect("read")
}

#[test]
fn without_wal_only_flushed_writes_survive_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = RocksEngine::open(dir.path(), &without_wal()).expect("open");
    let put = |cf, key: &[u8], sync| {
        let mut wb = engine.write_batch();
        wb.put_cf(cf, key, b"v").unwrap();
        wb.write_opt(WriteOptions { sync }).unwrap();
    };
    put(CF_DEFAULT, b"a", false);
    assert_eq!(
        engine.get_value_cf(CF_DEFAULT, b"a").unwrap(),
        Some(b"v".to_vec())
    );
    assert_eq!(
        value_after_crash(dir.path(), CF_DEFAULT, b"a"),
        None,
        "no log holds it"
    );
    // A synced write flushes: it and every write before it, in every column family, survive.
    put(CF_WRITE, b"b", true);
    assert_eq!(
        value_after_crash(dir.path(), CF_WRITE, b"b"),
        Some(b"v".to_vec())
    );
    assert_eq!(
        value_after_crash(dir.path(), CF_DEFAULT, b"a"),
        Some(b"v".to_vec())
    );
    put(CF_DEFAULT, b"c", false);
    assert_eq!(value_after_crash(dir.path(), CF_DEFAULT, b"c"), None);
    engine.sync().unwrap();
    assert_eq!(
        value_after_crash(dir.path(), CF_DEFAULT, b"c"),
        Some(b"v".to_vec())
    );
}

#[test]
fn with_wal_unsynced_writes_survive_a_process_crash() {
    let (engine, dir) = new_engine();
    let mut wb = engine.write_batch();
    wb.put_cf(CF_DEFAULT, b"a", b"v").unwrap();
    wb.write_opt(WriteOptions { sync: false }).unwrap();
    // The log is in the page cache, which a killed process leaves to the kernel.
    let image = crash_image(dir.path());
    let reopened = RocksEngine::open(image.path(), &RocksConfig::default()).unwrap();
    assert_eq!(
        reopened.get_value_cf(CF_DEFAULT, b"a").unwrap(),
        Some(b"v".to_vec())
    );
}
