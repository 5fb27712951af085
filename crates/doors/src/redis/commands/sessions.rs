//! Session commands: SESSION.CREATE GET SET DEL TOUCH INVALIDATE ROTATE LOGIN LOGOUT BYUSER
//! KICKUSER LIST STATS. Replies are maps (flat arrays in RESP2); the rules live in the grid's
//! [`Sessions`](sessiongrid_grid::Sessions).

use bytes::Bytes;
use sessiongrid_grid::events::KINDS;
use sessiongrid_grid::sessions::{GetOptions, LoginOutcome, SessionError, Stats, Write};
use sessiongrid_model::session::event::EventKind;
use sessiongrid_model::session::{LoginPolicy, Session, Tag};
use sessiongrid_model::Reply;

use super::args::syntax_error;
use super::{grid_error, CmdResult, Ctx};

fn refused(e: SessionError) -> Reply {
    match e {
        SessionError::Grid(e) => grid_error(e),
        e => Reply::error(e.to_string()),
    }
}

/// A non-negative integer argument.
fn count(ctx: &Ctx<'_>, i: usize, what: &str) -> Result<u64, Reply> {
    u64::try_from(ctx.args.int(i)?)
        .map_err(|_| Reply::error(format!("ERR {what} must not be negative")))
}

fn status(s: &'static str) -> Reply {
    Reply::Status(s.into())
}

/// A user limited to some session groups (`group:` rules) reaches only their sessions.
pub fn check_group(ctx: &Ctx<'_>, group: &[u8]) -> Result<(), Reply> {
    if ctx.client.user.may_use_group(group) {
        return Ok(());
    }
    let denied =
        Reply::error("NOPERM this user has no permissions to access the sessions of this group");
    let refused = ("group", String::from_utf8_lossy(group).into_owned());
    super::log_denial(ctx.shared, ctx.client, "toplevel", &ctx.client.user.name, refused);
    Err(denied)
}

/// [`check_group`] for the group session `id` is in (none: nothing to protect). A session's
/// group never changes, so the check holds for the operation that follows.
async fn check_session(ctx: &Ctx<'_>, id: &Bytes) -> Result<(), Reply> {
    if ctx.client.user.all_groups() {
        return Ok(());
    }
    match ctx.shared.sessions.peek(id).await.map_err(refused)? {
        Some(session) => check_group(ctx, &session.group),
        None => Ok(()),
    }
}

/// A listing over every group is only for a user that may see every group.
fn needs_group(ctx: &Ctx<'_>, group: Option<&Bytes>) -> Result<(), Reply> {
    match group {
        Some(g) => check_group(ctx, g),
        None if ctx.client.user.all_groups() => Ok(()),
        None => Err(Reply::error(
            "NOPERM this user is limited to some session groups: name one with GROUP",
        )),
    }
}

/// `SESSION.CREATE group [IDLE sec] [ABSOLUTE sec] [APP name] [ID id]` -> id (nil if the
/// given id is taken)
pub async fn create(ctx: &mut Ctx<'_>) -> CmdResult {
    let group = ctx.args.get(1).clone();
    let (mut idle, mut absolute, mut id) = (None, None, None);
    let mut i = 2;
    while i < ctx.args.len() {
        if i + 1 >= ctx.args.len() {
            return Err(syntax_error());
        }
        match () {
            _ if ctx.args.is(i, "idle") => idle = Some(count(ctx, i + 1, "IDLE")?),
            _ if ctx.args.is(i, "absolute") => absolute = Some(count(ctx, i + 1, "ABSOLUTE")?),
            // The application is named for symmetry with GET; creation is the same for all.
            _ if ctx.args.is(i, "app") => {}
            _ if ctx.args.is(i, "id") => id = Some(ctx.args.get(i + 1).clone()),
            _ => return Err(syntax_error()),
        }
        i += 2;
    }
    check_group(ctx, &group)?;
    let sessions = &ctx.shared.sessions;
    match id {
        None => sessions.create(group, idle, absolute).await.map(Reply::Bulk).map_err(refused),
        Some(id) => match sessions.create_with_id(group, id.clone(), idle, absolute).await {
            Ok(true) => Ok(Reply::Bulk(id)),
            Ok(false) => Ok(Reply::Nil),
            Err(e) => Err(refused(e)),
        },
    }
}

/// `SESSION.GET id [APP name] [ATTRS a ...] [NOTOUCH]` -> map, or nil
pub async fn get(ctx: &mut Ctx<'_>) -> CmdResult {
    let mut opts = GetOptions::default();
    let mut i = 2;
    while i < ctx.args.len() {
        if ctx.args.is(i, "notouch") {
            opts.no_touch = true;
            i += 1;
        } else if ctx.args.is(i, "names") {
            opts.names = true;
            i += 1;
        } else if ctx.args.is(i, "app") && i + 1 < ctx.args.len() {
            opts.app = Some(ctx.args.get(i + 1).clone());
            i += 2;
        } else if ctx.args.is(i, "attrs") {
            // Attribute names run to the end or to NOTOUCH / APP.
            let mut names = Vec::new();
            i += 1;
            let option = |i| ["notouch", "app", "names"].iter().any(|o| ctx.args.is(i, o));
            while i < ctx.args.len() && !option(i) {
                names.push(ctx.args.get(i).clone());
                i += 1;
            }
            opts.attrs = Some(names);
        } else {
            return Err(syntax_error());
        }
    }
    check_session(ctx, ctx.args.get(1)).await?;
    let found = ctx.shared.sessions.get(ctx.args.get(1), &opts).await.map_err(refused)?;
    let shown = if opts.names { Shown::Names } else { Shown::Values };
    Ok(found.map_or(Reply::Nil, |s| session_reply(&s, shown)))
}

/// What a session reply shows of the attributes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Nothing,
    /// `name -> [tag, value, version]`.
    Values,
    /// `name -> [tag, nil, version]`.
    Names,
}

/// The metadata of a session and its attributes as `shown` says.
pub fn session_reply(s: &Session, shown: Shown) -> Reply {
    let text = |t: &str| Reply::bulk(Bytes::copy_from_slice(t.as_bytes()));
    let int = |n: u64| Reply::Int(n as i64);
    let mut map = vec![
        (text("id"), Reply::Bulk(s.id.clone())),
        (text("group"), Reply::Bulk(s.group.clone())),
        (text("created"), int(s.created_ms)),
        (text("last-access"), int(s.last_access_ms)),
        (text("idle-timeout"), int(s.idle_ms / 1000)),
        (text("absolute-deadline"), s.absolute_at_ms.map_or(Reply::Nil, int)),
        (text("expires-at"), int(s.deadline_ms())),
        (text("principal"), s.principal.clone().map_or(Reply::Nil, Reply::Bulk)),
        (text("version"), int(s.version)),
    ];
    if shown != Shown::Nothing {
        let attrs = s
            .attrs
            .iter()
            .map(|(name, a)| {
                let value = Reply::Array(vec![
                    text(a.tag.name()),
                    match shown {
                        Shown::Names => Reply::Nil,
                        _ => Reply::Bulk(a.value.clone()),
                    },
                    int(a.version),
                ]);
                (Reply::Bulk(name.clone()), value)
            })
            .collect();
        map.push((text("attributes"), Reply::Map(attrs)));
    }
    Reply::Map(map)
}

/// `SESSION.SET id [IFVERSION v] [REPLACE] [IDLE sec] attr tag value [attr tag value ...]` ->
/// new version, or nil. With `REPLACE` the attributes become exactly those given (none: all
/// removed).
pub async fn set(ctx: &mut Ctx<'_>) -> CmdResult {
    let mut i = 2;
    let mut w = Write::default();
    loop {
        if ctx.args.is(i, "ifversion") && i + 1 < ctx.args.len() {
            w.if_version = Some(count(ctx, i + 1, "IFVERSION")?);
            i += 2;
        } else if ctx.args.is(i, "replace") {
            w.replace = true;
            i += 1;
        } else if ctx.args.is(i, "idle") && i + 1 < ctx.args.len() {
            w.idle_s = Some(count(ctx, i + 1, "IDLE")?);
            i += 2;
        } else {
            break;
        }
    }
    let rest = ctx.args.from(i);
    if (rest.is_empty() && !w.replace) || !rest.len().is_multiple_of(3) {
        return Err(Reply::error("ERR wrong number of arguments for 'session.set' command"));
    }
    for t in rest.chunks(3) {
        let tag = Tag::parse(&t[1])
            .ok_or_else(|| Reply::error("ERR attribute tag must be json, utf8, bytes or java"))?;
        w.attrs.push((t[0].clone(), tag, t[2].clone()));
    }
    check_session(ctx, ctx.args.get(1)).await?;
    let version = ctx.shared.sessions.write(ctx.args.get(1), w).await.map_err(refused)?;
    Ok(version.map_or(Reply::Nil, |v| Reply::Int(v as i64)))
}

/// `SESSION.DEL id attr ...` -> count, or nil
pub async fn del(ctx: &mut Ctx<'_>) -> CmdResult {
    let names = ctx.args.from(2).to_vec();
    check_session(ctx, ctx.args.get(1)).await?;
    let n = ctx.shared.sessions.del(ctx.args.get(1), names).await.map_err(refused)?;
    Ok(n.map_or(Reply::Nil, |n| Reply::Int(n as i64)))
}

/// `SESSION.TOUCH id [IDLE sec]` -> idle ms left, or nil
pub async fn touch(ctx: &mut Ctx<'_>) -> CmdResult {
    let idle = match ctx.args.len() {
        2 => None,
        4 if ctx.args.is(2, "idle") => Some(count(ctx, 3, "IDLE")?),
        _ => return Err(syntax_error()),
    };
    check_session(ctx, ctx.args.get(1)).await?;
    let left = ctx.shared.sessions.touch(ctx.args.get(1), idle).await.map_err(refused)?;
    Ok(left.map_or(Reply::Nil, |ms| Reply::Int(ms as i64)))
}

/// `SESSION.INVALIDATE id` -> 1/0
pub async fn invalidate(ctx: &mut Ctx<'_>) -> CmdResult {
    check_session(ctx, ctx.args.get(1)).await?;
    let ended = ctx.shared.sessions.invalidate(ctx.args.get(1)).await.map_err(refused)?;
    Ok(Reply::Int(ended as i64))
}

/// `SESSION.ROTATE id` -> new id, or nil
pub async fn rotate(ctx: &mut Ctx<'_>) -> CmdResult {
    check_session(ctx, ctx.args.get(1)).await?;
    let new = ctx.shared.sessions.rotate(ctx.args.get(1)).await.map_err(refused)?;
    Ok(new.map_or(Reply::Nil, Reply::Bulk))
}

/// `SESSION.LOGIN id principal [POLICY allow|reject|evict-oldest] [MAX k]` -> evicted ids, nil
/// if there is no such session, or `-LOGINREJECTED`
pub async fn login(ctx: &mut Ctx<'_>) -> CmdResult {
    let (mut policy, mut max) = (None, None);
    let mut i = 3;
    while i < ctx.args.len() {
        if i + 1 >= ctx.args.len() {
            return Err(syntax_error());
        }
        if ctx.args.is(i, "policy") {
            policy =
                Some(LoginPolicy::parse(ctx.args.get(i + 1)).ok_or_else(|| {
                    Reply::error("ERR POLICY must be allow, reject or evict-oldest")
                })?);
        } else if ctx.args.is(i, "max") {
            max = Some(count(ctx, i + 1, "MAX")? as usize);
        } else {
            return Err(syntax_error());
        }
        i += 2;
    }
    let principal = ctx.args.get(2).clone();
    check_session(ctx, ctx.args.get(1)).await?;
    let outcome = ctx
        .shared
        .sessions
        .login(ctx.args.get(1), principal, policy, max)
        .await
        .map_err(refused)?;
    Ok(match outcome {
        LoginOutcome::LoggedIn { evicted } => {
            Reply::Array(evicted.into_iter().map(Reply::Bulk).collect())
        }
        LoginOutcome::NoSession => Reply::Nil,
    })
}

/// `SESSION.LOGOUT id` -> 1 if a user was logged out, else 0
pub async fn logout(ctx: &mut Ctx<'_>) -> CmdResult {
    check_session(ctx, ctx.args.get(1)).await?;
    let done = ctx.shared.sessions.logout(ctx.args.get(1)).await.map_err(refused)?;
    Ok(Reply::Int(done as i64))
}

/// `SESSION.BYUSER principal` -> array of session metadata maps
pub async fn by_user(ctx: &mut Ctx<'_>) -> CmdResult {
    let live = ctx.shared.sessions.by_user(ctx.args.get(1)).await.map_err(refused)?;
    let user = &ctx.client.user;
    let visible = live.iter().filter(|s| user.may_use_group(&s.group));
    Ok(Reply::Array(visible.map(|s| session_reply(s, Shown::Nothing)).collect()))
}

/// `SESSION.KICKUSER principal` -> how many sessions ended
pub async fn kick_user(ctx: &mut Ctx<'_>) -> CmdResult {
    let user = &ctx.client.user;
    let kicked = ctx.shared.sessions.kick_user_in(ctx.args.get(1), |g| user.may_use_group(g));
    Ok(Reply::Int(kicked.await.map_err(refused)? as i64))
}

/// `SESSION.LIST [GROUP g] [CURSOR c] [COUNT n]` -> [next cursor, [ids]]
pub async fn list(ctx: &mut Ctx<'_>) -> CmdResult {
    let (mut group, mut cursor, mut n) = (None, 0, 100);
    let mut i = 1;
    while i < ctx.args.len() {
        if i + 1 >= ctx.args.len() {
            return Err(syntax_error());
        }
        match () {
            _ if ctx.args.is(i, "group") => group = Some(ctx.args.get(i + 1).clone()),
            _ if ctx.args.is(i, "cursor") => cursor = count(ctx, i + 1, "CURSOR")?,
            _ if ctx.args.is(i, "count") => n = count(ctx, i + 1, "COUNT")?.max(1) as usize,
            _ => return Err(syntax_error()),
        }
        i += 2;
    }
    needs_group(ctx, group.as_ref())?;
    let (next, ids) = ctx.shared.sessions.list(group, cursor, n).await.map_err(refused)?;
    let next = Reply::bulk(Bytes::from(next.to_string()));
    Ok(Reply::Array(vec![next, Reply::Array(ids.into_iter().map(Reply::Bulk).collect())]))
}

/// `SESSION.STATS [GROUP g]` -> map of counters
pub async fn stats(ctx: &mut Ctx<'_>) -> CmdResult {
    let group = match ctx.args.len() {
        1 => None,
        3 if ctx.args.is(1, "group") => Some(ctx.args.get(2).clone()),
        _ => return Err(syntax_error()),
    };
    needs_group(ctx, group.as_ref())?;
    let s = ctx.shared.sessions.stats(group).await.map_err(refused)?;
    Ok(stats_reply(&s))
}

fn stats_reply(s: &Stats) -> Reply {
    let counts = |count: &dyn Fn(EventKind) -> u64| {
        Reply::Map(KINDS.iter().map(|k| (status(k.name()), Reply::Int(count(*k) as i64))).collect())
    };
    Reply::Map(vec![
        (status("live"), Reply::Int(s.live as i64)),
        (status("logins-rejected"), Reply::Int(s.logins_rejected as i64)),
        (status("node"), counts(&|k| s.events.node(k))),
        (status("cluster"), counts(&|k| s.events.cluster(k))),
    ])
}
