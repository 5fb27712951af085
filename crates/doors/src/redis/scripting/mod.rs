//! Lua scripts and functions: `EVAL`, `EVALSHA`, `EVAL_RO`, `EVALSHA_RO`, `SCRIPT`, `FUNCTION`,
//! `FCALL`, `FCALL_RO`.
//!
//! A script runs like a transaction ([`crate::redis::commands::multi`]): the node holds the
//! partitions of the keys it names, the script's commands run within that hold, and the hold is
//! released once every owner has the writes, so a script is atomic and isolated and a failover
//! keeps all of its effects or none. The Lua runs on a blocking thread ([`vm`]); each
//! `redis.call` comes back to the connection, which runs it like any command of the client.
//!
//! Scripts (by SHA1) and function libraries are kept per node, as in Redis Cluster: load them
//! on every node a client uses (clients answer `NOSCRIPT` by sending the script again).

mod convert;
mod libs;
mod vm;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use sessiongrid_model::{PartitionId, Reply};
use sha1::{Digest, Sha1};
use tracing::Instrument;

use super::commands::multi;
use super::commands::{position, CmdResult, Ctx, COMMANDS};
use vm::{Body, Call, FunctionMeta, Job, Vm};

/// How long a script may run before it is stopped.
pub const TIME_LIMIT: Duration = Duration::from_millis(multi::HOLD_MS - 500);
/// How long a library's code may run while it loads.
const LOAD_LIMIT: Duration = Duration::from_millis(500);
/// Most idle VMs kept for the next scripts.
const IDLE_VMS_MAX: usize = 8;

/// A node's scripts, function libraries and idle Lua VMs.
#[derive(Default)]
pub struct Scripts {
    bodies: Mutex<HashMap<String, Bytes>>,
    /// Bumped by `SCRIPT FLUSH`: VMs forget what they compiled before.
    scripts_gen: AtomicU64,
    libraries: Mutex<BTreeMap<String, Library>>,
    /// Bumped when libraries change: VMs load them again.
    libs_gen: AtomicU64,
    idle: Mutex<Vec<Vm>>,
}

#[derive(Clone)]
struct Library {
    code: Bytes,
    functions: Vec<FunctionMeta>,
}

impl Scripts {
    fn remember(&self, source: Bytes) -> String {
        let sha = sha1_hex(&source);
        self.bodies.lock().expect("scripts lock").entry(sha.clone()).or_insert(source);
        sha
    }

    /// How many scripts the node keeps (`INFO`'s `number_of_cached_scripts`).
    pub fn count(&self) -> usize {
        self.bodies.lock().expect("scripts lock").len()
    }

    fn body(&self, sha: &str) -> Option<Bytes> {
        self.bodies.lock().expect("scripts lock").get(sha).cloned()
    }

    /// An idle VM up to date with the node's scripts and libraries, or a new one.
    fn take_vm(&self) -> Result<Vm, Reply> {
        let idle = self.idle.lock().expect("vm pool lock").pop();
        let mut vm = match idle {
            Some(vm) => vm,
            None => Vm::new().map_err(|e| Reply::error(format!("ERR cannot start Lua: {e}")))?,
        };
        let scripts_gen = self.scripts_gen.load(Ordering::Acquire);
        if vm.scripts_gen != scripts_gen {
            vm.forget_scripts(scripts_gen);
        }
        let libs_gen = self.libs_gen.load(Ordering::Acquire);
        if vm.libs_gen != libs_gen {
            let libraries: Vec<Bytes> = self
                .libraries
                .lock()
                .expect("libraries lock")
                .values()
                .map(|l| l.code.clone())
                .collect();
            vm.reload_libraries(libraries.iter(), libs_gen, LOAD_LIMIT);
        }
        Ok(vm)
    }

    fn put_vm(&self, vm: Vm) {
        let mut idle = self.idle.lock().expect("vm pool lock");
        if idle.len() < IDLE_VMS_MAX {
            idle.push(vm);
        }
    }

    /// The flags of function `name` (`None`: no such function).
    fn function_flags(&self, name: &str) -> Option<Vec<String>> {
        let libraries = self.libraries.lock().expect("libraries lock");
        libraries
            .values()
            .flat_map(|l| &l.functions)
            .find(|f| f.name == name)
            .map(|f| f.flags.clone())
    }
}

/// Lower-case hex SHA1, as `redis.sha1hex` and script ids.
pub fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Letters, digits and underscores, at least one: a library's or function's name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `EVAL`/`EVAL_RO script numkeys key... arg...` and `EVALSHA`/`EVALSHA_RO`.
pub async fn eval(ctx: &mut Ctx<'_>, by_sha: bool, read_only_command: bool) -> CmdResult {
    let scripts = &ctx.shared.scripts;
    let (sha, source) = if by_sha {
        let sha = ctx.args.text(1).to_ascii_lowercase();
        match scripts.body(&sha) {
            Some(source) => (sha, source),
            None => return Err(Reply::error("NOSCRIPT No matching script. Please use EVAL.")),
        }
    } else {
        let source = ctx.args.get(1).clone();
        (scripts.remember(source.clone()), source)
    };
    let (source, flags) = shebang_flags(&source)?;
    let read_only = read_only_command || flags.iter().any(|f| f == "no-writes");
    let (keys, argv) = keys_and_args(ctx)?;
    run(ctx, Body::Eval { sha, source }, keys, argv, read_only).await
}

/// `FCALL`/`FCALL_RO function numkeys key... arg...`.
pub async fn fcall(ctx: &mut Ctx<'_>, read_only_command: bool) -> CmdResult {
    let name = ctx.args.text(1);
    let Some(flags) = ctx.shared.scripts.function_flags(&name) else {
        return Err(Reply::error("ERR Function not found"));
    };
    let no_writes = flags.iter().any(|f| f == "no-writes");
    if read_only_command && !no_writes {
        return Err(Reply::error(
            "ERR Can not execute a script with write flag using *_ro command.",
        ));
    }
    let (keys, argv) = keys_and_args(ctx)?;
    run(ctx, Body::Function { name }, keys, argv, read_only_command || no_writes).await
}

fn keys_and_args(ctx: &Ctx<'_>) -> Result<(Vec<Bytes>, Vec<Bytes>), Reply> {
    let numkeys = ctx.args.int(2)?;
    if numkeys < 0 {
        return Err(Reply::error("ERR Number of keys can't be negative"));
    }
    let rest = ctx.args.from(3);
    if numkeys as u64 > rest.len() as u64 {
        return Err(Reply::error("ERR Number of keys can't be greater than number of args"));
    }
    let (keys, argv) = rest.split_at(numkeys as usize);
    Ok((keys.to_vec(), argv.to_vec()))
}

/// A script's `#!lua flags=...` first line: the source with that line blanked (so line numbers
/// stay), and its flags. A script without one has none.
fn shebang_flags(source: &Bytes) -> Result<(Bytes, Vec<String>), Reply> {
    if !source.starts_with(b"#!") {
        return Ok((source.clone(), Vec::new()));
    }
    let end = source.iter().position(|&b| b == b'\n').unwrap_or(source.len());
    let line = String::from_utf8_lossy(&source[2..end]).into_owned();
    let mut words = line.split_whitespace();
    if words.next() != Some("lua") {
        return Err(Reply::error("ERR Unexpected engine in script shebang"));
    }
    let mut flags = Vec::new();
    for word in words {
        let Some(list) = word.strip_prefix("flags=") else {
            return Err(Reply::error(format!("ERR Unknown lua shebang option: {word}")));
        };
        for flag in list.split(',').filter(|f| !f.is_empty()) {
            if !vm::FLAGS.contains(&flag) {
                return Err(Reply::error(format!("ERR Unexpected flag in script shebang: {flag}")));
            }
            flags.push(flag.to_string());
        }
    }
    let mut body = Vec::with_capacity(source.len());
    body.extend_from_slice(&source[end..]);
    Ok((Bytes::from(body), flags))
}

/// Runs a script or function within a hold of its keys' partitions.
async fn run(
    ctx: &mut Ctx<'_>,
    body: Body,
    keys: Vec<Bytes>,
    argv: Vec<Bytes>,
    read_only: bool,
) -> CmdResult {
    let started = std::time::Instant::now();
    let own_hold = ctx.client.txn.txn().is_none();
    if own_hold {
        let partitions: BTreeSet<PartitionId> =
            keys.iter().map(|k| ctx.shared.grid.partition_of(&ctx.stored(k.clone()))).collect();
        multi::hold(ctx, &partitions.into_iter().collect::<Vec<_>>()).await?;
    }
    // A `SELECT` inside the script does not change the client's database.
    let db = ctx.client.db;
    let result = run_held(ctx, body, keys, argv, read_only).await;
    ctx.client.db = db;
    let result = if own_hold { multi::release(ctx, result).await } else { result };
    metrics::histogram!("sessiongrid_script_duration_seconds").record(started.elapsed());
    let outcome = if result.as_ref().is_ok_and(|r| !r.is_error()) { "ok" } else { "error" };
    metrics::counter!("sessiongrid_scripts_total", "result" => outcome).increment(1);
    result
}

async fn run_held(
    ctx: &mut Ctx<'_>,
    body: Body,
    keys: Vec<Bytes>,
    argv: Vec<Bytes>,
    read_only: bool,
) -> CmdResult {
    let vm = ctx.shared.scripts.take_vm()?;
    let (calls, mut requests) = tokio::sync::mpsc::unbounded_channel::<Call>();
    let job = Job { body, keys, argv, limit: TIME_LIMIT };
    let lua = tokio::task::spawn_blocking(move || {
        let reply = vm.run(job, calls);
        (vm, reply)
    });
    tokio::pin!(lua);
    let serve = async {
        loop {
            tokio::select! {
                done = &mut lua => {
                    let (vm, reply) = done.map_err(|e| {
                        Reply::error(format!("ERR the script's thread failed: {e}"))
                    })?;
                    ctx.shared.scripts.put_vm(vm);
                    return Ok(reply);
                }
                Some(call) = requests.recv() => {
                    let reply = command_from_script(ctx, call.args, read_only).await;
                    let _ = call.answer.send(reply);
                }
            }
        }
    };
    serve.instrument(tracing::debug_span!("script")).await
}

/// Commands a script may not run: blocking ones, transactions, scripts, subscriptions and
/// the connection's own state.
const NOT_FROM_SCRIPTS: &[&str] = &[
    "auth",
    "blmove",
    "blmpop",
    "blpop",
    "brpop",
    "brpoplpush",
    "bzmpop",
    "bzpopmax",
    "bzpopmin",
    "client",
    "cluster",
    "discard",
    "eval",
    "eval_ro",
    "evalsha",
    "evalsha_ro",
    "exec",
    "fcall",
    "fcall_ro",
    "function",
    "hello",
    "multi",
    "psubscribe",
    "punsubscribe",
    "quit",
    "script",
    "save",
    "session.subscribe",
    "shutdown",
    "subscribe",
    "unsubscribe",
    "unwatch",
    "wait",
    "watch",
];

/// Runs a command a script sent, as the client's own, within the script's hold.
async fn command_from_script(ctx: &mut Ctx<'_>, args: Vec<Bytes>, read_only: bool) -> Reply {
    let Some(index) = position(&args[0]) else {
        return Reply::error("ERR Unknown Redis command called from script");
    };
    let spec = &COMMANDS[index];
    if !spec.arity_fits(args.len()) {
        return Reply::error("ERR Wrong number of args calling Redis command from script");
    }
    if NOT_FROM_SCRIPTS.contains(&spec.name) {
        return Reply::error("ERR This Redis command is not allowed from script");
    }
    if read_only && spec.flags.contains(&"write") {
        return Reply::error("ERR Write commands are not allowed from read-only scripts.");
    }
    if !ctx.client.unrestricted {
        if let Err(denied) = crate::redis::acl::check::check(&ctx.client.user, index, &args) {
            let user = &ctx.client.user.name;
            super::commands::log_denial(ctx.shared, ctx.client, "lua", user, denied.reason());
            return denied.reply();
        }
    }
    super::commands::run_checked(ctx, index, super::commands::Args::new(args)).await
}

/// `SCRIPT LOAD|EXISTS|FLUSH|KILL`.
pub fn script(ctx: &mut Ctx<'_>) -> CmdResult {
    let scripts = &ctx.shared.scripts;
    let sub = ctx.args.text(1).to_ascii_lowercase();
    match (sub.as_str(), ctx.args.len()) {
        ("load", 3) => Ok(Reply::Bulk(scripts.remember(ctx.args.get(2).clone()).into())),
        ("exists", n) if n >= 3 => {
            let bodies = scripts.bodies.lock().expect("scripts lock");
            let known = ctx.args.from(2).iter().map(|sha| {
                let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
                Reply::Int(bodies.contains_key(&sha) as i64)
            });
            Ok(Reply::Array(known.collect()))
        }
        ("flush", 2) => flush_scripts(scripts),
        ("flush", 3) if ctx.args.is(2, "async") || ctx.args.is(2, "sync") => flush_scripts(scripts),
        ("kill", 2) => Err(Reply::error("NOTBUSY No scripts in execution right now.")),
        _ => Err(unknown_subcommand("SCRIPT", ctx)),
    }
}

fn flush_scripts(scripts: &Scripts) -> CmdResult {
    scripts.bodies.lock().expect("scripts lock").clear();
    scripts.scripts_gen.fetch_add(1, Ordering::AcqRel);
    Ok(Reply::Ok)
}

/// Redis' error for a subcommand it does not know, or one given the wrong arguments.
fn unknown_subcommand(command: &str, ctx: &Ctx<'_>) -> Reply {
    let known: &[&str] = match command {
        "SCRIPT" => &["load", "exists", "flush", "kill", "help"],
        _ => &["load", "delete", "flush", "kill", "list", "stats", "dump", "restore", "help"],
    };
    let sub = ctx.args.text(1);
    if known.contains(&sub.to_ascii_lowercase().as_str()) {
        Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {command} HELP."
        ))
    } else {
        Reply::error(format!("ERR unknown subcommand '{sub}'. Try {command} HELP."))
    }
}

/// `FUNCTION LOAD|DELETE|FLUSH|LIST|KILL|STATS`.
pub async fn function(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = ctx.args.text(1).to_ascii_lowercase();
    let scripts = &ctx.shared.scripts;
    match (sub.as_str(), ctx.args.len()) {
        ("load", 3 | 4) => {
            let replace = ctx.args.len() == 4;
            if replace && !ctx.args.is(2, "replace") {
                return Err(Reply::error(format!(
                    "ERR Unknown option given: {}",
                    ctx.args.text(2)
                )));
            }
            let code = ctx.args.get(ctx.args.len() - 1).clone();
            function_load(scripts, code, replace).await
        }
        ("delete", 3) => {
            let name = ctx.args.text(2);
            let removed = scripts.libraries.lock().expect("libraries lock").remove(&name);
            if removed.is_none() {
                return Err(Reply::error("ERR Library not found"));
            }
            scripts.libs_gen.fetch_add(1, Ordering::AcqRel);
            Ok(Reply::Ok)
        }
        ("flush", 2) => flush_functions(scripts),
        ("flush", 3) if ctx.args.is(2, "async") || ctx.args.is(2, "sync") => {
            flush_functions(scripts)
        }
        ("flush", 3) => Err(Reply::error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")),
        ("kill", 2) => Err(Reply::error("NOTBUSY No scripts in execution right now.")),
        ("list", _) => function_list(ctx),
        ("stats", 2) => {
            let libraries = scripts.libraries.lock().expect("libraries lock");
            let functions: usize = libraries.values().map(|l| l.functions.len()).sum();
            let lua = Reply::Map(vec![
                (Reply::bulk("libraries_count"), Reply::Int(libraries.len() as i64)),
                (Reply::bulk("functions_count"), Reply::Int(functions as i64)),
            ]);
            Ok(Reply::Map(vec![
                (Reply::bulk("running_script"), Reply::Nil),
                (Reply::bulk("engines"), Reply::Map(vec![(Reply::bulk("LUA"), lua)])),
            ]))
        }
        _ => Err(unknown_subcommand("FUNCTION", ctx)),
    }
}

fn flush_functions(scripts: &Scripts) -> CmdResult {
    scripts.libraries.lock().expect("libraries lock").clear();
    scripts.libs_gen.fetch_add(1, Ordering::AcqRel);
    Ok(Reply::Ok)
}

/// `FUNCTION LOAD [REPLACE] code`: the library's name once its code ran and registered
/// functions no other library has.
async fn function_load(scripts: &Scripts, code: Bytes, replace: bool) -> CmdResult {
    let name = library_name(&code)?;
    let vm = scripts.take_vm()?;
    let body = code.clone();
    let (vm, loaded) = tokio::task::spawn_blocking(move || {
        let loaded = vm.load_library(&body, LOAD_LIMIT);
        (vm, loaded)
    })
    .await
    .map_err(|e| Reply::error(format!("ERR the loading thread failed: {e}")))?;
    scripts.put_vm(vm);
    let functions = loaded.map_err(Reply::error)?;
    let mut libraries = scripts.libraries.lock().expect("libraries lock");
    if libraries.contains_key(&name) && !replace {
        return Err(Reply::error(format!("ERR Library '{name}' already exists")));
    }
    for f in &functions {
        let taken = libraries
            .iter()
            .any(|(lib, l)| *lib != name && l.functions.iter().any(|g| g.name == f.name));
        if taken {
            return Err(Reply::error(format!("ERR Function {} already exists", f.name)));
        }
    }
    libraries.insert(name.clone(), Library { code, functions });
    scripts.libs_gen.fetch_add(1, Ordering::AcqRel);
    Ok(Reply::Bulk(name.into()))
}

/// The name in a library's `#!lua name=<name>` first line.
fn library_name(code: &[u8]) -> Result<String, Reply> {
    if !code.starts_with(b"#!") {
        return Err(Reply::error("ERR Missing library metadata"));
    }
    let end = code.iter().position(|&b| b == b'\n').unwrap_or(code.len());
    let line = String::from_utf8_lossy(&code[2..end]).into_owned();
    let mut words = line.split_whitespace();
    let engine = words.next().unwrap_or("");
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(Reply::error(format!("ERR Engine '{engine}' not found")));
    }
    let mut name = None;
    for word in words {
        match word.strip_prefix("name=") {
            Some(n) => name = Some(n.to_string()),
            None => return Err(Reply::error(format!("ERR Invalid metadata value given: {word}"))),
        }
    }
    let name = name.ok_or_else(|| Reply::error("ERR Library name was not given"))?;
    if !valid_name(&name) {
        return Err(Reply::error(
            "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long",
        ));
    }
    Ok(name)
}

/// `FUNCTION LIST [WITHCODE] [LIBRARYNAME pattern]`.
fn function_list(ctx: &Ctx<'_>) -> CmdResult {
    let (mut with_code, mut pattern) = (false, None);
    let mut i = 2;
    while i < ctx.args.len() {
        if ctx.args.is(i, "withcode") {
            with_code = true;
        } else if ctx.args.is(i, "libraryname") && i + 1 < ctx.args.len() {
            pattern = Some(ctx.args.get(i + 1).clone());
            i += 1;
        } else {
            return Err(Reply::error("ERR Unknown argument or wrong number of arguments"));
        }
        i += 1;
    }
    let libraries = ctx.shared.scripts.libraries.lock().expect("libraries lock");
    let listed = libraries
        .iter()
        .filter(|(name, _)| {
            pattern.as_ref().is_none_or(|p| sessiongrid_model::glob::matches(p, name.as_bytes()))
        })
        .map(|(name, lib)| {
            let functions = lib.functions.iter().map(|f| {
                Reply::Map(vec![
                    (Reply::bulk("name"), Reply::bulk(f.name.clone())),
                    (Reply::bulk("description"), Reply::Nil),
                    (
                        Reply::bulk("flags"),
                        Reply::Set(
                            f.flags.iter().map(|x| Reply::Status(x.clone().into())).collect(),
                        ),
                    ),
                ])
            });
            let mut fields = vec![
                (Reply::bulk("library_name"), Reply::bulk(name.clone())),
                (Reply::bulk("engine"), Reply::bulk("LUA")),
                (Reply::bulk("functions"), Reply::Array(functions.collect())),
            ];
            if with_code {
                fields.push((Reply::bulk("library_code"), Reply::Bulk(lib.code.clone())));
            }
            Reply::Map(fields)
        });
    Ok(Reply::Array(listed.collect()))
}
