//! [`Pool`]: connections to several grid nodes. A call takes an idle connection (or opens one to
//! the next node in turn), and on a broken connection, a timeout or `TRYAGAIN` tries again, once
//! per node, so a node's death costs a caller one retry, not an error. A call about one key
//! ([`Pool::call_in_slot`]) goes to that key's primary when the pool knows it ([`Routes`]).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::connection::{broken, Auth, Connection, Value};
use crate::routes::Routes;
use crate::Tls;

/// Connections kept idle (to the addresses given; and to each slot primary).
const IDLE_MAX: usize = 32;
/// How long one attempt may take.
const ATTEMPT: Duration = Duration::from_secs(2);
/// How long routes are followed before they are read again.
const ROUTES_MAX_AGE: Duration = Duration::from_secs(10);
/// How long a node that failed a routed call is not routed to: a node whose announced address
/// this client cannot reach would otherwise cost a connect timeout at every read of the routes.
const DOWN_FOR: Duration = Duration::from_secs(60);

/// Grid nodes' Redis doors, e.g. `["10.0.0.5:6379", "10.0.0.6:6379"]`; cheap to clone.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    addresses: Vec<String>,
    auth: Option<Auth>,
    tls: Option<Tls>,
    idle: Mutex<Vec<Connection>>,
    /// Idle connections to slots' primaries, each with its address.
    routed: Mutex<Vec<(String, Connection)>>,
    next: AtomicUsize,
    routes: Mutex<RouteState>,
}

#[derive(Default)]
struct RouteState {
    routes: Option<Routes>,
    /// When they were last read, or a caller began reading them; `None`: read them at the
    /// next routed call.
    read_at: Option<Instant>,
    /// Nodes not routed to, each until when.
    down: Vec<(String, Instant)>,
}

impl Pool {
    pub fn new(addresses: Vec<String>, password: Option<Bytes>) -> Pool {
        Pool::with_tls(addresses, password, None)
    }

    /// A pool whose connections go through TLS if `tls` is given (to nodes' TLS ports).
    pub fn with_tls(addresses: Vec<String>, password: Option<Bytes>, tls: Option<Tls>) -> Pool {
        Pool::with_auth(addresses, password.map(Auth::password), tls)
    }

    /// A pool whose connections authenticate with `auth` (an ACL user's name and password).
    pub fn with_auth(addresses: Vec<String>, auth: Option<Auth>, tls: Option<Tls>) -> Pool {
        Pool {
            inner: Arc::new(Inner {
                addresses,
                auth,
                tls,
                idle: Mutex::new(Vec::new()),
                routed: Mutex::new(Vec::new()),
                next: AtomicUsize::new(0),
                routes: Mutex::new(RouteState::default()),
            }),
        }
    }

    /// A new connection to the next node that accepts one.
    pub async fn connect(&self) -> io::Result<Connection> {
        let n = self.inner.addresses.len();
        let mut last = broken("no grid address");
        for _ in 0..n {
            let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % n;
            match self.connect_to(&self.inner.addresses[i]).await {
                Ok(conn) => return Ok(conn),
                Err(e) if e.kind() == io::ErrorKind::InvalidData => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn connect_to(&self, address: &str) -> io::Result<Connection> {
        let (auth, tls) = (self.inner.auth.as_ref(), self.inner.tls.as_ref());
        Connection::connect(address, auth, ATTEMPT, tls).await
    }

    /// One command about the keys of hash `slot` (see [`crate::routes::SLOTS`]): sent to the
    /// slot's primary if the pool knows it, which saves the node a client reached the hop to
    /// it; otherwise, or if that node does not answer, as [`Pool::call`] sends it.
    pub async fn call_in_slot(&self, slot: u16, args: &[&[u8]]) -> io::Result<Value> {
        if let Some(address) = self.route(slot).await {
            let answered = match self.call_at(&address, args).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) if !error.starts_with("TRYAGAIN") => return Err(broken(error)),
                Ok(Err(_)) => true,
                Err(_) => false,
            };
            // A partition moving (`TRYAGAIN`), a node that died, or an address this client
            // cannot reach: read the routes again at the next call, and leave a node that did
            // not answer alone for a while.
            let mut state = self.inner.routes.lock().expect("routes lock");
            state.read_at = None;
            if !answered {
                let now = Instant::now();
                state.down.retain(|(_, until)| now < *until);
                // Its other idle connections are likely dead too.
                self.inner.routed.lock().expect("pool lock").retain(|(a, _)| *a != address);
                state.down.push((address, now + DOWN_FOR));
            }
        }
        self.call(args).await
    }

    /// `slot`'s primary, reading the routes first if they are old. Over TLS there are none:
    /// nodes announce their plain doors only.
    async fn route(&self, slot: u16) -> Option<String> {
        if self.inner.tls.is_some() {
            return None;
        }
        let due = {
            let mut state = self.inner.routes.lock().expect("routes lock");
            let due = state.read_at.is_none_or(|at| at.elapsed() > ROUTES_MAX_AGE);
            if due {
                // One caller reads them; the others go by the old ones meanwhile (and if that
                // caller is dropped half-way, they are read again once they are old).
                state.read_at = Some(Instant::now());
            }
            due
        };
        if due {
            let reply = self.call(&[b"CLUSTER", b"SHARDS"]).await;
            let routes = reply.ok().and_then(|r| Routes::from_shards(&r));
            self.inner.routes.lock().expect("routes lock").routes = routes;
        }
        let state = self.inner.routes.lock().expect("routes lock");
        let node = state.routes.as_ref()?.node(slot)?;
        let now = Instant::now();
        let down = state.down.iter().any(|(n, until)| n == node && now < *until);
        (!down).then(|| node.to_string())
    }

    /// One attempt at `address`, on an idle connection to it or a new one.
    async fn call_at(&self, address: &str, args: &[&[u8]]) -> io::Result<Result<Value, String>> {
        let pooled = {
            let mut idle = self.inner.routed.lock().expect("pool lock");
            let i = idle.iter().rposition(|(a, _)| a == address);
            i.map(|i| idle.swap_remove(i).1)
        };
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect_to(address).await?,
        };
        match tokio::time::timeout(ATTEMPT, conn.call(args)).await {
            Ok(Ok(reply)) => {
                let mut idle = self.inner.routed.lock().expect("pool lock");
                if idle.iter().filter(|(a, _)| a == address).count() < IDLE_MAX {
                    idle.push((address.to_string(), conn));
                }
                Ok(reply)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "grid did not answer in time")),
        }
    }

    /// One command; on a network failure or `TRYAGAIN`, once more per node. An error reply
    /// other than `TRYAGAIN` is returned as an `InvalidData` error holding its text.
    pub async fn call(&self, args: &[&[u8]]) -> io::Result<Value> {
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
            match tokio::time::timeout(ATTEMPT, conn.call(args)).await {
                Ok(Ok(Ok(value))) => {
                    self.put_back(conn);
                    return Ok(value);
                }
                Ok(Ok(Err(error))) => {
                    self.put_back(conn);
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

    fn put_back(&self, conn: Connection) {
        let mut idle = self.inner.idle.lock().expect("pool lock");
        if idle.len() < IDLE_MAX {
            idle.push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A node that answers every command with `reply`.
    async fn node(reply: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        serve(listener, Vec::new(), reply.to_vec());
        address
    }

    /// Answers `CLUSTER SHARDS` with `shards`, and every other command with `reply`.
    fn serve(listener: TcpListener, shards: Vec<u8>, reply: Vec<u8>) {
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (shards, reply) = (shards.clone(), reply.clone());
                tokio::spawn(async move {
                    let mut buf = [0; 1024];
                    while let Ok(n @ 1..) = socket.read(&mut buf).await {
                        let asked_shards = buf[..n].windows(6).any(|w| w == b"SHARDS");
                        let answer = if asked_shards { &shards } else { &reply };
                        if socket.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
    }

    /// A `CLUSTER SHARDS` reply: slots 0-8191 on port `a`, 8192-16383 on port `b`.
    fn shards(a: u16, b: u16) -> Vec<u8> {
        let shard = |first: u16, last: u16, port: u16| {
            format!(
                "*4\r\n$5\r\nslots\r\n*2\r\n:{first}\r\n:{last}\r\n$5\r\nnodes\r\n*1\r\n\
                 *6\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$4\r\nport\r\n:{port}\r\n\
                 $4\r\nrole\r\n$6\r\nmaster\r\n"
            )
        };
        format!("*2\r\n{}{}", shard(0, 8191, a), shard(8192, 16383, b)).into_bytes()
    }

    #[tokio::test]
    async fn a_call_in_a_slot_goes_to_its_primary_or_through_another_node() {
        let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let b = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (a_port, b_port) = (a.local_addr().unwrap().port(), b.local_addr().unwrap().port());
        let map = shards(a_port, b_port);
        serve(a, map.clone(), b"+A\r\n".to_vec());
        // Known only by the routes node A gives: B was never among the pool's addresses.
        let pool = Pool::new(vec![format!("127.0.0.1:{a_port}")], None);
        let call = |slot| {
            let pool = pool.clone();
            async move { pool.call_in_slot(slot, &[b"PING"]).await.unwrap() }
        };
        // B takes connections but does not answer: after its attempt's timeout, through A.
        assert_eq!(call(9000).await, Value::Bulk("A".into()));
        // B is left alone for a while after that, answering or not.
        serve(b, map, b"+B\r\n".to_vec());
        assert_eq!(call(9000).await, Value::Bulk("A".into()));
        // Once it may be routed to again, it is.
        pool.inner.routes.lock().unwrap().down.clear();
        assert_eq!(call(9000).await, Value::Bulk("B".into()));
        assert_eq!(call(10).await, Value::Bulk("A".into()));
    }

    #[tokio::test]
    async fn a_dead_node_costs_a_retry_not_an_error() {
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let live = node(b"+PONG\r\n").await;
        let pool = Pool::new(vec![dead.to_string(), live], None);
        for _ in 0..4 {
            assert_eq!(pool.call(&[b"PING"]).await.unwrap(), Value::Bulk("PONG".into()));
        }
    }

    #[tokio::test]
    async fn an_error_reply_is_an_error_with_its_text() {
        let pool = Pool::new(vec![node(b"-ERR no such thing\r\n").await], None);
        let error = pool.call(&[b"NOPE"]).await.unwrap_err();
        assert_eq!(error.to_string(), "ERR no such thing");
    }
}
