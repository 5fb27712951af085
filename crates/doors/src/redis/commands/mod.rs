//! The command table and dispatch. Adding a command: a line in [`COMMANDS`], a function in the
//! family file, and an arm in [`one_op`] (a command that is one operation on one key) or in
//! [`run`] (anything else).
//!
//! Every command function returns `Result<_, Reply>`: the error side is an error reply, so
//! argument parsing can use `?`. A command that is one operation on one key only builds that
//! operation ([`OneOp`]); the connection runs it, alongside the operations of its pipelined
//! neighbours on other partitions.

mod acl;
mod args;
pub mod blocking;
mod cluster;
mod connection;
mod hashes;
mod keys;
mod lists;
pub mod multi;
pub mod pubsub;
mod server;
mod sessions;
mod sets;
mod sort;
mod strings;
mod zsets;

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use bytes::Bytes;
use metrics::{Counter, Histogram};
use sessiongrid_grid::GridError;
use sessiongrid_model::key::{db_key, split_db};
use sessiongrid_model::list::op::End;
use sessiongrid_model::{KeyFilter, Op, PartitionId, Reply};
use sessiongrid_resp::Protocol;
use tracing::Instrument;

use super::connection::ClientState;
use super::scripting;
use super::server::Shared;

pub use args::Args;

pub type CmdResult = Result<Reply, Reply>;

/// The key and operation of a command that is one operation on one key.
pub type OneOp = Result<(Bytes, Op), Reply>;

/// What a single-operation command is built from: its arguments and the door's settings.
pub struct Req<'a> {
    pub shared: &'a Shared,
    pub args: &'a Args,
}

/// What a command runs with.
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub client: &'a mut ClientState,
    pub args: Args,
}

impl Ctx<'_> {
    /// `key` of the client's database as the grid stores it (see [`db_key`]).
    pub fn stored(&self, key: Bytes) -> Bytes {
        db_key(self.client.db, key)
    }

    /// Runs one single-key operation on a key of the client's database (within the running
    /// transaction, if any).
    pub async fn exec(&self, key: Bytes, op: Op) -> CmdResult {
        self.exec_stored(self.stored(key), op).await
    }

    /// Publishes keyspace events of a key of the client's database.
    pub fn notify(&self, key: &Bytes, notices: sessiongrid_model::notify::Notices) {
        self.shared.grid.notify(&self.stored(key.clone()), notices);
    }

    /// [`Ctx::exec`] on a key as stored.
    pub async fn exec_stored(&self, key: Bytes, op: Op) -> CmdResult {
        let p = self.shared.grid.partition_of(&key);
        if op.is_write() {
            self.client.view.last_write.store(u32::from(p), Relaxed);
        }
        let scope = self.client.txn.scope(p);
        if scope.is_some() {
            self.client.txn.touch(p);
        }
        let (txn, take) = scope.map_or((None, true), |(txn, take)| (Some(txn), take));
        self.shared.grid.exec_in(txn, take, key, op).await.map_err(grid_error)
    }

    /// The keys of the client's database in partition `p` that pass `filter`, as the client
    /// names them (within the running transaction, if any).
    pub async fn keys(&self, p: PartitionId, filter: KeyFilter) -> Result<Vec<Bytes>, Reply> {
        self.keys_of(self.client.db, p, filter).await
    }

    /// [`Ctx::keys`] of database `db`.
    pub async fn keys_of(
        &self,
        db: u8,
        p: PartitionId,
        filter: KeyFilter,
    ) -> Result<Vec<Bytes>, Reply> {
        let scope = self.client.txn.scope(p);
        self.client.txn.touch(p);
        let filter = KeyFilter { db: Some(db), ..filter };
        let stored = self.shared.grid.keys_in(scope, p, filter).await.map_err(grid_error)?;
        Ok(stored.into_iter().map(|k| k.slice(k.len() - split_db(&k).1.len()..)).collect())
    }

    /// The number of keys of the client's database (within the running transaction, if any).
    pub async fn dbsize(&self) -> Result<u64, Reply> {
        let scope = self.client.txn.scope_all(self.shared.grid.partitions());
        self.touch_all();
        let dbs = self.shared.grid.db_counts_in(scope).await.map_err(grid_error)?;
        Ok(dbs[usize::from(self.client.db)].0)
    }

    /// Deletes every key of every database (`all`) or of the client's (within the running
    /// transaction, if any).
    pub async fn flush(&self, all: bool) -> Result<(), Reply> {
        let (grid, txn) =
            (&self.shared.grid, self.client.txn.scope_all(self.shared.grid.partitions()));
        self.touch_all();
        let flushed = if all {
            grid.flush_all_in(txn).await
        } else {
            grid.flush_db_in(txn, self.client.db).await
        };
        flushed.map_err(grid_error)
    }

    /// Records an audited action of this client (see [`crate::audit`]).
    pub fn audit(&self, action: &'static str, target: &str, outcome: &'static str) {
        let user =
            if self.client.authenticated { &self.client.user.name } else { "unauthenticated" };
        let who = match &self.client.name {
            Some(name) => {
                format!("{user} (client {} {})", self.client.id, String::from_utf8_lossy(name))
            }
            None => format!("{user} (client {})", self.client.id),
        };
        let from = self.client.view.addr.to_string();
        crate::audit::record(action, &who, &from, target, outcome);
    }

    fn touch_all(&self) {
        for p in 0..self.shared.grid.partitions() {
            self.client.txn.touch(p);
        }
    }
}

/// The reply for a grid failure.
pub fn grid_error(e: GridError) -> Reply {
    if e.is_transient() {
        Reply::error(format!("TRYAGAIN {e}"))
    } else if e.is_indeterminate() {
        Reply::error(format!("INDETERMINATE {e}"))
    } else if e.is_writes_refused() {
        // The code Redis answers writes with while it cannot persist them.
        Reply::error(format!("MISCONF {e}"))
    } else {
        Reply::error(format!("ERR {e}"))
    }
}

/// Static description of a command, as `COMMAND` reports it.
pub struct Spec {
    /// Lower-case name.
    pub name: &'static str,
    /// Argument count including the name; negative means "at least".
    pub arity: i32,
    pub flags: &'static [&'static str],
    /// Position of the first and last key and the step between keys (0 if none).
    pub keys: (i32, i32, i32),
}

impl Spec {
    /// True if a request of `argc` arguments (the name included) has this command's arity.
    pub fn arity_fits(&self, argc: usize) -> bool {
        let n = argc as i32;
        if self.arity > 0 {
            n == self.arity
        } else {
            n >= -self.arity
        }
    }
}

const fn spec(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    keys: (i32, i32, i32),
) -> Spec {
    Spec { name, arity, flags, keys }
}

const W: &[&str] = &["write"];
const R: &[&str] = &["readonly", "fast"];
const C: &[&str] = &["fast", "no-auth"];
const A: &[&str] = &["admin"];
const C2: &[&str] = &["pubsub", "noscript", "loading", "stale"];
/// Scripts: run as `noscript` commands with keys given by their count.
const SCRIPT: &[&str] = &["noscript", "skip-monitor"];
const NONE: (i32, i32, i32) = (0, 0, 0);
const ONE: (i32, i32, i32) = (1, 1, 1);
const ALL: (i32, i32, i32) = (1, -1, 1);

/// Every command, sorted by name (looked up by binary search).
pub static COMMANDS: &[Spec] = &[
    spec("acl", -2, A, NONE),
    spec("append", 3, W, ONE),
    spec("asking", 1, C, NONE),
    spec("auth", -2, C, NONE),
    spec("blmove", 6, W, (1, 2, 1)),
    spec("blmpop", -5, W, NONE),
    spec("blpop", -3, W, (1, -2, 1)),
    spec("brpop", -3, W, (1, -2, 1)),
    spec("brpoplpush", 4, W, (1, 2, 1)),
    spec("bzmpop", -5, W, NONE),
    spec("bzpopmax", -3, W, (1, -2, 1)),
    spec("bzpopmin", -3, W, (1, -2, 1)),
    spec("client", -2, C, NONE),
    spec("cluster", -2, A, NONE),
    spec("command", -1, C, NONE),
    spec("config", -2, A, NONE),
    spec("copy", -3, W, (1, 2, 1)),
    spec("dbsize", 1, R, NONE),
    spec("debug", -2, A, NONE),
    spec("decr", 2, W, ONE),
    spec("decrby", 3, W, ONE),
    spec("del", -2, W, ALL),
    spec("discard", 1, C, NONE),
    spec("echo", 2, C, NONE),
    spec("eval", -3, SCRIPT, NONE),
    spec("eval_ro", -3, SCRIPT, NONE),
    spec("evalsha", -3, SCRIPT, NONE),
    spec("evalsha_ro", -3, SCRIPT, NONE),
    spec("exec", -1, C, NONE),
    spec("exists", -2, R, ALL),
    spec("expire", -3, W, ONE),
    spec("expireat", -3, W, ONE),
    spec("expiretime", 2, R, ONE),
    spec("fcall", -3, SCRIPT, NONE),
    spec("fcall_ro", -3, SCRIPT, NONE),
    spec("flushall", -1, W, NONE),
    spec("flushdb", -1, W, NONE),
    spec("function", -2, W, NONE),
    spec("get", 2, R, ONE),
    spec("getbit", 3, R, ONE),
    spec("getdel", 2, W, ONE),
    spec("getex", -2, W, ONE),
    spec("getrange", 4, R, ONE),
    spec("getset", 3, W, ONE),
    spec("hdel", -3, W, ONE),
    spec("hello", -1, C, NONE),
    spec("hexists", 3, R, ONE),
    spec("hget", 3, R, ONE),
    spec("hgetall", 2, R, ONE),
    spec("hincrby", 4, W, ONE),
    spec("hincrbyfloat", 4, W, ONE),
    spec("hkeys", 2, R, ONE),
    spec("hlen", 2, R, ONE),
    spec("hmget", -3, R, ONE),
    spec("hmset", -4, W, ONE),
    spec("hrandfield", -2, R, ONE),
    spec("hscan", -3, R, ONE),
    spec("hset", -4, W, ONE),
    spec("hsetnx", 4, W, ONE),
    spec("hstrlen", 3, R, ONE),
    spec("hvals", 2, R, ONE),
    spec("incr", 2, W, ONE),
    spec("incrby", 3, W, ONE),
    spec("incrbyfloat", 3, W, ONE),
    spec("info", -1, R, NONE),
    spec("keys", 2, R, NONE),
    spec("lcs", -3, R, (1, 2, 1)),
    spec("lindex", 3, R, ONE),
    spec("linsert", 5, W, ONE),
    spec("llen", 2, R, ONE),
    spec("lmove", 5, W, (1, 2, 1)),
    spec("lmpop", -4, W, NONE),
    spec("lpop", -2, W, ONE),
    spec("lpos", -3, R, ONE),
    spec("lpush", -3, W, ONE),
    spec("lpushx", -3, W, ONE),
    spec("lrange", 4, R, ONE),
    spec("lrem", 4, W, ONE),
    spec("lset", 4, W, ONE),
    spec("ltrim", 4, W, ONE),
    spec("memory", -2, R, (2, 2, 1)),
    spec("mget", -2, R, ALL),
    spec("move", 3, W, ONE),
    spec("mset", -3, W, (1, -1, 2)),
    spec("msetnx", -3, W, (1, -1, 2)),
    spec("multi", 1, C, NONE),
    spec("object", -2, R, (2, 2, 1)),
    spec("persist", 2, W, ONE),
    spec("pexpire", -3, W, ONE),
    spec("pexpireat", -3, W, ONE),
    spec("pexpiretime", 2, R, ONE),
    spec("ping", -1, C, NONE),
    spec("psetex", 4, W, ONE),
    spec("psubscribe", -2, C2, NONE),
    spec("pttl", 2, R, ONE),
    spec("publish", 3, C2, NONE),
    spec("pubsub", -2, C2, NONE),
    spec("punsubscribe", -1, C2, NONE),
    spec("quit", -1, C, NONE),
    spec("randomkey", 1, R, NONE),
    spec("readonly", 1, C, NONE),
    spec("readwrite", 1, C, NONE),
    spec("rename", 3, W, (1, 2, 1)),
    spec("renamenx", 3, W, (1, 2, 1)),
    spec("rpop", -2, W, ONE),
    spec("rpoplpush", 3, W, (1, 2, 1)),
    spec("rpush", -3, W, ONE),
    spec("rpushx", -3, W, ONE),
    spec("sadd", -3, W, ONE),
    spec("save", 1, A, NONE),
    spec("scan", -2, R, NONE),
    spec("scard", 2, R, ONE),
    spec("script", -2, SCRIPT, NONE),
    spec("sdiff", -2, R, ALL),
    spec("sdiffstore", -3, W, ALL),
    spec("select", 2, C, NONE),
    spec("session.byuser", 2, R, NONE),
    spec("session.create", -2, W, NONE),
    spec("session.del", -3, W, ONE),
    spec("session.get", -2, W, ONE),
    spec("session.invalidate", 2, W, ONE),
    spec("session.kickuser", 2, W, NONE),
    spec("session.list", -1, R, NONE),
    spec("session.login", -3, W, ONE),
    spec("session.logout", 2, W, ONE),
    spec("session.rotate", 2, W, ONE),
    spec("session.set", -3, W, ONE),
    spec("session.stats", -1, R, NONE),
    spec("session.subscribe", -1, C2, NONE),
    spec("session.touch", -2, W, ONE),
    spec("set", -3, W, ONE),
    spec("setbit", 4, W, ONE),
    spec("setex", 4, W, ONE),
    spec("setnx", 3, W, ONE),
    spec("setrange", 4, W, ONE),
    spec("shutdown", -1, A, NONE),
    spec("sinter", -2, R, ALL),
    spec("sintercard", -3, R, NONE),
    spec("sinterstore", -3, W, ALL),
    spec("sismember", 3, R, ONE),
    spec("smembers", 2, R, ONE),
    spec("smismember", -3, R, ONE),
    spec("smove", 4, W, (1, 2, 1)),
    spec("sort", -2, W, ONE),
    spec("sort_ro", -2, R, ONE),
    spec("spop", -2, W, ONE),
    spec("srandmember", -2, R, ONE),
    spec("srem", -3, W, ONE),
    spec("sscan", -3, R, ONE),
    spec("strlen", 2, R, ONE),
    spec("subscribe", -2, C2, NONE),
    spec("substr", 4, R, ONE),
    spec("sunion", -2, R, ALL),
    spec("sunionstore", -3, W, ALL),
    spec("swapdb", 3, W, NONE),
    spec("time", 1, R, NONE),
    spec("touch", -2, R, ALL),
    spec("ttl", 2, R, ONE),
    spec("type", 2, R, ONE),
    spec("unlink", -2, W, ALL),
    spec("unsubscribe", -1, C2, NONE),
    spec("unwatch", 1, C, NONE),
    spec("wait", 3, R, NONE),
    spec("watch", -2, C, ALL),
    spec("zadd", -4, W, ONE),
    spec("zcard", 2, R, ONE),
    spec("zcount", 4, R, ONE),
    spec("zdiff", -3, R, NONE),
    spec("zdiffstore", -4, W, ONE),
    spec("zincrby", 4, W, ONE),
    spec("zinter", -3, R, NONE),
    spec("zintercard", -3, R, NONE),
    spec("zinterstore", -4, W, ONE),
    spec("zlexcount", 4, R, ONE),
    spec("zmpop", -4, W, NONE),
    spec("zmscore", -3, R, ONE),
    spec("zpopmax", -2, W, ONE),
    spec("zpopmin", -2, W, ONE),
    spec("zrandmember", -2, R, ONE),
    spec("zrange", -4, R, ONE),
    spec("zrangebylex", -4, R, ONE),
    spec("zrangebyscore", -4, R, ONE),
    spec("zrangestore", -5, W, (1, 2, 1)),
    spec("zrank", 3, R, ONE),
    spec("zrem", -3, W, ONE),
    spec("zremrangebylex", 4, W, ONE),
    spec("zremrangebyrank", 4, W, ONE),
    spec("zremrangebyscore", 4, W, ONE),
    spec("zrevrange", -4, R, ONE),
    spec("zrevrangebylex", -4, R, ONE),
    spec("zrevrangebyscore", -4, R, ONE),
    spec("zrevrank", 3, R, ONE),
    spec("zscan", -3, R, ONE),
    spec("zscore", 3, R, ONE),
    spec("zunion", -3, R, NONE),
    spec("zunionstore", -4, W, ONE),
];

/// The position in [`COMMANDS`] of a command name, in any case.
pub fn position(name: &[u8]) -> Option<usize> {
    let mut buf = [0u8; 24];
    let lower = buf.get_mut(..name.len())?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    COMMANDS.binary_search_by(|s| s.name.as_bytes().cmp(lower)).ok()
}

/// The spec of a command name, in any case.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    position(name).map(|i| &COMMANDS[i])
}

/// Metric handles of one command, registered once so the hot path does no registry lookups,
/// and the figures `INFO commandstats` shows (reset by `CONFIG RESETSTAT`).
pub struct CommandMetrics {
    ok: Counter,
    error: Counter,
    duration: Histogram,
    pub calls: AtomicU64,
    pub usec: AtomicU64,
    /// Ran and answered an error.
    pub failed: AtomicU64,
    /// Refused before running (arity, authentication, not allowed here).
    pub rejected: AtomicU64,
}

impl CommandMetrics {
    fn new(command: &'static str) -> Self {
        let count = |result: &'static str| metrics::counter!("sessiongrid_commands_total", "command" => command, "result" => result);
        CommandMetrics {
            ok: count("ok"),
            error: count("error"),
            duration: metrics::histogram!("sessiongrid_command_duration_seconds", "command" => command),
            calls: AtomicU64::new(0),
            usec: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    /// Zeroes the `INFO commandstats` figures.
    pub fn reset(&self) {
        for n in [&self.calls, &self.usec, &self.failed, &self.rejected] {
            n.store(0, Relaxed);
        }
    }

    /// Handles for every command of [`COMMANDS`], in order, then one for unknown commands.
    pub fn for_all_commands() -> Vec<CommandMetrics> {
        COMMANDS.iter().map(|s| s.name).chain(["unknown"]).map(CommandMetrics::new).collect()
    }
}

/// A request checked and, when it is one operation on one key, built.
pub enum Prepared {
    /// Answered already: an unknown command, wrong arity, no authentication, bad arguments.
    Answered(Reply),
    /// One operation on one key, to run on the grid (then [`finish`]).
    Op(PreparedOp),
    /// Anything else: runs alone, in order ([`run_prepared`]).
    Run(PreparedRun),
}

pub struct PreparedOp {
    index: usize,
    started: Instant,
    pub key: Bytes,
    /// The key's partition.
    pub partition: PartitionId,
    pub op: Op,
}

pub struct PreparedRun {
    index: usize,
    started: Instant,
    args: Args,
}

/// What a RESP2 connection in subscribed mode may run (RESP3 mixes replies and messages).
const ALLOWED_SUBSCRIBED: &[&str] = &[
    "subscribe",
    "unsubscribe",
    "psubscribe",
    "punsubscribe",
    "session.subscribe",
    "ping",
    "quit",
    "reset",
];

/// Commands whose first argument names a subcommand (`pubsub|numsub`), in messages and ACL
/// rules.
pub const CONTAINERS: &[&str] =
    &["acl", "client", "command", "config", "function", "memory", "object", "pubsub", "script"];

/// Checks a request against the table (name, arity, authentication) and builds it.
pub fn prepare(shared: &Shared, client: &ClientState, args: Vec<Bytes>) -> Prepared {
    shared.commands_processed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let Some(index) = position(&args[0]) else {
        shared.command_metrics[COMMANDS.len()].error.increment(1);
        let reply = unknown_command(&args);
        if let Reply::Error(text) = &reply {
            shared.errors.count(text);
        }
        return Prepared::Answered(reply);
    };
    let spec = &COMMANDS[index];
    // One clock read per request: the command's start, and the client's last activity.
    let started = Instant::now();
    client.view.ran(index, started);
    if !spec.arity_fits(args.len()) {
        let reply = format!("ERR wrong number of arguments for '{}' command", spec.name);
        return rejected(shared, index, Reply::error(reply));
    }
    if !client.authenticated && !matches!(spec.name, "auth" | "hello" | "quit") {
        return rejected(shared, index, Reply::error("NOAUTH Authentication required."));
    }
    // Logging in (again, as another user) and leaving are for everyone, as in Redis.
    let logs_in = matches!(spec.name, "auth" | "hello" | "quit");
    if !client.unrestricted && !logs_in {
        if let Err(denied) = crate::redis::acl::check::check(&client.user, index, &args) {
            let context = if client.txn.queueing() { "multi" } else { "toplevel" };
            log_denial(shared, client, context, &client.user.name, denied.reason());
            return rejected(shared, index, denied.reply());
        }
    }
    if client.subscription.is_some()
        && client.proto == Protocol::Resp2
        && !ALLOWED_SUBSCRIBED.contains(&spec.name)
    {
        let name = match args.get(1) {
            Some(sub) if CONTAINERS.contains(&spec.name) => {
                format!("{}|{}", spec.name, String::from_utf8_lossy(sub).to_lowercase())
            }
            _ => spec.name.to_string(),
        };
        let reply = format!(
            "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / \
             RESET are allowed in this context"
        );
        return rejected(shared, index, Reply::error(reply));
    }
    let args = Args::new(args);
    if client.txn.queueing() && !multi::runs_while_queueing(spec.name) {
        if multi::NOT_IN_TRANSACTIONS.contains(&spec.name) {
            let reply = Reply::error("ERR Command not allowed inside a transaction");
            return rejected(shared, index, reply);
        }
        return Prepared::Run(PreparedRun { index, started, args });
    }
    match one_op(spec.name, &Req { shared, args: &args }) {
        Some(Ok((key, op))) => {
            let key = db_key(client.db, key);
            let partition = shared.grid.partition_of(&key);
            if op.is_write() {
                client.view.last_write.store(u32::from(partition), Relaxed);
            }
            Prepared::Op(PreparedOp { index, started, key, partition, op })
        }
        Some(Err(reply)) => Prepared::Answered(finish(shared, index, started, reply)),
        None => Prepared::Run(PreparedRun { index, started, args }),
    }
}

/// Runs a single operation on the grid and answers it.
pub async fn run_op(shared: &Shared, op: PreparedOp) -> Reply {
    let PreparedOp { index, started, key, op, .. } = op;
    let span = tracing::debug_span!("request", command = COMMANDS[index].name);
    let reply = shared.grid.exec(key, op).instrument(span).await.unwrap_or_else(grid_error);
    finish(shared, index, started, reply)
}

/// Runs operations on keys of one partition in order; answers in the same order.
pub async fn run_ops(shared: &Shared, ops: Vec<PreparedOp>) -> Vec<Reply> {
    let span = tracing::debug_span!("requests", count = ops.len());
    let (calls, work): (Vec<_>, Vec<_>) =
        ops.into_iter().map(|o| ((o.index, o.started), (o.key, o.op))).unzip();
    let answers = shared.grid.exec_many(work).instrument(span).await;
    calls
        .into_iter()
        .zip(answers)
        .map(|((index, started), a)| finish(shared, index, started, a.unwrap_or_else(grid_error)))
        .collect()
}

/// Runs a command that is not a single operation, with the connection's state.
pub async fn run_prepared(shared: &Shared, client: &mut ClientState, run: PreparedRun) -> Reply {
    let PreparedRun { index, started, args } = run;
    let name = COMMANDS[index].name;
    let mut ctx = Ctx { shared, client, args };
    if ctx.client.txn.queueing() && !multi::runs_while_queueing(name) {
        return multi::queue(&mut ctx).unwrap_or_else(|e| e);
    }
    // A span per request (inside the connection's `client` span); values never go in it.
    let span = tracing::debug_span!("request", command = name);
    let reply = self::run(name, &mut ctx).instrument(span).await.unwrap_or_else(|e| e);
    finish(shared, index, started, reply)
}

/// Runs command `index` of [`COMMANDS`] with `args`, checked already, as one of the client's
/// own inside whatever transaction runs (a queued command at `EXEC`, a script's `redis.call`);
/// an error is its reply.
pub(crate) async fn run_checked(ctx: &mut Ctx<'_>, index: usize, args: Args) -> Reply {
    let name = COMMANDS[index].name;
    match one_op(name, &Req { shared: ctx.shared, args: &args }) {
        Some(Ok((key, op))) => ctx.exec(key, op).await.unwrap_or_else(|e| e),
        Some(Err(reply)) => reply,
        None => {
            let saved = std::mem::replace(&mut ctx.args, args);
            let reply = Box::pin(run(name, ctx)).await.unwrap_or_else(|e| e);
            ctx.args = saved;
            reply
        }
    }
}

/// Counts a command's answer and time.
fn finish(shared: &Shared, index: usize, started: Instant, reply: Reply) -> Reply {
    let m = &shared.command_metrics[index];
    let elapsed = started.elapsed();
    if reply.is_error() { &m.error } else { &m.ok }.increment(1);
    m.duration.record(elapsed);
    m.calls.fetch_add(1, Relaxed);
    m.usec.fetch_add(elapsed.as_micros() as u64, Relaxed);
    if let Reply::Error(text) = &reply {
        m.failed.fetch_add(1, Relaxed);
        shared.errors.count(text);
    }
    reply
}

/// Records for `ACL LOG` what `client`, as `username`, was refused: `(reason, object)`, as
/// [`Denied::reason`](crate::redis::acl::check::Denied::reason) names them (also `auth` and
/// `group`).
pub(crate) fn log_denial(
    shared: &Shared,
    client: &ClientState,
    context: &'static str,
    username: &str,
    (reason, object): (&'static str, String),
) {
    shared.config.acl.log_denial(crate::redis::acl::Denial {
        count: 1,
        reason,
        context,
        object,
        username: username.to_string(),
        at: Instant::now(),
        client_info: format!("id={} addr={}", client.id, client.view.addr),
    });
}

/// A command refused before it ran.
fn rejected(shared: &Shared, index: usize, reply: Reply) -> Prepared {
    shared.command_metrics[index].rejected.fetch_add(1, Relaxed);
    if let Reply::Error(text) = &reply {
        shared.errors.count(text);
    }
    Prepared::Answered(reply)
}

/// Error replies by their code (`ERR`, `WRONGTYPE`...), for `INFO errorstats`.
#[derive(Default)]
pub struct ErrorStats {
    counts: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl ErrorStats {
    pub fn count(&self, text: &str) {
        let code = text.split(' ').next().unwrap_or("ERR");
        let mut counts = self.counts.lock().expect("error stats lock");
        match counts.get_mut(code) {
            Some(n) => *n += 1,
            None => {
                counts.insert(code.to_string(), 1);
            }
        }
    }

    pub fn reset(&self) {
        self.counts.lock().expect("error stats lock").clear();
    }

    /// The `# Errorstats` section's lines.
    pub fn lines(&self) -> String {
        let counts = self.counts.lock().expect("error stats lock");
        counts.iter().map(|(code, n)| format!("errorstat_{code}:count={n}\r\n")).collect()
    }
}

/// The operation of a command that is one operation on one key; `None` for other commands.
fn one_op(name: &'static str, r: &Req<'_>) -> Option<OneOp> {
    let key = || r.args.get(1).clone();
    let op = match name {
        "append" => return Some(strings::append(r)),
        "decr" => return Some(strings::incr_by(r, Some(-1))),
        "decrby" => return Some(strings::decr_by(r)),
        "expire" => return Some(keys::expire(r, 1000, false)),
        "expireat" => return Some(keys::expire(r, 1000, true)),
        "expiretime" => Op::ExpireTime { millis: false },
        "get" => Op::Get,
        "getbit" => return Some(strings::getbit(r)),
        "getdel" => Op::GetDel,
        "getrange" | "substr" => return Some(strings::getrange(r)),
        "getset" => return Some(strings::getset(r)),
        "hdel" => return Some(hashes::hdel(r)),
        "hexists" => return Some(hashes::hexists(r)),
        "hget" => return Some(hashes::hget(r)),
        "hgetall" => Op::HGetAll,
        "hincrby" => return Some(hashes::hincrby(r)),
        "hincrbyfloat" => return Some(hashes::hincrbyfloat(r)),
        "hkeys" => Op::HKeys,
        "hlen" => Op::HLen,
        "hmget" => return Some(hashes::hmget(r)),
        "hmset" => return Some(hashes::hset(r, false, true)),
        "hset" => return Some(hashes::hset(r, false, false)),
        "hsetnx" => return Some(hashes::hset(r, true, false)),
        "hstrlen" => return Some(hashes::hstrlen(r)),
        "hvals" => Op::HVals,
        "incr" => return Some(strings::incr_by(r, Some(1))),
        "incrby" => return Some(strings::incr_by(r, None)),
        "incrbyfloat" => return Some(strings::incr_by_float(r)),
        "lindex" => return Some(lists::lindex(r)),
        "linsert" => return Some(lists::linsert(r)),
        "llen" => return Some(lists::llen(r)),
        "lpop" => return Some(lists::pop(r, End::Left)),
        "lpos" => return Some(lists::lpos(r)),
        "lpush" => return Some(lists::push(r, End::Left, false)),
        "lpushx" => return Some(lists::push(r, End::Left, true)),
        "lrange" => return Some(lists::lrange(r)),
        "lrem" => return Some(lists::lrem(r)),
        "lset" => return Some(lists::lset(r)),
        "ltrim" => return Some(lists::ltrim(r)),
        "persist" => Op::Persist,
        "pexpire" => return Some(keys::expire(r, 1, false)),
        "pexpireat" => return Some(keys::expire(r, 1, true)),
        "pexpiretime" => Op::ExpireTime { millis: true },
        "psetex" => return Some(strings::setex(r, 1)),
        "pttl" => Op::Ttl { millis: true },
        "rpop" => return Some(lists::pop(r, End::Right)),
        "rpush" => return Some(lists::push(r, End::Right, false)),
        "rpushx" => return Some(lists::push(r, End::Right, true)),
        "sadd" => return Some(sets::sadd(r)),
        "scard" => return Some(sets::scard(r)),
        "set" => return Some(strings::set(r)),
        "setbit" => return Some(strings::setbit(r)),
        "setex" => return Some(strings::setex(r, 1000)),
        "setnx" => return Some(strings::setnx(r)),
        "setrange" => return Some(strings::setrange(r)),
        "sismember" => return Some(sets::sismember(r)),
        "smembers" => return Some(sets::smembers(r)),
        "smismember" => return Some(sets::smismember(r)),
        "spop" => return Some(sets::spop(r)),
        "srandmember" => return Some(sets::srandmember(r)),
        "srem" => return Some(sets::srem(r)),
        "strlen" => Op::StrLen,
        "ttl" => Op::Ttl { millis: false },
        "type" => Op::Type,
        "zadd" => return Some(zsets::zadd(r, false)),
        "zcard" => return Some(zsets::zcard(r)),
        "zcount" => return Some(zsets::zcount(r)),
        "zincrby" => return Some(zsets::zadd(r, true)),
        "zlexcount" => return Some(zsets::zlexcount(r)),
        "zmscore" => return Some(zsets::zmscore(r)),
        "zpopmax" => return Some(zsets::zpop(r, true)),
        "zpopmin" => return Some(zsets::zpop(r, false)),
        "zrandmember" => return Some(zsets::zrandmember(r)),
        "zrange" => return Some(zsets::zrange(r, None, None)),
        "zrangebylex" => return Some(zsets::zrange(r, Some(zsets::Kind::Lex), Some(false))),
        "zrangebyscore" => return Some(zsets::zrange(r, Some(zsets::Kind::Score), Some(false))),
        "zrank" => return Some(zsets::zrank(r, false)),
        "zrem" => return Some(zsets::zrem(r)),
        "zremrangebylex" => return Some(zsets::zremrange(r, zsets::Kind::Lex)),
        "zremrangebyrank" => return Some(zsets::zremrange(r, zsets::Kind::Rank)),
        "zremrangebyscore" => return Some(zsets::zremrange(r, zsets::Kind::Score)),
        "zrevrange" => return Some(zsets::zrange(r, Some(zsets::Kind::Rank), Some(true))),
        "zrevrangebylex" => return Some(zsets::zrange(r, Some(zsets::Kind::Lex), Some(true))),
        "zrevrangebyscore" => return Some(zsets::zrange(r, Some(zsets::Kind::Score), Some(true))),
        "zrevrank" => return Some(zsets::zrank(r, true)),
        "zscore" => return Some(zsets::zscore(r)),
        _ => return None,
    };
    Some(Ok((key(), op)))
}

async fn run(name: &'static str, ctx: &mut Ctx<'_>) -> CmdResult {
    let result = dispatch(name, ctx).await;
    if let Some((action, target)) = audited(name, &ctx.args) {
        ctx.audit(action, &target, if result.is_ok() { "ok" } else { "refused" });
    }
    result
}

/// The audit record of a command that acts on other clients' data or on the node (see
/// [`crate::audit`]): its action and target.
fn audited(name: &'static str, args: &Args) -> Option<(&'static str, String)> {
    let from = |i: usize| {
        let words: Vec<String> = (i..args.len()).map(|i| args.text(i)).collect();
        words.join(" ")
    };
    match name {
        "session.kickuser" | "shutdown" | "flushall" | "flushdb" | "swapdb" => {
            Some((name, from(1)))
        }
        // The parameters' names only: a value may be a secret a client tried to set.
        "config" if args.is(1, "set") => {
            let names: Vec<String> = (2..args.len()).step_by(2).map(|i| args.text(i)).collect();
            Some(("config set", names.join(" ")))
        }
        "client" if args.is(1, "kill") => Some(("client kill", from(2))),
        "acl" if ["setuser", "deluser", "load", "save"].iter().any(|s| args.is(1, s)) => {
            // The user's name only: rules may hold a password.
            let action = match args.text(1).to_ascii_lowercase().as_str() {
                "setuser" => "acl setuser",
                "deluser" => "acl deluser",
                "load" => "acl load",
                _ => "acl save",
            };
            let target = if args.is(1, "setuser") { args.text(2) } else { from(2) };
            Some((action, target))
        }
        _ => None,
    }
}

async fn dispatch(name: &'static str, ctx: &mut Ctx<'_>) -> CmdResult {
    use zsets::{Algebra::*, Output};
    match name {
        "acl" => acl::acl(ctx),
        "auth" => connection::auth(ctx).await,
        "blmove" => lists::blmove(ctx).await,
        "blmpop" => lists::blmpop(ctx).await,
        "blpop" => lists::bpop(ctx, End::Left).await,
        "brpop" => lists::bpop(ctx, End::Right).await,
        "brpoplpush" => lists::brpoplpush(ctx).await,
        "client" => connection::client(ctx),
        "cluster" => cluster::cluster(ctx).await,
        "asking" | "readonly" | "readwrite" => cluster::accepted(),
        "command" => server::command(ctx),
        "config" => server::config(ctx),
        "copy" => keys::copy(ctx).await,
        "dbsize" => keys::dbsize(ctx).await,
        "debug" => server::debug(ctx).await,
        "del" | "unlink" => keys::del(ctx).await,
        "discard" => multi::discard(ctx),
        "echo" => Ok(Reply::Bulk(ctx.args.get(1).clone())),
        "eval" => scripting::eval(ctx, false, false).await,
        "eval_ro" => scripting::eval(ctx, false, true).await,
        "evalsha" => scripting::eval(ctx, true, false).await,
        "evalsha_ro" => scripting::eval(ctx, true, true).await,
        "fcall" => scripting::fcall(ctx, false).await,
        "fcall_ro" => scripting::fcall(ctx, true).await,
        "exec" => multi::exec(ctx).await,
        "exists" | "touch" => keys::exists(ctx).await,
        "flushall" | "flushdb" => keys::flush(ctx).await,
        "function" => scripting::function(ctx).await,
        "getex" => strings::getex(ctx).await,
        "hrandfield" => hashes::hrandfield(ctx).await,
        "hscan" => hashes::hscan(ctx).await,
        "hello" => connection::hello(ctx).await,
        "info" => server::info(ctx).await,
        "keys" => keys::keys(ctx).await,
        "lcs" => strings::lcs(ctx).await,
        "sort" => sort::sort(ctx, false).await,
        "sort_ro" => sort::sort(ctx, true).await,
        "lmove" => lists::lmove(ctx).await,
        "lmpop" => lists::lmpop(ctx).await,
        "memory" => keys::memory(ctx).await,
        "mget" => strings::mget(ctx).await,
        "move" => keys::move_key(ctx).await,
        "mset" => strings::mset(ctx).await,
        "msetnx" => strings::msetnx(ctx).await,
        "multi" => multi::multi(ctx),
        "object" => keys::object(ctx).await,
        "ping" => connection::ping(ctx),
        "psubscribe" => pubsub::psubscribe(ctx).await,
        "publish" => pubsub::publish(ctx),
        "pubsub" => pubsub::pubsub(ctx),
        "punsubscribe" => pubsub::punsubscribe(ctx),
        "randomkey" => keys::randomkey(ctx).await,
        "rename" => keys::rename(ctx, false).await,
        "renamenx" => keys::rename(ctx, true).await,
        "rpoplpush" => lists::rpoplpush(ctx).await,
        "time" => Ok(server::time()),
        "quit" => {
            ctx.client.quit = true;
            Ok(Reply::Ok)
        }
        "scan" => keys::scan(ctx).await,
        "script" => scripting::script(ctx),
        "save" => server::save(ctx),
        "sdiff" => sets::read_combined(ctx, sets::Combine::Diff).await,
        "sdiffstore" => sets::store_combined(ctx, sets::Combine::Diff).await,
        "sinter" => sets::read_combined(ctx, sets::Combine::Inter).await,
        "sintercard" => sets::sintercard(ctx).await,
        "sinterstore" => sets::store_combined(ctx, sets::Combine::Inter).await,
        "smove" => sets::smove(ctx).await,
        "sscan" => sets::sscan(ctx).await,
        "sunion" => sets::read_combined(ctx, sets::Combine::Union).await,
        "sunionstore" => sets::store_combined(ctx, sets::Combine::Union).await,
        "swapdb" => keys::swapdb(ctx).await,
        "select" => connection::select(ctx),
        "session.byuser" => sessions::by_user(ctx).await,
        "session.create" => sessions::create(ctx).await,
        "session.del" => sessions::del(ctx).await,
        "session.get" => sessions::get(ctx).await,
        "session.invalidate" => sessions::invalidate(ctx).await,
        "session.kickuser" => sessions::kick_user(ctx).await,
        "session.list" => sessions::list(ctx).await,
        "session.login" => sessions::login(ctx).await,
        "session.logout" => sessions::logout(ctx).await,
        "session.rotate" => sessions::rotate(ctx).await,
        "session.set" => sessions::set(ctx).await,
        "session.stats" => sessions::stats(ctx).await,
        "session.subscribe" => pubsub::session_subscribe(ctx).await,
        "session.touch" => sessions::touch(ctx).await,
        "shutdown" => server::shutdown(ctx),
        "subscribe" => pubsub::subscribe(ctx).await,
        "unsubscribe" => pubsub::unsubscribe(ctx),
        "unwatch" => multi::unwatch(ctx),
        "wait" => server::wait(ctx).await,
        "watch" => multi::watch(ctx).await,
        "bzmpop" => zsets::bzmpop(ctx).await,
        "bzpopmax" => zsets::bzpop(ctx, true).await,
        "bzpopmin" => zsets::bzpop(ctx, false).await,
        "zdiff" => zsets::algebra(ctx, name, Diff, Output::Reply).await,
        "zdiffstore" => zsets::algebra(ctx, name, Diff, Output::Store).await,
        "zinter" => zsets::algebra(ctx, name, Inter, Output::Reply).await,
        "zintercard" => zsets::algebra(ctx, name, Inter, Output::Card).await,
        "zinterstore" => zsets::algebra(ctx, name, Inter, Output::Store).await,
        "zmpop" => zsets::zmpop(ctx).await,
        "zrangestore" => zsets::zrangestore(ctx).await,
        "zscan" => zsets::zscan(ctx).await,
        "zunion" => zsets::algebra(ctx, name, Union, Output::Reply).await,
        "zunionstore" => zsets::algebra(ctx, name, Union, Output::Store).await,
        other => Err(Reply::error(format!("ERR command '{other}' is listed but not wired"))),
    }
}

/// An argument as Redis prints it in messages: up to its first NUL byte, at most `max` chars.
fn printable(arg: &[u8], max: usize) -> String {
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
    String::from_utf8_lossy(&arg[..end]).chars().take(max).collect()
}

/// Redis' reply to an unknown command, quoting the start of its arguments.
fn unknown_command(args: &[Bytes]) -> Reply {
    let mut quoted = String::new();
    for arg in &args[1..] {
        if quoted.len() >= 128 {
            break;
        }
        quoted.push_str(&format!("'{}' ", printable(arg, 128 - quoted.len())));
    }
    let name = printable(&args[0], 128);
    Reply::error(format!("ERR unknown command '{name}', with args beginning with: {quoted}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_lookup_ignores_case() {
        assert!(COMMANDS.windows(2).all(|w| w[0].name < w[1].name));
        assert_eq!(lookup(b"GeT").map(|s| s.name), Some("get"));
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(b"").is_none() && lookup(&[b'g'; 25]).is_none());
    }

    #[test]
    fn unknown_command_quotes_args_like_redis() {
        let args =
            vec![Bytes::from_static(b"FOO"), Bytes::from_static(b"a"), Bytes::from_static(b"b")];
        assert_eq!(
            unknown_command(&args),
            Reply::error("ERR unknown command 'FOO', with args beginning with: 'a' 'b' ")
        );
    }
}
