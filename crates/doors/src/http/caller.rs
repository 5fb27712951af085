//! Who calls the API, and what they may do. The admin token (`Authorization: Bearer`) may do
//! everything; an ACL user (`Authorization: Basic`, its name and password) may make the calls
//! whose Redis command its rules allow (listing sessions is `SESSION.LIST`, draining a node
//! `SHUTDOWN`...), on the session groups its `group:` rules allow, as through the Redis door.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sessiongrid_grid::Sessions;

use crate::json;
use crate::redis::acl::{Acl, User};
use crate::redis::commands::position;

/// The caller of a request, put in its extensions once its credentials are checked.
#[derive(Clone)]
pub enum Caller {
    /// The admin token, or anyone when the node has none.
    Admin,
    User(Arc<User>),
}

impl Caller {
    pub fn name(&self) -> &str {
        match self {
            Caller::Admin => "admin",
            Caller::User(u) => &u.name,
        }
    }

    /// May the caller reach the sessions of `group`?
    pub fn check_group(&self, group: &[u8]) -> Result<(), Denied> {
        match self {
            Caller::User(u) if !u.may_use_group(group) => {
                Err(Denied("this user may not reach the sessions of this group"))
            }
            _ => Ok(()),
        }
    }

    /// [`Caller::check_group`] for the group session `id` is in (none: nothing to protect).
    pub async fn check_session(&self, sessions: &Sessions, id: &str) -> Result<(), Denied> {
        if self.all_groups() {
            return Ok(());
        }
        match sessions.peek(id.as_bytes()).await {
            Ok(Some(s)) => self.check_group(&s.group),
            _ => Ok(()),
        }
    }

    /// A listing over every group: only for a caller that may see every group.
    pub fn check_listing(&self, group: Option<&str>) -> Result<(), Denied> {
        match group {
            Some(g) => self.check_group(g.as_bytes()),
            None if self.all_groups() => Ok(()),
            None => Err(Denied("this user is limited to some session groups: name a group")),
        }
    }

    pub fn all_groups(&self) -> bool {
        match self {
            Caller::Admin => true,
            Caller::User(u) => u.all_groups(),
        }
    }

    pub fn sees(&self, group: &[u8]) -> bool {
        self.check_group(group).is_ok()
    }
}

/// A call the caller may not make: answered 403 with why.
#[derive(Debug)]
pub struct Denied(pub &'static str);

impl From<Denied> for Response {
    fn from(denied: Denied) -> Response {
        forbidden(denied.0)
    }
}

pub fn forbidden(message: &str) -> Response {
    (StatusCode::FORBIDDEN, json::error("forbidden", message)).into_response()
}

/// The ACL user whose name and password an `Authorization: Basic` value carries, if they
/// are right.
pub fn basic_user(acl: &Acl, value: &[u8]) -> Option<Arc<User>> {
    let encoded = value.strip_prefix(b"Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let (name, password) = (&decoded[..colon], &decoded[colon + 1..]);
    let user = acl.user(std::str::from_utf8(name).ok()?)?;
    user.admits(password).then_some(user)
}

/// Whether `user` may make the call `method path` (below `/api/v1`): the Redis command that
/// does the same must be allowed to it.
pub fn may_call(user: &User, method: &Method, path: &str) -> bool {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let command = match (method.as_str(), parts.as_slice()) {
        ("GET", ["sessions"]) => "session.list",
        ("POST", ["sessions"]) => "session.create",
        ("GET", ["sessions", _]) => "session.get",
        ("POST", ["sessions", _]) => "session.set",
        ("DELETE", ["sessions", _]) => "session.invalidate",
        ("POST", ["sessions", _, "rotate"]) => "session.rotate",
        ("POST", ["sessions", _, "login"]) => "session.login",
        ("POST", ["sessions", _, "logout"]) => "session.logout",
        ("GET", ["users"]) | ("GET", ["stats"]) => "session.stats",
        ("GET", ["users", _, "sessions"]) => "session.byuser",
        ("DELETE", ["users", _, "sessions"]) => "session.kickuser",
        ("GET", ["events"]) => "session.subscribe",
        ("GET", ["cluster"]) | ("GET", ["partitions"]) => "info",
        ("POST", ["nodes", _, _]) => "shutdown",
        _ => return user.unrestricted(),
    };
    position(command.as_bytes()).is_some_and(|i| user.may_run(i, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_calls_what_its_commands_allow() {
        let acl = Acl::new(None, None).unwrap();
        let rules = ["on", ">pw", "-@all", "+@session", "-session.kickuser", "group:shop"];
        acl.set_user("shop", &rules.map(|r| bytes::Bytes::from_static(r.as_bytes()))).unwrap();
        let header =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("shop:pw"));
        let user = basic_user(&acl, header.as_bytes()).expect("right password");
        assert!(basic_user(&acl, b"Basic c2hvcDp4").is_none(), "shop:x is refused");
        assert!(may_call(&user, &Method::GET, "/sessions/abc"));
        assert!(!may_call(&user, &Method::DELETE, "/users/erin/sessions"));
        assert!(!may_call(&user, &Method::POST, "/nodes/1/drain"));
        let caller = Caller::User(user);
        assert!(caller.check_group(b"shop").is_ok() && caller.check_group(b"bank").is_err());
        assert!(caller.check_listing(None).is_err() && Caller::Admin.check_listing(None).is_ok());
    }
}
