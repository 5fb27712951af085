//! The C libraries Redis bundles into its Lua, re-implemented in Rust on top of mlua:
//! `cjson` (lua-cjson 2.1), `bit` (LuaBitOp), `struct` (Roberto Ierusalimschy's struct library)
//! and `cmsgpack` (lua-cmsgpack). [`install`] registers them as global tables.
//!
//! Two mlua details shape the code. mlua reads a number smaller than 2^-52 in magnitude as the
//! integer 0 when it turns it into a [`Value`], while reading it as `f64` keeps it exact, so
//! functions that take arbitrary values get their arguments packed in a table (see
//! `function_with_exact_args`) and table values that read as 0 are read again (see `exact`).
//! And mlua keeps one reference slot per live string or table, of which Lua 5.1 allows about
//! 8000, so nesting depth and the number of values returned at once are bounded. Decoders use
//! an explicit stack; the JSON encoder recurses within a stack budget.

use std::fmt::Display;
use std::sync::{Arc, Mutex, PoisonError};

use mlua::{
    Error, Function, IntoLuaMulti, Lua, MaybeSend, MultiValue, Result, Table, Value, Variadic,
};

/// Registers the libraries Redis scripts expect as globals: `cjson`, `bit`, `struct`, `cmsgpack`.
pub fn install(lua: &Lua) -> Result<()> {
    let globals = lua.globals();
    globals.raw_set("cjson", cjson::module(lua)?)?;
    globals.raw_set("bit", bit::module(lua)?)?;
    globals.raw_set("struct", structlib::module(lua)?)?;
    globals.raw_set("cmsgpack", msgpack::module(lua)?)?;
    Ok(())
}

/// Most values one call hands back to Lua (each string among them holds a reference slot).
const MAX_RESULTS: usize = 4000;

/// Deepest nesting the encoders and decoders follow, whatever a script configures.
const MAX_NESTING: usize = 1000;

/// Stack the recursive JSON encoder may use below its entry before it reports excessive
/// nesting: about 1000 levels in optimised builds, a few hundred in unoptimised ones.
const STACK_BUDGET: usize = 1 << 20;

/// Where the caller's stack frame is, to measure how much stack a recursion has used.
#[inline(never)]
fn stack_position() -> usize {
    let marker = 0_u8;
    std::ptr::addr_of!(marker) as usize
}

fn runtime(message: impl Display) -> Error {
    Error::runtime(message)
}

/// An error worded like Lua's `luaL_argerror`.
fn bad_argument(position: usize, function: &str, message: impl Display) -> Error {
    runtime(format!("bad argument #{position} to '{function}' ({message})"))
}

/// The name Lua's `type()` gives a value.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// `value` if it is a Lua number.
fn number_value(value: &Value) -> Option<f64> {
    match value {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// Like `luaL_checknumber`: a number, or a string Lua converts to one.
fn check_number(lua: &Lua, value: &Value, position: usize, function: &str) -> Result<f64> {
    let converted = match value {
        Value::String(_) => lua.coerce_number(value.clone())?,
        other => number_value(other),
    };
    converted.ok_or_else(|| {
        let message = format!("number expected, got {}", type_name(value));
        bad_argument(position, function, message)
    })
}

/// Like `luaL_checklstring`: a string, or a number turned into one.
fn check_bytes(lua: &Lua, value: &Value, position: usize, function: &str) -> Result<Vec<u8>> {
    match value {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Integer(_) | Value::Number(_) => match lua.coerce_string(value.clone())? {
            Some(s) => Ok(s.as_bytes().to_vec()),
            None => Err(bad_argument(position, function, "string expected, got number")),
        },
        other => {
            let message = format!("string expected, got {}", type_name(other));
            Err(bad_argument(position, function, message))
        }
    }
}

/// `value`, read from `table[key]`, with the exact number when mlua rounded it to 0.
fn exact(table: &Table, key: &Value, value: Value) -> Value {
    match value {
        Value::Integer(0) => match table.raw_get::<f64>(key.clone()) {
            Ok(n) if n.abs() < f64::EPSILON => Value::Number(n),
            _ => Value::Integer(0),
        },
        other => other,
    }
}

/// `table[index]` without metamethods, numbers exact.
fn exact_get(table: &Table, index: usize) -> Result<Value> {
    let key = Value::Integer(i64::try_from(index).unwrap_or(i64::MAX));
    let value = table.raw_get(key.clone())?;
    Ok(exact(table, &key, value))
}

/// Arguments handed over in a table so numbers keep their exact value.
struct Args {
    table: Table,
    len: usize,
}

impl Args {
    /// The argument at 1-based `position`, nil past the end.
    fn get(&self, position: usize) -> Result<Value> {
        if position > self.len {
            return Ok(Value::Nil);
        }
        exact_get(&self.table, position)
    }
}

/// A Lua function that calls `f` with its arguments packed into `Args`.
fn function_with_exact_args<R, F>(lua: &Lua, f: F) -> Result<Function>
where
    R: IntoLuaMulti,
    F: Fn(&Lua, Args) -> Result<R> + MaybeSend + 'static,
{
    let inner =
        lua.create_function(move |lua, (len, table): (usize, Table)| f(lua, Args { table, len }))?;
    let wrapper = "local f = ... local select = select \
                   return function(...) return f(select('#', ...), { ... }) end";
    lua.load(wrapper).set_name("=libs").call(inner)
}

/// Formats `n` like C's `printf("%.<precision>g", n)`.
fn format_g(n: f64, precision: usize) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.to_owned();
    }
    if n.is_infinite() {
        return if n < 0.0 { "-inf" } else { "inf" }.to_owned();
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let precision = precision.clamp(1, 17);
    let scientific = format!("{:.*e}", precision - 1, n);
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits = precision as i32;
    if exponent < -4 || exponent >= digits {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim_fraction(mantissa), exponent.unsigned_abs())
    } else {
        let decimals = usize::try_from(digits - 1 - exponent).unwrap_or(0);
        trim_fraction(&format!("{n:.decimals$}")).to_owned()
    }
}

/// Drops trailing zeros after a decimal point, and the point if nothing follows it.
fn trim_fraction(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// lua-cjson 2.1: JSON encoding and decoding with per-instance configuration.
mod cjson {
    use super::*;

    const MAX_INT: i64 = i32::MAX as i64;

    /// How `encode` treats NaN and infinities.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum InvalidNumbers {
        Refuse,
        Write,
        AsNull,
    }

    /// The settings of one cjson instance.
    #[derive(Clone, Copy)]
    struct Config {
        sparse_convert: bool,
        sparse_ratio: i64,
        sparse_safe: i64,
        encode_max_depth: i64,
        decode_max_depth: i64,
        encode_invalid_numbers: InvalidNumbers,
        decode_invalid_numbers: bool,
        keep_buffer: bool,
        precision: i64,
    }

    impl Default for Config {
        fn default() -> Self {
            Config {
                sparse_convert: false,
                sparse_ratio: 2,
                sparse_safe: 10,
                encode_max_depth: 1000,
                decode_max_depth: 1000,
                encode_invalid_numbers: InvalidNumbers::Refuse,
                decode_invalid_numbers: true,
                keep_buffer: true,
                precision: 14,
            }
        }
    }

    type SharedConfig = Arc<Mutex<Config>>;

    fn snapshot(config: &SharedConfig) -> Config {
        *config.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets options from a config function's arguments and returns the values in force.
    type OptionSetter = fn(&Lua, &mut Config, &[Value], &str) -> Result<MultiValue>;

    /// A fresh `cjson` table with its own configuration.
    pub(super) fn module(lua: &Lua) -> Result<Table> {
        let config = SharedConfig::default();
        let table = lua.create_table()?;
        table.raw_set("encode", encode_function(lua, config.clone())?)?;
        table.raw_set("decode", decode_function(lua, config.clone())?)?;
        table.raw_set("new", lua.create_function(|lua, ()| module(lua))?)?;
        table.raw_set("null", Value::NULL)?;
        table.raw_set("_NAME", "cjson")?;
        table.raw_set("_VERSION", "2.1.0")?;
        for (name, max_args, setter) in option_setters() {
            table.raw_set(name, option_function(lua, &config, name, max_args, setter)?)?;
        }
        Ok(table)
    }

    fn option_setters() -> [(&'static str, usize, OptionSetter); 7] {
        [
            ("encode_sparse_array", 3, |lua, c, args, name| {
                c.sparse_convert = bool_option(args.first(), c.sparse_convert, name)?;
                c.sparse_ratio = int_option(lua, args.get(1), c.sparse_ratio, (0, MAX_INT), name)?;
                c.sparse_safe = int_option(lua, args.get(2), c.sparse_safe, (0, MAX_INT), name)?;
                (c.sparse_convert, c.sparse_ratio, c.sparse_safe).into_lua_multi(lua)
            }),
            ("encode_max_depth", 1, |lua, c, args, name| {
                let depth = int_option(lua, args.first(), c.encode_max_depth, (1, MAX_INT), name);
                c.encode_max_depth = depth?;
                c.encode_max_depth.into_lua_multi(lua)
            }),
            ("decode_max_depth", 1, |lua, c, args, name| {
                let depth = int_option(lua, args.first(), c.decode_max_depth, (1, MAX_INT), name);
                c.decode_max_depth = depth?;
                c.decode_max_depth.into_lua_multi(lua)
            }),
            ("encode_number_precision", 1, |lua, c, args, name| {
                c.precision = int_option(lua, args.first(), c.precision, (1, 14), name)?;
                c.precision.into_lua_multi(lua)
            }),
            ("encode_keep_buffer", 1, |lua, c, args, name| {
                c.keep_buffer = bool_option(args.first(), c.keep_buffer, name)?;
                c.keep_buffer.into_lua_multi(lua)
            }),
            ("encode_invalid_numbers", 1, |lua, c, args, name| {
                let setting = invalid_numbers_option(args.first(), c.encode_invalid_numbers, name);
                c.encode_invalid_numbers = setting?;
                match c.encode_invalid_numbers {
                    InvalidNumbers::Refuse => false.into_lua_multi(lua),
                    InvalidNumbers::Write => true.into_lua_multi(lua),
                    InvalidNumbers::AsNull => "null".into_lua_multi(lua),
                }
            }),
            ("decode_invalid_numbers", 1, |lua, c, args, name| {
                let setting = bool_option(args.first(), c.decode_invalid_numbers, name);
                c.decode_invalid_numbers = setting?;
                c.decode_invalid_numbers.into_lua_multi(lua)
            }),
        ]
    }

    fn option_function(
        lua: &Lua,
        config: &SharedConfig,
        name: &'static str,
        max_args: usize,
        setter: OptionSetter,
    ) -> Result<Function> {
        let config = config.clone();
        lua.create_function(move |lua, args: Variadic<Value>| {
            if args.len() > max_args {
                return Err(bad_argument(max_args + 1, name, "found too many arguments"));
            }
            let mut config = config.lock().unwrap_or_else(PoisonError::into_inner);
            setter(lua, &mut config, &args, name)
        })
    }

    /// The option name a string argument gives, or an error for any other value.
    fn option_name(value: &Value, name: &str) -> Result<Vec<u8>> {
        match value {
            Value::String(s) => Ok(s.as_bytes().to_vec()),
            other => {
                let message = format!("string expected, got {}", type_name(other));
                Err(bad_argument(1, name, message))
            }
        }
    }

    fn invalid_option(option: &[u8], name: &str) -> Error {
        let message = format!("invalid option '{}'", String::from_utf8_lossy(option));
        bad_argument(1, name, message)
    }

    fn bool_option(value: Option<&Value>, current: bool, name: &str) -> Result<bool> {
        match value {
            None | Some(Value::Nil) => Ok(current),
            Some(Value::Boolean(b)) => Ok(*b),
            Some(other) => match option_name(other, name)?.as_slice() {
                b"on" => Ok(true),
                b"off" => Ok(false),
                option => Err(invalid_option(option, name)),
            },
        }
    }

    fn invalid_numbers_option(
        value: Option<&Value>,
        current: InvalidNumbers,
        name: &str,
    ) -> Result<InvalidNumbers> {
        match value {
            None | Some(Value::Nil) => Ok(current),
            Some(Value::Boolean(true)) => Ok(InvalidNumbers::Write),
            Some(Value::Boolean(false)) => Ok(InvalidNumbers::Refuse),
            Some(other) => match option_name(other, name)?.as_slice() {
                b"on" => Ok(InvalidNumbers::Write),
                b"off" => Ok(InvalidNumbers::Refuse),
                b"null" => Ok(InvalidNumbers::AsNull),
                option => Err(invalid_option(option, name)),
            },
        }
    }

    fn int_option(
        lua: &Lua,
        value: Option<&Value>,
        current: i64,
        (min, max): (i64, i64),
        name: &str,
    ) -> Result<i64> {
        let Some(value) = value.filter(|v| !v.is_nil()) else {
            return Ok(current);
        };
        let n = check_number(lua, value, 1, name)?.trunc();
        if !(min as f64 <= n && n <= max as f64) {
            let message = format!("expected integer between {min} and {max}");
            return Err(bad_argument(1, name, message));
        }
        Ok(n as i64)
    }

    fn encode_function(lua: &Lua, config: SharedConfig) -> Result<Function> {
        function_with_exact_args(lua, move |lua, args| {
            if args.len != 1 {
                return Err(bad_argument(1, "encode", "expected one argument"));
            }
            let mut encoder = Encoder {
                config: snapshot(&config),
                out: Vec::new(),
                stack_base: stack_position(),
            };
            encoder.value(&args.get(1)?, 0)?;
            lua.create_string(&encoder.out)
        })
    }

    fn decode_function(lua: &Lua, config: SharedConfig) -> Result<Function> {
        lua.create_function(move |lua, (text, rest): (mlua::String, Variadic<Value>)| {
            if !rest.is_empty() {
                return Err(bad_argument(1, "decode", "expected 1 argument"));
            }
            decode(lua, snapshot(&config), &text.as_bytes())
        })
    }

    /// Error for a value `encode` cannot write.
    fn cannot_serialise(value: &Value, reason: &str) -> Error {
        runtime(format!("Cannot serialise {}: {reason}", type_name(value)))
    }

    struct Encoder {
        config: Config,
        out: Vec<u8>,
        /// `stack_position()` when encoding began.
        stack_base: usize,
    }

    impl Encoder {
        // The recursive path (value, table, array/object, member) keeps its functions small:
        // unoptimised builds give every temporary its own stack slot, at every level.

        fn value(&mut self, value: &Value, depth: usize) -> Result<()> {
            match value {
                Value::Table(table) => self.table(table, depth + 1),
                other => self.scalar(other),
            }
        }

        fn scalar(&mut self, value: &Value) -> Result<()> {
            match value {
                Value::Nil => self.out.extend_from_slice(b"null"),
                Value::LightUserData(pointer) if pointer.0.is_null() => {
                    self.out.extend_from_slice(b"null")
                }
                Value::Boolean(true) => self.out.extend_from_slice(b"true"),
                Value::Boolean(false) => self.out.extend_from_slice(b"false"),
                Value::Integer(_) | Value::Number(_) => self.number(value)?,
                Value::String(s) => self.string(&s.as_bytes()),
                other => return Err(cannot_serialise(other, "type not supported")),
            }
            Ok(())
        }

        fn number(&mut self, value: &Value) -> Result<()> {
            let n = number_value(value).unwrap_or(f64::NAN);
            if n.is_finite() {
                let precision = usize::try_from(self.config.precision).unwrap_or(14);
                self.out.extend_from_slice(format_g(n, precision).as_bytes());
                return Ok(());
            }
            let text: &[u8] = match self.config.encode_invalid_numbers {
                InvalidNumbers::Refuse => {
                    return Err(cannot_serialise(value, "must not be NaN or Inf"));
                }
                InvalidNumbers::AsNull => b"null",
                InvalidNumbers::Write if n.is_nan() => b"NaN",
                InvalidNumbers::Write if n < 0.0 => b"-Infinity",
                InvalidNumbers::Write => b"Infinity",
            };
            self.out.extend_from_slice(text);
            Ok(())
        }

        fn string(&mut self, bytes: &[u8]) {
            self.out.push(b'"');
            for &byte in bytes {
                match byte {
                    b'"' => self.out.extend_from_slice(b"\\\""),
                    b'\\' => self.out.extend_from_slice(b"\\\\"),
                    b'/' => self.out.extend_from_slice(b"\\/"),
                    b'\n' => self.out.extend_from_slice(b"\\n"),
                    b'\r' => self.out.extend_from_slice(b"\\r"),
                    b'\t' => self.out.extend_from_slice(b"\\t"),
                    0x08 => self.out.extend_from_slice(b"\\b"),
                    0x0c => self.out.extend_from_slice(b"\\f"),
                    0..=0x1f | 0x7f => {
                        self.out.extend_from_slice(format!("\\u{byte:04x}").as_bytes())
                    }
                    _ => self.out.push(byte),
                }
            }
            self.out.push(b'"');
        }

        fn table(&mut self, table: &Table, depth: usize) -> Result<()> {
            self.check_depth(depth)?;
            match self.array_length(table)? {
                Some(len) if len > 0 => self.array(table, len, depth),
                _ => self.object(table, depth),
            }
        }

        fn check_depth(&self, depth: usize) -> Result<()> {
            let limit = usize::try_from(self.config.encode_max_depth).unwrap_or(MAX_NESTING);
            let stack_used = self.stack_base.abs_diff(stack_position());
            if depth > limit.min(MAX_NESTING) || stack_used > STACK_BUDGET {
                return Err(runtime(format!("Cannot serialise, excessive nesting ({depth})")));
            }
            Ok(())
        }

        /// The length of `table` if it is encoded as an array (keys 1..n, sparse rules).
        fn array_length(&self, table: &Table) -> Result<Option<usize>> {
            let (mut max, mut items, mut is_array) = (0_i64, 0_i64, true);
            table.for_each::<Value, Value>(|key, _| {
                match key {
                    Value::Integer(i) if (1..=MAX_INT).contains(&i) => {
                        max = max.max(i);
                        items += 1;
                    }
                    _ => is_array = false,
                }
                Ok(())
            })?;
            let c = &self.config;
            if !is_array {
                return Ok(None);
            }
            if c.sparse_ratio > 0 && max > items * c.sparse_ratio && max > c.sparse_safe {
                if !c.sparse_convert {
                    return Err(runtime("Cannot serialise table: excessively sparse array"));
                }
                return Ok(None);
            }
            Ok(usize::try_from(max).ok())
        }

        fn array(&mut self, table: &Table, len: usize, depth: usize) -> Result<()> {
            self.out.push(b'[');
            for index in 1..=len {
                if index > 1 {
                    self.out.push(b',');
                }
                self.value(&exact_get(table, index)?, depth)?;
            }
            self.out.push(b']');
            Ok(())
        }

        fn object(&mut self, table: &Table, depth: usize) -> Result<()> {
            self.out.push(b'{');
            let start = self.out.len();
            table.for_each(|key, value| self.member(table, key, value, start, depth))?;
            self.out.push(b'}');
            Ok(())
        }

        /// Writes one `key:value` pair of an object whose members start at `start`.
        fn member(
            &mut self,
            table: &Table,
            key: Value,
            value: Value,
            start: usize,
            depth: usize,
        ) -> Result<()> {
            if self.out.len() > start {
                self.out.push(b',');
            }
            self.key(&key)?;
            self.value(&exact(table, &key, value), depth)
        }

        fn key(&mut self, key: &Value) -> Result<()> {
            match key {
                Value::String(s) => self.string(&s.as_bytes()),
                Value::Integer(_) | Value::Number(_) => {
                    self.out.push(b'"');
                    self.number(key)?;
                    self.out.push(b'"');
                }
                other => {
                    return Err(cannot_serialise(other, "table key must be a number or string"));
                }
            }
            self.out.push(b':');
            Ok(())
        }
    }

    fn decode(lua: &Lua, config: Config, text: &[u8]) -> Result<Value> {
        if text.len() >= 2 && (text.first() == Some(&0) || text.get(1) == Some(&0)) {
            return Err(runtime("JSON parser does not support UTF-16 or UTF-32"));
        }
        let max_depth = usize::try_from(config.decode_max_depth).unwrap_or(MAX_NESTING);
        let mut decoder = Decoder {
            lua,
            data: text,
            pos: 0,
            max_depth: max_depth.min(MAX_NESTING),
            invalid_numbers: config.decode_invalid_numbers,
        };
        let value = decoder.document()?;
        let token = decoder.next_token();
        if !matches!(token.kind, TokenKind::End) {
            return Err(unexpected("the end", &token));
        }
        Ok(value)
    }

    enum TokenKind {
        ObjectBegin,
        ObjectEnd,
        ArrayBegin,
        ArrayEnd,
        String(Vec<u8>),
        Number(f64),
        Boolean(bool),
        Null,
        Colon,
        Comma,
        End,
        Error(&'static str),
    }

    impl TokenKind {
        fn name(&self) -> &'static str {
            match self {
                TokenKind::ObjectBegin => "T_OBJ_BEGIN",
                TokenKind::ObjectEnd => "T_OBJ_END",
                TokenKind::ArrayBegin => "T_ARR_BEGIN",
                TokenKind::ArrayEnd => "T_ARR_END",
                TokenKind::String(_) => "T_STRING",
                TokenKind::Number(_) => "T_NUMBER",
                TokenKind::Boolean(_) => "T_BOOLEAN",
                TokenKind::Null => "T_NULL",
                TokenKind::Colon => "T_COLON",
                TokenKind::Comma => "T_COMMA",
                TokenKind::End => "T_END",
                TokenKind::Error(message) => message,
            }
        }
    }

    struct Token {
        kind: TokenKind,
        /// Byte offset of the token, or of the fault for an error token.
        index: usize,
    }

    fn unexpected(expected: &str, token: &Token) -> Error {
        let (found, at) = (token.kind.name(), token.index + 1);
        runtime(format!("Expected {expected} but found {found} at character {at}"))
    }

    struct Decoder<'a> {
        lua: &'a Lua,
        data: &'a [u8],
        pos: usize,
        max_depth: usize,
        invalid_numbers: bool,
    }

    impl Decoder<'_> {
        fn peek(&self) -> Option<u8> {
            self.data.get(self.pos).copied()
        }

        fn rest(&self) -> &[u8] {
            self.data.get(self.pos..).unwrap_or_default()
        }

        fn next_token(&mut self) -> Token {
            while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.pos += 1;
            }
            let start = self.pos;
            let single = match self.peek() {
                None | Some(0) => Some(TokenKind::End),
                Some(b'{') => Some(TokenKind::ObjectBegin),
                Some(b'}') => Some(TokenKind::ObjectEnd),
                Some(b'[') => Some(TokenKind::ArrayBegin),
                Some(b']') => Some(TokenKind::ArrayEnd),
                Some(b':') => Some(TokenKind::Colon),
                Some(b',') => Some(TokenKind::Comma),
                _ => None,
            };
            let kind = match single {
                Some(TokenKind::End) => TokenKind::End,
                Some(kind) => {
                    self.pos += 1;
                    kind
                }
                None => self.value_token(),
            };
            let index = if matches!(kind, TokenKind::Error(_)) { self.pos } else { start };
            Token { kind, index }
        }

        fn value_token(&mut self) -> TokenKind {
            let rest = self.rest();
            match rest.first() {
                Some(b'"') => self.string_token(),
                Some(c) if *c == b'-' || c.is_ascii_digit() => {
                    if !self.invalid_numbers && is_invalid_number(rest) {
                        return TokenKind::Error("invalid number");
                    }
                    self.number_token()
                }
                _ if rest.starts_with(b"true") => self.word(4, TokenKind::Boolean(true)),
                _ if rest.starts_with(b"false") => self.word(5, TokenKind::Boolean(false)),
                _ if rest.starts_with(b"null") => self.word(4, TokenKind::Null),
                _ if self.invalid_numbers && is_invalid_number(rest) => self.number_token(),
                _ => TokenKind::Error("invalid token"),
            }
        }

        fn word(&mut self, len: usize, kind: TokenKind) -> TokenKind {
            self.pos += len;
            kind
        }

        fn number_token(&mut self) -> TokenKind {
            match scan_number(self.rest()) {
                Some((n, len)) => self.word(len, TokenKind::Number(n)),
                None => TokenKind::Error("invalid number"),
            }
        }

        fn string_token(&mut self) -> TokenKind {
            self.pos += 1;
            let mut out = Vec::new();
            loop {
                match self.peek() {
                    None | Some(0) => return TokenKind::Error("unexpected end of string"),
                    Some(b'"') => {
                        self.pos += 1;
                        return TokenKind::String(out);
                    }
                    Some(b'\\') => {
                        if let Err(message) = self.escape(&mut out) {
                            return TokenKind::Error(message);
                        }
                    }
                    Some(byte) => {
                        out.push(byte);
                        self.pos += 1;
                    }
                }
            }
        }

        /// Decodes the escape at the current backslash; the position stays on it on error.
        fn escape(&mut self, out: &mut Vec<u8>) -> std::result::Result<(), &'static str> {
            let byte = match self.data.get(self.pos + 1) {
                Some(b'"') => b'"',
                Some(b'\\') => b'\\',
                Some(b'/') => b'/',
                Some(b'b') => 0x08,
                Some(b'f') => 0x0c,
                Some(b'n') => b'\n',
                Some(b'r') => b'\r',
                Some(b't') => b'\t',
                Some(b'u') => return self.unicode_escape(out),
                _ => return Err("invalid escape code"),
            };
            out.push(byte);
            self.pos += 2;
            Ok(())
        }

        fn unicode_escape(&mut self, out: &mut Vec<u8>) -> std::result::Result<(), &'static str> {
            const INVALID: &str = "invalid unicode escape code";
            let rest = self.rest();
            let first = hex4(rest.get(2..6)).ok_or(INVALID)?;
            let (code, len) = match first {
                0xd800..=0xdbff => {
                    if rest.get(6..8) != Some(b"\\u") {
                        return Err(INVALID);
                    }
                    let second = hex4(rest.get(8..12)).ok_or(INVALID)?;
                    if !(0xdc00..=0xdfff).contains(&second) {
                        return Err(INVALID);
                    }
                    (0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00), 12)
                }
                0xdc00..=0xdfff => return Err(INVALID),
                _ => (first, 6),
            };
            let ch = char::from_u32(code).ok_or(INVALID)?;
            out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
            self.pos += len;
            Ok(())
        }

        /// Parses one JSON value, nested containers included, without recursion: `open`
        /// holds the containers being filled, innermost last.
        fn document(&mut self) -> Result<Value> {
            let mut open: Vec<Container> = Vec::new();
            let mut token = self.next_token();
            loop {
                let mut value = match self.begin(token, &mut open)? {
                    Parsed::Opened(first_item) => {
                        token = first_item;
                        continue;
                    }
                    Parsed::Value(value) => value,
                };
                loop {
                    let Some(container) = open.last_mut() else {
                        return Ok(value);
                    };
                    if let Some(next_item) = self.attach(container, value)? {
                        token = next_item;
                        break;
                    }
                    value = open.pop().map_or(Value::Nil, |c| Value::Table(c.into_table()));
                }
            }
        }

        /// Starts a value at `token`: a scalar or an empty container is complete; otherwise
        /// the container is pushed on `open` and the token of its first item returned.
        fn begin(&mut self, token: Token, open: &mut Vec<Container>) -> Result<Parsed> {
            let value = match token.kind {
                TokenKind::String(bytes) => Value::String(self.lua.create_string(bytes)?),
                TokenKind::Number(n) => Value::Number(n),
                TokenKind::Boolean(b) => Value::Boolean(b),
                TokenKind::Null => Value::NULL,
                TokenKind::ObjectBegin | TokenKind::ArrayBegin => {
                    return self.open_container(token, open);
                }
                _ => return Err(unexpected("value", &token)),
            };
            Ok(Parsed::Value(value))
        }

        fn open_container(&mut self, token: Token, open: &mut Vec<Container>) -> Result<Parsed> {
            let depth = open.len() + 1;
            if depth > self.max_depth {
                let at = token.index + 1;
                let message =
                    format!("Found too many nested data structures ({depth}) at character {at}");
                return Err(runtime(message));
            }
            let table = self.lua.create_table()?;
            let first = self.next_token();
            match (&token.kind, &first.kind) {
                (TokenKind::ArrayBegin, TokenKind::ArrayEnd)
                | (TokenKind::ObjectBegin, TokenKind::ObjectEnd) => {
                    return Ok(Parsed::Value(Value::Table(table)));
                }
                (TokenKind::ArrayBegin, _) => {
                    open.push(Container::Array { table, len: 0 });
                    return Ok(Parsed::Opened(first));
                }
                _ => {}
            }
            let key = self.key(first)?;
            open.push(Container::Object { table, key });
            Ok(Parsed::Opened(self.next_token()))
        }

        /// An object key and the colon after it.
        fn key(&mut self, token: Token) -> Result<Vec<u8>> {
            let TokenKind::String(key) = token.kind else {
                return Err(unexpected("object key string", &token));
            };
            let colon = self.next_token();
            if !matches!(colon.kind, TokenKind::Colon) {
                return Err(unexpected("colon", &colon));
            }
            Ok(key)
        }

        /// Stores a finished `value` in `container`; returns the token of the next item, or
        /// `None` when the container closes.
        fn attach(&mut self, container: &mut Container, value: Value) -> Result<Option<Token>> {
            let token = match container {
                Container::Array { table, len } => {
                    *len += 1;
                    table.raw_set(*len, value)?;
                    self.next_token()
                }
                Container::Object { table, key } => {
                    table.raw_set(self.lua.create_string(key.as_slice())?, value)?;
                    self.next_token()
                }
            };
            match (container, &token.kind) {
                (Container::Array { .. }, TokenKind::ArrayEnd)
                | (Container::Object { .. }, TokenKind::ObjectEnd) => Ok(None),
                (Container::Array { .. }, TokenKind::Comma) => Ok(Some(self.next_token())),
                (Container::Object { key, .. }, TokenKind::Comma) => {
                    let next = self.next_token();
                    *key = self.key(next)?;
                    Ok(Some(self.next_token()))
                }
                (Container::Array { .. }, _) => Err(unexpected("comma or array end", &token)),
                (Container::Object { .. }, _) => Err(unexpected("comma or object end", &token)),
            }
        }
    }

    /// An array or object being filled while decoding.
    enum Container {
        Array { table: Table, len: i64 },
        Object { table: Table, key: Vec<u8> },
    }

    impl Container {
        fn into_table(self) -> Table {
            match self {
                Container::Array { table, .. } | Container::Object { table, .. } => table,
            }
        }
    }

    /// What starting a value gave.
    enum Parsed {
        Value(Value),
        /// A container opened; the token is its first item's.
        Opened(Token),
    }

    /// The value of four hex digits.
    fn hex4(digits: Option<&[u8]>) -> Option<u32> {
        let digits = digits?;
        let text = std::str::from_utf8(digits).ok()?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(text, 16).ok()
    }

    /// Numbers JSON forbids but lua-cjson reads when `decode_invalid_numbers` is on:
    /// a leading '+', hex, leading zeros, inf and nan.
    fn is_invalid_number(text: &[u8]) -> bool {
        let body = match text.first() {
            Some(b'+') => return true,
            Some(b'-') => text.get(1..).unwrap_or_default(),
            _ => text,
        };
        match body.first() {
            Some(b'0') => {
                matches!(body.get(1), Some(c) if (c | 0x20) == b'x' || c.is_ascii_digit())
            }
            Some(c) if *c <= b'9' => false,
            _ => starts_with_ignore_case(body, b"inf") || starts_with_ignore_case(body, b"nan"),
        }
    }

    fn starts_with_ignore_case(text: &[u8], prefix: &[u8]) -> bool {
        text.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    }

    /// Reads a number the way C's `strtod` does: the value and how many bytes it took.
    fn scan_number(text: &[u8]) -> Option<(f64, usize)> {
        let sign_len = usize::from(matches!(text.first(), Some(b'+' | b'-')));
        let body = text.get(sign_len..)?;
        let (magnitude, len) =
            scan_hex(body).or_else(|| scan_special(body)).or_else(|| scan_decimal(body))?;
        let value = if text.first() == Some(&b'-') { -magnitude } else { magnitude };
        Some((value, sign_len + len))
    }

    fn count_while(text: &[u8], from: usize, accept: fn(&u8) -> bool) -> usize {
        text.get(from..).unwrap_or_default().iter().take_while(|b| accept(b)).count()
    }

    /// Digits of an exponent (`e` or `p` then optional sign), or 0 if none follow.
    fn exponent_len(text: &[u8], at: usize, marker: u8) -> usize {
        if !text.get(at).is_some_and(|b| b.eq_ignore_ascii_case(&marker)) {
            return 0;
        }
        let sign = usize::from(matches!(text.get(at + 1), Some(b'+' | b'-')));
        match count_while(text, at + 1 + sign, u8::is_ascii_digit) {
            0 => 0,
            digits => 1 + sign + digits,
        }
    }

    fn scan_decimal(text: &[u8]) -> Option<(f64, usize)> {
        let int_digits = count_while(text, 0, u8::is_ascii_digit);
        let mut len = int_digits;
        let mut frac_digits = 0;
        if text.get(len) == Some(&b'.') {
            frac_digits = count_while(text, len + 1, u8::is_ascii_digit);
            len += 1 + frac_digits;
        }
        if int_digits + frac_digits == 0 {
            return None;
        }
        len += exponent_len(text, len, b'e');
        let literal = std::str::from_utf8(text.get(..len)?).ok()?;
        Some((literal.parse().ok()?, len))
    }

    fn scan_special(text: &[u8]) -> Option<(f64, usize)> {
        if starts_with_ignore_case(text, b"infinity") {
            Some((f64::INFINITY, 8))
        } else if starts_with_ignore_case(text, b"inf") {
            Some((f64::INFINITY, 3))
        } else if starts_with_ignore_case(text, b"nan") {
            let tag = count_while(text, 4, |b| b.is_ascii_alphanumeric() || *b == b'_');
            let closed = text.get(3) == Some(&b'(') && text.get(4 + tag) == Some(&b')');
            Some((f64::NAN, if closed { 5 + tag } else { 3 }))
        } else {
            None
        }
    }

    fn scan_hex(text: &[u8]) -> Option<(f64, usize)> {
        if !starts_with_ignore_case(text, b"0x") {
            return None;
        }
        let mut mantissa = 0.0_f64;
        let mut scale = 0_i32;
        let mut digits = 0;
        let mut len = 2;
        let mut seen_point = false;
        while let Some(&byte) = text.get(len) {
            if byte == b'.' && !seen_point {
                seen_point = true;
            } else if let Some(digit) = char::from(byte).to_digit(16) {
                mantissa = mantissa * 16.0 + f64::from(digit);
                scale -= if seen_point { 4 } else { 0 };
                digits += 1;
            } else {
                break;
            }
            len += 1;
        }
        if digits == 0 {
            return None;
        }
        let exponent_digits = exponent_len(text, len, b'p');
        if exponent_digits > 0 {
            let literal = std::str::from_utf8(text.get(len + 1..len + exponent_digits)?).ok()?;
            scale = scale.saturating_add(literal.parse::<i32>().unwrap_or(i32::MAX));
            len += exponent_digits;
        }
        Some((mantissa * 2_f64.powi(scale), len))
    }
}

/// LuaBitOp: bitwise operations on numbers taken as 32-bit integers.
mod bit {
    use super::*;

    /// A Lua number as a 32-bit integer, the way LuaBitOp converts it: adding 2^52 + 2^51
    /// rounds it to an integer in the low 32 bits of the double's mantissa.
    pub(super) fn tobit(n: f64) -> i32 {
        (n + 6_755_399_441_055_744.0).to_bits() as u32 as i32
    }

    type Unary = fn(i32) -> i32;
    type Binary = fn(i32, i32) -> i32;
    /// Takes a value and a shift count below 32.
    type Shift = fn(u32, u32) -> u32;

    /// Argument `position` of `function` as a 32-bit integer.
    fn bits(lua: &Lua, value: &Value, position: usize, function: &str) -> Result<i32> {
        check_number(lua, value, position, function).map(tobit)
    }

    pub(super) fn module(lua: &Lua) -> Result<Table> {
        let table = lua.create_table()?;
        let unary: [(&str, Unary); 3] =
            [("tobit", |x| x), ("bnot", |x| !x), ("bswap", i32::swap_bytes)];
        for (name, op) in unary {
            let function =
                lua.create_function(move |lua, x: Value| Ok(op(bits(lua, &x, 1, name)?)))?;
            table.raw_set(name, function)?;
        }
        let folds: [(&str, Binary); 3] =
            [("band", |a, b| a & b), ("bor", |a, b| a | b), ("bxor", |a, b| a ^ b)];
        for (name, op) in folds {
            table.raw_set(name, fold(lua, name, op)?)?;
        }
        let shifts: [(&str, Shift); 5] = [
            ("lshift", |x, n| x << n),
            ("rshift", |x, n| x >> n),
            ("arshift", |x, n| ((x as i32) >> n) as u32),
            ("rol", u32::rotate_left),
            ("ror", u32::rotate_right),
        ];
        for (name, op) in shifts {
            table.raw_set(name, shift(lua, name, op)?)?;
        }
        let tohex = |lua: &Lua, (x, n): (Value, Value)| {
            let digits = if n.is_nil() { 8 } else { bits(lua, &n, 2, "tohex")? };
            Ok(to_hex(bits(lua, &x, 1, "tohex")?, digits))
        };
        table.raw_set("tohex", lua.create_function(tohex)?)?;
        Ok(table)
    }

    /// A function combining one or more numbers with `op`.
    fn fold(lua: &Lua, name: &'static str, op: Binary) -> Result<Function> {
        lua.create_function(move |lua, args: Variadic<Value>| {
            let first = bits(lua, args.first().unwrap_or(&Value::Nil), 1, name)?;
            args.iter().enumerate().skip(1).try_fold(first, |acc, (index, value)| {
                Ok(op(acc, bits(lua, value, index + 1, name)?))
            })
        })
    }

    /// A function applying `op` to a number and a shift count taken modulo 32.
    fn shift(lua: &Lua, name: &'static str, op: Shift) -> Result<Function> {
        lua.create_function(move |lua, (x, n): (Value, Value)| {
            let (x, n) = (bits(lua, &x, 1, name)?, bits(lua, &n, 2, name)?);
            Ok(op(x as u32, (n & 31) as u32) as i32)
        })
    }

    /// The low `digits` hex digits of `value`; a negative count asks for upper case.
    pub(super) fn to_hex(value: i32, digits: i32) -> String {
        let count = digits.unsigned_abs().min(8) as usize;
        let hex = if digits < 0 { format!("{value:08X}") } else { format!("{value:08x}") };
        hex.split_at(8 - count).1.to_owned()
    }
}

/// Roberto Ierusalimschy's struct library: binary packing driven by a format string.
mod structlib {
    use super::*;

    const MAX_INT_SIZE: usize = 32;
    const MAX_ALIGN: usize = 8;

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Endian {
        Big,
        Little,
    }

    const NATIVE: Endian = if cfg!(target_endian = "big") { Endian::Big } else { Endian::Little };

    pub(super) fn module(lua: &Lua) -> Result<Table> {
        let table = lua.create_table()?;
        table.raw_set("pack", function_with_exact_args(lua, pack)?)?;
        table.raw_set("unpack", lua.create_function(unpack)?)?;
        table.raw_set("size", lua.create_function(size)?)?;
        Ok(table)
    }

    /// Reads a format string option by option, tracking endianness and alignment.
    struct Format<'a> {
        text: &'a [u8],
        pos: usize,
        endian: Endian,
        align: usize,
    }

    impl<'a> Format<'a> {
        fn new(text: &'a [u8]) -> Self {
            Format { text, pos: 0, endian: NATIVE, align: 1 }
        }

        fn next_option(&mut self) -> Option<u8> {
            let option = self.text.get(self.pos).copied()?;
            self.pos += 1;
            Some(option)
        }

        /// The decimal number at the current position, or `default` if there is none.
        fn number(&mut self, default: usize) -> Result<usize> {
            let mut value: Option<usize> = None;
            while let Some(digit) = self.text.get(self.pos).filter(|b| b.is_ascii_digit()) {
                let next = value.unwrap_or(0) * 10 + usize::from(digit - b'0');
                if next > i32::MAX as usize {
                    return Err(runtime("integral size overflow"));
                }
                value = Some(next);
                self.pos += 1;
            }
            Ok(value.unwrap_or(default))
        }

        /// The size in bytes of `option` (0 for options without a fixed size).
        fn size(&mut self, option: u8) -> Result<usize> {
            Ok(match option {
                b'b' | b'B' | b'x' => 1,
                b'h' | b'H' => 2,
                b'f' => 4,
                b'l' | b'L' | b'T' | b'd' => 8,
                b'c' => self.number(1)?,
                b'i' | b'I' => {
                    let size = self.number(4)?;
                    if size > MAX_INT_SIZE {
                        let message =
                            format!("integral size {size} is larger than limit of {MAX_INT_SIZE}");
                        return Err(runtime(message));
                    }
                    size
                }
                _ => 0,
            })
        }

        /// Padding needed before an item of `size` bytes at offset `len`.
        fn padding(&self, len: usize, option: u8, size: usize) -> usize {
            if size == 0 || option == b'c' {
                return 0;
            }
            let size = size.min(self.align);
            size.wrapping_sub(len & (size - 1)) & (size - 1)
        }

        /// Applies an endianness, alignment or space option; anything else is an error.
        fn control(&mut self, option: u8, function: &str) -> Result<()> {
            match option {
                b' ' => {}
                b'>' => self.endian = Endian::Big,
                b'<' => self.endian = Endian::Little,
                b'=' => self.endian = NATIVE,
                b'!' => {
                    let align = self.number(MAX_ALIGN)?;
                    if !align.is_power_of_two() {
                        return Err(runtime(format!("alignment {align} is not a power of 2")));
                    }
                    self.align = align;
                }
                _ => {
                    let message = format!("invalid format option '{}'", char::from(option));
                    return Err(bad_argument(1, function, message));
                }
            }
            Ok(())
        }
    }

    fn is_integer_option(option: u8) -> bool {
        matches!(option, b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I')
    }

    fn pack(lua: &Lua, args: Args) -> Result<mlua::String> {
        let format_text = check_bytes(lua, &args.get(1)?, 1, "pack")?;
        let mut format = Format::new(&format_text);
        let mut out = Vec::new();
        let mut position = 2;
        while let Some(option) = format.next_option() {
            let size = format.size(option)?;
            out.resize(out.len() + format.padding(out.len(), option, size), 0);
            let takes_argument = is_integer_option(option) || b"fdcs".contains(&option);
            let argument = if takes_argument { args.get(position)? } else { Value::Nil };
            match option {
                _ if is_integer_option(option) => {
                    let n = check_number(lua, &argument, position, "pack")?;
                    put_integer(&mut out, n, format.endian, size);
                }
                b'x' => out.push(0),
                b'f' => {
                    let n = check_number(lua, &argument, position, "pack")? as f32;
                    put_ordered(&mut out, &n.to_le_bytes(), format.endian);
                }
                b'd' => {
                    let n = check_number(lua, &argument, position, "pack")?;
                    put_ordered(&mut out, &n.to_le_bytes(), format.endian);
                }
                b'c' | b's' => {
                    let text = check_bytes(lua, &argument, position, "pack")?;
                    let len = if size == 0 { text.len() } else { size };
                    let bytes = text
                        .get(..len)
                        .ok_or_else(|| bad_argument(position, "pack", "string too short"))?;
                    out.extend_from_slice(bytes);
                    if option == b's' {
                        out.push(0);
                    }
                }
                _ => format.control(option, "pack")?,
            }
            position += usize::from(takes_argument);
        }
        lua.create_string(&out)
    }

    /// Appends `little_endian` bytes in the order `endian` asks for.
    fn put_ordered(out: &mut Vec<u8>, little_endian: &[u8], endian: Endian) {
        match endian {
            Endian::Little => out.extend_from_slice(little_endian),
            Endian::Big => out.extend(little_endian.iter().rev()),
        }
    }

    /// Appends `n` as a `size`-byte integer (bytes past the eighth are zero).
    fn put_integer(out: &mut Vec<u8>, n: f64, endian: Endian, size: usize) {
        let mut value = if n < 0.0 { n as i64 as u64 } else { n as u64 };
        let mut bytes = vec![0_u8; size];
        for byte in bytes.iter_mut() {
            *byte = (value & 0xff) as u8;
            value >>= 8;
        }
        put_ordered(out, &bytes, endian);
    }

    /// Reads a `bytes.len()`-byte integer; only the low eight bytes count.
    fn get_integer(bytes: &[u8], endian: Endian, signed: bool) -> f64 {
        let fold = |acc: u64, byte: &u8| (acc << 8) | u64::from(*byte);
        let value = match endian {
            Endian::Big => bytes.iter().fold(0, fold),
            Endian::Little => bytes.iter().rev().fold(0, fold),
        };
        let bits = bytes.len() * 8;
        if !signed || bits == 0 {
            return value as f64;
        }
        if bits >= 64 {
            return value as i64 as f64;
        }
        let sign = 1_u64 << (bits - 1);
        let extended = if value & sign != 0 { value | !(sign - 1) } else { value };
        extended as i64 as f64
    }

    /// `size` bytes of `data` at `pos`, or the error struct gives for a short string.
    fn field(data: &[u8], pos: usize, size: usize) -> Result<&[u8]> {
        pos.checked_add(size)
            .and_then(|end| data.get(pos..end))
            .ok_or_else(|| bad_argument(2, "unpack", "data string too short"))
    }

    fn unpack(
        lua: &Lua,
        (format_text, data, init): (mlua::String, mlua::String, Option<f64>),
    ) -> Result<MultiValue> {
        let init = init.unwrap_or(1.0).trunc();
        if init.is_nan() || init < 1.0 {
            return Err(bad_argument(3, "unpack", "offset must be 1 or greater"));
        }
        let (format_text, data) = (format_text.as_bytes(), data.as_bytes());
        let mut format = Format::new(&format_text);
        let mut results: Vec<Value> = Vec::new();
        let mut pos = init as usize - 1;
        while let Some(option) = format.next_option() {
            let mut size = format.size(option)?;
            pos = pos.saturating_add(format.padding(pos, option, size));
            let bytes = field(&data, pos, size)?;
            if results.len() >= MAX_RESULTS {
                return Err(runtime("too many results"));
            }
            match option {
                _ if is_integer_option(option) => {
                    let n = get_integer(bytes, format.endian, option.is_ascii_lowercase());
                    results.push(Value::Number(n));
                }
                b'x' => {}
                b'f' => results.push(Value::Number(f64::from(read_f32(bytes, format.endian)))),
                b'd' => results.push(Value::Number(read_f64(bytes, format.endian))),
                b'c' => {
                    if size == 0 {
                        size = previous_size(lua, &mut results)?;
                    }
                    results.push(Value::String(lua.create_string(field(&data, pos, size)?)?));
                }
                b's' => {
                    let rest = data.get(pos..).unwrap_or_default();
                    let end = rest.iter().position(|&b| b == 0);
                    let end = end.ok_or_else(|| runtime("unfinished string in data"))?;
                    let text = rest.get(..end).unwrap_or_default();
                    results.push(Value::String(lua.create_string(text)?));
                    size = end + 1;
                }
                _ => format.control(option, "unpack")?,
            }
            pos = pos.saturating_add(size);
        }
        results.push(Value::Number(pos as f64 + 1.0));
        Ok(MultiValue::from_vec(results))
    }

    /// For `c0`: takes the number unpacked just before as the string length.
    fn previous_size(lua: &Lua, results: &mut Vec<Value>) -> Result<usize> {
        let previous = results.last().cloned().unwrap_or(Value::Nil);
        let n = match previous {
            Value::String(_) => lua.coerce_number(previous)?,
            other => number_value(&other),
        };
        let n = n.ok_or_else(|| runtime("format 'c0' needs a previous size"))?;
        results.pop();
        if n.is_nan() || n < 0.0 {
            return Err(bad_argument(2, "unpack", "data string too short"));
        }
        Ok(n as usize)
    }

    fn read_f32(bytes: &[u8], endian: Endian) -> f32 {
        let raw: [u8; 4] = bytes.try_into().unwrap_or_default();
        match endian {
            Endian::Big => f32::from_be_bytes(raw),
            Endian::Little => f32::from_le_bytes(raw),
        }
    }

    fn read_f64(bytes: &[u8], endian: Endian) -> f64 {
        let raw: [u8; 8] = bytes.try_into().unwrap_or_default();
        match endian {
            Endian::Big => f64::from_be_bytes(raw),
            Endian::Little => f64::from_le_bytes(raw),
        }
    }

    fn size(_: &Lua, format_text: mlua::String) -> Result<usize> {
        let format_text = format_text.as_bytes();
        let mut format = Format::new(&format_text);
        let mut pos = 0_usize;
        while let Some(option) = format.next_option() {
            let size = format.size(option)?;
            pos = pos.saturating_add(format.padding(pos, option, size));
            if option == b's' {
                return Err(bad_argument(1, "size", "option 's' has no fixed size"));
            }
            if option == b'c' && size == 0 {
                return Err(bad_argument(1, "size", "option 'c0' has no fixed size"));
            }
            if !option.is_ascii_alphanumeric() {
                format.control(option, "size")?;
            }
            pos = pos.saturating_add(size);
        }
        Ok(pos)
    }
}

/// lua-cmsgpack: MessagePack encoding and decoding.
mod msgpack {
    use super::*;

    /// Tables nested this deep are packed as nil (which also stops reference cycles).
    const PACK_NESTING: usize = 16;

    const MISSING_BYTES: &str = "Missing bytes in input.";
    const BAD_FORMAT: &str = "Bad data format in input.";

    pub(super) fn module(lua: &Lua) -> Result<Table> {
        let table = lua.create_table()?;
        table.raw_set("pack", function_with_exact_args(lua, pack)?)?;
        let unpack_all = |lua: &Lua, data: mlua::String| unpack(lua, &data.as_bytes(), 0, 0);
        table.raw_set("unpack", lua.create_function(unpack_all)?)?;
        let unpack_one = |lua: &Lua, (data, offset): (mlua::String, Option<f64>)| {
            unpack(lua, &data.as_bytes(), 1, lua_int(offset.unwrap_or(0.0)))
        };
        table.raw_set("unpack_one", lua.create_function(unpack_one)?)?;
        let unpack_limit = |lua: &Lua, (data, limit, offset): (mlua::String, f64, Option<f64>)| {
            unpack(lua, &data.as_bytes(), lua_int(limit), lua_int(offset.unwrap_or(0.0)))
        };
        table.raw_set("unpack_limit", lua.create_function(unpack_limit)?)?;
        table.raw_set("_NAME", "cmsgpack")?;
        table.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
        Ok(table)
    }

    /// A Lua number as an integer, truncated like `luaL_checkinteger`.
    fn lua_int(n: f64) -> i64 {
        n.trunc() as i64
    }

    fn pack(lua: &Lua, args: Args) -> Result<mlua::String> {
        if args.len == 0 {
            return Err(bad_argument(0, "pack", "MessagePack pack needs input."));
        }
        let mut encoder = Encoder { out: Vec::new() };
        for position in 1..=args.len {
            encoder.value(&args.get(position)?, 0)?;
        }
        lua.create_string(&encoder.out)
    }

    /// Decodes up to `limit` values from `offset` on; with both 0, decodes everything and
    /// returns just the values, otherwise the next offset (-1 at the end) comes first.
    fn unpack(lua: &Lua, data: &[u8], limit: i64, offset: i64) -> Result<MultiValue> {
        let decode_all = limit == 0 && offset == 0;
        if offset < 0 || limit < 0 {
            let message =
                format!("Invalid request to unpack with offset of {offset} and limit of {limit}.");
            return Err(runtime(message));
        }
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        if start > data.len() {
            let message =
                format!("Start offset {offset} greater than input length {}.", data.len());
            return Err(runtime(message));
        }
        let limit = if decode_all { usize::MAX } else { usize::try_from(limit).unwrap_or(0) };
        let mut decoder = Decoder { lua, data, pos: start };
        let mut values = Vec::new();
        while decoder.pos < data.len() && values.len() < limit {
            if values.len() >= MAX_RESULTS {
                return Err(runtime("too many results to unpack"));
            }
            values.push(decoder.value()?);
        }
        if !decode_all {
            let next = if decoder.pos >= data.len() { -1.0 } else { decoder.pos as f64 };
            values.insert(0, Value::Number(next));
        }
        Ok(MultiValue::from_vec(values))
    }

    /// How a table is packed: as an array (keys exactly 1..n) or as a map.
    enum Shape {
        Array(usize),
        Map(usize),
    }

    fn shape(table: &Table) -> Result<Shape> {
        let (mut count, mut max, mut is_array) = (0_usize, 0_i64, true);
        table.for_each::<Value, Value>(|key, _| {
            count += 1;
            match key {
                Value::Integer(i) if (1..=i64::from(i32::MAX)).contains(&i) => max = max.max(i),
                _ => is_array = false,
            }
            Ok(())
        })?;
        let exact_run = usize::try_from(max).is_ok_and(|max| max == count);
        Ok(if is_array && exact_run { Shape::Array(count) } else { Shape::Map(count) })
    }

    struct Encoder {
        out: Vec<u8>,
    }

    impl Encoder {
        fn value(&mut self, value: &Value, level: usize) -> Result<()> {
            match value {
                Value::Boolean(b) => self.out.push(if *b { 0xc3 } else { 0xc2 }),
                Value::Integer(i) => self.integer(*i),
                Value::Number(n) => self.number(*n),
                Value::String(s) => self.bytes(&s.as_bytes())?,
                Value::Table(table) if level < PACK_NESTING => self.table(table, level)?,
                _ => self.out.push(0xc0),
            }
            Ok(())
        }

        fn number(&mut self, n: f64) {
            const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
            if n.fract() == 0.0 && (-LIMIT..LIMIT).contains(&n) {
                self.integer(n as i64);
            } else if f64::from(n as f32) == n {
                self.out.push(0xca);
                self.out.extend_from_slice(&(n as f32).to_be_bytes());
            } else {
                self.out.push(0xcb);
                self.out.extend_from_slice(&n.to_be_bytes());
            }
        }

        fn integer(&mut self, n: i64) {
            match n {
                -32..=0x7f => self.out.push(n as u8),
                0x80..=0xff => self.out.extend_from_slice(&[0xcc, n as u8]),
                0x100..=0xffff => self.tagged(0xcd, &(n as u16).to_be_bytes()),
                0x1_0000..=0xffff_ffff => self.tagged(0xce, &(n as u32).to_be_bytes()),
                0x1_0000_0000.. => self.tagged(0xcf, &(n as u64).to_be_bytes()),
                -128..=-33 => self.tagged(0xd0, &(n as i8).to_be_bytes()),
                -32768..=-129 => self.tagged(0xd1, &(n as i16).to_be_bytes()),
                -2_147_483_648..=-32769 => self.tagged(0xd2, &(n as i32).to_be_bytes()),
                _ => self.tagged(0xd3, &n.to_be_bytes()),
            }
        }

        fn tagged(&mut self, tag: u8, bytes: &[u8]) {
            self.out.push(tag);
            self.out.extend_from_slice(bytes);
        }

        fn bytes(&mut self, bytes: &[u8]) -> Result<()> {
            let len = bytes.len();
            match len {
                0..=31 => self.out.push(0xa0 | len as u8),
                32..=0xff => self.out.extend_from_slice(&[0xd9, len as u8]),
                0x100..=0xffff => self.tagged(0xda, &(len as u16).to_be_bytes()),
                _ => self.tagged(0xdb, &length32(len)?.to_be_bytes()),
            }
            self.out.extend_from_slice(bytes);
            Ok(())
        }

        /// Writes an array or map header: `fix` holds up to 15 items, then `tag16`, `tag16 + 1`.
        fn container(&mut self, len: usize, fix: u8, tag16: u8) -> Result<()> {
            match len {
                0..=15 => self.out.push(fix | len as u8),
                16..=0xffff => self.tagged(tag16, &(len as u16).to_be_bytes()),
                _ => self.tagged(tag16 + 1, &length32(len)?.to_be_bytes()),
            }
            Ok(())
        }

        fn table(&mut self, table: &Table, level: usize) -> Result<()> {
            match shape(table)? {
                Shape::Array(len) => {
                    self.container(len, 0x90, 0xdc)?;
                    for index in 1..=len {
                        self.value(&exact_get(table, index)?, level + 1)?;
                    }
                }
                Shape::Map(len) => {
                    self.container(len, 0x80, 0xde)?;
                    table.for_each::<Value, Value>(|key, value| {
                        self.value(&key, level + 1)?;
                        self.value(&exact(table, &key, value), level + 1)
                    })?;
                }
            }
            Ok(())
        }
    }

    fn length32(len: usize) -> Result<u32> {
        u32::try_from(len).map_err(|_| runtime("MessagePack value too large"))
    }

    struct Decoder<'a> {
        lua: &'a Lua,
        data: &'a [u8],
        pos: usize,
    }

    impl<'a> Decoder<'a> {
        fn take(&mut self, len: usize) -> Result<&'a [u8]> {
            let data: &'a [u8] = self.data;
            let bytes = self
                .pos
                .checked_add(len)
                .and_then(|end| data.get(self.pos..end))
                .ok_or_else(|| runtime(MISSING_BYTES))?;
            self.pos += len;
            Ok(bytes)
        }

        fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
            self.take(N)?.try_into().map_err(|_| runtime(MISSING_BYTES))
        }

        /// A big-endian unsigned integer of `len` bytes (at most 8).
        fn unsigned(&mut self, len: usize) -> Result<u64> {
            Ok(self.take(len)?.iter().fold(0, |acc, &b| (acc << 8) | u64::from(b)))
        }

        fn length(&mut self, len: usize) -> Result<usize> {
            usize::try_from(self.unsigned(len)?).map_err(|_| runtime(MISSING_BYTES))
        }

        /// Decodes one value, nested containers included, without recursion: `open` holds
        /// the containers being filled, innermost last.
        fn value(&mut self) -> Result<Value> {
            let mut open: Vec<Container> = Vec::new();
            loop {
                let Some(mut value) = self.begin(&mut open)? else {
                    continue;
                };
                loop {
                    let Some(container) = open.last_mut() else {
                        return Ok(value);
                    };
                    if !container.attach(value)? {
                        break;
                    }
                    value = open.pop().map_or(Value::Nil, |c| Value::Table(c.into_table()));
                }
            }
        }

        /// Reads the next value's tag: a scalar or an empty container is complete, another
        /// container is pushed on `open` (and `None` returned).
        fn begin(&mut self, open: &mut Vec<Container>) -> Result<Option<Value>> {
            let [tag] = self.array::<1>()?;
            let (len, map) = match tag {
                0x80..=0x8f => (usize::from(tag & 0x0f), true),
                0x90..=0x9f => (usize::from(tag & 0x0f), false),
                0xdc => (self.length(2)?, false),
                0xdd => (self.length(4)?, false),
                0xde => (self.length(2)?, true),
                0xdf => (self.length(4)?, true),
                _ => return self.scalar(tag).map(Some),
            };
            if open.len() >= MAX_NESTING {
                return Err(runtime("Too deeply nested data in input."));
            }
            let capacity = len.min(self.data.len().saturating_sub(self.pos));
            let container = if map {
                let table = self.lua.create_table_with_capacity(0, capacity)?;
                Container::Map { table, remaining: len, key: None }
            } else {
                let table = self.lua.create_table_with_capacity(capacity, 0)?;
                Container::List { table, len, filled: 0 }
            };
            if len == 0 {
                return Ok(Some(Value::Table(container.into_table())));
            }
            open.push(container);
            Ok(None)
        }

        fn scalar(&mut self, tag: u8) -> Result<Value> {
            Ok(match tag {
                0x00..=0x7f => Value::Integer(i64::from(tag)),
                0xa0..=0xbf => self.string(usize::from(tag & 0x1f))?,
                0xc0 => Value::Nil,
                0xc2 => Value::Boolean(false),
                0xc3 => Value::Boolean(true),
                0xc4 | 0xd9 => self.sized_string(1)?,
                0xc5 | 0xda => self.sized_string(2)?,
                0xc6 | 0xdb => self.sized_string(4)?,
                0xca => Value::Number(f64::from(f32::from_be_bytes(self.array()?))),
                0xcb => Value::Number(f64::from_be_bytes(self.array()?)),
                0xcc..=0xcf => Value::Number(self.unsigned(1 << (tag - 0xcc))? as f64),
                0xd0 => Value::Integer(i64::from(i8::from_be_bytes(self.array()?))),
                0xd1 => Value::Integer(i64::from(i16::from_be_bytes(self.array()?))),
                0xd2 => Value::Integer(i64::from(i32::from_be_bytes(self.array()?))),
                0xd3 => Value::Number(i64::from_be_bytes(self.array()?) as f64),
                0xe0..=0xff => Value::Integer(i64::from(tag as i8)),
                _ => return Err(runtime(BAD_FORMAT)),
            })
        }

        fn string(&mut self, len: usize) -> Result<Value> {
            let bytes = self.take(len)?;
            Ok(Value::String(self.lua.create_string(bytes)?))
        }

        fn sized_string(&mut self, length_bytes: usize) -> Result<Value> {
            let len = self.length(length_bytes)?;
            self.string(len)
        }
    }

    /// An array or map being filled while decoding.
    enum Container {
        List { table: Table, len: usize, filled: usize },
        Map { table: Table, remaining: usize, key: Option<Value> },
    }

    impl Container {
        /// Stores the next decoded value; returns whether the container is complete.
        fn attach(&mut self, value: Value) -> Result<bool> {
            match self {
                Container::List { table, len, filled } => {
                    *filled += 1;
                    table.raw_set(*filled, value)?;
                    Ok(filled == len)
                }
                Container::Map { key: key @ None, .. } => {
                    *key = Some(value);
                    Ok(false)
                }
                Container::Map { table, remaining, key } => {
                    match key.take().unwrap_or(Value::Nil) {
                        Value::Nil => return Err(runtime("table index is nil")),
                        Value::Number(n) if n.is_nan() => {
                            return Err(runtime("table index is NaN"));
                        }
                        key => table.raw_set(key, value)?,
                    }
                    *remaining -= 1;
                    Ok(*remaining == 0)
                }
            }
        }

        fn into_table(self) -> Table {
            match self {
                Container::List { table, .. } | Container::Map { table, .. } => table,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lua helpers the snippets below share.
    const PRELUDE: &str = r#"
        function hex(s)
            return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
        end
        function err(f, ...)
            local ok, e = pcall(f, ...)
            assert(not ok, "expected an error")
            return tostring(e)
        end
    "#;

    fn new_lua() -> Lua {
        let lua = Lua::new();
        install(&lua).expect("install");
        lua.load(PRELUDE).exec().expect("prelude");
        lua
    }

    fn eval<T: mlua::FromLuaMulti>(code: &str) -> T {
        new_lua().load(code).eval().expect(code)
    }

    fn eval_string(code: &str) -> String {
        eval::<String>(code)
    }

    /// Asserts that `code` (a Lua expression) evaluates to a string containing `expected`.
    fn assert_contains(code: &str, expected: &str) {
        let text = eval_string(&format!("return {code}"));
        assert!(text.contains(expected), "{code}: {text:?} lacks {expected:?}");
    }

    #[test]
    fn format_g_matches_printf() {
        let cases: [(f64, usize, &str); 12] = [
            (0.0, 14, "0"),
            (100.0, 14, "100"),
            (0.1, 14, "0.1"),
            (1.0 / 3.0, 14, "0.33333333333333"),
            (1e20, 14, "1e+20"),
            (1e-5, 14, "1e-05"),
            (0.0001, 14, "0.0001"),
            (123_456_789_012_345.0, 14, "1.2345678901234e+14"),
            (99_999_999_999_999.5, 14, "1e+14"),
            (0.125, 2, "0.12"),
            (2.5, 1, "2"),
            (-1.5e-300, 14, "-1.5e-300"),
        ];
        for (n, precision, expected) in cases {
            assert_eq!(format_g(n, precision), expected, "{n} with {precision} digits");
        }
    }

    #[test]
    fn cjson_decodes_numbers() {
        let code = r#"return table.concat(
            cjson.decode("[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]"), " ")"#;
        assert_eq!(eval_string(code), "0 -5000 -1 0.0003 1023.2 0");
    }

    #[test]
    fn cjson_passes_the_redis_smoke_test() {
        let code = r#"
            local decoded = cjson.decode('{"keya": "a", "keyb": "b"}')
            assert(decoded.keya == "a" and decoded.keyb == "b")
            local some_map = {
                s1="Some string", n1=100, a1={"Some","String","Array"},
                nil1=nil, b1=true, b2=false}
            local encoded = cjson.encode(some_map)
            decoded = cjson.decode(encoded)
            assert(table.concat(some_map) == table.concat(decoded))
            cjson.encode_keep_buffer(false)
            encoded = cjson.encode(some_map)
            decoded = cjson.decode(encoded)
            assert(table.concat(some_map) == table.concat(decoded))
            local table1 = {one="one", [1]="one"}
            encoded = cjson.encode(table1)
            decoded = cjson.decode(encoded)
            assert(decoded["one"] == table1["one"])
            assert(decoded["1"] == table1[1])
            local array1 = {[1]="one", [2]="two", [3]="three"}
            encoded = cjson.encode(array1)
            decoded = cjson.decode(encoded)
            assert(table.concat(array1) == table.concat(decoded))
            local invalid_map = {}
            invalid_map[false] = "false"
            local ok, encoded = pcall(cjson.encode, invalid_map)
            assert(ok == false)
            cjson.encode_max_depth(1)
            ok, encoded = pcall(cjson.encode, some_map)
            assert(ok == false)
            cjson.decode_max_depth(1)
            ok, decoded = pcall(cjson.decode, '{"obj": {"array": [1,2,3,4]}}')
            assert(ok == false)
            return "OK"
        "#;
        assert_eq!(eval_string(code), "OK");
    }

    #[test]
    fn cjson_encodes_values() {
        let cases = [
            (r#"{1, 2, 3}"#, "[1,2,3]"),
            (r#"{}"#, "{}"),
            (r#"{a = {b = true}}"#, r#"{"a":{"b":true}}"#),
            (r#"{[1] = "a", [3] = "c"}"#, r#"["a",null,"c"]"#),
            (r#"{[1.5] = "x"}"#, r#"{"1.5":"x"}"#),
            (r#"{[2] = "x"}"#, r#"[null,"x"]"#),
            (r#""a/b\"\n\1\127\200""#, "\"a\\/b\\\"\\n\\u0001\\u007f\u{fffd}\""),
            (r#"0.1"#, "0.1"),
            (r#"1/3"#, "0.33333333333333"),
            (r#"1e20"#, "1e+20"),
            (r#"-0.0001"#, "-0.0001"),
            (r#"1e-20"#, "1e-20"),
            (r#"{1e-20}"#, "[1e-20]"),
            (r#"cjson.null"#, "null"),
            (r#"{cjson.null, false}"#, "[null,false]"),
        ];
        let lua = new_lua();
        for (value, expected) in cases {
            let code = format!("return cjson.encode({value})");
            let bytes: mlua::String = lua.load(&code).eval().expect(&code);
            assert_eq!(String::from_utf8_lossy(&bytes.as_bytes()), expected, "{value}");
        }
    }

    #[test]
    fn cjson_config_functions() {
        let code = r#"
            assert(cjson.encode_number_precision(3) == 3)
            assert(cjson.encode(math.pi) == "3.14")
            assert(cjson.encode_invalid_numbers() == false)
            cjson.encode_invalid_numbers(true)
            assert(cjson.encode({1/0, -1/0}) == "[Infinity,-Infinity]")
            assert(cjson.encode_invalid_numbers("null") == "null")
            assert(cjson.encode(0/0) == "null")
            local convert, ratio, safe = cjson.encode_sparse_array()
            assert(convert == false and ratio == 2 and safe == 10)
            cjson.encode_sparse_array(true)
            assert(cjson.encode({[20] = 1}) == '{"20":1}')
            local other = cjson.new()
            assert(other.encode(math.pi) == "3.1415926535898")
            assert(cjson.decode_max_depth(7) == 7)
            return "OK"
        "#;
        assert_eq!(eval_string(code), "OK");
    }

    #[test]
    fn cjson_encode_errors() {
        let cases = [
            (
                "cjson.encode, {[true] = 1}",
                "Cannot serialise boolean: table key must be a number or string",
            ),
            ("cjson.encode, 0/0", "Cannot serialise number: must not be NaN or Inf"),
            ("cjson.encode, {1/0}", "Cannot serialise number: must not be NaN or Inf"),
            ("cjson.encode, print", "Cannot serialise function: type not supported"),
            ("cjson.encode, {[20] = 1}", "Cannot serialise table: excessively sparse array"),
            ("cjson.encode", "expected one argument"),
            ("cjson.encode, 1, 2", "expected one argument"),
            ("cjson.encode_max_depth, 0", "expected integer between 1 and 2147483647"),
            ("cjson.encode_number_precision, 15", "expected integer between 1 and 14"),
            ("cjson.encode_keep_buffer, 'maybe'", "invalid option 'maybe'"),
            ("cjson.encode_max_depth, 1, 2", "found too many arguments"),
        ];
        for (call, expected) in cases {
            assert_contains(&format!("err({call})"), expected);
        }
        let nested = r#"cjson.encode_max_depth(1); return err(cjson.encode, {{}})"#;
        assert!(eval_string(nested).contains("Cannot serialise, excessive nesting (2)"));
        let cycle = r#"local t = {} t[1] = t cjson.encode_max_depth(100000)
                       return err(cjson.encode, t)"#;
        assert!(eval_string(cycle).contains("Cannot serialise, excessive nesting ("));
    }

    #[test]
    fn cjson_decodes_values() {
        let code = r#"
            local t = cjson.decode(' {"a": [1, "x", true, false, null], "b": {}} ')
            assert(#t.a == 5 and t.a[1] == 1 and t.a[2] == "x" and t.a[3] == true)
            assert(t.a[4] == false and t.a[5] == cjson.null and next(t.b) == nil)
            assert(cjson.decode('"\\u00e9\\ud83d\\ude00\\u0041\\n\\/"') == "é😀A\n/")
            assert(cjson.decode("0x10") == 16)
            assert(cjson.decode("-Infinity") == -math.huge)
            local nan = cjson.decode("NaN")
            assert(nan ~= nan)
            assert(cjson.decode("1E2") == 100)
            assert(cjson.decode("[1]\0garbage")[1] == 1)
            assert(cjson.decode(5) == 5)
            return "OK"
        "#;
        assert_eq!(eval_string(code), "OK");
    }

    #[test]
    fn cjson_decode_errors() {
        let cases = [
            (r#"'{"a":}'"#, "Expected value but found T_OBJ_END at character 6"),
            (r#"'[1,]'"#, "Expected value but found T_ARR_END at character 4"),
            (r#"'[1 2]'"#, "Expected comma or array end but found T_NUMBER at character 4"),
            (r#"'{1:2}'"#, "Expected object key string but found T_NUMBER at character 2"),
            (r#"'{"a" 2}'"#, "Expected colon but found T_NUMBER at character 6"),
            (r#"'{"a":1 2}'"#, "Expected comma or object end but found T_NUMBER at character 8"),
            (r#"'"abc'"#, "Expected value but found unexpected end of string at character 5"),
            (r#"'tru'"#, "Expected value but found invalid token at character 1"),
            (r#"'[1] x'"#, "Expected the end but found invalid token at character 5"),
            (r#"'"\\q"'"#, "Expected value but found invalid escape code at character 2"),
            (r#"'"\\ud83d"'"#, "found invalid unicode escape code at character 2"),
            (r#"'"\\u12"'"#, "found invalid unicode escape code at character 2"),
            (r#"''"#, "Expected value but found T_END at character 1"),
            (r#"'[-]'"#, "Expected value but found invalid number at character 2"),
            (r#"'a\0'"#, "JSON parser does not support UTF-16 or UTF-32"),
            (
                r#"string.rep("[", 100000)"#,
                "Found too many nested data structures (1001) at character 1001",
            ),
        ];
        for (input, expected) in cases {
            assert_contains(&format!("err(cjson.decode, {input})"), expected);
        }
        let depth = r#"cjson.decode_max_depth(1)
                       return err(cjson.decode, '{"obj": {"array": [1,2,3,4]}}')"#;
        assert!(
            eval_string(depth).contains("Found too many nested data structures (2) at character 9")
        );
        let strict = r#"cjson.decode_invalid_numbers(false) return err(cjson.decode, "01")"#;
        assert!(eval_string(strict).contains("invalid number"));
        assert_contains("err(cjson.decode)", "bad argument #1");
        assert_contains("err(cjson.decode, '1', 2)", "expected 1 argument");
    }

    #[test]
    fn bit_operations() {
        let code = r#"
            assert(bit.tobit(0xffffffff) == -1)
            assert(bit.tobit(2^32 + 1) == 1)
            assert(bit.tobit(1.5) == 2 and bit.tobit(2.5) == 2 and bit.tobit(-1.5) == -2)
            assert(bit.tobit("10") == 10)
            assert(bit.tohex(65535, -2147483648) == "0000FFFF")
            assert(bit.tohex(-1) == "ffffffff")
            assert(bit.tohex(255, 2) == "ff")
            assert(bit.tohex(0x1234abcd, -3) == "BCD")
            assert(bit.tohex(1, 0) == "")
            assert(bit.tohex(1, 20) == "00000001")
            assert(bit.band(0xff, 0x0f, 0x3) == 3)
            assert(bit.bor(1, 2, 4) == 7)
            assert(bit.bxor(5, 3) == 6)
            assert(bit.bnot(0) == -1)
            assert(bit.lshift(1, 31) == -2147483648)
            assert(bit.lshift(1, 32) == 1)
            assert(bit.rshift(-1, 28) == 15)
            assert(bit.arshift(-256, 4) == -16)
            assert(bit.rol(0x12345678, 12) == 0x45678123)
            assert(bit.ror(0x12345678, 12) == 0x67812345)
            assert(bit.bswap(0x12345678) == 0x78563412)
            assert(bit.band(0xffffffff) == -1)
            return "OK"
        "#;
        assert_eq!(eval_string(code), "OK");
        assert_contains("err(bit.band)", "bad argument #1");
        assert_contains("err(bit.bor, 1, {})", "bad argument #2");
        assert_contains("err(bit.tobit, 'x')", "bad argument #1");
    }

    #[test]
    fn struct_round_trip() {
        let code = r#"
            local fmt = ">bBhHlLiI3fdc3sxi8<I2"
            local s = struct.pack(fmt, -1, 255, -2, 65535, -3, 2^40, -5, 0x123456, 0.5, 0.1,
                "abc", "zt", -2, 0x0102)
            assert(#s == 1 + 1 + 2 + 2 + 8 + 8 + 4 + 3 + 4 + 8 + 3 + 3 + 1 + 8 + 2)
            local v = {struct.unpack(fmt, s)}
            local expected = {-1, 255, -2, 65535, -3, 2^40, -5, 0x123456, 0.5, 0.1, "abc",
                "zt", -2, 0x0102, #s + 1}
            assert(#v == #expected, "count " .. #v)
            for i = 1, #expected do
                assert(v[i] == expected[i], "item " .. i .. ": " .. tostring(v[i]))
            end
            assert(hex(struct.pack("<I2", 0x0102)) == "0201")
            assert(hex(struct.pack(">I2", 0x0102)) == "0102")
            assert(hex(struct.pack("!4bi", 1, 2)) == "0100000002000000")
            assert(hex(struct.pack("B", -1)) == "ff")
            assert(struct.pack("c2", "abcd") == "ab")
            assert(struct.pack("c0", "abcd") == "abcd")
            assert(struct.size("!4 b i") == 8)
            assert(struct.size("bhlid") == 23)
            local str, pos = struct.unpack("Bc0", "\3abcX")
            assert(str == "abc" and pos == 5)
            local b, pos2 = struct.unpack("b", "\1\2", 2)
            assert(b == 2 and pos2 == 3)
            assert(struct.unpack("d", struct.pack("d", 1e-20)) == 1e-20)
            assert(struct.unpack("<i3", struct.pack("<i3", -70000)) == -70000)
            assert(struct.unpack(">I16", struct.pack(">I16", 7)) == 7)
            assert(struct.pack("=I2", 1) == struct.pack("<I2", 1))
            assert(hex(struct.pack(">f<f", 1.5, 1.5)) == "3fc000000000c03f")
            return "OK"
        "#;
        assert_eq!(eval_string(code), "OK");
    }

    #[test]
    fn struct_errors() {
        let cases = [
            ("struct.unpack, 'i', 'ab'", "data string too short"),
            ("struct.unpack, 'b', 'ab', 3", "data string too short"),
            ("struct.unpack, 'b', 'ab', 0", "offset must be 1 or greater"),
            ("struct.unpack, 'c0', 'ab'", "format 'c0' needs a previous size"),
            ("struct.unpack, 's', 'abc'", "unfinished string in data"),
            ("struct.pack, 'y'", "invalid format option 'y'"),
            ("struct.pack, 'i', 'x'", "number expected, got string"),
            ("struct.pack, 'i'", "number expected, got nil"),
            ("struct.pack, 'c5', 'ab'", "string too short"),
            ("struct.pack, 'i33', 1", "integral size 33 is larger than limit of 32"),
            ("struct.pack, 'c99999999999', 'a'", "integral size overflow"),
            ("struct.pack, '!3'", "alignment 3 is not a power of 2"),
            ("struct.size, 's'", "option 's' has no fixed size"),
            ("struct.size, 'c0'", "option 'c0' has no fixed size"),
        ];
        for (call, expected) in cases {
            assert_contains(&format!("err({call})"), expected);
        }
    }

    #[test]
    fn cmsgpack_packs_like_lua_cmsgpack() {
        let cases = [
            ("0.1", "cb3fb999999999999a"),
            ("-1099511627776", "d3ffffff0000000000"),
            ("1.5", "ca3fc00000"),
            ("0, 127, 128, 255, 256", "007fcc80ccffcd0100"),
            ("65535, 65536, 2^32", "cdffffce00010000cf0000000100000000"),
            ("-1, -32, -33, -128, -129", "ffe0d0dfd080d1ff7f"),
            ("-32768, -32769, -2^31, -2^31 - 1", "d18000d2ffff7fffd280000000d3ffffffff7fffffff"),
            ("true, false, nil, print", "c3c2c0c0"),
            ("{1, 2, 3}, {}", "9301020390"),
            ("{a = 1}", "81a16101"),
            ("{[2] = 1}", "810201"),
            ("string.rep('x', 31)", &format!("bf{}", "78".repeat(31))),
            ("string.rep('x', 32)", &format!("d920{}", "78".repeat(32))),
        ];
        let lua = new_lua();
        for (values, expected) in cases {
            let code = format!("return hex(cmsgpack.pack({values}))");
            let got: String = lua.load(&code).eval().expect(&code);
            assert_eq!(got, expected, "{values}");
        }
        let headers = r#"
            local function head(v, n) return hex(cmsgpack.pack(v)):sub(1, n) end
            local sixteen = {}
            for i = 1, 16 do sixteen[i] = i end
            assert(head(string.rep("x", 256), 6) == "da0100")
            assert(head(string.rep("x", 65536), 10) == "db00010000")
            assert(head(sixteen, 6) == "dc0010")
            return "OK"
        "#;
        assert_eq!(lua.load(headers).eval::<String>().expect("headers"), "OK");
    }

    #[test]
    fn cmsgpack_circular_references_stop_at_depth_16() {
        let code = r#"
            local a = {x=nil,y=5}
            local b = {x=a}
            a['x'] = b
            local encoded = cmsgpack.pack(a)
            local re = cmsgpack.unpack(encoded)
            assert(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.y == re.y)
            assert(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x)
            assert(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x == nil)
            return hex(encoded)
        "#;
        // The hex string Redis's test suite expects.
        let expected = "82a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a178\
                        82a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a178c0";
        assert_eq!(eval_string(code), expected);
    }

    #[test]
    fn cmsgpack_round_trips_the_redis_smoke_test() {
        let code = r#"
            local array_big, map_big = {}, {}
            for i = 1, 100000 do
                array_big[i] = i
                map_big[tostring(i)] = i
            end
            local some_map = {
                s1 = string.rep("x", 30), s2 = string.rep("x", 250),
                s3 = string.rep("x", 65530), s4 = string.rep("x", 100000),
                d1 = 0.1, i1 = 1, i2 = 250, i3 = 65530, i4 = 100000, i5 = 2^40,
                i6 = -1, i7 = -120, i8 = -32000, i9 = -1099511627776, b1 = true, b2 = false,
                a1 = {1, 2, 3, 4, 5}, a2 = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                16, 17, 18}, a3 = array_big, m1 = {a = 1, b = 2}, m2 = map_big,
                tiny = 1e-20,
            }
            local decoded = cmsgpack.unpack(cmsgpack.pack(some_map))
            for k, v in pairs(some_map) do
                if type(v) == "table" then
                    for kk, vv in pairs(v) do assert(decoded[k][kk] == vv, k .. "." .. kk) end
                else
                    assert(decoded[k] == v, k)
                end
            end
            local x, y, z = cmsgpack.unpack(cmsgpack.pack(1, "two", {3}))
            assert(x == 1 and y == "two" and z[1] == 3)
            assert(cmsgpack.unpack(cmsgpack.pack(1e-20)) == 1e-20)
            assert(cmsgpack.unpack("\196\3abc") == "abc")
            assert(select('#', cmsgpack.unpack('')) == 0)
            return "OK"
        "#;
        assert_eq!(eval_string(code), "OK");
    }

    #[test]
    fn cmsgpack_partial_unpacking() {
        let code = r#"
            local s = cmsgpack.pack(1, 2, 3)
            local off, v = cmsgpack.unpack_one(s)
            assert(off == 1 and v == 1)
            off, v = cmsgpack.unpack_one(s, off)
            assert(off == 2 and v == 2)
            off, v = cmsgpack.unpack_one(s, off)
            assert(off == -1 and v == 3)
            local off2, a, b = cmsgpack.unpack_limit(s, 2)
            assert(off2 == 2 and a == 1 and b == 2)
            return "OK"
        "#;
        assert_eq!(eval_string(code), "OK");
    }

    #[test]
    fn cmsgpack_errors() {
        let cases = [
            ("cmsgpack.unpack, '\\205\\1'", "Missing bytes in input."),
            ("cmsgpack.unpack, '\\165ab'", "Missing bytes in input."),
            ("cmsgpack.unpack, '\\221\\255\\255\\255\\255'", "Missing bytes in input."),
            ("cmsgpack.unpack, '\\193'", "Bad data format in input."),
            ("cmsgpack.unpack, '\\212\\1\\1'", "Bad data format in input."),
            ("cmsgpack.unpack, '\\129\\192\\1'", "table index is nil"),
            ("cmsgpack.pack", "MessagePack pack needs input."),
            ("cmsgpack.unpack_one, '\\1', 5", "Start offset 5 greater than input length 1."),
            ("cmsgpack.unpack_limit, '\\1', -1", "Invalid request to unpack"),
            ("cmsgpack.unpack, string.rep('\\145', 100000)", "Too deeply nested"),
            ("cmsgpack.unpack, string.rep('\\1', 5000)", "too many results"),
        ];
        for (call, expected) in cases {
            assert_contains(&format!("err({call})"), expected);
        }
    }

    /// Nesting at the limits ends in results or errors, never in a stack overflow, on a
    /// thread with Rust's default 2 MiB stack.
    #[test]
    fn deep_nesting_is_bounded() {
        let run = || {
            let code = r#"
                local deep = string.rep("[", 1000) .. string.rep("]", 1000)
                local t = cjson.decode(deep)
                -- the innermost array is empty, and cjson encodes an empty table as an object
                local encoded = string.rep("[", 999) .. "{}" .. string.rep("]", 999)
                local ok, e = pcall(cjson.encode, t)
                assert(ok and e == encoded or not ok and tostring(e):find("excessive nesting"))
                local objects = string.rep('{"a":', 1000) .. "1" .. string.rep("}", 1000)
                ok, e = pcall(cjson.encode, cjson.decode(objects))
                assert(ok and e == objects or not ok and tostring(e):find("excessive nesting"))
                local cycle = {}
                cycle.next = cycle
                cjson.encode_max_depth(100000)
                assert(not pcall(cjson.encode, cycle))
                local packed = string.rep("\145", 999) .. "\144"
                assert(#cmsgpack.pack(cmsgpack.unpack(packed)) == 17)
                assert(#cmsgpack.pack(cycle) > 16)
                return "OK"
            "#;
            eval_string(code)
        };
        let thread = std::thread::Builder::new().stack_size(2 << 20).spawn(run);
        let result = thread.expect("spawn").join().expect("no stack overflow");
        assert_eq!(result, "OK");
    }
}
