//! `ACL WHOAMI|USERS|LIST|GETUSER|CAT|DRYRUN|SETUSER|DELUSER|SAVE|LOAD|LOG|GENPASS|HELP`.
//! The users live in the door's [`Acl`](crate::redis::acl::Acl); the same rules apply on every
//! node that loads the same ACL file (`ACL SAVE` writes this node's).

use bytes::Bytes;
use sessiongrid_model::Reply;

use super::{position, CmdResult, Ctx, COMMANDS};
use crate::redis::acl::categories::{self, CATEGORIES};
use crate::redis::acl::check;

pub fn acl(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = ctx.args.text(1).to_ascii_lowercase();
    let acl = &ctx.shared.config.acl;
    let argc = ctx.args.len();
    let arity =
        || Err(Reply::error(format!("ERR wrong number of arguments for 'acl|{sub}' command")));
    let bulk = |s: String| Reply::Bulk(Bytes::from(s));
    match sub.as_str() {
        "whoami" if argc == 2 => Ok(bulk(ctx.client.user.name.clone())),
        "users" if argc == 2 => {
            Ok(Reply::Array(acl.users().iter().map(|u| bulk(u.name.clone())).collect()))
        }
        "list" if argc == 2 => {
            Ok(Reply::Array(acl.users().iter().map(|u| bulk(u.describe())).collect()))
        }
        "getuser" if argc == 3 => {
            let Some(user) = acl.user(&ctx.args.text(2)) else { return Ok(Reply::Nil) };
            let text = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
            let list = |items: Vec<String>| Reply::Array(items.into_iter().map(bulk).collect());
            Ok(Reply::Map(vec![
                (text("flags"), list(user.flags().into_iter().map(String::from).collect())),
                (text("passwords"), list(user.password_digests())),
                (text("commands"), bulk(user.commands_rule())),
                (text("keys"), bulk(user.keys_rule())),
                (text("channels"), bulk(user.channels_rule())),
                (text("selectors"), Reply::Array(vec![])),
                (text("groups"), bulk(user.groups_rule())),
                (text("maxconns"), Reply::Int(user.max_connections as i64)),
            ]))
        }
        "cat" if argc == 2 => {
            Ok(Reply::Array(CATEGORIES.iter().map(|(name, _)| bulk(name.to_string())).collect()))
        }
        "cat" if argc == 3 => {
            let name = ctx.args.text(2);
            let Some(cats) = categories::named(&name) else {
                return Err(Reply::error(format!("ERR Unknown category '{name}'")));
            };
            let members = COMMANDS.iter().filter(|s| categories::of(s) & cats != 0);
            Ok(Reply::Array(members.map(|s| bulk(s.name.to_string())).collect()))
        }
        "dryrun" if argc >= 4 => {
            let name = ctx.args.text(2);
            let Some(user) = acl.user(&name) else {
                return Err(Reply::error(format!("ERR User '{name}' not found")));
            };
            let args: Vec<Bytes> = ctx.args.from(3).to_vec();
            let Some(index) = position(&args[0]) else {
                return Err(Reply::error(format!("ERR Command '{}' not found", ctx.args.text(3))));
            };
            if !COMMANDS[index].arity_fits(args.len()) {
                return Err(Reply::error(format!(
                    "ERR wrong number of arguments for '{}' command",
                    COMMANDS[index].name
                )));
            }
            Ok(match check::check(&user, index, &args) {
                Ok(()) => Reply::Ok,
                Err(denied) => bulk(denied_text(&name, &denied)),
            })
        }
        "setuser" if argc >= 3 => {
            let name = ctx.args.text(2);
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(Reply::error("ERR Usernames can't contain spaces or null characters"));
            }
            acl.set_user(&name, ctx.args.from(3)).map_err(|e| Reply::error(format!("ERR {e}")))?;
            Ok(Reply::Ok)
        }
        "deluser" if argc >= 3 => {
            let names: Vec<String> = (2..argc).map(|i| ctx.args.text(i)).collect();
            let gone = acl.delete_users(&names).map_err(|e| Reply::error(format!("ERR {e}")))?;
            Ok(Reply::Int(gone as i64))
        }
        "save" if argc == 2 => {
            acl.save().map(|()| Reply::Ok).map_err(|e| Reply::error(format!("ERR {e}")))
        }
        "load" if argc == 2 => {
            acl.load().map(|()| Reply::Ok).map_err(|e| Reply::error(format!("ERR {e}")))
        }
        "log" if argc <= 3 => {
            if argc == 3 && ctx.args.is(2, "reset") {
                acl.reset_log();
                return Ok(Reply::Ok);
            }
            let count = if argc == 3 {
                usize::try_from(ctx.args.int(2)?)
                    .map_err(|_| Reply::error("ERR value is out of range, must be positive"))?
            } else {
                10
            };
            Ok(Reply::Array(acl.denials(count).into_iter().map(log_entry).collect()))
        }
        "genpass" if argc <= 3 => {
            let bits = if argc == 3 { ctx.args.int(2)? } else { 256 };
            if !(1..=4096).contains(&bits) {
                return Err(Reply::error(
                    "ERR ACL GENPASS argument must be the number of bits for the output password, \
                     a positive number up to 4096",
                ));
            }
            let bytes: Vec<u8> = (0..(bits as usize).div_ceil(8)).map(|_| rand::random()).collect();
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            Ok(bulk(hex[..(bits as usize).div_ceil(4)].to_string()))
        }
        "help" if argc == 2 => Ok(Reply::Array(HELP.iter().map(|l| bulk(l.to_string())).collect())),
        "whoami" | "users" | "list" | "getuser" | "cat" | "dryrun" | "setuser" | "deluser"
        | "save" | "load" | "log" | "genpass" | "help" => arity(),
        _ => Err(Reply::error(format!(
            "ERR unknown subcommand '{}'. Try ACL HELP.",
            ctx.args.text(1)
        ))),
    }
}

/// `ACL DRYRUN`'s answer for a refused command, in Redis' words.
fn denied_text(user: &str, denied: &check::Denied) -> String {
    let lossy = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    match denied {
        check::Denied::Command(name) => {
            format!("User {user} has no permissions to run the '{name}' command")
        }
        check::Denied::Key(k) => {
            format!("User {user} has no permissions to access the '{}' key", lossy(k))
        }
        check::Denied::Channel(c) => {
            format!("User {user} has no permissions to access the '{}' channel", lossy(c))
        }
    }
}

fn log_entry(d: crate::redis::acl::Denial) -> Reply {
    let text = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    let age = d.at.elapsed().as_secs_f64();
    Reply::Map(vec![
        (text("count"), Reply::Int(d.count as i64)),
        (text("reason"), text(d.reason)),
        (text("context"), text(d.context)),
        (text("object"), text(&d.object)),
        (text("username"), text(&d.username)),
        (text("age-seconds"), text(&format!("{age:.3}"))),
        (text("client-info"), text(&d.client_info)),
    ])
}

const HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "Session groups: group:<pattern> lets a user reach the sessions of matching groups,",
    "    allgroups every group, resetgroups none; maxconns:<n> caps its connections.",
];
