//! The ACL file: one `user <name> <rules...>` line per user, as `ACL LIST` shows them
//! (passwords as their SHA-256 digests). Blank lines are skipped; anything else is an error
//! naming its line, and a file with an error loads nothing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use super::User;

pub fn parse(text: &str) -> Result<BTreeMap<String, Arc<User>>, String> {
    let mut users = BTreeMap::new();
    for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some("user"), Some(name)) = (words.next(), words.next()) else {
            return Err(format!("ACL file line {n}: should start with the user keyword"));
        };
        if users.contains_key(name) {
            return Err(format!("ACL file line {n}: user '{name}' is defined twice"));
        }
        let mut user = User::new(name);
        for rule in words {
            user.apply(rule.as_bytes())
                .map_err(|why| format!("ACL file line {n}: error in rule '{rule}': {why}"))?;
        }
        users.insert(name.to_string(), Arc::new(user));
    }
    Ok(users)
}

/// Replaces `path` with `users`, through a temporary file renamed over it.
pub fn write(path: &Path, users: &[Arc<User>]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        for user in users {
            writeln!(f, "{}", user.describe())?;
        }
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_file_reads_back_and_keeps_no_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.acl");
        let users =
            parse("user shop on >s3cret ~shop:* +@all group:shop\n\nuser ops off\n").unwrap();
        write(&path, &users.values().cloned().collect::<Vec<_>>()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        let again = parse(&text).unwrap();
        assert!(again["shop"].admits(b"s3cret"));
        assert_eq!(again["shop"].describe(), users["shop"].describe());
    }

    #[test]
    fn an_error_names_its_line() {
        assert_eq!(
            parse("user a on\nbogus\n").unwrap_err(),
            "ACL file line 2: should start with the user keyword"
        );
        assert!(parse("user a on +nope").unwrap_err().contains("line 1"));
        assert!(parse("user a on\nuser a off").unwrap_err().contains("twice"));
    }
}
