//! Connection commands: PING AUTH HELLO SELECT CLIENT (ECHO and QUIT are wired in the table).

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use sessiongrid_model::Reply;

use super::args::syntax_error;
use super::{CmdResult, Ctx};
use crate::redis::clients::ClientView;
use crate::redis::connection::Replies;
use sessiongrid_resp::Protocol;

/// The Redis version the door answers to clients that check it.
pub const REDIS_VERSION: &str = "7.0.0";

pub fn ping(ctx: &mut Ctx<'_>) -> CmdResult {
    // A RESP2 subscriber's PING is answered as a message would be, as Redis does.
    if ctx.client.subscription.is_some() && ctx.client.proto == Protocol::Resp2 {
        let arg = ctx.args.from(1).first().cloned().unwrap_or_default();
        return match ctx.args.len() {
            1 | 2 => Ok(Reply::Array(vec![Reply::bulk(&b"pong"[..]), Reply::Bulk(arg)])),
            _ => Err(Reply::error("ERR wrong number of arguments for 'ping' command")),
        };
    }
    match ctx.args.len() {
        1 => Ok(Reply::Status("PONG".into())),
        2 => Ok(Reply::Bulk(ctx.args.get(1).clone())),
        _ => Err(Reply::error("ERR wrong number of arguments for 'ping' command")),
    }
}

/// Authenticates the client as `user` if `password` is one of that user's (see
/// [`User::admits`](crate::redis::acl::User::admits)). An address that failed a few times
/// waits for its turn first (see [`crate::throttle`]); a user at its connection limit
/// (`maxconns:`) is refused.
///
/// `AUTH <password>` names the `default` user; while that user needs no password it is an
/// error, as in Redis (`AUTH default <anything>` succeeds).
async fn check_password(
    ctx: &mut Ctx<'_>,
    user: &[u8],
    password: &[u8],
    explicit_user: bool,
) -> Result<(), Reply> {
    let acl = ctx.shared.config.acl.clone();
    let version = acl.version();
    let name = String::from_utf8_lossy(user).into_owned();
    let found = acl.user(&name);
    if !explicit_user && found.as_ref().is_some_and(|u| u.open()) {
        return Err(Reply::error(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        ));
    }
    let user = match found {
        Some(user) if user.open() => user,
        found => {
            let (throttle, ip) = (&ctx.shared.auth_throttle, ctx.client.view.addr.ip());
            if !throttle.slot(ip, Instant::now()).wait().await {
                ctx.audit("auth", &name, "refused unchecked");
                return Err(Reply::error(
                    "ERR too many failed authentication attempts from this address, try again later",
                ));
            }
            match found.filter(|u| u.admits(password)) {
                Some(user) => {
                    throttle.succeeded(ip);
                    user
                }
                None => {
                    ctx.audit("auth", &name, "refused");
                    let refused = ("auth", "AUTH".to_string());
                    super::log_denial(ctx.shared, ctx.client, "toplevel", &name, refused);
                    return Err(wrong_pass());
                }
            }
        }
    };
    let Some(slot) = acl.connect(&user) else {
        ctx.audit("auth", &name, "refused: connection limit");
        return Err(Reply::error(format!(
            "ERR user '{name}' has as many connections as it may open (maxconns:{})",
            user.max_connections
        )));
    };
    ctx.client.become_user(user, slot, version);
    Ok(())
}

fn wrong_pass() -> Reply {
    metrics::counter!("sessiongrid_auth_failures_total").increment(1);
    Reply::error("WRONGPASS invalid username-password pair or user is disabled.")
}

pub async fn auth(ctx: &mut Ctx<'_>) -> CmdResult {
    match ctx.args.len() {
        2 => {
            let pw = ctx.args.get(1).clone();
            check_password(ctx, b"default", &pw, false).await?;
        }
        3 => {
            let (user, pw) = (ctx.args.get(1).clone(), ctx.args.get(2).clone());
            check_password(ctx, &user, &pw, true).await?;
        }
        _ => return Err(syntax_error()),
    }
    Ok(Reply::Ok)
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
pub async fn hello(ctx: &mut Ctx<'_>) -> CmdResult {
    let mut proto = ctx.client.proto;
    if ctx.args.len() >= 2 {
        proto = match ctx.args.int(1) {
            Ok(2) => Protocol::Resp2,
            Ok(3) => Protocol::Resp3,
            Ok(_) => return Err(Reply::error("NOPROTO unsupported protocol version")),
            Err(_) => {
                return Err(Reply::error("ERR Protocol version is not an integer or out of range"))
            }
        };
    }
    let mut name = None;
    let mut i = 2;
    while i < ctx.args.len() {
        if ctx.args.is(i, "auth") && i + 2 < ctx.args.len() {
            let (user, pw) = (ctx.args.get(i + 1).clone(), ctx.args.get(i + 2).clone());
            check_password(ctx, &user, &pw, true).await?;
            i += 3;
        } else if ctx.args.is(i, "setname") && i + 1 < ctx.args.len() {
            name = Some(valid_name(ctx.args.get(i + 1))?);
            i += 2;
        } else {
            let opt = ctx.args.text(i);
            return Err(Reply::error(format!("ERR Syntax error in HELLO option '{opt}'")));
        }
    }
    if !ctx.client.authenticated {
        return Err(Reply::error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO AUTH <user> <pass> option can be used to authenticate the client and \
             select the RESP protocol version at the same time",
        ));
    }
    ctx.client.proto = proto;
    ctx.client.view.resp.store(if proto == Protocol::Resp3 { 3 } else { 2 }, Ordering::Relaxed);
    if name.is_some() {
        ctx.client.name = name;
    }
    let text = |s: &'static str| Reply::Bulk(Bytes::from_static(s.as_bytes()));
    Ok(Reply::Map(vec![
        (text("server"), text("redis")),
        (text("version"), text(REDIS_VERSION)),
        (text("proto"), Reply::Int(if proto == Protocol::Resp3 { 3 } else { 2 })),
        (text("id"), Reply::Int(ctx.client.id as i64)),
        (text("mode"), text("standalone")),
        (text("role"), text("master")),
        (text("modules"), Reply::Array(vec![])),
    ]))
}

/// `SELECT db`: the client's commands then name keys of database `db` (0 to 15).
pub fn select(ctx: &mut Ctx<'_>) -> CmdResult {
    ctx.client.db = super::keys::db_index(ctx.args.int(1)?)?;
    ctx.client.view.db.store(ctx.client.db, Ordering::Relaxed);
    Ok(Reply::Ok)
}

/// Client names may not contain spaces or control characters.
fn valid_name(name: &Bytes) -> Result<Bytes, Reply> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(Reply::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(name.clone())
}

pub fn client(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = ctx.args.text(1).to_ascii_lowercase();
    let arity_error =
        || Err(Reply::error(format!("ERR wrong number of arguments for 'client|{sub}' command")));
    match sub.as_str() {
        "setname" => {
            if ctx.args.len() != 3 {
                return arity_error();
            }
            let name = valid_name(ctx.args.get(2))?;
            ctx.client.name = (!name.is_empty()).then_some(name);
            *ctx.client.view.name.lock().expect("client name lock") = ctx.client.name.clone();
            Ok(Reply::Ok)
        }
        "getname" if ctx.args.len() == 2 => {
            Ok(ctx.client.name.clone().map_or(Reply::Nil, Reply::Bulk))
        }
        "id" if ctx.args.len() == 2 => Ok(Reply::Int(ctx.client.id as i64)),
        "setinfo" => {
            if ctx.args.len() != 4 {
                return arity_error();
            }
            if ctx.args.is(2, "lib-name") || ctx.args.is(2, "lib-ver") {
                Ok(Reply::Ok)
            } else {
                let attr = ctx.args.text(2);
                Err(Reply::error(format!("ERR Unrecognized option '{attr}'")))
            }
        }
        "reply" if ctx.args.len() == 3 => {
            ctx.client.replies = match ctx.args.text(2).to_ascii_lowercase().as_str() {
                "on" => Replies::On,
                "off" => Replies::Off,
                "skip" if ctx.client.replies == Replies::Off => Replies::Off,
                "skip" => Replies::Skip(2),
                _ => return Err(syntax_error()),
            };
            Ok(Reply::Ok)
        }
        "list" => client_list(ctx),
        "info" if ctx.args.len() == 2 => {
            Ok(Reply::Verbatim(format!("{}\n", ctx.client.view.line()).into()))
        }
        "kill" => client_kill(ctx),
        "no-evict" | "no-touch" if ctx.args.len() == 3 => {
            match ctx.args.text(2).to_ascii_lowercase().as_str() {
                "on" | "off" => Ok(Reply::Ok),
                _ => Err(syntax_error()),
            }
        }
        "unpause" if ctx.args.len() == 2 => Ok(Reply::Ok),
        "getredir" if ctx.args.len() == 2 => Ok(Reply::Int(-1)),
        "getname" | "id" | "reply" | "info" | "no-evict" | "no-touch" | "unpause" | "getredir" => {
            arity_error()
        }
        _ => {
            let sub = ctx.args.text(1);
            Err(Reply::error(format!("ERR unknown subcommand '{sub}'. Try CLIENT HELP.")))
        }
    }
}

/// `CLIENT LIST [TYPE normal|pubsub|master|replica] [ID id...]`.
fn client_list(ctx: &Ctx<'_>) -> CmdResult {
    let mut ids: Option<Vec<u64>> = None;
    let mut i = 2;
    while i < ctx.args.len() {
        if ctx.args.is(i, "type") && i + 1 < ctx.args.len() {
            let kind = ctx.args.text(i + 1).to_ascii_lowercase();
            match kind.as_str() {
                "normal" | "pubsub" => {}
                "master" | "replica" | "slave" => return Ok(Reply::Verbatim(Bytes::new())),
                _ => return Err(Reply::error(format!("ERR Unknown client type '{kind}'"))),
            }
            i += 2;
        } else if ctx.args.is(i, "id") && i + 1 < ctx.args.len() {
            let mut wanted = Vec::new();
            for arg in ctx.args.from(i + 1) {
                let id = super::args::int(arg)
                    .ok()
                    .filter(|id| *id > 0)
                    .ok_or_else(|| Reply::error("ERR Invalid client ID"))?;
                wanted.push(id as u64);
            }
            ids = Some(wanted);
            break;
        } else {
            return Err(syntax_error());
        }
    }
    let lines: String = ctx
        .shared
        .clients
        .all()
        .iter()
        .filter(|c| ids.as_ref().is_none_or(|ids| ids.contains(&c.id)))
        .map(|c| format!("{}\n", c.line()))
        .collect();
    Ok(Reply::Verbatim(lines.into()))
}

/// One filter of `CLIENT KILL`: true for a connection it selects.
type KillFilter = Box<dyn Fn(&ClientView) -> bool>;

/// `CLIENT KILL ip:port` (1 or an error) or `CLIENT KILL <filter value>...` (how many it
/// closed): filters `ID`, `ADDR`, `LADDR`, `SKIPME yes|no`, `TYPE normal|pubsub`, `USER`,
/// `MAXAGE`.
fn client_kill(ctx: &Ctx<'_>) -> CmdResult {
    let me = ctx.client.view.id;
    let clients = ctx.shared.clients.all();
    if ctx.args.len() == 3 {
        let addr = ctx.args.text(2);
        let Some(c) = clients.iter().find(|c| c.addr.to_string() == addr) else {
            return Err(Reply::error("ERR No such client"));
        };
        c.kill.cancel();
        return Ok(Reply::Ok);
    }
    if ctx.args.len() < 4 || !ctx.args.len().is_multiple_of(2) {
        return Err(syntax_error());
    }
    let mut skip_me = true;
    let mut tests: Vec<KillFilter> = Vec::new();
    for pair in ctx.args.from(2).chunks(2) {
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        match String::from_utf8_lossy(&pair[0]).to_ascii_lowercase().as_str() {
            "id" => {
                let id = value
                    .parse::<u64>()
                    .map_err(|_| Reply::error("ERR client-id should be greater than 0"))?;
                tests.push(Box::new(move |c| c.id == id));
            }
            "addr" => tests.push(Box::new(move |c| c.addr.to_string() == value)),
            "laddr" => tests.push(Box::new(move |c| c.laddr.to_string() == value)),
            "user" => {
                tests.push(Box::new(move |c| *c.user.lock().expect("client user lock") == value))
            }
            "type" => match value.to_ascii_lowercase().as_str() {
                "normal" | "pubsub" => {}
                "master" | "replica" | "slave" => tests.push(Box::new(|_| false)),
                other => return Err(Reply::error(format!("ERR Unknown client type '{other}'"))),
            },
            "skipme" => match value.to_ascii_lowercase().as_str() {
                "yes" => skip_me = true,
                "no" => skip_me = false,
                _ => return Err(syntax_error()),
            },
            "maxage" => {
                let secs = value.parse::<u64>().map_err(|_| syntax_error())?;
                tests.push(Box::new(move |c| c.created.elapsed().as_secs() >= secs));
            }
            _ => return Err(syntax_error()),
        }
    }
    let mut killed = 0;
    for c in clients.iter().filter(|c| !(skip_me && c.id == me)) {
        if tests.iter().all(|t| t(c)) {
            c.kill.cancel();
            killed += 1;
        }
    }
    Ok(Reply::Int(killed))
}
