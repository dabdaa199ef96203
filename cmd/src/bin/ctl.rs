//! ctl: pd-ctl and tikv-ctl in one tool.
//!
//! ```text
//! ctl store                                   # stores: state, capacity, regions, leaders
//! ctl region 2 | ctl region key --format hex 7200000061
//! ctl operator add transfer-leader 2 3        # region 2's leader to store 3
//! ctl tso 449391093237268481                  # a timestamp's time and logical counter
//! ctl --host 127.0.0.1:20160 mvcc --key 'x\x00\x00\x00k1'
//! ctl --host 127.0.0.1:20160 region-properties -r 2
//! ```
//!
//! PD commands talk to PD's HTTP API (`--pd`, default 127.0.0.1:2379 as pd-ctl's `-u`); store
//! commands talk to one store's Debug gRPC service (`--host`, as tikv-ctl's), which reads that
//! store's engine directly. Output is a table; `--json` prints the answer as JSON instead.

use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Parser, Subcommand};
use cmd::ctl::{self, CtlError, KeyFormat, Pd};
use kvproto::debugpb::debug_client::DebugClient;
use kvproto::debugpb::{self, BottommostLevelCompaction};
use serde_json::{json, Value};

#[derive(Parser, Debug)]
#[command(
    name = "ctl",
    version,
    about = "pd-ctl and tikv-ctl style commands for this cluster"
)]
struct Flags {
    /// PD's client address.
    #[arg(long, short = 'u', global = true, default_value = "127.0.0.1:2379")]
    pd: String,
    /// The store the store commands (mvcc, raw-scan, region-properties, compact) talk to, as
    /// `ctl store` lists them.
    #[arg(long, global = true, value_name = "HOST:PORT")]
    host: Option<String>,
    /// Print the answer as JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The stores, or one store.
    Store { id: Option<u64> },
    /// The regions, one region by id, or the region of a key (`region key KEY`).
    #[command(args_conflicts_with_subcommands = true)]
    Region {
        id: Option<u64>,
        #[command(subcommand)]
        by: Option<RegionBy>,
    },
    /// PD's members.
    Member,
    /// PD members' health.
    Health,
    /// PD's operators: show the running ones, or add one.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// PD's replication config.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Decodes a timestamp into its physical time (UTC) and logical counter.
    Tso { ts: u64 },
    /// Keyspaces (API V2).
    Keyspace {
        #[command(subcommand)]
        command: KeyspaceCommand,
    },
    /// [store] Every version of a transactional key on one store: its lock, writes and values.
    Mvcc {
        /// The key as the client stores it (with API V2, including its `x` + keyspace prefix).
        #[arg(long, short = 'k')]
        key: String,
        #[arg(long, value_enum, default_value = "raw")]
        format: KeyFormat,
    },
    /// [store] The key-value pairs of one column family on one store, as stored.
    RawScan {
        /// First key (as stored, without the data prefix); empty is the first.
        #[arg(long, default_value = "")]
        from: String,
        /// End key (excluded); empty is the last.
        #[arg(long, default_value = "")]
        to: String,
        #[arg(long, default_value_t = 30)]
        limit: u64,
        #[arg(long, default_value = "default")]
        cf: String,
        #[arg(long, value_enum, default_value = "raw")]
        format: KeyFormat,
    },
    /// [store] A region's size, keys and MVCC versions on one store.
    RegionProperties {
        #[arg(long = "region", short = 'r')]
        region: u64,
    },
    /// [store] Compacts a column family of one store (by default all of it).
    Compact {
        #[arg(long, default_value = "default")]
        cf: String,
        #[arg(long, default_value = "")]
        from: String,
        #[arg(long, default_value = "")]
        to: String,
        #[arg(long, value_enum, default_value = "raw")]
        format: KeyFormat,
        /// Also rewrite the bottommost level.
        #[arg(long)]
        bottommost: bool,
    },
}

#[derive(Subcommand, Debug)]
enum RegionBy {
    /// The region holding a key.
    Key {
        key: String,
        #[arg(long, value_enum, default_value = "raw")]
        format: KeyFormat,
    },
}

#[derive(Subcommand, Debug)]
enum OperatorCommand {
    /// The running operators.
    Show,
    /// Adds an operator.
    Add {
        #[command(subcommand)]
        operator: AddOperator,
    },
}

#[derive(Subcommand, Debug)]
enum AddOperator {
    /// Moves a region's leader to its peer on a store.
    TransferLeader { region_id: u64, store_id: u64 },
    /// Adds a replica of a region on a store.
    AddPeer { region_id: u64, store_id: u64 },
    /// Removes a region's replica from a store.
    RemovePeer { region_id: u64, store_id: u64 },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// The replication config.
    Show,
    /// Sets `max-replicas N` or `location-labels a,b`.
    Set { name: String, value: String },
}

#[derive(Subcommand, Debug)]
enum KeyspaceCommand {
    /// Every keyspace.
    List,
    /// Creates a keyspace.
    Create { name: String },
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    match run(&flags) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

/// Prints `value` as JSON with `--json`, else through `table`.
fn show(flags: &Flags, value: Value, table: impl FnOnce(&Value) -> String) -> String {
    if flags.json {
        pretty(&value)
    } else {
        table(&value)
    }
}

fn items(value: &Value, field: &str) -> Vec<Value> {
    value[field].as_array().cloned().unwrap_or_default()
}

fn run(flags: &Flags) -> Result<String, CtlError> {
    let pd = Pd::new(&flags.pd);
    let now = SystemTime::now();
    Ok(match &flags.command {
        Command::Store { id: None } => show(flags, pd.get("/pd/api/v1/stores")?, |v| {
            ctl::stores_table(&items(v, "stores"), now)
        }),
        Command::Store { id: Some(id) } => {
            show(flags, pd.get(&format!("/pd/api/v1/store/{id}"))?, |v| {
                ctl::stores_table(std::slice::from_ref(v), now)
            })
        }
        Command::Region { id: None, by: None } => show(flags, pd.get("/pd/api/v1/regions")?, |v| {
            format!(
                "{} regions\n{}",
                v["count"],
                ctl::regions_table(&items(v, "regions"))
            )
        }),
        Command::Region { id: Some(id), .. } => {
            show(flags, pd.get(&format!("/pd/api/v1/region/id/{id}"))?, |v| {
                ctl::regions_table(std::slice::from_ref(v))
            })
        }
        Command::Region {
            by: Some(RegionBy::Key { key, format }),
            ..
        } => {
            let key = ctl::parse_key(key, *format)?;
            let path = format!("/pd/api/v1/region/key/{}?format=hex", ctl::hex(&key));
            show(flags, pd.get(&path)?, |v| {
                ctl::regions_table(std::slice::from_ref(v))
            })
        }
        Command::Member => show(flags, pd.get("/pd/api/v1/members")?, ctl::members_table),
        Command::Health => show(flags, pd.get("/pd/api/v1/health")?, |v| {
            ctl::health_table(v.as_array().map(Vec::as_slice).unwrap_or_default())
        }),
        Command::Operator {
            command: OperatorCommand::Show,
        } => show(flags, pd.get("/pd/api/v1/operators")?, |v| {
            ctl::operators_table(v.as_array().map(Vec::as_slice).unwrap_or_default())
        }),
        Command::Operator {
            command: OperatorCommand::Add { operator },
        } => {
            let (name, region_id, store_id) = match operator {
                AddOperator::TransferLeader {
                    region_id,
                    store_id,
                } => ("transfer-leader", region_id, store_id),
                AddOperator::AddPeer {
                    region_id,
                    store_id,
                } => ("add-peer", region_id, store_id),
                AddOperator::RemovePeer {
                    region_id,
                    store_id,
                } => ("remove-peer", region_id, store_id),
            };
            let answer = pd.post(
                "/pd/api/v1/operators",
                &ctl::operator_body(name, *region_id, *store_id)?,
            )?;
            show(flags, answer, |v| {
                format!("{}\n", v.as_str().unwrap_or("ok"))
            })
        }
        Command::Config {
            command: ConfigCommand::Show,
        } => pretty(&pd.get("/pd/api/v1/config/replicate")?),
        Command::Config {
            command: ConfigCommand::Set { name, value },
        } => {
            let body = match name.as_str() {
                "max-replicas" => {
                    let n: u64 = value.parse().map_err(|_| {
                        CtlError(format!("max-replicas must be a number, not {value:?}"))
                    })?;
                    json!({ "max-replicas": n })
                }
                "location-labels" => json!({ "location-labels": value }),
                other => {
                    return Err(CtlError(format!(
                        "unknown config {other:?}; ctl sets max-replicas and location-labels"
                    )))
                }
            };
            let answer = pd.post("/pd/api/v1/config/replicate", &body)?;
            show(flags, answer, |_| "Success!\n".to_string())
        }
        Command::Tso { ts } => {
            let (physical, logical) = ctl::decode_tso(*ts);
            let value = json!({
                "physical_ms": physical,
                "logical": logical,
                "system": ctl::utc(physical),
            });
            show(flags, value, |_| ctl::tso_text(*ts))
        }
        Command::Keyspace {
            command: KeyspaceCommand::List,
        } => show(flags, pd.get("/pd/api/v2/keyspaces")?, |v| {
            ctl::keyspaces_table(&items(v, "keyspaces"))
        }),
        Command::Keyspace {
            command: KeyspaceCommand::Create { name },
        } => show(
            flags,
            pd.post("/pd/api/v2/keyspaces", &json!({ "name": name }))?,
            |v| ctl::keyspaces_table(std::slice::from_ref(v)),
        ),
        store_command => run_store_command(flags, store_command)?,
    })
}

/// The store commands, over the Debug service of the store at `--host`.
fn run_store_command(flags: &Flags, command: &Command) -> Result<String, CtlError> {
    let host = flags.host.as_deref().ok_or_else(|| {
        CtlError(
            "this command talks to one store: give its address with --host HOST:PORT \
             (`ctl store` lists them)"
                .into(),
        )
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CtlError(format!("start a runtime: {e}")))?;
    runtime.block_on(async {
        let endpoint = format!("http://{host}");
        let channel = tonic::transport::Endpoint::from_shared(endpoint.clone())
            .map_err(|e| CtlError(format!("bad store address {host:?}: {e}")))?
            .connect_timeout(ctl::TIMEOUT)
            .timeout(ctl::TIMEOUT * 6)
            .connect()
            .await
            .map_err(|e| {
                CtlError(format!(
                    "cannot reach the store at {host} ({e}); is tikv-server running there? \
                     `ctl store` lists the stores' addresses"
                ))
            })?;
        let mut client = DebugClient::new(channel).max_decoding_message_size(256 << 20);
        let failed =
            |e: tonic::Status| CtlError(format!("the store at {host} answered: {}", e.message()));
        let data_key = |key: &str, format: KeyFormat| -> Result<Vec<u8>, CtlError> {
            let key = ctl::parse_key(key, format)?;
            Ok(if key.is_empty() {
                key
            } else {
                keys::data_key(&key)
            })
        };
        match command {
            Command::Mvcc { key, format } => {
                let raw = ctl::parse_key(key, *format)?;
                let data = keys::data_key(&codec::memcomparable::encode(&raw));
                let mut stream = client
                    .scan_mvcc(debugpb::ScanMvccRequest {
                        from_key: data.clone(),
                        to_key: Vec::new(),
                        limit: 1,
                    })
                    .await
                    .map_err(failed)?
                    .into_inner();
                let mut info = None;
                while let Some(item) = stream.message().await.map_err(failed)? {
                    if item.key == data {
                        info = item.info;
                    }
                }
                let info = info.unwrap_or_default();
                Ok(if flags.json {
                    pretty(&ctl::mvcc_json(&raw, &info))
                } else {
                    ctl::mvcc_text(&raw, &info)
                })
            }
            Command::RawScan {
                from,
                to,
                limit,
                cf,
                format,
            } => {
                let from = data_key(from, *format)?;
                let to = data_key(to, *format)?;
                let kvs = client
                    .raw_scan(debugpb::RawScanRequest {
                        cf: cf.clone(),
                        from_key: if from.is_empty() {
                            keys::DATA_MIN_KEY.to_vec()
                        } else {
                            from
                        },
                        to_key: if to.is_empty() {
                            keys::DATA_MAX_KEY.to_vec()
                        } else {
                            to
                        },
                        limit: *limit,
                    })
                    .await
                    .map_err(failed)?
                    .into_inner()
                    .kvs;
                Ok(ctl::raw_scan_output(&kvs, flags.json))
            }
            Command::RegionProperties { region } => {
                let props = client
                    .get_region_properties(debugpb::GetRegionPropertiesRequest {
                        region_id: *region,
                    })
                    .await
                    .map_err(failed)?
                    .into_inner()
                    .props;
                let pairs: Vec<(String, String)> =
                    props.into_iter().map(|p| (p.name, p.value)).collect();
                Ok(if flags.json {
                    pretty(&Value::Object(
                        pairs
                            .into_iter()
                            .map(|(k, v)| (k, Value::String(v)))
                            .collect(),
                    ))
                } else {
                    let rows: Vec<Vec<String>> =
                        pairs.into_iter().map(|(k, v)| vec![k, v]).collect();
                    ctl::table(&["PROPERTY", "VALUE"], &rows)
                })
            }
            Command::Compact {
                cf,
                from,
                to,
                format,
                bottommost,
            } => {
                client
                    .compact(debugpb::CompactRequest {
                        db: debugpb::Db::Kv as i32,
                        cf: cf.clone(),
                        from_key: data_key(from, *format)?,
                        to_key: data_key(to, *format)?,
                        threads: 1,
                        bottommost_level_compaction: if *bottommost {
                            BottommostLevelCompaction::Force
                        } else {
                            BottommostLevelCompaction::Skip
                        } as i32,
                    })
                    .await
                    .map_err(failed)?;
                Ok(format!("store {host}: column family {cf} compacted\n"))
            }
            _ => unreachable!("PD commands are handled by run"),
        }
    })
}
