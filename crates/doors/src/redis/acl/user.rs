//! One ACL user: its rules, as `ACL SETUSER` takes them and `ACL LIST` shows them, and what
//! they allow. Redis 7.0's rules (no selectors), plus the grid's own: `group:<pattern>` (the
//! session groups the user may reach, `allgroups`, `resetgroups`) and `maxconns:<n>` (at most
//! `n` connections authenticated as the user at once; 0 is no limit).

use std::collections::BTreeSet;

use bytes::Bytes;
use sessiongrid_model::glob;
use sha2::{Digest, Sha256};

use super::categories::{self, Cats, SUBCOMMANDS};
use crate::redis::commands::{position, COMMANDS};

const WORDS: usize = COMMANDS.len().div_ceil(64);

/// A key pattern and the access it grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub pattern: Bytes,
    pub read: bool,
    pub write: bool,
}

#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub enabled: bool,
    nopass: bool,
    /// SHA-256 digests of the passwords.
    passwords: BTreeSet<[u8; 32]>,
    /// Commands allowed, one bit per entry of [`COMMANDS`].
    commands: [u64; WORDS],
    /// `container|sub` allowed although the container is not, and blocked although it is.
    allowed_subs: BTreeSet<(usize, String)>,
    blocked_subs: BTreeSet<(usize, String)>,
    /// The command rules since the last `+@all`/`-@all`, as `ACL LIST` shows them.
    command_rules: Vec<String>,
    keys: Vec<KeyPattern>,
    channels: Vec<Bytes>,
    groups: Vec<Bytes>,
    pub max_connections: usize,
}

/// Why a rule was refused (Redis' wording after `Error in ACL SETUSER modifier '...': `).
pub type RuleError = &'static str;

impl User {
    /// A new user as `ACL SETUSER name` makes it: off, no password, no access.
    pub fn new(name: &str) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            passwords: BTreeSet::new(),
            commands: [0; WORDS],
            allowed_subs: BTreeSet::new(),
            blocked_subs: BTreeSet::new(),
            command_rules: vec!["-@all".into()],
            keys: Vec::new(),
            channels: Vec::new(),
            groups: Vec::new(),
            max_connections: 0,
        }
    }

    /// The `default` user of a node without an ACL file: everything allowed, with `password`
    /// if one is configured.
    pub fn default_user(password: Option<&[u8]>) -> User {
        let mut user = User::new("default");
        for rule in ["on", "allkeys", "allchannels", "allcommands", "allgroups"] {
            user.apply(rule.as_bytes()).expect("valid rule");
        }
        match password {
            Some(pw) => user.passwords.insert(digest(pw)),
            None => std::mem::replace(&mut user.nopass, true),
        };
        user
    }

    /// Applies one rule.
    pub fn apply(&mut self, rule: &[u8]) -> Result<(), RuleError> {
        let text = std::str::from_utf8(rule).map_err(|_| "Syntax error")?;
        let lower = text.to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.passwords.clear();
                self.nopass = true;
            }
            "resetpass" => {
                self.passwords.clear();
                self.nopass = false;
            }
            "allkeys" => self.keys = vec![all_keys()],
            "resetkeys" => self.keys.clear(),
            "allchannels" => self.channels = vec![Bytes::from_static(b"*")],
            "resetchannels" => self.channels.clear(),
            "allgroups" => self.groups = vec![Bytes::from_static(b"*")],
            "resetgroups" => self.groups.clear(),
            "allcommands" => self.set_all_commands(true),
            "nocommands" => self.set_all_commands(false),
            "reset" => {
                for rule in ["resetpass", "resetkeys", "resetchannels", "resetgroups", "off"] {
                    self.apply(rule.as_bytes())?;
                }
                self.set_all_commands(false);
                self.max_connections = 0;
            }
            _ => return self.apply_prefixed(text, rule),
        }
        Ok(())
    }

    fn apply_prefixed(&mut self, text: &str, rule: &[u8]) -> Result<(), RuleError> {
        if let Some(pw) = rule.strip_prefix(b">") {
            self.passwords.insert(digest(pw));
            self.nopass = false;
        } else if let Some(pw) = rule.strip_prefix(b"<") {
            if !self.passwords.remove(&digest(pw)) {
                return Err("no such password");
            }
        } else if let Some(hex) = text.strip_prefix('#') {
            self.passwords.insert(parse_digest(hex)?);
            self.nopass = false;
        } else if let Some(hex) = text.strip_prefix('!') {
            if !self.passwords.remove(&parse_digest(hex)?) {
                return Err("no such password");
            }
        } else if let Some(pattern) = rule.strip_prefix(b"~") {
            self.add_keys(pattern, true, true);
        } else if rule.first() == Some(&b'%') {
            let (access, pattern) = text[1..].split_once('~').ok_or("Syntax error")?;
            let access = access.to_ascii_uppercase();
            let (read, write) = (access.contains('R'), access.contains('W'));
            if access.is_empty() || access.chars().any(|c| c != 'R' && c != 'W') {
                return Err("Syntax error");
            }
            self.add_keys(pattern.as_bytes(), read, write);
        } else if let Some(pattern) = rule.strip_prefix(b"&") {
            if !self.channels.iter().any(|c| c.as_ref() == b"*") {
                self.channels.push(Bytes::copy_from_slice(pattern));
            }
        } else if let Some(pattern) = text.strip_prefix("group:") {
            if !self.groups.iter().any(|g| g.as_ref() == b"*") {
                self.groups.push(Bytes::copy_from_slice(pattern.as_bytes()));
            }
        } else if let Some(n) = text.strip_prefix("maxconns:") {
            self.max_connections = n.parse().map_err(|_| "Syntax error")?;
        } else if let Some(name) = text.strip_prefix('+') {
            self.command_rule(name, true)?;
        } else if let Some(name) = text.strip_prefix('-') {
            self.command_rule(name, false)?;
        } else {
            return Err("Syntax error");
        }
        Ok(())
    }

    fn add_keys(&mut self, pattern: &[u8], read: bool, write: bool) {
        if self.keys.contains(&all_keys()) {
            return;
        }
        match self.keys.iter_mut().find(|k| k.pattern.as_ref() == pattern) {
            Some(k) => {
                k.read |= read;
                k.write |= write;
            }
            None => {
                self.keys.push(KeyPattern { pattern: Bytes::copy_from_slice(pattern), read, write })
            }
        }
    }

    fn set_all_commands(&mut self, allow: bool) {
        self.commands = if allow { [u64::MAX; WORDS] } else { [0; WORDS] };
        self.allowed_subs.clear();
        self.blocked_subs.clear();
        self.command_rules = vec![if allow { "+@all" } else { "-@all" }.into()];
    }

    /// `+name`, `-name`, `+name|sub`, `-name|sub`, `+@category`, `-@category`.
    fn command_rule(&mut self, name: &str, allow: bool) -> Result<(), RuleError> {
        const UNKNOWN: RuleError = "Unknown command or category name in ACL";
        let name = name.to_ascii_lowercase();
        if let Some(category) = name.strip_prefix('@') {
            let cats = categories::named(category).ok_or(UNKNOWN)?;
            if cats == Cats::MAX {
                self.set_all_commands(allow);
                return Ok(());
            }
            for (i, spec) in COMMANDS.iter().enumerate() {
                if categories::of(spec) & cats != 0 {
                    // Subcommands of their own categories keep what they had.
                    for &(_, sub, _) in SUBCOMMANDS.iter().filter(|(c, ..)| *c == spec.name) {
                        self.pin(i, sub, self.may_run(i, Some(sub)));
                    }
                    self.set_command(i, allow);
                }
            }
            for &(container, sub, sub_cats) in SUBCOMMANDS {
                if sub_cats & cats != 0 {
                    self.pin(position(container.as_bytes()).expect("a command"), sub, allow);
                }
            }
        } else if let Some((container, sub)) = name.split_once('|') {
            let i = position(container.as_bytes()).ok_or(UNKNOWN)?;
            if sub.is_empty() || sub.contains('|') {
                return Err("Syntax error");
            }
            self.pin(i, sub, allow);
        } else {
            let i = position(name.as_bytes()).ok_or(UNKNOWN)?;
            self.set_command(i, allow);
            self.allowed_subs.retain(|(c, _)| *c != i);
            self.blocked_subs.retain(|(c, _)| *c != i);
        }
        self.command_rules.push(format!("{}{name}", if allow { '+' } else { '-' }));
        Ok(())
    }

    /// Allows or blocks subcommand `sub` of command `i`, whatever the command's own bit says.
    fn pin(&mut self, i: usize, sub: &str, allow: bool) {
        let entry = (i, sub.to_string());
        if allow {
            self.blocked_subs.remove(&entry);
            self.allowed_subs.insert(entry);
        } else {
            self.allowed_subs.remove(&entry);
            self.blocked_subs.insert(entry);
        }
    }

    fn set_command(&mut self, i: usize, allow: bool) {
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        if allow {
            self.commands[word] |= bit;
        } else {
            self.commands[word] &= !bit;
        }
    }

    /// Whether the user may run command `i` of [`COMMANDS`] with subcommand `sub` (lower case,
    /// for container commands).
    pub fn may_run(&self, i: usize, sub: Option<&str>) -> bool {
        let whole = self.commands[i / 64] & (1u64 << (i % 64)) != 0;
        let Some(sub) = sub else { return whole };
        let entry = (i, sub.to_string());
        if self.allowed_subs.contains(&entry) {
            true
        } else if self.blocked_subs.contains(&entry) {
            false
        } else {
            whole
        }
    }

    /// Whether a command may read (`write = false`) or write `key`.
    pub fn may_access_key(&self, key: &[u8], write: bool) -> bool {
        let grants = |k: &KeyPattern| if write { k.write } else { k.read };
        self.keys.iter().any(|k| grants(k) && glob::matches(&k.pattern, key))
    }

    /// Whether the user may read any key (what `SORT`'s `BY` and `GET` patterns need).
    pub fn may_read_every_key(&self) -> bool {
        self.keys.iter().any(|k| k.read && k.pattern.as_ref() == b"*")
    }

    /// Whether the user may publish or subscribe to `channel`; for a `PSUBSCRIBE` pattern
    /// (`literal`), only one of the user's patterns itself (or `*`) allows it, as in Redis.
    pub fn may_use_channel(&self, channel: &[u8], literal: bool) -> bool {
        self.channels.iter().any(|c| {
            c.as_ref() == b"*"
                || if literal { c.as_ref() == channel } else { glob::matches(c, channel) }
        })
    }

    /// Whether the user may reach the sessions of `group`.
    pub fn may_use_group(&self, group: &[u8]) -> bool {
        self.groups.iter().any(|g| glob::matches(g, group))
    }

    /// True if nothing is denied to this user: the checks can be skipped.
    pub fn unrestricted(&self) -> bool {
        self.commands == [u64::MAX; WORDS]
            && self.blocked_subs.is_empty()
            && self.keys.contains(&all_keys())
            && self.channels.iter().any(|c| c.as_ref() == b"*")
            && self.groups.iter().any(|g| g.as_ref() == b"*")
    }

    /// True if the user may see every session group (session listings need no filtering).
    pub fn all_groups(&self) -> bool {
        self.groups.iter().any(|g| g.as_ref() == b"*")
    }

    /// Whether `password` lets a client in as this user.
    pub fn admits(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        let given = digest(password);
        // Every stored digest is compared, in time independent of where they differ.
        let matching = self
            .passwords
            .iter()
            .filter(|d| d.iter().zip(given.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0)
            .count();
        self.nopass || matching > 0
    }

    /// Whether anyone may connect as this user without a password.
    pub fn open(&self) -> bool {
        self.enabled && self.nopass
    }

    /// The user's rules, as `ACL LIST` and the ACL file write them (passwords as digests).
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("user {}", self.name)];
        parts.push(if self.enabled { "on" } else { "off" }.into());
        if self.nopass {
            parts.push("nopass".into());
        }
        parts.extend(self.passwords.iter().map(|d| format!("#{}", hex(d))));
        parts.push(self.keys_rule());
        parts.push(self.channels_rule());
        parts.push(self.commands_rule());
        parts.push(self.groups_rule());
        if self.max_connections > 0 {
            parts.push(format!("maxconns:{}", self.max_connections));
        }
        parts.retain(|p| !p.is_empty());
        parts.join(" ")
    }

    pub fn password_digests(&self) -> Vec<String> {
        self.passwords.iter().map(|d| hex(d)).collect()
    }

    pub fn flags(&self) -> Vec<&'static str> {
        let mut flags = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            flags.push("nopass");
        }
        flags
    }

    pub fn keys_rule(&self) -> String {
        let pattern = |k: &KeyPattern| {
            let access = match (k.read, k.write) {
                (true, true) => "~",
                (true, false) => "%R~",
                _ => "%W~",
            };
            format!("{access}{}", String::from_utf8_lossy(&k.pattern))
        };
        self.keys.iter().map(pattern).collect::<Vec<_>>().join(" ")
    }

    pub fn channels_rule(&self) -> String {
        let channels = self.channels.iter().map(|c| format!("&{}", String::from_utf8_lossy(c)));
        std::iter::once("resetchannels".to_string())
            .filter(|_| !self.channels.iter().any(|c| c.as_ref() == b"*"))
            .chain(channels)
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn commands_rule(&self) -> String {
        self.command_rules.join(" ")
    }

    pub fn groups_rule(&self) -> String {
        self.groups
            .iter()
            .map(|g| format!("group:{}", String::from_utf8_lossy(g)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn all_keys() -> KeyPattern {
    KeyPattern { pattern: Bytes::from_static(b"*"), read: true, write: true }
}

fn digest(password: &[u8]) -> [u8; 32] {
    Sha256::digest(password).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_digest(text: &str) -> Result<[u8; 32], RuleError> {
    const BAD: RuleError = "The password hash must be exactly 64 characters and contain only \
                            lowercase hexadecimal characters";
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(BAD);
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| BAD)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &str) -> User {
        let mut u = User::new("u");
        for rule in rules.split_whitespace() {
            u.apply(rule.as_bytes()).unwrap_or_else(|e| panic!("{rule}: {e}"));
        }
        u
    }

    fn index(name: &str) -> usize {
        position(name.as_bytes()).unwrap()
    }

    #[test]
    fn commands_follow_the_rules_in_order() {
        let u = user("+@hash -hdel +get +config|get");
        assert!(u.may_run(index("hset"), None));
        assert!(!u.may_run(index("hdel"), None));
        assert!(u.may_run(index("get"), None));
        assert!(!u.may_run(index("set"), None));
        assert!(u.may_run(index("config"), Some("get")));
        assert!(!u.may_run(index("config"), Some("set")));
        assert_eq!(u.commands_rule(), "-@all +@hash -hdel +get +config|get");
        let u = user("+@all -config|set");
        assert!(
            u.may_run(index("config"), Some("get")) && !u.may_run(index("config"), Some("set"))
        );
        assert_eq!(user("+@all -@all +ping").commands_rule(), "-@all +ping");
        let u = user("+@all -@dangerous");
        assert!(
            u.may_run(index("client"), Some("setname"))
                && !u.may_run(index("client"), Some("kill"))
        );
        let u = user("+@all -@admin");
        assert!(
            u.may_run(index("acl"), Some("whoami")) && !u.may_run(index("acl"), Some("setuser"))
        );
        let u = user("-@all +@connection");
        assert!(u.may_run(index("client"), Some("kill")), "CLIENT KILL is a connection command");
        assert!(!u.may_run(index("acl"), Some("whoami")));
    }

    #[test]
    fn keys_are_checked_for_the_access_they_grant() {
        let u = user("~shop:* %R~catalog:*");
        assert!(u.may_access_key(b"shop:1", true) && u.may_access_key(b"shop:1", false));
        assert!(u.may_access_key(b"catalog:9", false) && !u.may_access_key(b"catalog:9", true));
        assert!(!u.may_access_key(b"bank:1", false));
        assert_eq!(u.keys_rule(), "~shop:* %R~catalog:*");
    }

    #[test]
    fn passwords_are_kept_as_digests_and_checked() {
        let u = user("on >secret");
        assert!(u.admits(b"secret") && !u.admits(b"other"));
        let line = u.describe();
        assert!(!line.contains("secret") && line.contains(&hex(&digest(b"secret"))), "{line}");
        let hashed = user(&format!("on #{}", hex(&digest(b"secret"))));
        assert!(hashed.admits(b"secret"));
        assert!(!user("off >secret").admits(b"secret"), "a disabled user is refused");
        assert!(user("on nopass").admits(b"anything"));
        let mut u = user("on >a >b");
        u.apply(b"<a").unwrap();
        assert!(!u.admits(b"a") && u.admits(b"b"));
        assert_eq!(u.apply(b"<zzz"), Err("no such password"));
    }

    #[test]
    fn bad_rules_are_refused() {
        let mut u = User::new("u");
        for rule in ["+nosuchcommand", "+@nosuchcategory", "#abc", "%X~k", "maxconns:x", "what"] {
            assert!(u.apply(rule.as_bytes()).is_err(), "{rule}");
        }
    }

    #[test]
    fn a_described_user_reads_back_the_same() {
        let u = user("on >pw ~shop:* %R~cat:* &orders:* +@read -keys group:shop maxconns:5");
        let mut again = User::new("u");
        for rule in u.describe().split_whitespace().skip(2) {
            again.apply(rule.as_bytes()).unwrap();
        }
        assert_eq!(again.describe(), u.describe());
        assert!(again.may_use_group(b"shop") && !again.may_use_group(b"bank"));
        assert!(again.may_use_channel(b"orders:1", false));
        assert!(!again.may_use_channel(b"orders:*x", true), "a pattern must be the user's own");
        assert_eq!(again.max_connections, 5);
        assert!(User::default_user(None).unrestricted());
        assert!(!u.unrestricted());
    }
}
