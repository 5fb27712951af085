//! Transactions: `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`.
//!
//! `MULTI` queues the client's commands; `EXEC` holds the partitions of every key they name
//! (and of the watched keys) through the grid ([`sessiongrid_grid::txn`]), checks that no
//! watched key was written since `WATCH`, runs the commands in order within the hold, and
//! releases it once every owner has the writes. So a transaction is atomic and isolated: no
//! other client's request runs on its partitions in between, and a failover keeps all of it or
//! none. In a cluster its keys must share one partition (`-CROSSSLOT` otherwise, as in Redis
//! Cluster; hash tags `{...}` put keys together); a single node holds as many as it names.
//!
//! `WATCH` remembers the version of each key's last write; `EXEC` aborts (nil) if one changed,
//! including by expiry.

use std::collections::BTreeSet;
use std::sync::Mutex;

use bytes::Bytes;
use sessiongrid_grid::Txn;
use sessiongrid_model::{Op, PartitionId, Reply};

use super::{grid_error, lookup, Args, CmdResult, Ctx, Spec};

/// How long a transaction or script may hold its partitions; past it they are taken back
/// (its node died or hung) and other clients' requests run.
pub const HOLD_MS: u64 = 5_000;

/// A connection's transaction state.
#[derive(Debug, Default)]
pub struct Transaction {
    /// Commands queued since `MULTI`; `None` outside one.
    queued: Option<Vec<Args>>,
    /// A command was refused while queueing: `EXEC` aborts.
    dirty: bool,
    /// Watched keys (as stored: with their database) with the version of their last write
    /// (`None`: no key).
    watched: Vec<(Bytes, Option<u64>)>,
    /// While `EXEC` or a script runs: the grid transaction its commands run within.
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    txn: Txn,
    /// The partitions held up front, sorted.
    held: Vec<PartitionId>,
    /// Partitions the transaction's requests went to: held up front, or taken on first use.
    touched: Mutex<BTreeSet<PartitionId>>,
}

impl Transaction {
    /// True between `MULTI` and `EXEC`/`DISCARD`.
    pub fn queueing(&self) -> bool {
        self.queued.is_some()
    }

    /// A command was refused while queueing.
    pub fn refused(&mut self) {
        if self.queueing() {
            self.dirty = true;
        }
    }

    /// The grid transaction commands run within, if one runs.
    pub fn txn(&self) -> Option<Txn> {
        self.running.as_ref().map(|r| r.txn)
    }

    /// What a request to partition `p` runs within: the running transaction, and whether it
    /// may take `p` if free (not for a partition held up front: finding it free means the
    /// hold was lost, see `Query::Within`).
    pub fn scope(&self, p: PartitionId) -> Option<(Txn, bool)> {
        self.running.as_ref().map(|r| (r.txn, r.held.binary_search(&p).is_err()))
    }

    /// [`Transaction::scope`] for a request to every one of `partitions`.
    pub fn scope_all(&self, partitions: u16) -> Option<(Txn, bool)> {
        self.running.as_ref().map(|r| (r.txn, r.held.len() < partitions as usize))
    }

    /// Notes that the running transaction sent a request to partition `p`.
    pub fn touch(&self, p: PartitionId) {
        if let Some(r) = &self.running {
            r.touched.lock().expect("touched lock").insert(p);
        }
    }

    /// Starts running `txn`, which holds `held`.
    pub fn start(&mut self, txn: Txn, held: &[PartitionId]) {
        let touched = Mutex::new(held.iter().copied().collect());
        self.running = Some(Running { txn, held: held.to_vec(), touched });
    }

    /// Ends the running transaction: the partitions it must release.
    pub fn finish(&mut self) -> Option<(Txn, Vec<PartitionId>)> {
        let r = self.running.take()?;
        let touched = r.touched.into_inner().expect("touched lock");
        Some((r.txn, touched.into_iter().collect()))
    }
}

/// Commands refused inside a `MULTI` (the transaction then aborts), as in Redis.
pub const NOT_IN_TRANSACTIONS: &[&str] = &["save", "shutdown"];

/// Commands that run at once inside a `MULTI` instead of being queued.
pub fn runs_while_queueing(name: &str) -> bool {
    matches!(name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset")
}

/// Queues a command while in `MULTI`.
pub fn queue(ctx: &mut Ctx<'_>) -> CmdResult {
    let args = std::mem::replace(&mut ctx.args, Args::new(Vec::new()));
    ctx.client.txn.queued.get_or_insert_with(Vec::new).push(args);
    Ok(Reply::Status("QUEUED".into()))
}

pub fn multi(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.client.txn.queueing() {
        return Err(Reply::error("ERR MULTI calls can not be nested"));
    }
    ctx.client.txn.queued = Some(Vec::new());
    ctx.client.txn.dirty = false;
    Ok(Reply::Ok)
}

pub fn discard(ctx: &mut Ctx<'_>) -> CmdResult {
    if !ctx.client.txn.queueing() {
        return Err(Reply::error("ERR DISCARD without MULTI"));
    }
    reset(ctx);
    Ok(Reply::Ok)
}

/// Leaves `MULTI` and forgets the watched keys.
fn reset(ctx: &mut Ctx<'_>) {
    let t = &mut ctx.client.txn;
    t.queued = None;
    t.dirty = false;
    t.watched.clear();
}

pub async fn watch(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.client.txn.queueing() {
        return Err(Reply::error("ERR WATCH inside MULTI is not allowed"));
    }
    for key in ctx.args.from(1).to_vec() {
        if ctx.client.txn.watched.iter().any(|(k, _)| *k == ctx.stored(key.clone())) {
            continue;
        }
        let key = ctx.stored(key);
        let version = version_of(ctx.exec_stored(key.clone(), Op::Version).await?);
        ctx.client.txn.watched.push((key, version));
    }
    Ok(Reply::Ok)
}

pub fn unwatch(ctx: &mut Ctx<'_>) -> CmdResult {
    ctx.client.txn.watched.clear();
    Ok(Reply::Ok)
}

fn version_of(reply: Reply) -> Option<u64> {
    match reply {
        Reply::Int(v) => Some(v as u64),
        _ => None,
    }
}

pub async fn exec(ctx: &mut Ctx<'_>) -> CmdResult {
    // Arity checked here: a wrong `EXEC` aborts the transaction, as in Redis.
    if ctx.args.len() != 1 {
        reset(ctx);
        return Err(Reply::error(
            "EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' \
             command",
        ));
    }
    let Some(queued) = ctx.client.txn.queued.take() else {
        return Err(Reply::error("ERR EXEC without MULTI"));
    };
    let dirty = std::mem::take(&mut ctx.client.txn.dirty);
    let watched = std::mem::take(&mut ctx.client.txn.watched);
    if dirty {
        return Err(Reply::error("EXECABORT Transaction discarded because of previous errors."));
    }
    let grid = &ctx.shared.grid;
    let mut partitions = BTreeSet::new();
    for args in &queued {
        match lookup(args.get(0)).and_then(|spec| command_keys(spec, args)) {
            Some(keys) => {
                partitions.extend(keys.into_iter().map(|k| grid.partition_of(&ctx.stored(k))))
            }
            None => partitions.extend(0..grid.partitions()),
        }
    }
    partitions.extend(watched.iter().map(|(k, _)| grid.partition_of(k)));
    let partitions: Vec<PartitionId> = partitions.into_iter().collect();
    hold(ctx, &partitions).await?;
    let result = run_transaction(ctx, queued, &watched).await;
    release(ctx, result).await
}

async fn run_transaction(
    ctx: &mut Ctx<'_>,
    queued: Vec<Args>,
    watched: &[(Bytes, Option<u64>)],
) -> CmdResult {
    for (key, version) in watched {
        if version_of(ctx.exec_stored(key.clone(), Op::Version).await?) != *version {
            return Ok(Reply::NilArray);
        }
    }
    let mut replies = Vec::with_capacity(queued.len());
    for args in queued {
        replies.push(run_queued(ctx, args).await);
    }
    Ok(Reply::Array(replies))
}

/// Starts a transaction holding `partitions` (sorted), after the cluster rule's check: its
/// commands then run within it until [`release`].
pub async fn hold(ctx: &mut Ctx<'_>, partitions: &[PartitionId]) -> Result<(), Reply> {
    let grid = &ctx.shared.grid;
    let every = partitions.len() == grid.partitions() as usize;
    if grid.is_clustered() && partitions.len() > 1 && !every {
        return Err(Reply::error("CROSSSLOT Keys in request don't hash to the same slot"));
    }
    let txn = grid.begin();
    grid.hold(txn, partitions, HOLD_MS).await.map_err(grid_error)?;
    ctx.client.txn.start(txn, partitions);
    Ok(())
}

/// Ends the running transaction: releases its partitions, and answers `result` once every
/// owner has its writes (an error if they may be lost).
pub async fn release(ctx: &mut Ctx<'_>, result: CmdResult) -> CmdResult {
    let Some((txn, touched)) = ctx.client.txn.finish() else { return result };
    match ctx.shared.grid.release(txn, &touched).await {
        Ok(true) => result,
        Ok(false) => {
            // Its hold ran out (its time limit) or its partition moved mid-way: what it wrote
            // before may or may not be there.
            tracing::warn!(?txn, "a transaction lost its hold");
            Err(Reply::error(
                "INDETERMINATE the transaction lost its hold on a partition (failover or time \
                 limit): some of its writes may not have been applied",
            ))
        }
        Err(e) => Err(grid_error(e)),
    }
}

/// Runs one queued command within the transaction; errors are its reply.
async fn run_queued(ctx: &mut Ctx<'_>, args: Args) -> Reply {
    // Looked up and checked when it was queued.
    match super::position(args.get(0)) {
        Some(index) => super::run_checked(ctx, index, args).await,
        None => Reply::error("ERR unknown command"),
    }
}

/// The keys a command names, by its table entry and, for commands that say how many keys
/// follow, by that count; `None` for a command that reads or writes every partition.
pub fn command_keys(spec: &Spec, args: &Args) -> Option<Vec<Bytes>> {
    let keys = match spec.name {
        "keys" | "scan" | "dbsize" | "flushall" | "flushdb" | "randomkey" | "session.byuser"
        | "session.kickuser" | "session.list" | "session.stats" | "session.create" => return None,
        "blmpop" | "bzmpop" | "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall"
        | "fcall_ro" => counted_keys(args, 2),
        "lmpop" | "zmpop" | "sintercard" | "zdiff" | "zinter" | "zintercard" | "zunion" => {
            counted_keys(args, 1)
        }
        "zdiffstore" | "zinterstore" | "zunionstore" => {
            let mut keys = vec![args.get(1).clone()];
            keys.extend(counted_keys(args, 2));
            keys
        }
        _ => {
            let (first, last, step) = spec.keys;
            let n = args.len() as i32;
            if first <= 0 || first >= n {
                return Some(Vec::new());
            }
            let last = if last < 0 { n + last } else { last.min(n - 1) };
            (first..=last)
                .step_by(step.max(1) as usize)
                .map(|i| args.get(i as usize).clone())
                .collect()
        }
    };
    Some(keys)
}

/// The keys after a count at argument `at` (as many as it says, at most those given).
fn counted_keys(args: &Args, at: usize) -> Vec<Bytes> {
    let count = if at < args.len() { args.int(at).unwrap_or(0).max(0) as usize } else { 0 };
    args.from(at + 1).iter().take(count).cloned().collect()
}
