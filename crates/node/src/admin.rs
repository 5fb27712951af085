//! Operator commands that talk to a running node's HTTP API: `status`, `sessions --user`,
//! `kick --user`, `drain`, `forget`. Each prints a table, or the API's JSON with `--json`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;
use sessiongrid_client::{Io, Tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use sessiongrid_embedded::secrets;

/// Which node to ask, and how to print.
#[derive(Args, Debug)]
pub struct Target {
    /// The node's HTTP address (`http_listen`).
    #[arg(long, env = "SESSIONGRID_HTTP", default_value = "127.0.0.1:7070")]
    pub http: String,
    /// File holding the node's admin token, if it has one.
    #[arg(long, env = "SESSIONGRID_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// CA certificates (PEM) that issued the node's HTTPS certificate (`http_tls`); given, the
    /// command speaks HTTPS and checks the node's certificate against them.
    #[arg(long, env = "SESSIONGRID_HTTPS_CA_FILE")]
    pub https_ca_file: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug)]
pub enum AdminCommand {
    Status,
    Sessions { user: String },
    Kick { user: String },
    Drain { node: String },
    Forget { node: String },
}

struct Client {
    addr: String,
    token: Option<String>,
    tls: Option<Tls>,
}

impl Client {
    /// One HTTP/1.1 request; the API answers JSON with a length, then closes.
    async fn call(&self, method: &str, path: &str) -> anyhow::Result<(u16, Value)> {
        let tcp = TcpStream::connect(&self.addr)
            .await
            .with_context(|| format!("connecting to the node's http address {}", self.addr))?;
        let mut stream: Box<dyn Io> = match &self.tls {
            None => Box::new(tcp),
            Some(tls) => Box::new(
                tls.connect(&self.addr, tcp)
                    .await
                    .with_context(|| format!("TLS handshake with {}", self.addr))?,
            ),
        };
        let auth = self.token.as_ref().map(|t| format!("Authorization: Bearer {t}\r\n"));
        let request = format!(
            "{method} /api/v1{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n{}\r\n",
            self.addr,
            auth.unwrap_or_default()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").context("no http header")?;
        let head = String::from_utf8_lossy(&raw[..split]);
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("no http status")?;
        let body = &raw[split + 4..];
        let value = if body.is_empty() { Value::Null } else { serde_json::from_slice(body)? };
        if !(200..300).contains(&status) {
            let message = value["message"].as_str().unwrap_or("(no message)");
            bail!("the node answered {status}: {message}");
        }
        Ok((status, value))
    }

    /// `POST /nodes/{node}/{action}`; returns the answer and the node id it names in `field`.
    async fn node_action(
        &self,
        node: &str,
        action: &str,
        field: &str,
    ) -> anyhow::Result<(Value, String)> {
        let (_, answer) = self.call("POST", &format!("/nodes/{}/{action}", escape(node))).await?;
        let id = answer[field].as_str().unwrap_or(node).to_string();
        Ok((answer, id))
    }
}

pub async fn run(args: Target, command: AdminCommand) -> anyhow::Result<()> {
    let token = args
        .admin_token_file
        .as_deref()
        .map(secrets::read_secret)
        .transpose()?
        .map(|t| String::from_utf8_lossy(&t).into_owned());
    let tls = match &args.https_ca_file {
        Some(ca) => Some(Tls::from_pem_files(ca, None)?),
        None => None,
    };
    let client = Client { addr: args.http.clone(), token, tls };
    // Each command gives the API's JSON and the text a person reads; `--json` picks the first.
    let (json, text) = match &command {
        AdminCommand::Status => {
            let (_, cluster) = client.call("GET", "/cluster").await?;
            // Session figures need every partition; the cluster's shape is worth showing
            // without them (when partitions wait for lost nodes, say).
            let stats = match client.call("GET", "/stats").await {
                Ok((_, stats)) => stats,
                Err(e) => serde_json::json!({ "error": e.to_string() }),
            };
            let text = status_table(&cluster, &stats);
            (serde_json::json!({ "cluster": cluster, "stats": stats }), text)
        }
        AdminCommand::Sessions { user } => {
            let (_, sessions) =
                client.call("GET", &format!("/users/{}/sessions", escape(user))).await?;
            let text = sessions_table(&sessions);
            (sessions, text)
        }
        AdminCommand::Kick { user } => {
            let (_, kicked) =
                client.call("DELETE", &format!("/users/{}/sessions", escape(user))).await?;
            let text = format!("ended {} session(s) of {user}", kicked["ended"]);
            (kicked, text)
        }
        AdminCommand::Drain { node } => {
            let (drained, id) = client.node_action(node, "drain", "draining").await?;
            (drained, format!("node {id} is handing its partitions over and will stop"))
        }
        AdminCommand::Forget { node } => {
            let (forgotten, id) = client.node_action(node, "forget", "forgotten").await?;
            (forgotten, format!("node {id} is forgotten: partitions only it held start empty"))
        }
    };
    let out = if args.json { json.to_string() } else { text };
    println!("{out}");
    Ok(())
}

/// Percent-encodes a path segment.
fn escape(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn status_table(cluster: &Value, stats: &Value) -> String {
    let mut out = String::new();
    let yes = |b: &Value| if b.as_bool() == Some(true) { "yes" } else { "no" };
    out += &format!(
        "node {}  epoch {}  coordinator {}  serving {}  moving partitions {}\n\n",
        text(&cluster["node"]),
        cluster["epoch"],
        text(&cluster["coordinator"]),
        yes(&cluster["serving"]),
        cluster["moving_partitions"],
    );
    out += &format!(
        "{:<18} {:<12} {:>9} {:>7}  {}\n",
        "MEMBER", "ROLE", "PRIMARIES", "COPIES", "STATE"
    );
    for m in cluster["members"].as_array().into_iter().flatten() {
        let role = if m["coordinator"].as_bool() == Some(true) { "coordinator" } else { "member" };
        let state = match (m["lite"].as_bool(), m["leaving"].as_bool()) {
            (Some(true), _) => "lite",
            (_, Some(true)) => "leaving",
            _ => "up",
        };
        let mut state = state.to_string();
        if m["self"].as_bool() == Some(true) {
            state += " (this node)";
        }
        out += &format!(
            "{:<18} {:<12} {:>9} {:>7}  {}\n",
            text(&m["id"]),
            role,
            m["primaries"],
            m["copies"],
            state
        );
    }
    let lost: Vec<String> = cluster["lost"].as_array().into_iter().flatten().map(text).collect();
    if !lost.is_empty() {
        out += &format!(
            "\nLOST {}: {} partition(s) wait for them (sessiongrid forget NODE gives them up)\n",
            lost.join(" "),
            cluster["unowned_partitions"]
        );
    }
    if let Some(error) = stats["error"].as_str() {
        return out + &format!("\nsessions: unknown ({error})");
    }
    out += &format!("\nsessions live: {}\n", stats["live"]);
    out += &format!("{:<18} {:>12} {:>12}\n", "EVENTS", "THIS NODE", "CLUSTER");
    if let Some(kinds) = stats["node"].as_object() {
        for (kind, n) in kinds {
            out += &format!("{:<18} {:>12} {:>12}\n", kind, n, stats["cluster"][kind]);
        }
    }
    out += &format!("{:<18} {:>12}\n", "logins-rejected", stats["logins_rejected"]);
    out.trim_end().to_string()
}

fn sessions_table(sessions: &Value) -> String {
    let list = sessions.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return "no live sessions".into();
    }
    let mut out = format!(
        "{:<28} {:<16} {:>15} {:>15} {:>15}\n",
        "ID", "GROUP", "CREATED", "LAST ACCESS", "EXPIRES AT"
    );
    for s in &list {
        out += &format!(
            "{:<28} {:<16} {:>15} {:>15} {:>15}\n",
            text(&s["id"]),
            text(&s["group"]),
            s["created"],
            s["last_access"],
            s["expires_at"]
        );
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(escape("alice"), "alice");
        assert_eq!(escape("a b/c@d"), "a%20b%2Fc%40d");
    }
}
