//! [`Remote`]: grid nodes over their Redis door — a small RESP2 client with a pool of
//! connections and failover across the nodes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Connections kept idle per store.
const IDLE_MAX: usize = 32;
/// How long one attempt may take; a call tries each node once more after a failure.
const ATTEMPT: Duration = Duration::from_secs(2);
/// Most bytes of one reply, and of one line of it (a type and a length, or a status).
const REPLY_BYTES_MAX: usize = 64 * 1024 * 1024;
const LINE_BYTES_MAX: u64 = 64 * 1024;

/// Grid nodes' Redis doors, e.g. `["10.0.0.5:6379", "10.0.0.6:6379"]`; cheap to clone.
#[derive(Clone)]
pub struct Remote {
    inner: Arc<Inner>,
}

struct Inner {
    addresses: Vec<String>,
    password: Option<Bytes>,
    idle: Mutex<Vec<Conn>>,
    next: AtomicUsize,
}

type Conn = BufReader<TcpStream>;

#[derive(Debug, PartialEq)]
enum Value {
    Nil,
    Int(i64),
    Bulk(Bytes),
    Array(Vec<Value>),
}

fn broken(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

impl Remote {
    pub fn new(addresses: Vec<String>, password: Option<Bytes>) -> Remote {
        Remote {
            inner: Arc::new(Inner {
                addresses,
                password,
                idle: Mutex::new(Vec::new()),
                next: AtomicUsize::new(0),
            }),
        }
    }

    async fn connect(&self) -> io::Result<Conn> {
        let n = self.inner.addresses.len();
        let mut last = broken("no grid address");
        for _ in 0..n {
            let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % n;
            let address = &self.inner.addresses[i];
            match tokio::time::timeout(ATTEMPT, TcpStream::connect(address)).await {
                Ok(Ok(stream)) => {
                    stream.set_nodelay(true)?;
                    let mut conn = BufReader::new(stream);
                    if let Some(password) = &self.inner.password {
                        let reply = exchange(&mut conn, &[b"AUTH", password]).await?;
                        if let Err(e) = reply {
                            return Err(broken(format!("grid refused the password: {e}")));
                        }
                    }
                    return Ok(conn);
                }
                Ok(Err(e)) => last = e,
                Err(_) => {
                    last = io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("{address}: connect timed out"),
                    )
                }
            }
        }
        Err(last)
    }

    /// One command; on a network failure or `TRYAGAIN`, once more per node.
    async fn call(&self, args: &[&[u8]]) -> io::Result<Value> {
        let attempts = self.inner.addresses.len() + 1;
        let mut last = broken("no attempt");
        for attempt in 0..attempts {
            let pooled = self.inner.idle.lock().expect("pool lock").pop();
            let mut conn = match pooled {
                Some(c) => c,
                None => match self.connect().await {
                    Ok(c) => c,
                    Err(e) => {
                        last = e;
                        continue;
                    }
                },
            };
            match tokio::time::timeout(ATTEMPT, exchange(&mut conn, args)).await {
                Ok(Ok(Ok(value))) => {
                    let mut idle = self.inner.idle.lock().expect("pool lock");
                    if idle.len() < IDLE_MAX {
                        idle.push(conn);
                    }
                    return Ok(value);
                }
                Ok(Ok(Err(error))) => {
                    self.inner.idle.lock().expect("pool lock").push(conn);
                    if error.starts_with("TRYAGAIN") && attempt + 1 < attempts {
                        tokio::time::sleep(Duration::from_millis(100 * (attempt as u64 + 1))).await;
                        last = broken(error);
                        continue;
                    }
                    return Err(broken(error));
                }
                Ok(Err(e)) => last = e,
                Err(_) => {
                    last = io::Error::new(io::ErrorKind::TimedOut, "grid did not answer in time")
                }
            }
        }
        Err(last)
    }

    pub(crate) async fn create(&self, group: &[u8], id: &[u8], idle_s: u64) -> io::Result<bool> {
        let idle = idle_s.to_string();
        let args: [&[u8]; 6] = [b"SESSION.CREATE", group, b"IDLE", idle.as_bytes(), b"ID", id];
        Ok(self.call(&args).await? != Value::Nil)
    }

    pub(crate) async fn replace(
        &self,
        id: &[u8],
        idle_s: u64,
        attrs: Vec<(Bytes, Bytes)>,
    ) -> io::Result<bool> {
        let idle = idle_s.to_string();
        let mut args: Vec<&[u8]> = vec![b"SESSION.SET", id, b"REPLACE", b"IDLE", idle.as_bytes()];
        for (name, json) in &attrs {
            args.extend([name.as_ref(), b"json".as_slice(), json.as_ref()]);
        }
        Ok(self.call(&args).await? != Value::Nil)
    }

    /// The session's `json` attributes and its deadline (unix ms), if it is a live session of
    /// `group`.
    pub(crate) async fn get(
        &self,
        id: &[u8],
        group: &[u8],
    ) -> io::Result<Option<(Vec<(Bytes, Bytes)>, u64)>> {
        let Value::Array(flat) = self.call(&[b"SESSION.GET", id, b"NOTOUCH"]).await? else {
            return Ok(None);
        };
        let (mut attrs, mut deadline, mut same_group) = (Vec::new(), 0, false);
        for pair in flat.chunks(2) {
            let [Value::Bulk(key), value] = pair else { continue };
            match (key.as_ref(), value) {
                (b"group", Value::Bulk(g)) => same_group = g.as_ref() == group,
                (b"expires-at", Value::Int(ms)) => deadline = (*ms).max(0) as u64,
                (b"attributes", Value::Array(list)) => {
                    for entry in list.chunks(2) {
                        if let [Value::Bulk(name), Value::Array(a)] = entry {
                            if let [Value::Bulk(tag), Value::Bulk(json), ..] = a.as_slice() {
                                if tag.as_ref() == b"json" {
                                    attrs.push((name.clone(), json.clone()));
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(same_group.then_some((attrs, deadline)))
    }

    pub(crate) async fn invalidate(&self, id: &[u8]) -> io::Result<()> {
        self.call(&[b"SESSION.INVALIDATE", id]).await.map(|_| ())
    }
}

/// Sends one command and reads its reply: `Err(text)` for an error reply.
async fn exchange(conn: &mut Conn, args: &[&[u8]]) -> Reply {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    conn.get_mut().write_all(&out).await?;
    read(conn, 0).await
}

async fn line(conn: &mut Conn) -> io::Result<String> {
    let mut buf = Vec::new();
    let n = (&mut *conn).take(LINE_BYTES_MAX).read_until(b'\n', &mut buf).await?;
    if n as u64 == LINE_BYTES_MAX && !buf.ends_with(b"\n") {
        return Err(broken("reply line too long"));
    }
    if n == 0 || !buf.ends_with(b"\r\n") {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "grid closed the connection"));
    }
    buf.truncate(buf.len() - 2);
    String::from_utf8(buf).map_err(|_| broken("reply line is not text"))
}

/// A reply, or the text of an error reply.
type Reply = io::Result<Result<Value, String>>;

/// Reads one reply (arrays recurse, so the future is boxed).
fn read(conn: &mut Conn, depth: usize) -> Pin<Box<dyn Future<Output = Reply> + Send + '_>> {
    Box::pin(async move {
        if depth > 8 {
            return Err(broken("reply nested too deep"));
        }
        let l = line(conn).await?;
        let (kind, rest) = l.split_at(l.len().min(1));
        let number =
            || rest.parse::<i64>().map_err(|_| broken(format!("bad number in reply: {rest}")));
        Ok(Ok(match kind {
            "+" => Value::Bulk(Bytes::from(rest.to_string())),
            "-" => return Ok(Err(rest.to_string())),
            ":" => Value::Int(number()?),
            "$" => {
                let n = number()?;
                if n < 0 {
                    Value::Nil
                } else {
                    let n = n as usize;
                    if n > REPLY_BYTES_MAX {
                        return Err(broken("reply too large"));
                    }
                    let mut data = vec![0; n + 2];
                    conn.read_exact(&mut data).await?;
                    data.truncate(n);
                    Value::Bulk(Bytes::from(data))
                }
            }
            "*" => {
                let n = number()?;
                if n < 0 {
                    Value::Nil
                } else {
                    let mut items = Vec::with_capacity((n as usize).min(1024));
                    for _ in 0..n {
                        match read(conn, depth + 1).await? {
                            Ok(v) => items.push(v),
                            Err(e) => return Ok(Err(e)),
                        }
                    }
                    Value::Array(items)
                }
            }
            _ => return Err(broken(format!("not a RESP2 reply: {l}"))),
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A peer that answers with a line that never ends: the call fails instead of buffering it.
    #[tokio::test]
    async fn an_endless_reply_line_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                tokio::spawn(async move {
                    let chunk = vec![b'a'; 16 * 1024];
                    let _ = socket.write_all(b"+").await;
                    while socket.write_all(&chunk).await.is_ok() {}
                });
            }
        });
        let remote = Remote::new(vec![address], None);
        let error = remote.invalidate(b"abcdefghijklmnopqrstuv").await.unwrap_err();
        assert!(error.to_string().contains("too long"), "{error}");
    }
}
