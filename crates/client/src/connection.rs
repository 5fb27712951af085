//! [`Connection`]: one connection to a node's Redis door. Replies are read within bounds (a line,
//! a value, a nesting depth), so a broken or hostile peer yields an error, never unbounded memory.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::Tls;

/// Most bytes of one bulk reply, and of one line of a reply (a type and a length, or a status).
const BULK_BYTES_MAX: usize = 64 * 1024 * 1024;
const LINE_BYTES_MAX: u64 = 64 * 1024;
/// Arrays nested deeper than this are refused.
const DEPTH_MAX: usize = 8;

/// A reply value (a status reply reads as `Bulk`).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Nil,
    Int(i64),
    Bulk(Bytes),
    Array(Vec<Value>),
}

/// A reply, or the text of an error reply (`Err("TRYAGAIN ...")`); the outer error is the
/// connection's, after which it must be dropped.
pub type Reply = io::Result<Result<Value, String>>;

pub(crate) fn broken(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// A connection's bytes: plain TCP or TLS over it.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Stream = BufReader<Box<dyn Io>>;

pub struct Connection {
    stream: Stream,
}

/// What a connection authenticates with: an ACL user's name and password, or (no user) the
/// `default` user's password.
#[derive(Clone, Debug)]
pub struct Auth {
    pub user: Option<Bytes>,
    pub password: Bytes,
}

impl Auth {
    /// The `default` user's password.
    pub fn password(password: Bytes) -> Auth {
        Auth { user: None, password }
    }
}

impl Connection {
    /// Connects within `timeout` (through TLS if `tls` is given), and authenticates if
    /// `auth` is given.
    pub async fn connect(
        address: &str,
        auth: Option<&Auth>,
        timeout: Duration,
        tls: Option<&Tls>,
    ) -> io::Result<Connection> {
        let open = async {
            let stream = TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            Ok::<Box<dyn Io>, io::Error>(match tls {
                None => Box::new(stream),
                Some(tls) => Box::new(tls.connect(address, stream).await?),
            })
        };
        let stream = match tokio::time::timeout(timeout, open).await {
            Ok(stream) => stream?,
            Err(_) => {
                let what = format!("{address}: connect timed out");
                return Err(io::Error::new(io::ErrorKind::TimedOut, what));
            }
        };
        let mut conn = Connection { stream: BufReader::new(stream) };
        if let Some(auth) = auth {
            let answer = match &auth.user {
                Some(user) => conn.call(&[b"AUTH", user, &auth.password]).await?,
                None => conn.call(&[b"AUTH", &auth.password]).await?,
            };
            if let Err(e) = answer {
                return Err(broken(format!("grid refused the credentials: {e}")));
            }
        }
        Ok(conn)
    }

    /// Sends one command and reads its reply.
    pub async fn call(&mut self, args: &[&[u8]]) -> Reply {
        let mut out = Vec::with_capacity(64 + args.iter().map(|a| a.len() + 16).sum::<usize>());
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        let stream = self.stream.get_mut();
        stream.write_all(&out).await?;
        stream.flush().await?;
        read(&mut self.stream, 0).await
    }
}

async fn line(conn: &mut Stream) -> io::Result<String> {
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

/// Reads one reply (arrays recurse, so the future is boxed).
fn read(conn: &mut Stream, depth: usize) -> Pin<Box<dyn Future<Output = Reply> + Send + '_>> {
    Box::pin(async move {
        if depth > DEPTH_MAX {
            return Err(broken("reply nested too deep"));
        }
        let l = line(conn).await?;
        // The type is one ASCII byte; a line starting otherwise (even with a multi-byte
        // character, where splitting after one byte would panic) is not a reply.
        let (kind, rest) = match l.as_bytes().first() {
            Some(b) if b.is_ascii() => l.split_at(1),
            _ => ("", l.as_str()),
        };
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
                    if n > BULK_BYTES_MAX {
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
                    // Every element is read, even after an error reply, so the connection
                    // stays in step with the replies.
                    let mut items = Vec::with_capacity((n as usize).min(1024));
                    let mut error = None;
                    for _ in 0..n {
                        match read(conn, depth + 1).await? {
                            Ok(v) => items.push(v),
                            Err(e) => {
                                error.get_or_insert(e);
                            }
                        }
                    }
                    match error {
                        Some(e) => return Ok(Err(e)),
                        None => Value::Array(items),
                    }
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

    /// A peer that writes `reply` to every connection once, then keeps it open.
    async fn peer(reply: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = socket.write_all(reply).await;
                    tokio::time::sleep(Duration::from_secs(30)).await;
                });
            }
        });
        address
    }

    async fn call(reply: &'static [u8]) -> Reply {
        let address = peer(reply).await;
        let mut conn = Connection::connect(&address, None, Duration::from_secs(2), None).await?;
        conn.call(&[b"PING"]).await
    }

    #[tokio::test]
    async fn replies_of_every_kind_are_read() {
        let reply = call(b"*4\r\n+OK\r\n:-7\r\n$-1\r\n*1\r\n$4\r\na\r\nb\r\n").await.unwrap();
        let expected = Value::Array(vec![
            Value::Bulk(Bytes::from_static(b"OK")),
            Value::Int(-7),
            Value::Nil,
            Value::Array(vec![Value::Bulk(Bytes::from_static(b"a\r\nb"))]),
        ]);
        assert_eq!(reply.unwrap(), expected);
        assert_eq!(call(b"-TRYAGAIN later\r\n").await.unwrap(), Err("TRYAGAIN later".into()));
    }

    /// An error inside an array is the reply's error, and the rest of the array is consumed,
    /// so the next reply on the connection is read from its start.
    #[tokio::test]
    async fn an_error_inside_an_array_leaves_the_connection_in_step() {
        let address = peer(b"*3\r\n:1\r\n-ERR inner\r\n:3\r\n+NEXT\r\n").await;
        let mut conn =
            Connection::connect(&address, None, Duration::from_secs(2), None).await.unwrap();
        assert_eq!(conn.call(&[b"FIRST"]).await.unwrap(), Err("ERR inner".into()));
        assert_eq!(conn.call(&[b"SECOND"]).await.unwrap(), Ok(Value::Bulk("NEXT".into())));
    }

    #[tokio::test]
    async fn malformed_replies_are_errors() {
        let bad_lines = [
            &b"?what\r\n"[..],
            b":12x\r\n",
            b"$99999999999\r\n",
            b"+\xff\r\n",
            "\u{e9}t\u{e9}\r\n".as_bytes(),
        ];
        for bad in bad_lines {
            let reply = call(Box::leak(bad.to_vec().into_boxed_slice())).await;
            assert!(reply.is_err(), "{:?} was accepted", String::from_utf8_lossy(bad));
        }
        let deep: &'static [u8] =
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n";
        assert!(call(deep).await.unwrap_err().to_string().contains("too deep"));
    }

    /// A peer that answers with a line that never ends: the call fails instead of buffering it.
    #[tokio::test]
    async fn an_endless_reply_line_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let chunk = vec![b'a'; 16 * 1024];
                    let _ = socket.write_all(b"+").await;
                    while socket.write_all(&chunk).await.is_ok() {}
                });
            }
        });
        let mut conn =
            Connection::connect(&address, None, Duration::from_secs(2), None).await.unwrap();
        let error = conn.call(&[b"PING"]).await.unwrap_err();
        assert!(error.to_string().contains("too long"), "{error}");
    }
}
