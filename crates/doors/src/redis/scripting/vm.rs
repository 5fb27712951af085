//! The Lua 5.1 a script runs in: a sandbox with Redis' libraries and its `redis` API, and the
//! run of one script or function on a blocking thread.
//!
//! - **Sandbox.** Base, table, string and math libraries, plus `cjson`, `bit`, `struct` and
//!   `cmsgpack`; no `io`, `os`, `debug`, `print`, `loadfile`, `dofile`, and no binary chunks.
//!   Scripts see the globals through a read-only proxy: writing a global, or a field of a
//!   library table, fails with "Attempt to modify a readonly table"; reading an undefined one
//!   fails with "Script attempted to access nonexistent global variable".
//! - **Commands.** `redis.call`/`redis.pcall` send the command to the connection that runs the
//!   script ([`Call`]) and block until it answers; the connection runs it within the script's
//!   transaction. `call` raises an error reply, `pcall` returns it as `{err=...}`.
//! - **Time limit.** A hook checks the clock every few thousand instructions; past the limit
//!   the script is stopped with an error.
//! - **Errors** are answered as Redis 7.0 words them: the message, then ` script: <name>, on
//!   <source>:<line>.` where a line is known.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};
use sessiongrid_model::Reply;
use tokio::sync::mpsc::UnboundedSender;

use super::convert::{error_table, from_lua, to_lua};
use super::libs;

/// A command a running script sends to its connection, and where the answer goes.
pub struct Call {
    pub args: Vec<Bytes>,
    pub answer: mpsc::SyncSender<Reply>,
}

/// What a run executes: a script (compiled once per VM, by its SHA1) or a library function.
pub enum Body {
    Eval { sha: String, source: Bytes },
    Function { name: String },
}

pub struct Job {
    pub body: Body,
    pub keys: Vec<Bytes>,
    pub argv: Vec<Bytes>,
    pub limit: Duration,
}

/// What the Rust side of the `redis` API reads while a script runs.
struct Running {
    calls: Option<UnboundedSender<Call>>,
    /// RESP version of `redis.setresp` (2 until the script says otherwise).
    resp: u8,
    deadline: Instant,
    timed_out: bool,
}

/// Functions registered by a library's code while it loads.
#[derive(Default)]
struct Loading {
    functions: Vec<(String, Function, Vec<String>)>,
    error: Option<String>,
}

/// A function of a library as `FUNCTION LIST` shows it.
#[derive(Clone, Debug)]
pub struct FunctionMeta {
    pub name: String,
    pub flags: Vec<String>,
}

/// Flags a function or script may declare.
pub const FLAGS: &[&str] =
    &["no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"];

/// Builds the globals scripts see, from the real ones (`...`: globals, the runtime `redis`
/// table, the one library code gets while it loads, and a function telling whether one loads).
/// Errors are raised from Lua, as strings, so a script's `pcall` gets Redis' text.
const SANDBOX: &str = r#"
local real, redis, loading_redis, is_loading = ...
local error, rawget, setmetatable, tostring = error, rawget, setmetatable, tostring
local protected = setmetatable({}, {__mode = 'k'})
local function refuse() error("Attempt to modify a readonly table", 2) end
local function locked()
  local t = setmetatable({}, {__newindex = refuse})
  protected[t] = true
  return t
end
local function read_only(inner)
  local t = setmetatable({}, {__index = inner, __newindex = refuse, __metatable = locked()})
  protected[t] = true
  return t
end
for _, name in ipairs({'string', 'table', 'math', 'cjson', 'bit', 'struct', 'cmsgpack'}) do
  if rawget(real, name) ~= nil then real[name] = read_only(real[name]) end
end
redis, loading_redis = read_only(redis), read_only(loading_redis)
local env = {}
setmetatable(env, {
  __index = function(_, name)
    if name == 'redis' then
      if is_loading() then return loading_redis end
      return redis
    end
    if name == '_G' then return env end
    local v = rawget(real, name)
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
    end
    return v
  end,
  __newindex = refuse,
  __metatable = locked(),
})
protected[env] = true
real.setmetatable = function(t, m)
  if protected[t] then error("Attempt to modify a readonly table", 2) end
  return setmetatable(t, m)
end
return env
"#;

pub struct Vm {
    lua: Lua,
    /// The real globals, behind the proxies; `KEYS` and `ARGV` are set here.
    globals: Table,
    /// What scripts and library code see as their globals.
    env: Table,
    /// Compiled scripts by SHA1, and library functions by name.
    scripts: Table,
    functions: Table,
    runner: Function,
    /// The node's script cache and libraries this VM's compiled ones belong to.
    pub scripts_gen: u64,
    pub libs_gen: u64,
}

impl Vm {
    pub fn new() -> mlua::Result<Vm> {
        let lua = Lua::new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH, LuaOptions::new())?;
        let globals = lua.globals();
        for name in ["print", "loadfile", "dofile", "load"] {
            globals.raw_set(name, Value::Nil)?;
        }
        libs::install(&lua)?;
        let redis = redis_table(&lua, false)?;
        let loading_redis = redis_table(&lua, true)?;
        let loading = lua.create_function(|lua, ()| Ok(lua.app_data_ref::<Loading>().is_some()))?;
        let env = lua.load(SANDBOX).set_name("=sandbox").call::<Table>((
            globals.clone(),
            redis,
            loading_redis,
            loading,
        ))?;
        let loadstring: Function = globals.raw_get("loadstring")?;
        globals.raw_set("loadstring", sandboxed_loadstring(&lua, loadstring, env.clone())?)?;
        let runner = lua
            .load(
                "local xpcall, unpack, select, handler = ...\n\
                 return function(f, ...)\n\
                   local args, n = {...}, select('#', ...)\n\
                   return xpcall(function() return f(unpack(args, 1, n)) end, handler)\n\
                 end",
            )
            .set_name("=runner")
            .call::<Function>((
                globals.raw_get::<Value>("xpcall")?,
                globals.raw_get::<Value>("unpack")?,
                globals.raw_get::<Value>("select")?,
                lua.create_function(error_handler)?,
            ))?;
        Ok(Vm {
            scripts: lua.create_table()?,
            functions: lua.create_table()?,
            lua,
            globals,
            env,
            runner,
            scripts_gen: 0,
            libs_gen: 0,
        })
    }

    /// Compiles a script (an error reply if it does not compile).
    pub fn compile(&self, sha: &str, source: &[u8]) -> Result<Function, Reply> {
        if let Ok(Value::Function(f)) = self.scripts.raw_get::<Value>(sha) {
            return Ok(f);
        }
        let chunk =
            self.lua.load(source).set_name("@user_script").set_environment(self.env.clone());
        match chunk.into_function() {
            Ok(f) => {
                let _ = self.scripts.raw_set(sha, f.clone());
                Ok(f)
            }
            Err(e) => Err(Reply::error(format!(
                "ERR Error compiling script (new function): {}",
                lua_message(&e)
            ))),
        }
    }

    /// Forgets compiled scripts (after `SCRIPT FLUSH`).
    pub fn forget_scripts(&mut self, gen: u64) {
        if let Ok(t) = self.lua.create_table() {
            self.scripts = t;
        }
        self.scripts_gen = gen;
    }

    /// Runs a library's code; the functions it registers, or why it was refused.
    pub fn load_library(&self, code: &[u8], limit: Duration) -> Result<Vec<FunctionMeta>, String> {
        let loaded = self.run_library(code, limit)?;
        Ok(loaded.into_iter().map(|(name, _, flags)| FunctionMeta { name, flags }).collect())
    }

    /// Replaces this VM's functions with those of `libraries` (each loaded before, so they
    /// load again).
    pub fn reload_libraries<'a>(
        &mut self,
        libraries: impl Iterator<Item = &'a Bytes>,
        gen: u64,
        limit: Duration,
    ) {
        if let Ok(t) = self.lua.create_table() {
            self.functions = t;
        }
        for code in libraries {
            if let Ok(loaded) = self.run_library(code, limit) {
                for (name, f, _) in loaded {
                    let _ = self.functions.raw_set(name, f);
                }
            }
        }
        self.libs_gen = gen;
    }

    fn run_library(
        &self,
        code: &[u8],
        limit: Duration,
    ) -> Result<Vec<(String, Function, Vec<String>)>, String> {
        // The `#!lua name=...` line is not Lua: blanked, so line numbers stay.
        let code = code.iter().position(|&b| b == b'\n').map_or(&[][..], |end| &code[end..]);
        let chunk =
            self.lua.load(code).set_name("@user_function").set_environment(self.env.clone());
        let f = chunk
            .into_function()
            .map_err(|e| format!("ERR Error compiling function: {}", lua_message(&e)))?;
        self.lua.set_app_data(Loading::default());
        let outcome = self.guarded(limit, None, || f.call::<Value>(()));
        let loading = self.lua.remove_app_data::<Loading>().unwrap_or_default();
        if let Some(e) = loading.error {
            return Err(e);
        }
        match outcome {
            Ok(_) if loading.functions.is_empty() => Err("ERR No functions registered".into()),
            Ok(_) => Ok(loading.functions),
            Err(e) => Err(format!("ERR Error registering functions: {}", lua_message(&e))),
        }
    }

    /// Runs `job`; its commands go to `calls`. Blocks until the script ends.
    pub fn run(&self, job: Job, calls: UnboundedSender<Call>) -> Reply {
        let (f, name, args) = match &job.body {
            Body::Eval { sha, source } => {
                let f = match self.compile(sha, source) {
                    Ok(f) => f,
                    Err(reply) => return reply,
                };
                let set = |name: &str, items: &[Bytes]| -> mlua::Result<()> {
                    let t = self.lua.create_table_with_capacity(items.len(), 0)?;
                    for (i, item) in items.iter().enumerate() {
                        t.raw_set(i + 1, self.lua.create_string(item)?)?;
                    }
                    self.globals.raw_set(name, t)
                };
                if set("KEYS", &job.keys).and_then(|_| set("ARGV", &job.argv)).is_err() {
                    return Reply::error("ERR out of memory for the script's arguments");
                }
                (f, format!("f_{sha}"), MultiValue::new())
            }
            Body::Function { name } => {
                let Ok(Value::Function(f)) = self.functions.raw_get::<Value>(name.as_str()) else {
                    return Reply::error("ERR Function not found");
                };
                let args = (|| -> mlua::Result<MultiValue> {
                    let keys = self.lua.create_sequence_from(
                        job.keys
                            .iter()
                            .map(|k| self.lua.create_string(k))
                            .collect::<Result<Vec<_>, _>>()?,
                    )?;
                    let argv = self.lua.create_sequence_from(
                        job.argv
                            .iter()
                            .map(|k| self.lua.create_string(k))
                            .collect::<Result<Vec<_>, _>>()?,
                    )?;
                    Ok(MultiValue::from_iter([Value::Table(keys), Value::Table(argv)]))
                })();
                match args {
                    Ok(args) => (f, name.clone(), args),
                    Err(_) => return Reply::error("ERR out of memory for the script's arguments"),
                }
            }
        };
        let mut call_args = MultiValue::from_iter([Value::Function(f)]);
        call_args.extend(args);
        let result =
            self.guarded(job.limit, Some(calls), || self.runner.call::<MultiValue>(call_args));
        let resp = self.lua.app_data_ref::<Running>().map_or(2, |r| r.resp);
        let timed_out = self.lua.app_data_ref::<Running>().is_some_and(|r| r.timed_out);
        let _ = self.lua.remove_app_data::<Running>();
        let _ = self.globals.raw_set("KEYS", Value::Nil);
        let _ = self.globals.raw_set("ARGV", Value::Nil);
        if timed_out {
            return Reply::error(format!(
                "ERR Script killed: it ran longer than the script time limit ({} ms) script: {name}",
                job.limit.as_millis()
            ));
        }
        let values = match result {
            Ok(values) => values.into_vec(),
            Err(e) => return Reply::error(format!("ERR {} script: {name}", lua_message(&e))),
        };
        match (values.first(), values.get(1)) {
            (Some(Value::Boolean(true)), result) => from_lua(result.unwrap_or(&Value::Nil), resp),
            (_, Some(Value::Table(err))) => script_error(err, &name),
            (_, other) => Reply::error(format!(
                "ERR Error running script {name}, {}",
                other.map_or("execution failure".into(), |v| format!("{v:?}"))
            )),
        }
    }

    /// Runs `body` with the clock hook set and the run's state in place; the state stays for
    /// the caller to read.
    fn guarded<R>(
        &self,
        limit: Duration,
        calls: Option<UnboundedSender<Call>>,
        body: impl FnOnce() -> R,
    ) -> R {
        let deadline = Instant::now() + limit;
        self.lua.set_app_data(Running { calls, resp: 2, deadline, timed_out: false });
        self.lua.set_hook(HookTriggers::new().every_nth_instruction(10_000), |lua, _| {
            let Some(mut running) = lua.app_data_mut::<Running>() else {
                return Ok(VmState::Continue);
            };
            if Instant::now() < running.deadline {
                return Ok(VmState::Continue);
            }
            running.timed_out = true;
            Err(mlua::Error::runtime("the script time limit has passed"))
        });
        let result = body();
        self.lua.remove_hook();
        result
    }
}

/// The reply for an error a script raised: `{err=..., source=..., line=...}`.
fn script_error(err: &Table, name: &str) -> Reply {
    let text = match err.raw_get::<Value>("err") {
        Ok(Value::String(s)) => s.to_string_lossy(),
        _ => "ERR unknown error".into(),
    };
    let source = err.raw_get::<Option<mlua::String>>("source").ok().flatten();
    let line = err.raw_get::<Option<i64>>("line").ok().flatten();
    match (source, line) {
        (Some(source), Some(line)) => {
            Reply::error(format!("{text} script: {name}, on {}:{line}.", source.to_string_lossy()))
        }
        _ => Reply::error(text),
    }
}

/// Lua's own text of an error, without mlua's decoration.
fn lua_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => lua_message(cause),
        other => other.to_string(),
    }
}

/// The message handler of a run: any error becomes `{err=..., source=..., line=...}`, with the
/// place in the script it came from.
fn error_handler(lua: &Lua, err: Value) -> mlua::Result<Value> {
    let table = match err {
        Value::Table(t) => t,
        Value::String(s) => error_table(lua, &format!("ERR {}", s.to_string_lossy()))?,
        Value::Error(e) => error_table(lua, &format!("ERR {}", lua_message(&e)))?,
        other => error_table(lua, &format!("ERR {}", other.to_string()?))?,
    };
    if table.raw_get::<Value>("line")? == Value::Nil {
        // The innermost frame that is script code: not this handler, not `error` itself.
        for level in 1..6 {
            let Some(frame) = lua.inspect_stack(level) else { break };
            let line = frame.curr_line();
            let source = frame.source().source.map(|s| s.into_owned());
            // Frames of this file's own Lua (named `=...`) are not the script's.
            if let (true, Some(source)) = (line > 0, source.filter(|s| !s.starts_with('='))) {
                table.raw_set("source", source)?;
                table.raw_set("line", line)?;
                break;
            }
        }
    }
    Ok(Value::Table(table))
}

/// `loadstring` that refuses binary chunks and gives what it loads the scripts' globals.
fn sandboxed_loadstring(lua: &Lua, original: Function, env: Table) -> mlua::Result<Function> {
    lua.create_function(move |lua, (code, name): (mlua::String, Option<mlua::String>)| {
        if code.as_bytes().first() == Some(&0x1b) {
            return Ok((
                Value::Nil,
                Value::String(lua.create_string("binary chunks are not allowed")?),
            ));
        }
        let (f, err): (Value, Value) = original.call((code, name))?;
        if let Value::Function(f) = &f {
            f.set_environment(env.clone())?;
        }
        Ok((f, err))
    })
}

/// The `redis` table: the runtime API, or (`loading`) what library code may use.
fn redis_table(lua: &Lua, loading: bool) -> mlua::Result<Table> {
    let redis = lua.create_table()?;
    for (name, level) in
        [("LOG_DEBUG", 0), ("LOG_VERBOSE", 1), ("LOG_NOTICE", 2), ("LOG_WARNING", 3)]
    {
        redis.raw_set(name, level)?;
    }
    for (name, flag) in
        [("REPL_NONE", 0), ("REPL_SLAVE", 1), ("REPL_REPLICA", 1), ("REPL_AOF", 2), ("REPL_ALL", 3)]
    {
        redis.raw_set(name, flag)?;
    }
    redis.raw_set("REDIS_VERSION", "7.0.15")?;
    redis.raw_set("REDIS_VERSION_NUM", 0x0007_000f)?;
    redis.raw_set("log", lua.create_function(log)?)?;
    redis.raw_set(
        "sha1hex",
        lua.create_function(|_, args: MultiValue| match args.front() {
            Some(Value::String(s)) if args.len() == 1 => Ok(super::sha1_hex(&s.as_bytes())),
            _ => Err(mlua::Error::runtime("wrong number of arguments")),
        })?,
    )?;
    redis.raw_set(
        "error_reply",
        lua.create_function(|lua, text: mlua::String| {
            let text = text.to_string_lossy();
            error_table(lua, text.strip_prefix('-').unwrap_or(&text))
        })?,
    )?;
    redis.raw_set(
        "status_reply",
        lua.create_function(|lua, text: mlua::String| {
            let t = lua.create_table()?;
            t.raw_set("ok", text)?;
            Ok(t)
        })?,
    )?;
    if loading {
        redis.raw_set("register_function", lua.create_function(register_function)?)?;
        return Ok(redis);
    }
    // The arguments travel as one table: a call may have more than the C stack holds.
    let (call, pcall) = lua
        .load(
            "local raw, error, type, rawget, select = ...\n\
             local function pcall(...) return raw(select('#', ...), {...}) end\n\
             local function call(...)\n\
               local r = raw(select('#', ...), {...})\n\
               if type(r) == 'table' and rawget(r, 'err') ~= nil then error(r, 0) end\n\
               return r\n\
             end\n\
             return call, pcall",
        )
        .set_name("=redis.call")
        .call::<(Function, Function)>((
            lua.create_function(command)?,
            lua.globals().raw_get::<Value>("error")?,
            lua.globals().raw_get::<Value>("type")?,
            lua.globals().raw_get::<Value>("rawget")?,
            lua.globals().raw_get::<Value>("select")?,
        ))?;
    redis.raw_set("call", call)?;
    redis.raw_set("pcall", pcall)?;
    redis.raw_set(
        "setresp",
        lua.create_function(|lua, version: i64| {
            if version != 2 && version != 3 {
                return Err(mlua::Error::runtime("RESP version must be 2 or 3."));
            }
            if let Some(mut running) = lua.app_data_mut::<Running>() {
                running.resp = version as u8;
            }
            Ok(())
        })?,
    )?;
    redis.raw_set(
        "set_repl",
        lua.create_function(|_, flags: i64| {
            if !(0..=3).contains(&flags) {
                return Err(mlua::Error::runtime(
                    "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                ));
            }
            Ok(())
        })?,
    )?;
    redis.raw_set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
    redis.raw_set("breakpoint", lua.create_function(|_, ()| Ok(false))?)?;
    redis.raw_set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    redis.raw_set(
        "acl_check_cmd",
        lua.create_function(|_, args: MultiValue| {
            let name = match args.front() {
                Some(Value::String(s)) => s.to_string_lossy(),
                _ => String::new(),
            };
            if crate::redis::commands::lookup(name.as_bytes()).is_none() {
                return Err(mlua::Error::runtime(
                    "Invalid command passed to redis.acl_check_cmd()",
                ));
            }
            Ok(true)
        })?,
    )?;
    Ok(redis)
}

/// `redis.pcall` with its `n` arguments in `args`: the command's reply (an error as
/// `{err=...}`).
fn command(lua: &Lua, (n, args): (usize, Table)) -> mlua::Result<Value> {
    if n == 0 {
        let text = "ERR Please specify at least one argument for this redis lib call";
        return Ok(Value::Table(error_table(lua, text)?));
    }
    let mut argv = Vec::with_capacity(n);
    for i in 1..=n {
        let arg = args.raw_get::<Value>(i)?;
        let bytes = match arg {
            Value::String(s) => Bytes::copy_from_slice(&s.as_bytes()),
            Value::Integer(n) => Bytes::from(n.to_string()),
            Value::Number(n) => Bytes::from(number_text(n)),
            _ => {
                let text = "ERR Lua redis lib command arguments must be strings or integers";
                return Ok(Value::Table(error_table(lua, text)?));
            }
        };
        argv.push(bytes);
    }
    let (answer, reply) = mpsc::sync_channel(1);
    let (sent, resp) = match lua.app_data_ref::<Running>() {
        Some(r) => {
            (r.calls.as_ref().is_some_and(|c| c.send(Call { args: argv, answer }).is_ok()), r.resp)
        }
        None => (false, 2),
    };
    let reply = if sent { reply.recv().ok() } else { None };
    let reply = reply.unwrap_or_else(|| Reply::error("ERR the script's client is gone"));
    to_lua(lua, reply, resp)
}

/// A number passed to a command, as Redis 7.0 writes it (`%.17g`).
fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e17 {
        format!("{}", n as i64)
    } else {
        sessiongrid_model::num::format_g17(n)
    }
}

fn log(_: &Lua, args: MultiValue) -> mlua::Result<()> {
    let mut args = args.into_iter();
    let level = match args.next() {
        Some(Value::Integer(l)) => l,
        Some(Value::Number(l)) => l as i64,
        _ => return Err(mlua::Error::runtime("First argument must be a number (log level).")),
    };
    let text: Vec<String> = args
        .map(|v| match v {
            Value::String(s) => s.to_string_lossy(),
            other => format!("{other:?}"),
        })
        .collect();
    let text = text.join(" ");
    match level {
        0 => tracing::debug!(target: "sessiongrid::script", "{text}"),
        1 | 2 => tracing::info!(target: "sessiongrid::script", "{text}"),
        _ => tracing::warn!(target: "sessiongrid::script", "{text}"),
    }
    Ok(())
}

/// `redis.register_function(name, callback)` or `redis.register_function{function_name=...,
/// callback=..., flags={...}, description=...}` while a library loads.
fn register_function(lua: &Lua, args: MultiValue) -> mlua::Result<()> {
    let mut args = args.into_iter();
    let (name, callback, flags) = match (args.next(), args.next()) {
        (Some(Value::String(name)), Some(Value::Function(f))) => {
            (name.to_string_lossy(), f, Vec::new())
        }
        (Some(Value::Table(t)), None) => {
            let name =
                match t.raw_get::<Value>("function_name")? {
                    Value::String(s) => s.to_string_lossy(),
                    _ => return Err(mlua::Error::runtime(
                        "function_name argument given to redis.register_function must be a string",
                    )),
                };
            let Value::Function(f) = t.raw_get::<Value>("callback")? else {
                return Err(mlua::Error::runtime(
                    "callback argument given to redis.register_function must be a function",
                ));
            };
            let mut flags = Vec::new();
            if let Value::Table(list) = t.raw_get::<Value>("flags")? {
                for flag in list.sequence_values::<mlua::String>() {
                    let flag = flag?.to_string_lossy();
                    if !FLAGS.contains(&flag.as_str()) {
                        return Err(mlua::Error::runtime("unknown flag given"));
                    }
                    flags.push(flag);
                }
            }
            (name, f, flags)
        }
        _ => {
            return Err(mlua::Error::runtime(
                "wrong number of arguments to redis.register_function",
            ))
        }
    };
    if !super::valid_name(&name) {
        return Err(mlua::Error::runtime(
            "Function names can only contain letters, numbers, or underscores(_) and must be at least one character long",
        ));
    }
    let Some(mut loading) = lua.app_data_mut::<Loading>() else {
        return Err(mlua::Error::runtime(
            "redis.register_function can only be called on FUNCTION LOAD command",
        ));
    };
    if loading.functions.iter().any(|(n, _, _)| *n == name) {
        loading.error = Some("ERR Function already exists in the library".into());
        return Err(mlua::Error::runtime("Function already exists in the library"));
    }
    loading.functions.push((name, callback, flags));
    Ok(())
}
