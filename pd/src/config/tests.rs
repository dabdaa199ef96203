use std::time::Duration;

use super::*;

/// The file the official Rust client's CI starts PD with (tikv/client-rust `config/pd.toml`).
const CLIENT_RUST_PD_TOML: &str = r#"
[schedule]
max-merge-region-size = 1
max-merge-region-keys = 3
"#;

fn ignored_keys(loaded: &LoadedConfig) -> Vec<&str> {
    loaded.ignored.iter().map(|k| k.key.as_str()).collect()
}

#[test]
fn example_config_file_loads_and_matches_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/pd.toml");
    let loaded = Config::from_file(&path).unwrap();
    assert_eq!(
        loaded.config,
        Config::default(),
        "etc/pd.toml documents the defaults"
    );
    assert_eq!(loaded.ignored, []);
}

#[test]
fn the_client_rust_ci_config_loads() {
    let loaded = Config::from_toml(CLIENT_RUST_PD_TOML).unwrap();
    assert_eq!(loaded.config, Config::default());
    assert_eq!(
        ignored_keys(&loaded),
        [
            "schedule.max-merge-region-keys",
            "schedule.max-merge-region-size"
        ]
    );
    assert_eq!(loaded.ignored[0].reason, "not implemented by this PD");
}

#[test]
fn a_misspelt_key_is_an_error_naming_it_and_its_line() {
    let text = "[schedule]\nmax-store-down-tim = \"1m\"\n";
    let err = Config::from_toml(text).unwrap_err();
    assert!(
        err.contains("unknown key `schedule.max-store-down-tim` at line 2"),
        "{err}"
    );
    assert!(
        err.contains("neither a pd-server nor a PD config key"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pd.toml");
    std::fs::write(&path, text).unwrap();
    let err = Config::from_file(&path).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("schedule.max-store-down-tim"), "{err}");
}

#[test]
fn unknown_sections_and_keys_inside_pd_sections_are_errors() {
    let cases = [
        (
            "[scheduel]\nmax-store-down-time = \"1m\"",
            "unknown section `scheduel` at line 1",
        ),
        (
            "[replication-mode.dr-auto-sinc]\nprimary = \"z1\"",
            "`replication-mode.dr-auto-sinc`",
        ),
        (
            "[security.encryption.master-key]\ntyp = \"file\"",
            "`security.encryption.master-key.typ`",
        ),
        ("[log.file]\nmax-sise = 300", "`log.file.max-sise`"),
        ("\nleese = 3", "unknown key `leese` at line 2"),
    ];
    for (text, expected) in cases {
        let err = Config::from_toml(text).unwrap_err();
        assert!(err.contains(expected), "{text:?}: {err}");
    }
}

#[test]
fn values_of_ours_are_checked_with_their_line() {
    let err = Config::from_toml("[replication]\n\nmax-replicas = \"three\"\n").unwrap_err();
    assert!(err.contains("line 3"), "{err}");
    let err = Config::from_toml("[schedule]\nmax-store-down-time = \"soon\"\n").unwrap_err();
    assert!(err.contains("max-store-down-time"), "{err}");
}

#[test]
fn a_typical_pd_config_loads_with_one_warning_per_ignored_key() {
    let text = r#"
name = "pd-1"
data-dir = "/data/pd"
client-urls = "http://0.0.0.0:2379"
advertise-client-urls = "http://10.0.0.1:2379"
peer-urls = "http://0.0.0.0:2380"
initial-cluster = "pd-1=http://10.0.0.1:2380"
lease = 3
log-level = "info"
tso-save-interval = "5s"
[labels]
zone = "z1"
[security]
cacert-path = ""
[security.encryption.master-key]
type = "plaintext"
[log]
level = "debug"
format = "text"
[log.file]
filename = "/var/log/pd.log"
max-days = 28
[metric]
interval = "15s"
[schedule]
max-store-down-time = "1h"
leader-schedule-limit = 8
tolerant-size-ratio = 2.5
[[schedule.schedulers]]
type = "evict-leader"
args = ["1"]
[schedule.store-limit.1]
add-peer = 15.0
[replication]
max-replicas = 5
location-labels = ["zone", "host"]
strictly-match-label = false
[pd-server]
use-region-storage = true
[label-property]
[[label-property.reject-leader]]
key = "zone"
value = "cn1"
[dashboard]
enable-telemetry = false
[replication-mode]
replication-mode = "majority"
[replication-mode.dr-auto-sync]
label-key = "zone"
[keyspace]
pre-alloc = ["a"]
[controller.request-unit]
read-base-cost = 0.25
"#;
    let loaded = Config::from_toml(text).unwrap();
    let config = &loaded.config;
    assert_eq!(config.name, "pd-1");
    assert_eq!(config.data_dir, PathBuf::from("/data/pd"));
    assert_eq!(config.client_urls, "http://0.0.0.0:2379");
    assert_eq!(config.advertise_client_urls, "http://10.0.0.1:2379");
    assert_eq!(config.tso_save_interval, ReadableDuration::secs(5));
    assert_eq!(config.log.level, "debug");
    assert_eq!(config.log.file.filename, "/var/log/pd.log");
    assert_eq!(
        config.schedule.max_store_down_time,
        ReadableDuration::minutes(60)
    );
    assert_eq!(config.schedule.leader_schedule_limit, 8);
    assert_eq!(config.schedule.tolerant_size_ratio, 2.5);
    assert_eq!(config.replication.max_replicas, 5);
    assert_eq!(config.replication.location_labels, ["zone", "host"]);
    assert_eq!(
        ignored_keys(&loaded),
        [
            "controller.request-unit.read-base-cost",
            "dashboard.enable-telemetry",
            "initial-cluster",
            "keyspace.pre-alloc",
            "label-property.reject-leader",
            "labels.zone",
            "lease",
            "log-level",
            "log.file.max-days",
            "log.format",
            "metric.interval",
            "pd-server.use-region-storage",
            "replication-mode.dr-auto-sync.label-key",
            "replication-mode.replication-mode",
            "replication.strictly-match-label",
            "schedule.schedulers",
            "schedule.store-limit.1.add-peer",
            "security.cacert-path",
            "security.encryption.master-key.type",
        ]
    );
    let reason = |key: &str| {
        loaded
            .ignored
            .iter()
            .find(|k| k.key == key)
            .map(|k| k.reason)
            .unwrap()
    };
    assert_eq!(
        reason("security.cacert-path"),
        "this PD serves plain http only"
    );
    assert!(reason("lease").contains("without etcd"));
    assert!(reason("log-level").contains("log.level"));
}

/// Every key of ours is one PD has, in the same section: a PD config file means the same thing
/// here.
#[test]
fn our_keys_are_pd_keys() {
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
                    let known = pd_keys::PD
                        .section(path)
                        .is_some_and(|keys| keys.contains(key));
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
fn derived_defaults_and_validation() {
    let mut config = Config {
        name: "pd-1".into(),
        ..Config::default()
    };
    config.finish().unwrap();
    assert_eq!(config.data_dir, PathBuf::from("default.pd-1"));
    assert_eq!(config.advertise_client_urls, "http://127.0.0.1:2379");
    assert_eq!(config.listen_addrs().unwrap(), ["127.0.0.1:2379"]);

    let mut tls = Config {
        client_urls: "https://127.0.0.1:2379".into(),
        ..Config::default()
    };
    assert!(tls
        .finish()
        .unwrap_err()
        .to_string()
        .contains("not supported"));
    let mut zero = Config::default();
    zero.replication.max_replicas = 0;
    assert!(zero.finish().is_err());
    let mut never_up = Config::default();
    never_up.schedule.max_store_down_time = ReadableDuration::secs(0);
    assert!(never_up
        .finish()
        .unwrap_err()
        .to_string()
        .contains("max-store-down-time"));
    let mut negative = Config::default();
    negative.schedule.tolerant_size_ratio = -1.0;
    assert!(negative
        .finish()
        .unwrap_err()
        .to_string()
        .contains("tolerant-size-ratio"));
    let whole: Config = toml::from_str("[schedule]\ntolerant-size-ratio = 3").unwrap();
    assert_eq!(
        whole.schedule.tolerant_size_ratio, 3.0,
        "an integer is a ratio too"
    );
    let short: Config = toml::from_str("[schedule]\nmax-store-down-time = \"2s\"").unwrap();
    assert_eq!(short.schedule.max_store_down_time.0, Duration::from_secs(2));
}

#[test]
fn unknown_keys_are_rejected() {
    let err = toml::from_str::<Config>("nmae = \"typo\"").unwrap_err();
    assert!(err.to_string().contains("nmae"), "{err}");
}
