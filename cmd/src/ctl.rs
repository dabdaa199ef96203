//! The `ctl` tool's logic: pd-ctl style commands over PD's HTTP API and tikv-ctl style commands
//! over a store's debug gRPC service, printed as tables (or the JSON PD answered, for scripts).
//! The binary (`src/bin/ctl.rs`) only parses flags and calls into here.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kvproto::kvrpcpb;
use serde_json::{json, Value};

use crate::process::http_request;

/// A failed command, with a message that says what to do.
#[derive(Debug)]
pub struct CtlError(pub String);

impl std::fmt::Display for CtlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CtlError {}

pub type Result<T> = std::result::Result<T, CtlError>;

/// PD's HTTP API at one address (`host:port`, with or without `http://`).
pub struct Pd {
    addr: String,
}

impl Pd {
    pub fn new(addr: &str) -> Pd {
        let addr = addr
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        Pd { addr }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// GETs `path` and parses the JSON answer.
    ///
    /// # Errors
    ///
    /// PD unreachable (naming the address tried), or an error status with PD's message.
    pub fn get(&self, path: &str) -> Result<Value> {
        self.call("GET", path, "")
    }

    /// POSTs `body` as JSON to `path` and parses the JSON answer.
    ///
    /// # Errors
    ///
    /// As [`Pd::get`].
    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.call("POST", path, &body.to_string())
    }

    fn call(&self, method: &str, path: &str, body: &str) -> Result<Value> {
        let (status, text) = http_request(&self.addr, method, path, body).map_err(|e| {
            CtlError(format!(
                "cannot reach PD at http://{} ({e}); is pd-server running there? Give its \
                 client address with --pd HOST:PORT",
                self.addr
            ))
        })?;
        if !(200..300).contains(&status) {
            return Err(CtlError(format!(
                "PD at http://{} answered {method} {path} with status {status}: {}",
                self.addr,
                pd_message(&text)
            )));
        }
        serde_json::from_str(&text).map_err(|e| {
            CtlError(format!(
                "PD at http://{} answered {method} {path} with something that is not JSON ({e}): {text}",
                self.addr
            ))
        })
    }
}

/// PD's error bodies are JSON strings; print them without the quotes.
fn pd_message(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::String(message)) => message,
        _ => text.trim().to_string(),
    }
}

/// Left-aligned columns under a header row, separated by two spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let _ = write!(text, "{cell:<width$}", width = widths[i]);
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A column of a table of JSON items: its header and how a cell is made from an item.
pub type Column<'a> = (&'a str, &'a dyn Fn(&Value) -> String);

/// One row per item, one cell per column.
pub fn items_table(items: &[Value], columns: &[Column<'_>]) -> String {
    let headers: Vec<&str> = columns.iter().map(|(header, _)| *header).collect();
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| columns.iter().map(|(_, cell)| cell(item)).collect())
        .collect();
    table(&headers, &rows)
}

/// `store` and `store ID`.
pub fn stores_table(stores: &[Value], now: SystemTime) -> String {
    let heartbeat = |s: &Value| {
        s["status"]["last_heartbeat_ts"]
            .as_u64()
            .filter(|ms| *ms > 0)
            .map_or("never".to_string(), |ms| ago(ms, now))
    };
    items_table(
        stores,
        &[
            ("ID", &|s| text(&s["store"]["id"])),
            ("ADDRESS", &|s| text(&s["store"]["address"])),
            ("STATE", &|s| text(&s["store"]["state_name"])),
            ("CAPACITY", &|s| text(&s["status"]["capacity"])),
            ("AVAILABLE", &|s| text(&s["status"]["available"])),
            ("REGIONS", &|s| text(&s["status"]["region_count"])),
            ("LEADERS", &|s| text(&s["status"]["leader_count"])),
            ("LAST HEARTBEAT", &heartbeat),
        ],
    )
}

fn ago(unix_ms: u64, now: SystemTime) -> String {
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let secs = now_ms.saturating_sub(unix_ms) as f64 / 1000.0;
    format!("{secs:.1}s ago")
}

/// A key as PD prints it (upper-case hex) shown with its printable form: `7200000061 ("r\0\0\0a")`.
pub fn key_text(hex: &str) -> String {
    if hex.is_empty() {
        return "\"\"".to_string();
    }
    match decode_hex(hex) {
        Some(bytes) => format!("{hex} ({})", escape(&bytes)),
        None => hex.to_string(),
    }
}

/// Bytes as a quoted string, with non-printable bytes as `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    out
}

/// `region` and `region ID`.
pub fn regions_table(regions: &[Value]) -> String {
    let peers = |r: &Value| {
        r["peers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let learner = if p["role_name"] == "Learner" {
                    "(learner)"
                } else {
                    ""
                };
                format!("{}{learner}", text(&p["store_id"]))
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let epoch = |r: &Value| {
        format!(
            "{}/{}",
            text(&r["epoch"]["conf_ver"]),
            text(&r["epoch"]["version"])
        )
    };
    let key =
        |field: &'static str| move |r: &Value| key_text(r[field].as_str().unwrap_or_default());
    items_table(
        regions,
        &[
            ("ID", &|r| text(&r["id"])),
            ("START KEY", &key("start_key")),
            ("END KEY", &key("end_key")),
            ("LEADER STORE", &|r| text(&r["leader"]["store_id"])),
            ("PEER STORES", &peers),
            ("CONF_VER/VERSION", &epoch),
            ("SIZE(MiB)", &|r| text(&r["approximate_size"])),
            ("KEYS", &|r| text(&r["approximate_keys"])),
        ],
    )
}

/// `member`.
pub fn members_table(members: &Value) -> String {
    let leader = members["leader"]["member_id"].clone();
    let is_leader = |m: &Value| {
        if m["member_id"] == leader {
            "yes"
        } else {
            "no"
        }
        .to_string()
    };
    let mut out = format!("cluster id: {}\n", text(&members["header"]["cluster_id"]));
    out.push_str(&items_table(
        members["members"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default(),
        &[
            ("NAME", &|m| text(&m["name"])),
            ("MEMBER ID", &|m| text(&m["member_id"])),
            ("CLIENT URLS", &|m| list(&m["client_urls"])),
            ("PEER URLS", &|m| list(&m["peer_urls"])),
            ("LEADER", &is_leader),
        ],
    ));
    out
}

fn list(value: &Value) -> String {
    value
        .as_array()
        .map(|items| items.iter().map(text).collect::<Vec<_>>().join(","))
        .unwrap_or_else(|| text(value))
}

/// `health`.
pub fn health_table(health: &[Value]) -> String {
    items_table(
        health,
        &[
            ("NAME", &|m| text(&m["name"])),
            ("MEMBER ID", &|m| text(&m["member_id"])),
            ("CLIENT URLS", &|m| list(&m["client_urls"])),
            ("HEALTHY", &|m| text(&m["health"])),
        ],
    )
}

/// `operator show`.
pub fn operators_table(operators: &[Value]) -> String {
    items_table(
        operators,
        &[
            ("REGION", &|op| text(&op["region_id"])),
            ("KIND", &|op| text(&op["kind"])),
            ("STEP", &|op| text(&op["desc"])),
            ("REASON", &|op| text(&op["reason"])),
            ("CREATED", &|op| {
                op["created_ms"].as_u64().map_or("-".to_string(), utc)
            }),
        ],
    )
}

/// `keyspace list`.
pub fn keyspaces_table(keyspaces: &[Value]) -> String {
    items_table(
        keyspaces,
        &[
            ("ID", &|k| text(&k["id"])),
            ("NAME", &|k| text(&k["name"])),
            ("STATE", &|k| text(&k["state"])),
            ("CREATED AT (unix s)", &|k| text(&k["created_at"])),
        ],
    )
}

/// Bits of a TSO timestamp below the physical milliseconds.
pub const LOGICAL_BITS: u32 = 18;

/// A timestamp's physical milliseconds and logical counter.
pub fn decode_tso(ts: u64) -> (u64, u64) {
    (ts >> LOGICAL_BITS, ts & ((1 << LOGICAL_BITS) - 1))
}

/// `tso TS`: the physical time (UTC) and logical counter of a timestamp, as pd-ctl prints them.
pub fn tso_text(ts: u64) -> String {
    let (physical_ms, logical) = decode_tso(ts);
    format!(
        "system:  {}\nlogic:   {logical}\nphysical (unix ms): {physical_ms}\n",
        utc(physical_ms)
    )
}

/// `2026-12-03 02:15:14.123 UTC` for a Unix time in milliseconds.
pub fn utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        unix_ms % 1000
    )
}

/// The proleptic Gregorian date of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days` algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub use pd_server::cluster::{decode_hex, hex_upper as hex};

/// How a key is written on the command line, as pd-ctl's `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyFormat {
    /// The text itself; `\xNN` escapes a byte and `\\` a backslash.
    Raw,
    /// Hex digits.
    Hex,
}

/// Parses a key given on the command line.
///
/// # Errors
///
/// Bad hex digits or a bad escape.
pub fn parse_key(text: &str, format: KeyFormat) -> Result<Vec<u8>> {
    match format {
        KeyFormat::Hex => {
            decode_hex(text).ok_or_else(|| CtlError(format!("{text:?} is not a hex key")))
        }
        KeyFormat::Raw => unescape(text),
    }
}

fn unescape(text: &str) -> Result<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let byte = text
                    .get(i + 2..i + 4)
                    .and_then(decode_hex)
                    .map(|bytes| bytes[0])
                    .ok_or_else(|| {
                        CtlError(format!(
                            "bad escape in key {text:?}: \\x needs two hex digits"
                        ))
                    })?;
                out.push(byte);
                i += 4;
            }
            _ => {
                return Err(CtlError(format!(
                    "bad escape in key {text:?}: use \\xNN for a byte or \\\\ for a backslash"
                )))
            }
        }
    }
    Ok(out)
}

/// The body of `operator add NAME REGION STORE` for PD's operators API.
///
/// # Errors
///
/// An unknown operator name.
pub fn operator_body(name: &str, region_id: u64, store_id: u64) -> Result<Value> {
    match name {
        "transfer-leader" => {
            Ok(json!({ "name": name, "region_id": region_id, "to_store_id": store_id }))
        }
        "add-peer" | "remove-peer" => {
            Ok(json!({ "name": name, "region_id": region_id, "store_id": store_id }))
        }
        other => Err(CtlError(format!(
            "unknown operator {other:?}; use transfer-leader, add-peer or remove-peer"
        ))),
    }
}

fn op_name(op: i32) -> &'static str {
    kvrpcpb::Op::try_from(op).map_or("Unknown", |op| op.as_str_name())
}

/// `mvcc`: a key's lock, writes (newest first) and values, as tikv-ctl prints them.
pub fn mvcc_text(key: &[u8], info: &kvrpcpb::MvccInfo) -> String {
    let mut out = format!("key: {}\n", escape(key));
    if info.lock.is_none() && info.writes.is_empty() && info.values.is_empty() {
        out.push_str("\tno lock, write or value on this store\n");
        return out;
    }
    if let Some(lock) = &info.lock {
        let _ = writeln!(
            out,
            "\tlock type: {} start_ts: {} ttl: {} primary: {} for_update_ts: {} txn_size: {}{}",
            op_name(lock.r#type),
            lock.start_ts,
            lock.ttl,
            escape(&lock.primary),
            lock.for_update_ts,
            lock.txn_size,
            if lock.use_async_commit {
                " async-commit"
            } else {
                ""
            }
        );
    }
    for write in &info.writes {
        let _ = write!(
            out,
            "\twrite type: {} start_ts: {} commit_ts: {}",
            op_name(write.r#type),
            write.start_ts,
            write.commit_ts
        );
        if !write.short_value.is_empty() {
            let _ = write!(out, " short_value: {}", escape(&write.short_value));
        }
        if write.has_overlapped_rollback {
            out.push_str(" overlapped_rollback");
        }
        if write.has_gc_fence {
            let _ = write!(out, " gc_fence: {}", write.gc_fence);
        }
        out.push('\n');
    }
    for value in &info.values {
        let _ = writeln!(
            out,
            "\tvalue start_ts: {} value: {}",
            value.start_ts,
            escape(&value.value)
        );
    }
    out
}

/// `mvcc --json`.
pub fn mvcc_json(key: &[u8], info: &kvrpcpb::MvccInfo) -> Value {
    json!({
        "key": escape(key),
        "lock": info.lock.as_ref().map(|lock| json!({
            "type": op_name(lock.r#type),
            "start_ts": lock.start_ts,
            "ttl": lock.ttl,
            "primary": escape(&lock.primary),
            "for_update_ts": lock.for_update_ts,
            "txn_size": lock.txn_size,
            "use_async_commit": lock.use_async_commit,
            "secondaries": lock.secondaries.iter().map(|k| escape(k)).collect::<Vec<_>>(),
            "rollback_ts": lock.rollback_ts,
        })),
        "writes": info.writes.iter().map(|w| json!({
            "type": op_name(w.r#type),
            "start_ts": w.start_ts,
            "commit_ts": w.commit_ts,
            "short_value": escape(&w.short_value),
            "has_overlapped_rollback": w.has_overlapped_rollback,
            "gc_fence": w.has_gc_fence.then_some(w.gc_fence),
        })).collect::<Vec<_>>(),
        "values": info.values.iter().map(|v| json!({
            "start_ts": v.start_ts,
            "value": escape(&v.value),
        })).collect::<Vec<_>>(),
    })
}

/// `raw-scan`: each pair as `key: "..." value: "..."` (keys without the data prefix), or JSON.
pub fn raw_scan_output(kvs: &[kvrpcpb::KvPair], as_json: bool) -> String {
    let key = |k: &[u8]| escape(k.strip_prefix(b"z").unwrap_or(k));
    if as_json {
        let list: Vec<Value> = kvs
            .iter()
            .map(|kv| json!({ "key": key(&kv.key), "value": escape(&kv.value) }))
            .collect();
        return serde_json::to_string_pretty(&list).unwrap_or_default() + "\n";
    }
    let mut out = String::new();
    for kv in kvs {
        let _ = writeln!(out, "key: {} value: {}", key(&kv.key), escape(&kv.value));
    }
    let _ = writeln!(out, "({} pairs)", kvs.len());
    out
}

/// How long a store command waits to connect to the store (PD calls wait 10 s for an answer).
pub const TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tso_splits_physical_and_logical() {
        // 2026-12-03 02:15:14.123 UTC, logical 7.
        let physical = 1_796_264_114_123u64;
        let text = tso_text((physical << LOGICAL_BITS) | 7);
        assert!(text.contains("2026-12-03 02:15:14.123 UTC"), "{text}");
        assert!(text.contains("logic:   7"), "{text}");
        assert_eq!(utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00.000 UTC");
    }

    #[test]
    fn keys_parse_from_raw_escapes_and_hex() {
        assert_eq!(parse_key("ab\\x00\\\\", KeyFormat::Raw).unwrap(), b"ab\0\\");
        assert_eq!(parse_key("61ff", KeyFormat::Hex).unwrap(), b"a\xff");
        assert!(parse_key("6", KeyFormat::Hex).is_err());
        assert!(parse_key("\\q", KeyFormat::Raw).is_err());
        assert!(parse_key("\\x0", KeyFormat::Raw).is_err());
        assert!(parse_key("\\x+f", KeyFormat::Raw).is_err());
        assert_eq!(escape(b"r\0a\""), "\"r\\x00a\\\"\"");
        assert_eq!(key_text("7200"), "7200 (\"r\\x00\")");
        assert_eq!(key_text(""), "\"\"");
    }

    #[test]
    fn tables_align_columns() {
        let out = table(
            &["ID", "NAME"],
            &[
                vec!["1".into(), "a".into()],
                vec!["100".into(), "bb".into()],
            ],
        );
        assert_eq!(out, "ID   NAME\n1    a\n100  bb\n");
    }

    #[test]
    fn operator_bodies_match_pds_api() {
        assert_eq!(
            operator_body("transfer-leader", 2, 3).unwrap(),
            json!({"name": "transfer-leader", "region_id": 2, "to_store_id": 3})
        );
        assert_eq!(
            operator_body("add-peer", 2, 3).unwrap()["store_id"],
            json!(3)
        );
        assert!(operator_body("merge", 2, 3).is_err());
    }
}
