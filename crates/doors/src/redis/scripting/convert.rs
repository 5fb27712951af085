//! Replies into Lua values and back, as Redis 7.0 converts them for scripts.
//!
//! Into Lua (`redis.call`): integer -> number, bulk -> string, nil -> `false`, array -> table,
//! status -> `{ok=...}`, error -> `{err=...}`. Under `redis.setresp(3)`: nil -> `nil`, map ->
//! `{map=...}`, set -> `{set=...}`, double -> `{double=...}`. Back out (the script's result):
//! number -> integer (truncated), string -> bulk, `true` -> 1, `false`/`nil` -> nil, table ->
//! array up to its first nil, or the reply its `err`/`ok` (and, in RESP3, `map`/`set`/`double`)
//! field names.

use bytes::Bytes;
use mlua::{Lua, Table, Value};
use sessiongrid_model::Reply;

/// Tables deeper than this are not converted (a script returning a cyclic table would
/// otherwise never end).
const DEPTH_MAX: usize = 64;

/// `{err = text}`, what `redis.pcall` gives for an error reply.
pub fn error_table(lua: &Lua, text: &str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", text)?;
    Ok(t)
}

/// A reply as the script sees it, under RESP version `resp` (2 or 3).
pub fn to_lua(lua: &Lua, reply: Reply, resp: u8) -> mlua::Result<Value> {
    let resp3 = resp == 3;
    Ok(match reply {
        Reply::Ok => status(lua, "OK")?,
        Reply::Status(s) => status(lua, &s)?,
        Reply::Nil | Reply::NilArray if resp3 => Value::Nil,
        Reply::Nil | Reply::NilArray => Value::Boolean(false),
        Reply::Int(n) => Value::Number(n as f64),
        Reply::Bulk(b) => Value::String(lua.create_string(&b)?),
        Reply::Verbatim(b) if resp3 => {
            let v = lua.create_table()?;
            v.raw_set("format", "txt")?;
            v.raw_set("string", lua.create_string(&b)?)?;
            wrapped(lua, "verbatim_string", v)?
        }
        Reply::Verbatim(b) => Value::String(lua.create_string(&b)?),
        Reply::Bool(b) if resp3 => Value::Boolean(b),
        Reply::Bool(b) => Value::Number(f64::from(u8::from(b))),
        Reply::BigNumber(digits) if resp3 => {
            let t = lua.create_table()?;
            t.raw_set("big_number", lua.create_string(&digits)?)?;
            Value::Table(t)
        }
        Reply::BigNumber(digits) => Value::String(lua.create_string(&digits)?),
        Reply::Error(e) => Value::Table(error_table(lua, &e)?),
        Reply::Double(d) if resp3 => {
            let t = lua.create_table()?;
            t.raw_set("double", d)?;
            Value::Table(t)
        }
        Reply::Double(d) => {
            Value::String(lua.create_string(sessiongrid_model::num::format_g17(d))?)
        }
        Reply::Array(items) | Reply::Push(items) | Reply::Many(items) => array(lua, items, resp)?,
        Reply::Set(items) if resp3 => {
            let set = lua.create_table()?;
            for item in items {
                set.raw_set(to_lua(lua, item, resp)?, true)?;
            }
            wrapped(lua, "set", set)?
        }
        Reply::Set(items) => array(lua, items, resp)?,
        Reply::Map(pairs) if resp3 => {
            let map = lua.create_table()?;
            for (k, v) in pairs {
                map.raw_set(to_lua(lua, k, resp)?, to_lua(lua, v, resp)?)?;
            }
            wrapped(lua, "map", map)?
        }
        Reply::Pairs(pairs) if resp3 => {
            let items = pairs.into_iter().map(|(a, b)| Reply::Array(vec![a, b])).collect();
            array(lua, items, resp)?
        }
        Reply::Map(pairs) | Reply::Pairs(pairs) => {
            array(lua, pairs.into_iter().flat_map(|(a, b)| [a, b]).collect(), resp)?
        }
    })
}

fn status(lua: &Lua, text: &str) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set("ok", text)?;
    Ok(Value::Table(t))
}

fn wrapped(lua: &Lua, field: &str, inner: Table) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, inner)?;
    Ok(Value::Table(t))
}

fn array(lua: &Lua, items: Vec<Reply>, resp: u8) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.into_iter().enumerate() {
        t.raw_set(i + 1, to_lua(lua, item, resp)?)?;
    }
    Ok(Value::Table(t))
}

/// A script's result as a reply, under RESP version `resp`.
pub fn from_lua(value: &Value, resp: u8) -> Reply {
    from_lua_at(value, resp, 0)
}

fn from_lua_at(value: &Value, resp: u8, depth: usize) -> Reply {
    match value {
        Value::Nil => Reply::Nil,
        Value::Boolean(b) if resp == 3 => Reply::Bool(*b),
        Value::Boolean(true) => Reply::Int(1),
        Value::Boolean(false) => Reply::Nil,
        Value::Integer(n) => Reply::Int(*n),
        Value::Number(n) => Reply::Int(truncate(*n)),
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Table(t) if depth < DEPTH_MAX => table(t, resp, depth),
        Value::Table(_) => Reply::error("ERR reached lua stack limit"),
        _ => Reply::Nil,
    }
}

/// C's cast of a double to a long long, without its undefined cases.
fn truncate(n: f64) -> i64 {
    if n.is_nan() {
        i64::MIN
    } else {
        n as i64
    }
}

fn table(t: &Table, resp: u8, depth: usize) -> Reply {
    let field = |name: &str| t.raw_get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(e) = field("err") {
        let text = e.to_string_lossy();
        return Reply::error(if text.is_empty() { "ERR".to_string() } else { text });
    }
    if let Value::String(s) = field("ok") {
        return Reply::Status(s.to_string_lossy().into());
    }
    if let Value::Number(d) = field("double") {
        return Reply::Double(d);
    }
    if let Value::String(s) = field("big_number") {
        let bytes = s.as_bytes();
        let digits = bytes.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b });
        return Reply::BigNumber(digits.collect());
    }
    if let Value::Table(v) = field("verbatim_string") {
        if let Ok(Value::String(s)) = v.raw_get::<Value>("string") {
            return Reply::Verbatim(Bytes::copy_from_slice(&s.as_bytes()));
        }
    }
    {
        if let Value::Table(map) = field("map") {
            let pairs = map.pairs::<Value, Value>().filter_map(Result::ok);
            let pairs = pairs
                .map(|(k, v)| (from_lua_at(&k, resp, depth + 1), from_lua_at(&v, resp, depth + 1)))
                .collect();
            return Reply::Map(pairs);
        }
        if let Value::Table(set) = field("set") {
            let members = set.pairs::<Value, Value>().filter_map(Result::ok);
            return Reply::Set(members.map(|(k, _)| from_lua_at(&k, resp, depth + 1)).collect());
        }
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(from_lua_at(&v, resp, depth + 1)),
        }
    }
    Reply::Array(items)
}
