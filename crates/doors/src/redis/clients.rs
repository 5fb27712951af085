//! The door's open connections, for `CLIENT LIST`, `CLIENT INFO` and `CLIENT KILL`.
//!
//! Each connection registers a [`ClientView`] when it opens and removes it when it closes; what
//! changes per command (the last command, when, the database) is kept in atomics the connection
//! stores to, so the registry costs no lock on the request path.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

/// What `CLIENT LIST` shows of one connection.
#[derive(Debug)]
pub struct ClientView {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    /// The connection came through a TLS listener.
    pub tls: bool,
    pub created: Instant,
    pub name: Mutex<Option<Bytes>>,
    /// The ACL user the connection is authenticated as.
    pub user: Mutex<String>,
    /// Index in the command table of the last command (`usize::MAX`: none yet).
    pub last_command: AtomicUsize,
    /// Milliseconds after `created` of the last command.
    pub last_active_ms: AtomicU64,
    pub db: AtomicU8,
    pub resp: AtomicU8,
    /// The partition of the client's last write (`u32::MAX`: none), for `WAIT`.
    pub last_write: std::sync::atomic::AtomicU32,
    /// Cancelled to close the connection (`CLIENT KILL`).
    pub kill: CancellationToken,
}

impl ClientView {
    pub fn new(
        id: u64,
        (addr, laddr): (SocketAddr, SocketAddr),
        tls: bool,
        kill: CancellationToken,
    ) -> Self {
        ClientView {
            id,
            addr,
            laddr,
            tls,
            created: Instant::now(),
            name: Mutex::new(None),
            user: Mutex::new("default".into()),
            last_command: AtomicUsize::new(usize::MAX),
            last_active_ms: AtomicU64::new(0),
            db: AtomicU8::new(0),
            resp: AtomicU8::new(2),
            last_write: std::sync::atomic::AtomicU32::new(u32::MAX),
            kill,
        }
    }

    /// Notes a command (its index in the command table) that started `at`.
    pub fn ran(&self, command: usize, at: Instant) {
        self.last_command.store(command, Ordering::Relaxed);
        let ms = at.saturating_duration_since(self.created).as_millis() as u64;
        self.last_active_ms.store(ms, Ordering::Relaxed);
    }

    /// The connection as one line of `CLIENT LIST`, in Redis' field names.
    pub fn line(&self) -> String {
        let age = self.created.elapsed();
        let idle = age.as_millis() as u64
            - self.last_active_ms.load(Ordering::Relaxed).min(age.as_millis() as u64);
        let name = self.name.lock().expect("client name lock").clone().unwrap_or_default();
        let user = self.user.lock().expect("client user lock").clone();
        let command = match self.last_command.load(Ordering::Relaxed) {
            usize::MAX => "NULL",
            i => super::commands::COMMANDS.get(i).map_or("NULL", |s| s.name),
        };
        format!(
            "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags=N db={} sub=0 psub=0 \
             ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 \
             omem=0 tot-mem=0 events=r cmd={} user={} redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            String::from_utf8_lossy(&name),
            age.as_secs(),
            idle / 1000,
            self.db.load(Ordering::Relaxed),
            command,
            user,
            self.resp.load(Ordering::Relaxed),
        )
    }
}

/// Every open connection of the door, by id.
#[derive(Default)]
pub struct Clients {
    open: Mutex<BTreeMap<u64, Arc<ClientView>>>,
}

impl Clients {
    pub fn register(&self, view: Arc<ClientView>) {
        self.open.lock().expect("clients lock").insert(view.id, view);
    }

    pub fn remove(&self, id: u64) {
        self.open.lock().expect("clients lock").remove(&id);
    }

    /// The open connections, in id order.
    pub fn all(&self) -> Vec<Arc<ClientView>> {
        self.open.lock().expect("clients lock").values().cloned().collect()
    }
}
