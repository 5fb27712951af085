//! One client connection: read bytes, decode requests, execute them in order, write replies.
//!
//! Replies of all requests decoded from one read are written together, so pipelined clients get
//! one write per batch. A protocol error answers `-ERR Protocol error: ...` and closes the
//! connection; nothing else the client sends can end it besides `QUIT`. While a command that is
//! not a single operation runs (a blocking pop may wait long), the socket is still read: what
//! arrives is kept for later, and a hangup ends the command's wait and then the connection.
//!
//! Pipelined single-key operations run in waves: consecutive ones are sent together, one
//! message per partition holding that partition's operations in the order sent (their writes
//! share one commit), and answered in order, so a pipeline costs one round through the
//! partitions instead of one per command. A wave ends before any other command (which runs
//! alone, seeing the effects of everything before it). Within a wave, operations on one
//! partition take effect in the order sent; operations on different partitions may take
//! effect in any order, as commands to different slots of a Redis Cluster do.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::acl::{Acl, Slot, User};
use super::clients::ClientView;
use super::commands;
use super::commands::pubsub::Subscription;
use super::commands::{Prepared, PreparedOp};
use super::server::Shared;
use crate::tls::Stream;
use sessiongrid_resp::{encode, Decoder, Protocol};
use std::future::Future;

/// What a connection remembers between commands.
#[derive(Debug)]
pub struct ClientState {
    pub id: u64,
    pub name: Option<Bytes>,
    pub proto: Protocol,
    pub authenticated: bool,
    /// The ACL user the client acts as (`default` until it authenticates), as of ACL version
    /// `acl_version`, and whether that user may do everything (no checks to make).
    pub user: Arc<User>,
    pub acl_version: u64,
    pub unrestricted: bool,
    /// The connection as counted against its user's connection limit.
    pub slot: Option<Slot>,
    /// Set by `QUIT`: close after writing this reply.
    pub quit: bool,
    /// Channels subscribed to, with the event feed; `None` when not subscribed.
    pub subscription: Option<Subscription>,
    /// Whether replies are sent (`CLIENT REPLY`); pub/sub messages always are.
    pub replies: Replies,
    /// Cancelled once the client has hung up (seen while a command runs alone) or the door is
    /// stopping: a blocking command stops waiting then.
    pub hangup: CancellationToken,
    /// `MULTI`/`WATCH` state, and the transaction commands run within during `EXEC` or a script.
    pub txn: commands::multi::Transaction,
    /// The logical database the client's keys are in (`SELECT`).
    pub db: u8,
    /// What `CLIENT LIST` shows of this connection.
    pub view: Arc<ClientView>,
}

/// Flush the write buffer once it holds this much, even mid-batch.
const WRITE_FLUSH_BYTES: usize = 64 * 1024;
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Most operations in one wave.
const WAVE_MAX: usize = 64;

pub struct Connection {
    socket: Stream,
    shared: Arc<Shared>,
    client: ClientState,
    decoder: Decoder,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

impl Connection {
    /// A connection from `addrs.0` to the door's `addrs.1`.
    pub fn new(
        socket: Stream,
        shared: Arc<Shared>,
        id: u64,
        addrs: (std::net::SocketAddr, std::net::SocketAddr),
    ) -> Self {
        let acl = &shared.config.acl;
        let (user, acl_version) = (acl.default_user(), acl.version());
        let authenticated = user.open();
        let tls = matches!(socket, Stream::Tls(_));
        let view = Arc::new(ClientView::new(id, addrs, tls, CancellationToken::new()));
        let decoder = Decoder::new(shared.config.limits);
        Connection {
            socket,
            shared,
            client: ClientState {
                id,
                name: None,
                proto: Protocol::Resp2,
                authenticated,
                unrestricted: user.unrestricted(),
                user,
                acl_version,
                slot: None,
                quit: false,
                subscription: None,
                replies: Replies::On,
                hangup: CancellationToken::new(),
                txn: Default::default(),
                db: 0,
                view,
            },
            decoder,
            rbuf: BytesMut::with_capacity(READ_CHUNK_BYTES),
            wbuf: BytesMut::with_capacity(READ_CHUNK_BYTES),
        }
    }

    /// Serves until the client leaves, breaks the protocol, or `stop` is cancelled; requests
    /// already read when `stop` fires are still answered.
    pub async fn serve(mut self, stop: CancellationToken) {
        self.client.hangup = stop.child_token();
        let view = self.client.view.clone();
        self.shared.clients.register(view.clone());
        if let Err(e) = self.serve_inner(stop).await {
            debug!(error = %e, "connection closed by i/o error");
        }
        self.shared.clients.remove(view.id);
    }

    /// Sends the replies written so far (through TLS, if the connection has it, to the end).
    async fn write_out(&mut self) -> std::io::Result<()> {
        self.socket.write_all(&self.wbuf).await?;
        self.socket.flush().await?;
        self.wbuf.clear();
        Ok(())
    }

    async fn serve_inner(&mut self, stop: CancellationToken) -> std::io::Result<()> {
        loop {
            let keep_open = self.process_buffered().await?;
            if !self.wbuf.is_empty() {
                self.write_out().await?;
            }
            if !keep_open || stop.is_cancelled() || self.client.hangup.is_cancelled() {
                return Ok(());
            }
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK_BYTES {
                self.rbuf.reserve(READ_CHUNK_BYTES);
            }
            let (feed, messages) = match self.client.subscription.as_mut() {
                Some(Subscription { feed, messages, .. }) => (Some(feed), Some(messages)),
                None => (None, None),
            };
            let kill = self.client.view.kill.clone();
            let read = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = kill.cancelled() => return Ok(()),
                read = self.socket.read_buf(&mut self.rbuf) => read?,
                event = next(feed) => {
                    self.deliver(|sub| sub.on_event(event));
                    continue;
                }
                published = next(messages) => {
                    self.deliver(|sub| sub.on_published(published));
                    continue;
                }
            };
            if read == 0 {
                return Ok(());
            }
            if self.rbuf.len() > self.shared.config.pipeline_bytes_max {
                self.protocol_error("too many unanswered bytes (pipeline_bytes_max)");
                self.write_out().await?;
                return Ok(());
            }
        }
    }

    /// Executes every complete request in the read buffer. Returns false if the connection must
    /// close after the replies are written.
    async fn process_buffered(&mut self) -> std::io::Result<bool> {
        let mut wave = Wave::default();
        loop {
            let args = match self.decoder.decode(&mut self.rbuf) {
                Ok(Some(args)) => args,
                Ok(None) => break,
                Err(e) => {
                    self.run_wave(&mut wave).await;
                    self.protocol_error(&e.0);
                    return Ok(false);
                }
            };
            if !self.client.follow_acl(&self.shared.config.acl) {
                self.run_wave(&mut wave).await;
                let gone =
                    sessiongrid_model::Reply::error("ERR this connection's user was deleted");
                encode(&gone, self.client.proto, &mut self.wbuf);
                return Ok(false);
            }
            match commands::prepare(&self.shared, &self.client, args) {
                Prepared::Answered(reply) => {
                    if reply.is_error() {
                        self.client.txn.refused();
                    }
                    wave.items.push(Item::Answered(reply))
                }
                Prepared::Op(op) => {
                    if wave.ops == WAVE_MAX {
                        self.run_wave(&mut wave).await;
                    }
                    wave.ops += 1;
                    wave.items.push(Item::Op(op));
                }
                Prepared::Run(run) => {
                    self.run_wave(&mut wave).await;
                    let reply = self.run_alone(run).await;
                    if self.client.view.kill.is_cancelled() {
                        return Ok(false); // killed (`CLIENT KILL`): closed without an answer
                    }
                    self.drain_feeds();
                    answer(&mut self.client, &reply, &mut self.wbuf);
                    if self.client.quit {
                        return Ok(false);
                    }
                }
            }
            if self.wbuf.len() >= WRITE_FLUSH_BYTES {
                self.run_wave(&mut wave).await;
                self.write_out().await?;
            }
        }
        self.run_wave(&mut wave).await;
        Ok(true)
    }

    /// Runs a command that is not a single operation while reading the socket, so that a
    /// client hanging up during a blocking command is noticed (it cancels `hangup`, and the
    /// command stops waiting); what the client sends meanwhile is kept for later, up to
    /// `pipeline_bytes_max`.
    async fn run_alone(&mut self, run: commands::PreparedRun) -> sessiongrid_model::Reply {
        let hangup = self.client.hangup.clone();
        let kill = self.client.view.kill.clone();
        let mut watching = !hangup.is_cancelled();
        let command = commands::run_prepared(&self.shared, &mut self.client, run);
        tokio::pin!(command);
        loop {
            tokio::select! {
                reply = &mut command => return reply,
                _ = kill.cancelled(), if !hangup.is_cancelled() => hangup.cancel(),
                read = self.socket.read_buf(&mut self.rbuf), if watching => match read {
                    Ok(0) | Err(_) => {
                        hangup.cancel();
                        watching = false;
                    }
                    Ok(_) => watching = self.rbuf.len() <= self.shared.config.pipeline_bytes_max,
                },
            }
        }
    }

    /// Runs the operations of `wave` together and encodes every reply of it, in order.
    async fn run_wave(&mut self, wave: &mut Wave) {
        let items = std::mem::take(&mut wave.items);
        let ops = std::mem::take(&mut wave.ops);
        let shared = &self.shared;
        if ops <= 1 {
            for item in items {
                let reply = match item {
                    Item::Answered(reply) => reply,
                    Item::Op(op) => commands::run_op(shared, op).await,
                };
                answer(&mut self.client, &reply, &mut self.wbuf);
            }
            return;
        }
        // The operations by partition, in the order sent; each item remembers its group.
        let mut groups: Vec<Vec<PreparedOp>> = Vec::new();
        let mut answered = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Item::Answered(reply) => answered.push(Ok(reply)),
                Item::Op(op) => {
                    let group = match groups.iter().position(|g| g[0].partition == op.partition) {
                        Some(g) => g,
                        None => {
                            groups.push(Vec::new());
                            groups.len() - 1
                        }
                    };
                    groups[group].push(op);
                    answered.push(Err(group));
                }
            }
        }
        // Boxed: join_all moves its futures, and a request's future is large.
        let running = groups.into_iter().map(
            |mut ops| -> std::pin::Pin<Box<dyn Future<Output = _> + Send + '_>> {
                match ops.len() {
                    1 => {
                        Box::pin(async move { vec![commands::run_op(shared, ops.remove(0)).await] })
                    }
                    _ => Box::pin(commands::run_ops(shared, ops)),
                }
            },
        );
        let mut replies: Vec<_> =
            futures::future::join_all(running).await.into_iter().map(Vec::into_iter).collect();
        for slot in answered {
            let reply = match slot {
                Ok(reply) => reply,
                Err(group) => replies[group].next().expect("a reply per operation"),
            };
            answer(&mut self.client, &reply, &mut self.wbuf);
        }
    }

    /// Encodes the pub/sub messages a subscription makes of what its feeds delivered.
    fn deliver(&mut self, messages: impl FnOnce(&Subscription) -> Vec<sessiongrid_model::Reply>) {
        let Some(sub) = self.client.subscription.as_ref() else { return };
        for m in messages(sub) {
            encode(&m, self.client.proto, &mut self.wbuf);
        }
    }

    /// Encodes the messages already waiting for this subscriber, so that what a command
    /// published to its own connection comes before its reply, as in Redis.
    fn drain_feeds(&mut self) {
        loop {
            let Some(sub) = self.client.subscription.as_mut() else { return };
            let published = match sub.messages.try_recv() {
                Ok(p) => Ok(p),
                Err(TryRecvError::Lagged(missed)) => Err(RecvError::Lagged(missed)),
                Err(TryRecvError::Empty | TryRecvError::Closed) => return,
            };
            self.deliver(|sub| sub.on_published(published));
        }
    }

    fn protocol_error(&mut self, text: &str) {
        metrics::counter!("sessiongrid_protocol_errors_total").increment(1);
        debug!(error = text, "protocol error; closing");
        let reply = sessiongrid_model::Reply::error(format!("ERR Protocol error: {text}"));
        encode(&reply, self.client.proto, &mut self.wbuf);
    }
}

impl ClientState {
    /// Takes up the latest rules of the client's user; false if the user is gone (deleted
    /// while the client was authenticated as it: the connection closes, as in Redis; the
    /// `default` user of a client not authenticated yet cannot be deleted).
    fn follow_acl(&mut self, acl: &Acl) -> bool {
        let version = acl.version();
        if version == self.acl_version {
            return true;
        }
        self.acl_version = version;
        acl.user(&self.user.name).map(|user| self.take_user(user)).is_some()
    }

    /// The client is now authenticated as `user`, counted in `slot`.
    pub fn become_user(&mut self, user: Arc<User>, slot: Slot, version: u64) {
        self.authenticated = true;
        *self.view.user.lock().expect("client user lock") = user.name.clone();
        self.take_user(user);
        self.acl_version = version;
        self.slot = Some(slot);
    }

    fn take_user(&mut self, user: Arc<User>) {
        self.unrestricted = user.unrestricted();
        self.user = user;
    }
}

/// What `CLIENT REPLY` asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replies {
    On,
    Off,
    /// Skip this many more replies (`SKIP`: its own and the next command's), then `On`.
    Skip(u8),
}

/// Encodes a command's reply unless the client asked not to get it; pub/sub confirmations
/// are messages, which always go out (as in Redis).
fn answer(client: &mut ClientState, reply: &sessiongrid_model::Reply, wbuf: &mut BytesMut) {
    use sessiongrid_model::Reply;
    let push = match reply {
        Reply::Push(_) => true,
        Reply::Many(all) => all.iter().all(|r| matches!(r, Reply::Push(_))),
        _ => false,
    };
    match client.replies {
        Replies::On => encode(reply, client.proto, wbuf),
        _ if push => encode(reply, client.proto, wbuf),
        Replies::Off => {}
        Replies::Skip(n) => {
            client.replies = if n <= 1 { Replies::On } else { Replies::Skip(n - 1) }
        }
    }
}

/// Pipelined requests waiting to run together.
#[derive(Default)]
struct Wave {
    items: Vec<Item>,
    /// How many of them are operations.
    ops: usize,
}

enum Item {
    Answered(sessiongrid_model::Reply),
    Op(PreparedOp),
}

/// The next item of a subscriber's feed; never ready when not subscribed.
async fn next<T: Clone>(
    feed: Option<&mut tokio::sync::broadcast::Receiver<T>>,
) -> Result<T, RecvError> {
    match feed {
        Some(feed) => feed.recv().await,
        None => std::future::pending().await,
    }
}
