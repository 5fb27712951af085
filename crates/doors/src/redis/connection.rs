//! One client connection: read bytes, decode requests, execute them in order, write replies.
//!
//! Replies of all requests decoded from one read are written together, so pipelined clients get
//! one write per batch. A protocol error answers `-ERR Protocol error: ...` and closes the
//! connection; nothing else the client sends can end it besides `QUIT`.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use sessiongrid_model::session::event::SessionEvent;
use tokio::sync::broadcast::error::RecvError;

use super::commands;
use super::commands::pubsub::Subscription;
use super::server::Shared;
use sessiongrid_resp::{encode, Decoder, Protocol};

/// What a connection remembers between commands.
#[derive(Debug)]
pub struct ClientState {
    pub id: u64,
    pub name: Option<Bytes>,
    pub proto: Protocol,
    pub authenticated: bool,
    /// Set by `QUIT`: close after writing this reply.
    pub quit: bool,
    /// Channels subscribed to, with the event feed; `None` when not subscribed.
    pub subscription: Option<Subscription>,
}

/// Flush the write buffer once it holds this much, even mid-batch.
const WRITE_FLUSH_BYTES: usize = 64 * 1024;
const READ_CHUNK_BYTES: usize = 16 * 1024;

pub struct Connection {
    socket: TcpStream,
    shared: Arc<Shared>,
    client: ClientState,
    decoder: Decoder,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

impl Connection {
    pub fn new(socket: TcpStream, shared: Arc<Shared>, id: u64) -> Self {
        let authenticated = shared.config.password.is_none();
        let decoder = Decoder::new(shared.config.limits);
        Connection {
            socket,
            shared,
            client: ClientState {
                id,
                name: None,
                proto: Protocol::Resp2,
                authenticated,
                quit: false,
                subscription: None,
            },
            decoder,
            rbuf: BytesMut::with_capacity(READ_CHUNK_BYTES),
            wbuf: BytesMut::with_capacity(READ_CHUNK_BYTES),
        }
    }

    /// Serves until the client leaves, breaks the protocol, or `stop` is cancelled; requests
    /// already read when `stop` fires are still answered.
    pub async fn serve(mut self, stop: CancellationToken) {
        if let Err(e) = self.serve_inner(stop).await {
            debug!(error = %e, "connection closed by i/o error");
        }
    }

    async fn serve_inner(&mut self, stop: CancellationToken) -> std::io::Result<()> {
        loop {
            let keep_open = self.process_buffered().await?;
            if !self.wbuf.is_empty() {
                self.socket.write_all(&self.wbuf).await?;
                self.wbuf.clear();
            }
            if !keep_open || stop.is_cancelled() {
                return Ok(());
            }
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK_BYTES {
                self.rbuf.reserve(READ_CHUNK_BYTES);
            }
            let feed = self.client.subscription.as_mut().map(|s| &mut s.feed);
            let read = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                read = self.socket.read_buf(&mut self.rbuf) => read?,
                event = next_event(feed) => {
                    self.deliver(event);
                    continue;
                }
            };
            if read == 0 {
                return Ok(());
            }
            if self.rbuf.len() > self.shared.config.pipeline_bytes_max {
                self.protocol_error("too many unanswered bytes (pipeline_bytes_max)");
                self.socket.write_all(&self.wbuf).await?;
                return Ok(());
            }
        }
    }

    /// Executes every complete request in the read buffer. Returns false if the connection must
    /// close after the replies are written.
    async fn process_buffered(&mut self) -> std::io::Result<bool> {
        loop {
            let args = match self.decoder.decode(&mut self.rbuf) {
                Ok(Some(args)) => args,
                Ok(None) => return Ok(true),
                Err(e) => {
                    self.protocol_error(&e.0);
                    return Ok(false);
                }
            };
            let reply = commands::execute(&self.shared, &mut self.client, args).await;
            encode(&reply, self.client.proto, &mut self.wbuf);
            if self.client.quit {
                return Ok(false);
            }
            if self.wbuf.len() >= WRITE_FLUSH_BYTES {
                self.socket.write_all(&self.wbuf).await?;
                self.wbuf.clear();
            }
        }
    }

    /// Encodes the pub/sub messages of one event (or of a lag) for this subscriber.
    fn deliver(&mut self, event: Result<Arc<SessionEvent>, RecvError>) {
        let Some(sub) = self.client.subscription.as_ref() else { return };
        let messages = match event {
            Ok(e) => sub.messages(&e),
            Err(RecvError::Lagged(missed)) => {
                metrics::counter!("sessiongrid_session_events_lagged_total").increment(missed);
                sub.lagged(missed)
            }
            Err(RecvError::Closed) => return,
        };
        for m in messages {
            encode(&m, self.client.proto, &mut self.wbuf);
        }
    }

    fn protocol_error(&mut self, text: &str) {
        metrics::counter!("sessiongrid_protocol_errors_total").increment(1);
        debug!(error = text, "protocol error; closing");
        let reply = sessiongrid_model::Reply::error(format!("ERR Protocol error: {text}"));
        encode(&reply, self.client.proto, &mut self.wbuf);
    }
}

/// The next event of a subscriber's feed; never ready when not subscribed.
async fn next_event(
    feed: Option<&mut tokio::sync::broadcast::Receiver<Arc<SessionEvent>>>,
) -> Result<Arc<SessionEvent>, RecvError> {
    match feed {
        Some(feed) => feed.recv().await,
        None => std::future::pending().await,
    }
}
