//! Server commands: COMMAND (COUNT, DOCS, INFO), CONFIG GET/SET, FUNCTION FLUSH/LIST, INFO, TIME.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use sessiongrid_model::notify::Flags;
use sessiongrid_model::{glob, Op, Reply};

use super::connection::REDIS_VERSION;
use super::{lookup, CmdResult, Ctx, Spec, COMMANDS};

fn text(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

/// The first six fields of Redis' `COMMAND` entry, which is what clients read.
fn describe(spec: &Spec) -> Reply {
    Reply::Array(vec![
        text(spec.name),
        Reply::Int(spec.arity as i64),
        Reply::Set(spec.flags.iter().map(|f| Reply::Status((*f).into())).collect()),
        Reply::Int(spec.keys.0 as i64),
        Reply::Int(spec.keys.1 as i64),
        Reply::Int(spec.keys.2 as i64),
    ])
}

pub fn command(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.args.len() == 1 {
        return Ok(Reply::Array(COMMANDS.iter().map(describe).collect()));
    }
    let sub = ctx.args.text(1).to_ascii_lowercase();
    match sub.as_str() {
        "count" => Ok(Reply::Int(COMMANDS.len() as i64)),
        "info" => Ok(Reply::Array(
            ctx.args.from(2).iter().map(|n| lookup(n).map_or(Reply::Nil, describe)).collect(),
        )),
        "docs" => {
            let names: Vec<&Spec> = if ctx.args.len() == 2 {
                COMMANDS.iter().collect()
            } else {
                ctx.args.from(2).iter().filter_map(|n| lookup(n)).collect()
            };
            Ok(Reply::Map(
                names
                    .into_iter()
                    .map(|s| (text(s.name), Reply::Map(vec![(text("summary"), text(""))])))
                    .collect(),
            ))
        }
        "getkeys" => getkeys(ctx.args.from(2)),
        _ => {
            let sub = ctx.args.text(1);
            Err(Reply::error(format!("ERR unknown subcommand '{sub}'. Try COMMAND HELP.")))
        }
    }
}

/// `COMMAND GETKEYS command arg...`: the keys the command names, as the ACL checks find them.
fn getkeys(line: &[Bytes]) -> CmdResult {
    // As in Redis, the command needs an argument besides its name.
    let (Some(name), true) = (line.first(), line.len() >= 2) else {
        return Err(Reply::error("ERR wrong number of arguments for 'command|getkeys' command"));
    };
    let spec = lookup(name).ok_or_else(|| Reply::error("ERR Invalid command specified"))?;
    if !spec.arity_fits(line.len()) {
        return Err(Reply::error("ERR Invalid number of arguments specified for command"));
    }
    let keys = crate::redis::acl::check::keys(spec, line);
    if keys.is_empty() {
        return Err(Reply::error("ERR The command has no key arguments"));
    }
    Ok(Reply::Array(keys.into_iter().map(|(k, _)| Reply::Bulk(k.clone())).collect()))
}

/// Redis settings about how Redis encodes and frees values in memory, and its snapshots. The
/// grid stores values its own way, so `CONFIG SET` accepts them and changes nothing (test
/// suites and tools set them).
const TUNING_WITHOUT_EFFECT: &[&str] = &[
    "hash-max-ziplist-entries",
    "hash-max-ziplist-value",
    "hash-max-listpack-entries",
    "hash-max-listpack-value",
    "set-max-intset-entries",
    "zset-max-ziplist-entries",
    "zset-max-ziplist-value",
    "zset-max-listpack-entries",
    "zset-max-listpack-value",
    "list-max-ziplist-size",
    "list-max-listpack-size",
    "list-compress-depth",
    "stream-node-max-bytes",
    "stream-node-max-entries",
    "activerehashing",
    "lazyfree-lazy-eviction",
    "lazyfree-lazy-expire",
    "lazyfree-lazy-server-del",
    "lazyfree-lazy-user-del",
    "lazyfree-lazy-user-flush",
    // RDB snapshots: the grid writes every change through to RocksDB instead.
    "save",
];

/// `CONFIG GET pattern...` (the settings clients probe) and `CONFIG SET` of the settings in
/// [`TUNING_WITHOUT_EFFECT`]; nothing else can be set at runtime.
/// The setting of which keyspace events are published, grid-wide.
const NOTIFY: &str = "notify-keyspace-events";

pub fn config(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.args.is(1, "set") {
        let pairs = ctx.args.from(2);
        if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
            return Err(Reply::error("ERR wrong number of arguments for 'config|set' command"));
        }
        let mut notify = None;
        for pair in pairs.chunks(2) {
            let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
            if name == NOTIFY {
                notify = Some(Flags::parse(&pair[1]).ok_or_else(|| {
                    Reply::error(format!(
                        "ERR CONFIG SET failed (possibly related to argument '{NOTIFY}') - \
                         Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
                    ))
                })?);
            } else if !TUNING_WITHOUT_EFFECT.contains(&name.as_str()) {
                return Err(Reply::error(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
                )));
            }
        }
        if let Some(flags) = notify {
            ctx.shared.grid.set_notify_flags(flags);
        }
        return Ok(Reply::Ok);
    }
    if ctx.args.is(1, "resetstat") && ctx.args.len() == 2 {
        for m in &ctx.shared.command_metrics {
            m.reset();
        }
        ctx.shared.errors.reset();
        return Ok(Reply::Ok);
    }
    if !ctx.args.is(1, "get") {
        let sub = ctx.args.text(1);
        return Err(Reply::error(format!(
            "ERR unknown subcommand '{sub}'. Only CONFIG GET and SET are supported."
        )));
    }
    if ctx.args.len() < 3 {
        return Err(Reply::error("ERR wrong number of arguments for 'config|get' command"));
    }
    let notify = (NOTIFY, ctx.shared.grid.notify_flags().text());
    let view = ctx.shared.config.config_view.iter().chain([&notify]);
    let pairs = view
        .filter(|(name, _)| {
            ctx.args.from(2).iter().any(|p| glob::matches(&p.to_ascii_lowercase(), name.as_bytes()))
        })
        .map(|(name, value)| (text(name), text(value)))
        .collect();
    Ok(Reply::Map(pairs))
}

pub async fn info(ctx: &mut Ctx<'_>) -> CmdResult {
    let shared = ctx.shared;
    // A cluster that cannot answer for every partition right now still gets its INFO.
    let keyspace: String = match shared.grid.db_counts_in(None).await {
        Ok(dbs) => (dbs.iter().enumerate())
            .filter(|(_, (keys, _))| *keys > 0)
            .map(|(db, (keys, expiring))| {
                format!("db{db}:keys={keys},expires={expiring},avg_ttl=0\r\n")
            })
            .collect(),
        Err(_) => String::new(),
    };
    let uptime = shared.started.elapsed().as_secs();
    let wants =
        |section: &str| ctx.args.from(1).iter().any(|a| a.eq_ignore_ascii_case(section.as_bytes()));
    let commandstats = if wants("commandstats") || wants("all") || wants("everything") {
        command_stats(shared)
    } else {
        String::new()
    };
    let store = shared.grid.store();
    let disk_bytes = store.property("rocksdb.total-sst-files-size").unwrap_or(0);
    // Not Redis' `# Cluster` section: clients that see `cluster_enabled:1` switch to the
    // Redis Cluster protocol on their own, and then refuse commands on keys of several slots,
    // which a grid runs as one. A client configured for a cluster uses `CLUSTER SLOTS`.
    let cluster = match shared.grid.cluster_status().await {
        Some(c) => format!(
            "# Grid\r\ngrid_clustered:1\r\ngrid_node:{:016x}\r\ngrid_epoch:{}\r\n\
             grid_coordinator:{:016x}\r\ngrid_members:{}\r\ngrid_primaries:{}\r\n\
             grid_copies:{}\r\ngrid_moving_partitions:{}\r\ngrid_serving:{}\r\n\r\n",
            c.node,
            c.epoch,
            c.coordinator,
            c.members.len(),
            c.primaries,
            c.copies,
            c.moving,
            u8::from(c.lease)
        ),
        None => "# Grid\r\ngrid_clustered:0\r\n\r\n".to_string(),
    };
    let body = format!(
        "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\n\
         sessiongrid_version:{}\r\nprocess_id:{}\r\nuptime_in_seconds:{uptime}\r\n\
         uptime_in_days:{}\r\n\r\n\
         # Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\n\r\n\
         # Memory\r\nnumber_of_cached_scripts:{}\r\n\r\n\
         # Persistence\r\nloading:0\r\naof_enabled:1\r\nsessiongrid_disk_bytes:{disk_bytes}\r\n\r\n\
         # Stats\r\ntotal_commands_processed:{}\r\n\r\n\
         # Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n\
         # Errorstats\r\n{}\r\n\
         {cluster}{commandstats}\
         # Keyspace\r\n{keyspace}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        uptime / 86_400,
        shared.connections.load(Ordering::Relaxed),
        shared.config.connections_max,
        shared.blocked_clients.load(Ordering::Relaxed),
        shared.scripts.count(),
        shared.commands_processed.load(Ordering::Relaxed),
        shared.errors.lines(),
    );
    Ok(Reply::Verbatim(Bytes::from(body)))
}

/// `TIME`: unix seconds and the microseconds within the second, as bulk strings.
pub fn time() -> Reply {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let (secs, micros) = (now.as_secs(), now.subsec_micros());
    Reply::Array(vec![Reply::Bulk(secs.to_string().into()), Reply::Bulk(micros.to_string().into())])
}

/// `DEBUG`: the subcommands test suites and tools use. Those about Redis' own encodings,
/// snapshots and scripts' deny flags change nothing here; `RELOAD` and `LOADAOF` answer OK at
/// once, as every acknowledged write is already on disk.
pub async fn debug(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = ctx.args.text(1).to_ascii_lowercase();
    match (sub.as_str(), ctx.args.len()) {
        ("set-active-expire", 3) => {
            ctx.shared.grid.set_active_expire(ctx.args.int(2)? != 0);
            Ok(Reply::Ok)
        }
        ("sleep", 3) => {
            let seconds: f64 = ctx.args.text(2).parse().unwrap_or(0.0);
            // NaN (`DEBUG SLEEP nan`) would panic in `from_secs_f64`.
            let seconds = if seconds.is_finite() { seconds.clamp(0.0, 3600.0) } else { 0.0 };
            let pause = std::time::Duration::from_secs_f64(seconds);
            tokio::time::sleep(pause).await;
            Ok(Reply::Ok)
        }
        ("reload" | "loadaof" | "change-repl-id", _)
        | ("quicklist-packed-threshold" | "set-disable-deny-scripts" | "stringmatch-len", 3)
        | ("listpack" | "quicklist", 3) => Ok(Reply::Ok),
        ("protocol", 3) => protocol_sample(&ctx.args.text(2).to_ascii_lowercase()),
        ("object", 3) => {
            let encoding = ctx.exec(ctx.args.get(2).clone(), Op::Encoding).await?;
            let Reply::Bulk(encoding) = encoding else {
                return Err(Reply::error("ERR no such key"));
            };
            let usage = ctx.exec(ctx.args.get(2).clone(), Op::Usage).await?;
            let size = if let Reply::Int(n) = usage { n } else { 0 };
            Ok(Reply::Status(
                format!(
                    "Value at:0x0 refcount:1 encoding:{} serializedlength:{size} lru:0 \
                     lru_seconds_idle:0",
                    String::from_utf8_lossy(&encoding)
                )
                .into(),
            ))
        }
        _ => Err(Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            ctx.args.text(1)
        ))),
    }
}

/// `DEBUG PROTOCOL <type>`: a reply of each RESP type, for clients' tests.
fn protocol_sample(kind: &str) -> CmdResult {
    let numbers = || (0..3).map(Reply::Int).collect::<Vec<_>>();
    Ok(match kind {
        "string" => Reply::bulk("Hello World"),
        "integer" => Reply::Int(12345),
        // Redis' own sample value (not pi).
        #[allow(clippy::approx_constant)]
        "double" => Reply::Double(3.141),
        "bignum" => Reply::BigNumber(Bytes::from_static(b"1234567999999999999999999999999999999")),
        "null" => Reply::Nil,
        "array" => Reply::Array(numbers()),
        "set" => Reply::Set(numbers()),
        "map" => Reply::Map((0..3).map(|j| (Reply::Int(j), Reply::Bool(j == 1))).collect()),
        "attrib" => Reply::bulk("Some real reply following the attribute"),
        "verbatim" => Reply::Verbatim(Bytes::from_static(b"This is a verbatim\nstring")),
        "true" => Reply::Bool(true),
        "false" => Reply::Bool(false),
        _ => {
            return Err(Reply::error(
                "ERR Wrong protocol type name. Please use one of the following: \
                 string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
            ))
        }
    })
}

/// `WAIT numreplicas timeout`: every write is answered only once every in-sync owner of its
/// partition has it, so nothing is waited for: the answer is how many other owners hold the
/// partition of the client's last write (of partition 0 before any write).
pub async fn wait(ctx: &mut Ctx<'_>) -> CmdResult {
    ctx.args.int(1)?;
    if ctx.args.int(2)? < 0 {
        return Err(Reply::error("ERR timeout is negative"));
    }
    let last = ctx.client.view.last_write.load(Ordering::Relaxed);
    let p = u16::try_from(last).unwrap_or(0);
    let n = ctx.shared.grid.in_sync_owners(p).await.map_err(super::grid_error)?;
    Ok(Reply::Int(n as i64))
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`: the node stops as on SIGTERM (a member
/// hands its partitions over first; every acknowledged write is already on disk). As in Redis,
/// the connection closes without an answer.
pub fn shutdown(ctx: &mut Ctx<'_>) -> CmdResult {
    for i in 1..ctx.args.len() {
        match ctx.args.text(i).to_ascii_lowercase().as_str() {
            "nosave" | "save" | "now" | "force" => {}
            "abort" => return Err(Reply::error("ERR No shutdown in progress.")),
            _ => return Err(Reply::error("ERR syntax error")),
        }
    }
    tracing::info!(client = ctx.client.view.id, "SHUTDOWN asked by a client");
    ctx.shared.grid.request_stop();
    ctx.client.view.kill.cancel();
    Ok(Reply::Ok)
}

/// `SAVE`: every acknowledged write is in RocksDB's log already; this syncs the log to disk
/// (what a node does when it stops) and answers OK.
pub fn save(ctx: &mut Ctx<'_>) -> CmdResult {
    ctx.shared.grid.store().sync().map_err(|e| Reply::error(format!("ERR {e}")))?;
    Ok(Reply::Ok)
}

/// `INFO commandstats`: calls, time and failures of every command run since the start or the
/// last `CONFIG RESETSTAT`.
fn command_stats(shared: &super::super::server::Shared) -> String {
    let mut out = String::from("# Commandstats\r\n");
    for (spec, m) in COMMANDS.iter().zip(&shared.command_metrics) {
        let calls = m.calls.load(Ordering::Relaxed);
        let rejected = m.rejected.load(Ordering::Relaxed);
        if calls == 0 && rejected == 0 {
            continue;
        }
        let usec = m.usec.load(Ordering::Relaxed);
        let per_call = if calls == 0 { 0.0 } else { usec as f64 / calls as f64 };
        out.push_str(&format!(
            "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per_call:.2},\
             rejected_calls={rejected},failed_calls={}\r\n",
            spec.name,
            m.failed.load(Ordering::Relaxed)
        ));
    }
    out.push_str("\r\n");
    out
}
