use std::path::Path;

use config_types::{ReadableDuration, ReadableSize};

use super::tikv_keys;
use super::*;

/// The file the official Rust client's CI starts TiKV with (tikv/client-rust
/// `config/tikv.toml`).
const CLIENT_RUST_TIKV_TOML: &str = r#"
[coprocessor]
region-max-keys = 10
region-split-keys = 7
batch-split-limit = 100
[raftstore]
region-split-check-diff = "1B"
pd-heartbeat-tick-interval = "2s"
pd-store-heartbeat-tick-interval = "5s"
split-region-check-tick-interval = "1s"
raft-entry-max-size = "1MB"
[rocksdb]
max-open-files = 10000
[raftdb]
max-open-files = 10000
[storage]
api-version = 2
enable-ttl = true
reserve-space = "0MiB"
[server]
grpc-compression-type = "gzip"
"#;

fn ignored_keys(loaded: &LoadedConfig) -> Vec<&str> {
    loaded.ignored.iter().map(|k| k.key.as_str()).collect()
}

#[test]
fn example_config_file_matches_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/tikv.toml");
    let loaded = Config::from_file(&path).unwrap();
    assert_eq!(loaded.config, Config::default());
    assert_eq!(loaded.ignored, []);
}

#[test]
fn derived_defaults() {
    let mut config = Config::default();
    config.pd.endpoints = vec!["http://127.0.0.1:2379".into()];
    config.finish().unwrap();
    assert_eq!(config.server.advertise_addr, "127.0.0.1:20160");
    assert_eq!(config.pd.endpoints, ["127.0.0.1:2379"]);
    let err = toml::from_str::<Config>("[server]\nadr = \"x\"").unwrap_err();
    assert!(err.to_string().contains("adr"), "{err}");
}

#[test]
fn the_client_rust_ci_config_loads() {
    let loaded = Config::from_toml(CLIENT_RUST_TIKV_TOML).unwrap();
    let mut config = loaded.config.clone();
    assert_eq!(config.coprocessor.region_max_keys, 10);
    assert_eq!(config.coprocessor.region_split_keys, 7);
    assert_eq!(config.coprocessor.batch_split_limit, 100);
    assert_eq!(config.raftstore.region_split_check_diff, ReadableSize(1));
    assert_eq!(config.raftstore.raft_entry_max_size, ReadableSize::mib(1));
    assert_eq!(
        config.raftstore.pd_heartbeat_tick_interval,
        ReadableDuration::secs(2)
    );
    assert_eq!(
        config.raftstore.split_region_check_tick_interval,
        ReadableDuration::secs(1)
    );
    assert_eq!(config.storage.api_version, 2);
    assert!(config.storage.enable_ttl);
    assert_eq!(
        config.server.grpc_compression_type,
        GrpcCompressionType::Gzip
    );
    config.finish().unwrap();
    assert_eq!(
        ignored_keys(&loaded),
        [
            "raftdb.max-open-files",
            "rocksdb.max-open-files",
            "server.grpc-compression-type",
            "storage.reserve-space",
        ]
    );
    let compression = &loaded.ignored[2];
    assert_eq!(compression.reason, "responses are not compressed");
}

#[test]
fn a_misspelt_key_is_an_error_naming_it_and_the_file() {
    let text = "[raftstore]\nraft-entry-max-sise = \"1MB\"\n";
    let err = Config::from_toml(text).unwrap_err();
    assert!(
        err.contains("`raftstore.raft-entry-max-sise` at line 2"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tikv.toml");
    std::fs::write(&path, text).unwrap();
    let err = Config::from_file(&path).unwrap_err();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("raftstore.raft-entry-max-sise"), "{err}");
}

#[test]
fn unknown_sections_and_keys_inside_tikv_sections_are_errors() {
    let cases = [
        (
            "[rocksdbb]\nmax-open-files = 1",
            "unknown section `rocksdbb`",
        ),
        (
            "[rocksdb.defaultcff]\nblock-size = \"1KB\"",
            "`rocksdb.defaultcff`",
        ),
        (
            "[rocksdb.defaultcf]\nblock-sise = \"1KB\"",
            "`rocksdb.defaultcf.block-sise`",
        ),
        (
            "[storage.block-cache]\ncapacty = \"1GB\"",
            "`storage.block-cache.capacty`",
        ),
        ("log-levle = \"info\"", "unknown key `log-levle` at line 1"),
    ];
    for (text, expected) in cases {
        let err = Config::from_toml(text).unwrap_err();
        assert!(err.contains(expected), "{text:?}: {err}");
    }
}

#[test]
fn server_labels_are_accepted() {
    let loaded = Config::from_toml("[server.labels]\nzone = \"z1\"\nhost = \"h1\"\n").unwrap();
    assert_eq!(loaded.config, Config::default());
    assert_eq!(
        ignored_keys(&loaded),
        ["server.labels.host", "server.labels.zone"]
    );
    let inline = Config::from_toml("[server]\nlabels = { zone = \"z1\" }\n").unwrap();
    assert_eq!(ignored_keys(&inline), ["server.labels.zone"]);
}

#[test]
fn values_are_checked_with_their_line() {
    let err = Config::from_toml("[raftstore]\n\nraft-entry-max-size = true\n").unwrap_err();
    assert!(err.contains("line 3"), "{err}");
    let err = Config::from_toml("[server]\ngrpc-compression-type = \"lz4\"\n").unwrap_err();
    assert!(err.contains("lz4"), "{err}");
    let err = Config::from_toml("[coprocessor]\nbatch-split-limit = 0\n")
        .unwrap()
        .config
        .finish()
        .unwrap_err();
    assert!(err.contains("batch-split-limit"), "{err}");
}

#[test]
fn api_version_is_1_or_2_and_2_needs_ttl() {
    let finish = |text: &str| Config::from_toml(text).unwrap().config.finish();
    finish("[storage]\napi-version = 1").unwrap();
    finish("[storage]\napi-version = 2\nenable-ttl = true").unwrap();
    let err = finish("[storage]\napi-version = 3").unwrap_err();
    assert!(err.contains("api-version"), "{err}");
    let err = finish("[storage]\napi-version = 2").unwrap_err();
    assert!(err.contains("enable-ttl"), "{err}");
}

#[test]
fn a_typical_tikv_config_loads_with_one_warning_per_ignored_key() {
    let text = r#"
log-level = "info"
[log.file]
filename = ""
max-days = 7
[readpool.unified]
max-thread-count = 4
[server]
addr = "0.0.0.0:20160"
grpc-concurrency = 4
[storage]
data-dir = "/data/tikv"
max-key-size = 8192
[storage.block-cache]
capacity = "1GB"
[raftstore]
sync-log = true
store-pool-size = 1
[rocksdb.defaultcf]
block-size = "64KB"
compression-per-level = ["no", "no", "lz4", "lz4", "lz4", "zstd", "zstd"]
[rocksdb.defaultcf.titan]
min-blob-size = "1KB"
[raft-engine]
enable = true
[security]
ca-path = ""
[security.encryption.master-key]
type = "plaintext"
[pessimistic-txn]
pipelined = true
[gc]
enable-compaction-filter = true
"#;
    let loaded = Config::from_toml(text).unwrap();
    assert_eq!(loaded.config.server.addr, "0.0.0.0:20160");
    assert_eq!(loaded.config.storage.max_key_size, ReadableSize::kib(8));
    assert_eq!(loaded.config.raftstore.store_pool_size, 1);
    assert_eq!(loaded.config.server.grpc_threads(), 4);
    assert_eq!(
        ignored_keys(&loaded),
        [
            "gc.enable-compaction-filter",
            "log-level",
            "log.file.max-days",
            "pessimistic-txn.pipelined",
            "raft-engine.enable",
            "raftstore.sync-log",
            "readpool.unified.max-thread-count",
            "rocksdb.defaultcf.block-size",
            "rocksdb.defaultcf.compression-per-level",
            "rocksdb.defaultcf.titan.min-blob-size",
            "security.ca-path",
            "security.encryption.master-key.type",
            "storage.block-cache.capacity",
        ]
    );
}

/// Every key of ours is one TiKV has, in the same section: a TiKV config file means the same
/// thing here.
#[test]
fn our_keys_are_tikv_keys() {
    fn walk(table: &toml::Table, path: &str, missing: &mut Vec<String>) {
        for (key, value) in table {
            let full = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match value {
                toml::Value::Table(sub) => walk(sub, &full, missing),
                _ => {
                    let known =
                        tikv_keys::section(path).is_some_and(|keys| tikv_keys::has_key(keys, key));
                    if !known {
                        missing.push(full);
                    }
                }
            }
        }
    }
    let ours = toml::Table::try_from(Config::default()).unwrap();
    let mut missing = Vec::new();
    walk(&ours, "", &mut missing);
    assert_eq!(missing, Vec::<String>::new());
}

#[test]
fn rocksdb_sync_options_reach_the_engine_beside_ignored_keys() {
    let text = "[rocksdb]\nmax-open-files = 10000\nbytes-per-sync = \"2MiB\"\nwal-bytes-per-sync = \"0\"\nmax-background-jobs = 3\nrate-bytes-per-sec = \"200MiB\"\nrate-limiter-refill-period = \"50ms\"\nrate-limiter-auto-tuned = false\nrate-limiter-mode = 2\n";
    let loaded = Config::from_toml(text).unwrap();
    // No WAL: its options mean nothing to the data engine.
    assert_eq!(
        ignored_keys(&loaded),
        [
            "rocksdb.max-open-files",
            "rocksdb.rate-limiter-mode",
            "rocksdb.wal-bytes-per-sync"
        ]
    );
    let engine = loaded.config.rocksdb.engine();
    assert_eq!(engine.bytes_per_sync, 2 << 20);
    assert_eq!(engine.max_background_jobs, 3);
    assert_eq!(engine.rate_bytes_per_sec, 200 << 20);
    assert_eq!(
        engine.rate_limiter_refill_period,
        std::time::Duration::from_millis(50)
    );
    assert!(!engine.rate_limiter_auto_tuned);
    // The data engine's defaults are the engine's, but without the WAL.
    let defaults = Config::default().rocksdb.engine();
    assert_eq!(
        defaults,
        engine_rocks::RocksConfig {
            disable_wal: true,
            ..engine_rocks::RocksConfig::default()
        }
    );
}

#[test]
fn the_raft_engine_section_places_and_shapes_the_raft_log() {
    let data_dir = Path::new("/data/tikv");
    let defaults = Config::default().raft_engine.engine(data_dir);
    assert_eq!(defaults.dir, data_dir.join("raft"));
    assert_eq!(defaults.batch_compression_threshold, 8 << 10);

    let text = "[raft-engine]\nenable = true\ndir = \"/fast/raft-engine\"\n\
                batch-compression-threshold = \"0\"\ntarget-file-size = \"64MiB\"\n\
                recovery-threads = 4\n";
    let loaded = Config::from_toml(text).unwrap();
    let engine = loaded.config.raft_engine.engine(data_dir);
    assert_eq!(engine.dir, Path::new("/fast/raft-engine"));
    assert_eq!(engine.batch_compression_threshold, 0);
    assert_eq!(engine.target_file_size, 64 << 20);
    assert_eq!(
        ignored_keys(&loaded),
        ["raft-engine.enable", "raft-engine.recovery-threads"]
    );
}

#[test]
fn a_rate_limit_of_zero_or_a_refill_period_out_of_range_is_refused() {
    for (text, named) in [
        (
            "[rocksdb]\nrate-bytes-per-sec = \"0\"\n",
            "rocksdb.rate-bytes-per-sec",
        ),
        (
            "[rocksdb]\nrate-limiter-refill-period = \"0s\"\n",
            "rocksdb.rate-limiter-refill-period",
        ),
        (
            "[rocksdb]\nrate-limiter-refill-period = \"2s\"\n",
            "rocksdb.rate-limiter-refill-period",
        ),
    ] {
        let err = Config::from_toml(text)
            .unwrap()
            .config
            .finish()
            .unwrap_err();
        assert!(err.contains(named), "{text}: {err}");
    }
}
