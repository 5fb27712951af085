//! Access control: Redis 6/7 ACL users, checked on every command of a client that is not
//! allowed everything.
//!
//! - [`Acl`]: the door's users (from the ACL file, or the `default` user with the configured
//!   password), the connections each has open, and the log of refusals (`ACL LOG`).
//! - [`user`]: one user's rules and what they allow; [`categories`]: command categories;
//!   [`check`]: a command's keys, channels and subcommand checked against a user.
//!
//! A user's rules change for its open connections at once: a connection fetches its user
//! again when the registry's version moved. A deleted user's connections are closed.

pub mod categories;
pub mod check;
mod file;
pub mod user;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use bytes::Bytes;

pub use user::User;

/// Refusals kept for `ACL LOG`.
const LOG_MAX: usize = 128;

pub struct Acl {
    users: RwLock<BTreeMap<String, Arc<User>>>,
    version: AtomicU64,
    /// Where `ACL SAVE` writes and `ACL LOAD` reads, if anywhere.
    file: Option<PathBuf>,
    /// The `default` user's password when the ACL file does not name it.
    password: Option<Bytes>,
    connections: Arc<Mutex<HashMap<String, usize>>>,
    log: Mutex<VecDeque<Denial>>,
}

/// One line of `ACL LOG`: a refusal, and how often it repeated.
#[derive(Clone, Debug)]
pub struct Denial {
    pub count: u64,
    /// `command`, `key`, `channel`, `auth` or `group`.
    pub reason: &'static str,
    /// `toplevel`, `multi` or `lua`.
    pub context: &'static str,
    pub object: String,
    pub username: String,
    pub at: Instant,
    pub client_info: String,
}

/// A connection counted against its user's `maxconns:`; dropping it uncounts it.
#[derive(Debug)]
pub struct Slot {
    user: String,
    connections: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.connections.lock().expect("acl connections lock");
        if let Some(n) = counts.get_mut(&self.user) {
            *n = n.saturating_sub(1);
        }
    }
}

impl Acl {
    /// The users of `file` if given (it must exist), else the `default` user alone; the
    /// `default` user gets `password` unless the file names it (both is refused: which one
    /// holds would be a guess).
    pub fn new(password: Option<Bytes>, file: Option<PathBuf>) -> Result<Acl, String> {
        let acl = Acl {
            users: RwLock::new(BTreeMap::new()),
            version: AtomicU64::new(0),
            file,
            password,
            connections: Default::default(),
            log: Mutex::new(VecDeque::new()),
        };
        match &acl.file {
            Some(_) => acl.load()?,
            None => acl.install(BTreeMap::new())?,
        }
        Ok(acl)
    }

    /// Reads the ACL file again, replacing every user; on any error nothing changes.
    pub fn load(&self) -> Result<(), String> {
        let path = self.file.as_ref().ok_or("There is no configured ACL file")?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("Error loading ACLs, opening file '{}': {e}", path.display()))?;
        self.install(file::parse(&text)?)
    }

    /// Writes every user to the ACL file (replacing it whole, readable by its owner only).
    pub fn save(&self) -> Result<(), String> {
        let path = self.file.as_ref().ok_or("There is no configured ACL file")?;
        file::write(path, &self.users()).map_err(|e| format!("Error saving ACLs: {e}"))
    }

    fn install(&self, mut users: BTreeMap<String, Arc<User>>) -> Result<(), String> {
        if users.contains_key("default") && self.password.is_some() {
            return Err("the ACL file names the default user and a password is configured \
                        too (requirepass): keep one of them"
                .into());
        }
        users
            .entry("default".into())
            .or_insert_with(|| Arc::new(User::default_user(self.password.as_deref())));
        *self.users.write().expect("acl lock") = users;
        self.version.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Moves with every change of any user.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn user(&self, name: &str) -> Option<Arc<User>> {
        self.users.read().expect("acl lock").get(name).cloned()
    }

    pub fn default_user(&self) -> Arc<User> {
        self.user("default").expect("the default user always exists")
    }

    pub fn users(&self) -> Vec<Arc<User>> {
        self.users.read().expect("acl lock").values().cloned().collect()
    }

    /// True if a client must authenticate: the default user needs a password or is off.
    pub fn credentials_required(&self) -> bool {
        !self.default_user().open()
    }

    /// `ACL SETUSER name rules...`: all rules apply, or none (the first bad one is named).
    pub fn set_user(&self, name: &str, rules: &[Bytes]) -> Result<(), String> {
        let mut users = self.users.write().expect("acl lock");
        let mut user = users.get(name).map_or_else(|| User::new(name), |u| (**u).clone());
        for rule in rules {
            user.apply(rule).map_err(|why| {
                let rule = String::from_utf8_lossy(rule);
                format!("Error in ACL SETUSER modifier '{rule}': {why}")
            })?;
        }
        users.insert(name.to_string(), Arc::new(user));
        self.version.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// `ACL DELUSER names...`: how many existed.
    pub fn delete_users(&self, names: &[String]) -> Result<usize, String> {
        if names.iter().any(|n| n == "default") {
            return Err("The 'default' user cannot be removed".into());
        }
        let mut users = self.users.write().expect("acl lock");
        let gone = names.iter().filter(|n| users.remove(n.as_str()).is_some()).count();
        self.version.fetch_add(1, Ordering::Release);
        Ok(gone)
    }

    /// Counts a connection against `user`'s limit; `None` if it has as many as it may.
    pub fn connect(&self, user: &User) -> Option<Slot> {
        let mut counts = self.connections.lock().expect("acl connections lock");
        let n = counts.entry(user.name.clone()).or_insert(0);
        if user.max_connections > 0 && *n >= user.max_connections {
            return None;
        }
        *n += 1;
        Some(Slot { user: user.name.clone(), connections: self.connections.clone() })
    }

    /// Records a refusal for `ACL LOG` (a repeat of a recent one is counted on it).
    pub fn log_denial(&self, denial: Denial) {
        let mut log = self.log.lock().expect("acl log lock");
        let same = log.iter_mut().find(|d| {
            (d.reason, d.context, &d.object, &d.username)
                == (denial.reason, denial.context, &denial.object, &denial.username)
                && d.at.elapsed().as_secs() < 60
        });
        match same {
            Some(d) => {
                d.count += 1;
                d.at = denial.at;
                d.client_info = denial.client_info;
            }
            None => {
                log.push_front(denial);
                log.truncate(LOG_MAX);
            }
        }
        metrics::counter!("sessiongrid_acl_denials_total").increment(1);
    }

    /// The `count` most recent refusals, newest first.
    pub fn denials(&self, count: usize) -> Vec<Denial> {
        self.log.lock().expect("acl log lock").iter().take(count).cloned().collect()
    }

    pub fn reset_log(&self) {
        self.log.lock().expect("acl log lock").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_file_the_default_user_has_the_password() {
        let acl = Acl::new(None, None).unwrap();
        assert!(!acl.credentials_required());
        let acl = Acl::new(Some(Bytes::from_static(b"pw")), None).unwrap();
        assert!(acl.credentials_required());
        assert!(acl.default_user().admits(b"pw"));
    }

    #[test]
    fn a_bad_rule_changes_nothing() {
        let acl = Acl::new(None, None).unwrap();
        acl.set_user("app", &[Bytes::from_static(b"on"), Bytes::from_static(b">pw")]).unwrap();
        let before = acl.user("app").unwrap().describe();
        let version = acl.version();
        let bad = acl.set_user("app", &[Bytes::from_static(b"~x"), Bytes::from_static(b"+nope")]);
        assert_eq!(
            bad.unwrap_err(),
            "Error in ACL SETUSER modifier '+nope': Unknown command or category name in ACL"
        );
        assert_eq!(acl.user("app").unwrap().describe(), before);
        assert_eq!(acl.version(), version);
        assert!(acl.delete_users(&["default".into()]).is_err());
        assert_eq!(acl.delete_users(&["app".into(), "ghost".into()]), Ok(1));
    }

    #[test]
    fn connections_beyond_a_users_limit_are_refused() {
        let acl = Acl::new(None, None).unwrap();
        acl.set_user("app", &[Bytes::from_static(b"on"), Bytes::from_static(b"maxconns:2")])
            .unwrap();
        let app = acl.user("app").unwrap();
        let (a, _b) = (acl.connect(&app).unwrap(), acl.connect(&app).unwrap());
        assert!(acl.connect(&app).is_none());
        drop(a);
        assert!(acl.connect(&app).is_some());
    }
}
