//! End-to-end tests of the user tools: every `ctl` subcommand against a running cluster (the
//! real `pd-server` and three `tikv-server` processes), and the playground's refusal of a taken
//! port.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use cmd::process::{pd_regions, wait_until, LocalCluster, PD_WITHOUT_LEADER_BALANCE};
use serde_json::Value;
use tikv_client::TransactionClient;

fn bin_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pd-server"))
        .parent()
        .expect("binaries live in a directory")
}

/// PD and three stores, every region with its three replicas. PD's leader balancer is off:
/// the tests move leaders themselves and read the leaders' stores.
fn start_cluster(dir: &Path) -> LocalCluster {
    let pd_config = dir.join("pd.toml");
    std::fs::write(&pd_config, PD_WITHOUT_LEADER_BALANCE).unwrap();
    let cluster = LocalCluster::start(bin_dir(), dir, 3, Some(&pd_config), &[]).unwrap();
    cluster
        .wait_for_replicas(3, Duration::from_secs(60))
        .unwrap();
    cluster
}

fn ctl(pd: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ctl"))
        .arg("--pd")
        .arg(pd)
        .args(args)
        .output()
        .expect("run ctl")
}

/// Runs ctl and returns its standard output, failing the test if it failed.
fn ctl_ok(pd: &str, args: &[&str]) -> String {
    let out = ctl(pd, args);
    assert!(
        out.status.success(),
        "ctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn ctl_json(pd: &str, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let text = ctl_ok(pd, &args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("ctl {args:?}: {e}: {text}"))
}

/// Runs ctl expecting it to fail, and returns its standard error.
fn ctl_err(pd: &str, args: &[&str]) -> String {
    let out = ctl(pd, args);
    assert!(!out.status.success(), "ctl {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Lines of a table after its header.
fn rows(table: &str) -> Vec<&str> {
    table.lines().skip(1).collect()
}

#[test]
fn ctl_commands_against_a_running_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start_cluster(dir.path());
    let pd = cluster.pd.addr();
    let pd = pd.as_str();

    // pd-ctl style.
    let stores = ctl_ok(pd, &["store"]);
    assert!(stores.starts_with("ID"), "{stores}");
    assert_eq!(rows(&stores).len(), 3, "{stores}");
    assert!(
        rows(&stores).iter().all(|row| row.contains(" Up ")),
        "{stores}"
    );
    let stores_json = ctl_json(pd, &["store"]);
    assert_eq!(stores_json["count"], 3);
    let store_id = stores_json["stores"][0]["store"]["id"].as_u64().unwrap();
    let one = ctl_ok(pd, &["store", &store_id.to_string()]);
    assert_eq!(rows(&one).len(), 1, "{one}");

    let regions = ctl_json(pd, &["region"]);
    let region = &regions["regions"][0];
    let region_id = region["id"].as_u64().unwrap();
    let by_id = ctl_ok(pd, &["region", &region_id.to_string()]);
    assert!(
        rows(&by_id)[0].starts_with(&region_id.to_string()),
        "{by_id}"
    );
    let by_key = ctl_json(pd, &["region", "key", "ctl-key"]);
    let by_hex_key = ctl_json(pd, &["region", "key", "--format", "hex", "63746c2d6b6579"]);
    assert_eq!(by_key["id"], by_hex_key["id"]);

    let members = ctl_ok(pd, &["member"]);
    assert!(members.starts_with("cluster id: "), "{members}");
    assert_eq!(
        rows(&members).len(),
        2,
        "header line, column names, one member: {members}"
    );
    let health = ctl_ok(pd, &["health"]);
    assert!(rows(&health)[0].ends_with("true"), "{health}");

    let config = ctl_json(pd, &["config", "show"]);
    assert_eq!(config["max-replicas"], 3);
    assert_eq!(
        ctl_ok(pd, &["config", "set", "max-replicas", "3"]),
        "Success!\n"
    );
    let bad = ctl_err(pd, &["config", "set", "max-replicas", "many"]);
    assert!(bad.contains("must be a number"), "{bad}");

    ctl_ok(pd, &["keyspace", "create", "ctl_space"]);
    let keyspaces = ctl_ok(pd, &["keyspace", "list"]);
    assert!(keyspaces.contains("ctl_space"), "{keyspaces}");

    // Move the leader of the key's region to another store with an operator.
    let region = ctl_json(pd, &["region", "key", "ctl-key"]);
    let region_id = region["id"].as_u64().unwrap();
    let leader_store = region["leader"]["store_id"].as_u64().unwrap();
    let target = region["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["store_id"].as_u64().unwrap())
        .find(|s| *s != leader_store)
        .unwrap();
    let added = ctl_ok(
        pd,
        &[
            "operator",
            "add",
            "transfer-leader",
            &region_id.to_string(),
            &target.to_string(),
        ],
    );
    assert!(added.contains("created"), "{added}");
    ctl_ok(pd, &["operator", "show"]);
    wait_until(
        "the operator to move the leader",
        Duration::from_secs(30),
        || cluster.leader_store_of(b"ctl-key") == Some(target),
    )
    .unwrap();

    let tso = ctl_ok(
        pd,
        &["tso", &((1_796_264_114_123u64 << 18) | 7).to_string()],
    );
    assert!(
        tso.contains("2026-12-03 02:15:14.123 UTC") && tso.contains("logic:   7"),
        "{tso}"
    );

    // tikv-ctl style, against the leader store: two committed versions of a key.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = TransactionClient::new(vec![pd.to_string()]).await.unwrap();
        for value in ["v1", "v2"] {
            let mut txn = client.begin_optimistic().await.unwrap();
            txn.put(b"ctl-key".to_vec(), value.as_bytes().to_vec())
                .await
                .unwrap();
            txn.commit().await.unwrap();
        }
    });
    let leader = cluster.stores[cluster.store_index(target).unwrap()].addr();
    let leader = leader.as_str();
    // The leader applied both commits before answering them; wait anyway, in case PD moved
    // the leader meanwhile and the store is a follower still applying.
    let mut mvcc = String::new();
    wait_until(
        "both versions on the store",
        Duration::from_secs(10),
        || {
            mvcc = ctl_ok(pd, &["--host", leader, "mvcc", "--key", "ctl-key"]);
            mvcc.matches("write type: Put").count() == 2
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {mvcc}"));
    assert!(mvcc.contains("short_value: \"v2\""), "{mvcc}");
    let mvcc_json = ctl_json(pd, &["--host", leader, "mvcc", "--key", "ctl-key"]);
    assert_eq!(mvcc_json["writes"].as_array().unwrap().len(), 2);
    assert!(mvcc_json["lock"].is_null());
    let missing = ctl_ok(pd, &["--host", leader, "mvcc", "--key", "no-such-key"]);
    assert!(missing.contains("no lock, write or value"), "{missing}");

    let scan = ctl_ok(
        pd,
        &[
            "--host", leader, "raw-scan", "--cf", "write", "--limit", "10",
        ],
    );
    assert!(scan.contains("ctl-key"), "{scan}");
    let props = ctl_json(
        pd,
        &[
            "--host",
            leader,
            "region-properties",
            "-r",
            &region_id.to_string(),
        ],
    );
    assert!(
        props["mvcc.num_versions"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 2,
        "{props}"
    );
    let compacted = ctl_ok(pd, &["--host", leader, "compact", "--cf", "write"]);
    assert!(compacted.contains("compacted"), "{compacted}");

    dashboard_metrics_are_exported(&cluster);
    region_gauges_match_pd(&cluster);

    // Errors that say what to do.
    let no_host = ctl_err(pd, &["mvcc", "--key", "a"]);
    assert!(no_host.contains("--host"), "{no_host}");
    let no_region = ctl_err(pd, &["region", "999999"]);
    assert!(no_region.contains("status 404"), "{no_region}");
    let unreachable = ctl_err("127.0.0.1:1", &["store"]);
    assert!(
        unreachable.contains("cannot reach PD at http://127.0.0.1:1"),
        "{unreachable}"
    );
    let bad_cf = ctl_err(pd, &["--host", leader, "raw-scan", "--cf", "nope"]);
    assert!(bad_cf.contains("unknown column family"), "{bad_cf}");
}

/// The stores' `tikv_raftstore_region_count`, by TiKV's `type`, agrees with PD: one leader per
/// region, and a replica of each on every one of the three stores.
fn region_gauges_match_pd(cluster: &LocalCluster) {
    let mut seen = String::new();
    wait_until(
        "the stores' region gauges to agree with PD",
        Duration::from_secs(30),
        || {
            let Some(regions) = pd_regions(&cluster.pd.addr()).and_then(|r| r["count"].as_u64())
            else {
                return false;
            };
            let gauge = |kind: &str| {
                cluster.metric_total("tikv_raftstore_region_count", &format!("type=\"{kind}\""))
            };
            let (leaders, replicas) = (gauge("leader"), gauge("region"));
            seen = format!("PD {regions} regions, gauges {leaders} leaders {replicas} replicas");
            regions > 0 && leaders == regions as f64 && replicas == 3.0 * regions as f64
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {seen}"));
}

/// Every metric the Grafana dashboard in `etc/` queries is one the servers export, except those
/// that appear only once their event happened (no sample before). A labelled metric appears
/// only once a label was used: this runs after the test's transactions, operators and reads.
fn dashboard_metrics_are_exported(cluster: &LocalCluster) {
    const ONLY_AFTER_EVENTS: &[&str] = &[
        "tikv_scheduler_too_busy_total",
        "tikv_gcworker_gc_keys",
        "tikv_gcworker_autogc_safe_point",
        "tikv_raftstore_hibernated_peer_state",
    ];
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/grafana/rtikv-cluster.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut wanted = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("tikv_") || word.starts_with("pd_") {
                    wanted.insert(word.to_string());
                }
            }
        }
    }
    assert!(wanted.len() > 15, "{wanted:?}");
    let mut exported = String::new();
    let mut scrape = |addr: String| {
        let (status, body) = cmd::process::http_get(&addr, "/metrics").unwrap();
        assert_eq!(status, 200);
        exported.push_str(&body);
    };
    scrape(cluster.pd.addr());
    for store in &cluster.stores {
        scrape(store.status_addr());
    }
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|name| !ONLY_AFTER_EVENTS.contains(&name.as_str()))
        .filter(|name| {
            // A histogram's series are its family's name with _bucket, _count or _sum.
            let histogram = ["_bucket", "_count", "_sum"].iter().any(|suffix| {
                name.strip_suffix(suffix)
                    .is_some_and(|family| exported.contains(&format!("# TYPE {family} histogram")))
            });
            !histogram && !exported.contains(&format!("# TYPE {name} "))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics nobody exports: {missing:?}"
    );
}

/// Runs the playground with `args`, expecting it to refuse to start; returns its stderr.
fn playground_refusal(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_playground"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(!out.status.success(), "playground {args:?} started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn playground_refuses_a_taken_port() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let port_text = port.to_string();
    let stderr = playground_refusal(dir.path(), &["--pd-port", &port_text, "--kv-port", "0"]);
    assert!(
        stderr.contains(&format!("PD client port 127.0.0.1:{port} is not available")),
        "{stderr}"
    );
    assert!(stderr.contains("--pd-port"), "{stderr}");

    // 21 stores from 20160: the 21st store's port is the first one's status port.
    let stderr = playground_refusal(dir.path(), &["--kv", "21", "--pd-port", "0"]);
    assert!(
        stderr.contains("store 1 status port and store 21 port would both be 127.0.0.1:20180"),
        "{stderr}"
    );
}

/// A chromedriver process and one headless Chromium session, spoken to over WebDriver's
/// HTTP protocol; both end when dropped.
struct Browser {
    driver: std::process::Child,
    addr: String,
    session: String,
}

impl Browser {
    fn start() -> Browser {
        let port = cmd::process::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "start chromedriver ({e}); the dashboard test needs Debian's chromium and \
                     chromium-driver (apt-get install -y chromium chromium-driver)"
                )
            });
        // Made first, so that a failure below kills chromedriver when the browser drops.
        let mut browser = Browser {
            driver,
            addr: format!("127.0.0.1:{port}"),
            session: String::new(),
        };
        wait_until("chromedriver to serve", Duration::from_secs(30), || {
            cmd::process::http_get(&browser.addr, "/status").is_ok_and(|(status, _)| status == 200)
        })
        .unwrap();
        let created = browser.call(
            "POST",
            "/session",
            serde_json::json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1400,1100"],
                },
            }}}),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_string();
        browser
    }

    /// Sends one WebDriver command and returns its `value`.
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, text) = cmd::process::http_request(&self.addr, method, path, &body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let answer: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path} answered {status}: {e}: {text}"));
        assert_eq!(status, 200, "WebDriver {method} {path}: {answer}");
        answer["value"].clone()
    }

    fn open(&self, url: &str) {
        self.call(
            "POST",
            &format!("/session/{}/url", self.session),
            serde_json::json!({ "url": url }),
        );
    }

    /// Runs `script` (a function body that returns a value) in the page.
    fn eval(&self, script: &str) -> Value {
        self.call(
            "POST",
            &format!("/session/{}/execute/sync", self.session),
            serde_json::json!({ "script": script, "args": [] }),
        )
    }

    /// A PNG of the window.
    fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let encoded = self.call(
            "GET",
            &format!("/session/{}/screenshot", self.session),
            Value::Null,
        );
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("a base64 screenshot"))
            .expect("valid base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = cmd::process::http_request(
                &self.addr,
                "DELETE",
                &format!("/session/{}", self.session),
                "",
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// PD's live page in a real browser: it renders one bar segment per region, coloured by the
/// leader's store, and the stores with the counts PD's JSON gives.
#[test]
fn dashboard_renders_the_cluster_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start_cluster(dir.path());
    let pd = cluster.pd.addr();
    // Three more regions, so the bar has segments to colour: the first region ends where the
    // keyspaces' keys begin, so it holds these keys.
    let before = cluster.regions_json().unwrap();
    let first = before["regions"][0]["id"].as_u64().unwrap();
    let regions_after_split = before["count"].as_u64().unwrap() + 3;
    let split = |keys: &[&[u8]]| {
        let keys: Vec<String> = keys.iter().map(|k| cmd::ctl::hex(k)).collect();
        let body = serde_json::json!({ "name": "split-region", "region_id": first, "keys": keys });
        cmd::process::http_request(&pd, "POST", "/pd/api/v1/operators", &body.to_string()).unwrap()
    };
    let (status, body) = split(&[b"k", b"d"]);
    assert_eq!(status, 400, "keys out of order are refused: {body}");
    assert!(body.contains("not inside region"), "{body}");
    let (status, body) = split(&[b"b", b"d", b"k"]);
    assert_eq!(status, 200, "{body}");
    cluster
        .wait_for_regions(regions_after_split, Duration::from_secs(60))
        .unwrap();

    let browser = Browser::start();
    browser.open(&format!("http://{pd}/dashboard"));
    // Until a refresh shows every region with its leader (the page polls every 3 s).
    wait_until(
        "the page to render every region",
        Duration::from_secs(30),
        || {
            browser.eval(
                "return document.querySelectorAll('#keyspace .region[data-leader-store]').length",
            ) == regions_after_split
        },
    )
    .unwrap();

    let regions = cluster.regions_json().unwrap();
    let stores = ctl_json(&pd, &["store"]);
    let page = browser.eval(
        "return {
            clusterId: document.getElementById('cluster-id').textContent,
            regions: document.getElementById('region-count').textContent,
            stores: document.getElementById('store-count').textContent,
            rows: [...document.querySelectorAll('#stores tbody tr')].map(r => ({
                id: r.dataset.storeId,
                regions: r.querySelector('.region-count').textContent,
                leaders: r.querySelector('.leader-count').textContent,
            })),
            segments: [...document.querySelectorAll('#keyspace .region')].map(s => ({
                id: s.dataset.regionId, leader: s.dataset.leaderStore, colour: s.style.backgroundColor,
            })),
            tableRows: document.querySelectorAll('#regions tbody tr').length,
        }",
    );
    assert_eq!(page["regions"], regions["count"].to_string());
    assert_eq!(page["stores"], "3");
    let (_, members) = cmd::process::http_get(&pd, "/pd/api/v1/members").unwrap();
    let members: Value = serde_json::from_str(&members).unwrap();
    let cluster_id = members["header"]["cluster_id"].as_u64().unwrap();
    assert_eq!(
        page["clusterId"],
        cluster_id.to_string(),
        "exact, not rounded to a double"
    );
    assert_eq!(page["tableRows"], regions_after_split);
    for store in stores["stores"].as_array().unwrap() {
        let id = store["store"]["id"].to_string();
        let row = page["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id.as_str())
            .unwrap_or_else(|| panic!("store {id} not on the page: {page}"));
        assert_eq!(
            row["regions"],
            store["status"]["region_count"].to_string(),
            "{page}"
        );
    }
    // Segments are in key order, as PD lists the regions, and share a colour exactly when they
    // share a leader store.
    let segments = page["segments"].as_array().unwrap();
    let ids: Vec<String> = regions["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].to_string())
        .collect();
    let shown: Vec<String> = segments
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(shown, ids);
    for a in segments {
        for b in segments {
            assert_eq!(
                a["leader"] == b["leader"],
                a["colour"] == b["colour"],
                "{page}"
            );
        }
    }

    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&path, png).unwrap();
    println!("dashboard screenshot: {}", path.display());
}

/// The rows of ycsb's final table, by operation: `(count, errors, [50th, 95th, 99th, 99.9th,
/// max])`.
fn ycsb_table(output: &str) -> Vec<(String, u64, u64, [u64; 5])> {
    let table: Vec<&str> = output
        .lines()
        .skip_while(|line| !line.starts_with("Run finished"))
        .skip(2)
        .collect();
    table
        .iter()
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            let number = |i: usize| {
                cells[i]
                    .parse::<u64>()
                    .unwrap_or_else(|e| panic!("{line}: {e}"))
            };
            (
                cells[0].to_string(),
                number(2),
                number(3),
                [number(7), number(8), number(9), number(10), number(11)],
            )
        })
        .collect()
}

fn ycsb(pd: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ycsb"))
        .args(args)
        .args([
            "--pd",
            pd,
            "--threads",
            "4",
            "--records",
            "300",
            "--value-size",
            "100",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ycsb {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The workload tool's phases over both APIs: the counts add up and the percentiles are in order.
#[test]
fn ycsb_loads_and_runs_workloads_over_both_apis() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start_cluster(dir.path());
    let pd = cluster.pd.addr();
    for (db, workload, operations, ops) in [
        ("raw", "a", 600, ["READ", "UPDATE"].as_slice()),
        ("raw", "e", 200, ["INSERT", "SCAN"].as_slice()),
        ("txn", "f", 300, ["READ", "READ_MODIFY_WRITE"].as_slice()),
    ] {
        let load = ycsb(&pd, &["load", "--db", db]);
        let loaded = ycsb_table(&load);
        assert_eq!(loaded.len(), 1, "{load}");
        assert_eq!(
            (loaded[0].0.as_str(), loaded[0].1, loaded[0].2),
            ("INSERT", 300, 0),
            "{load}"
        );

        let run = ycsb(
            &pd,
            &[
                "run",
                "--db",
                db,
                "--workload",
                workload,
                "--operations",
                &operations.to_string(),
            ],
        );
        let rows = ycsb_table(&run);
        let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(names, ops, "{run}");
        let total: u64 = rows.iter().map(|r| r.1 + r.2).sum();
        assert_eq!(total, operations, "every operation counted once: {run}");
        for (name, count, errors, percentiles) in &rows {
            // Optimistic read-modify-writes of popular keys conflict now and then; they count
            // as errors, as in go-ycsb. Raw operations never fail here.
            if db == "raw" {
                assert_eq!(*errors, 0, "{name}: {run}");
            } else {
                assert!(*errors * 5 < *count, "{name}: {run}");
            }
            assert!(*count > 0, "{name}: {run}");
            assert!(
                percentiles.windows(2).all(|w| w[0] <= w[1]),
                "{name} percentiles: {run}"
            );
        }
        assert!(run.contains("Run finished, takes"), "{run}");
    }
}
