//! Long-lived streams between nodes. Each node opens one stream to each peer it talks to and
//! sends every message for that peer on it, in order, as many frames per write as are queued;
//! it reads the streams peers open to it frame by frame. A broken stream is dropped with what
//! was queued on it (grid messages may be lost; the protocol resends what matters), and the
//! next message opens a new one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::io::BufReader;
use futures::{AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream};
use libp2p_stream::{Control, IncomingStreams};
use sessiongrid_cluster::coalesce::coalesce;
use sessiongrid_cluster::{Msg, NodeId};
use sessiongrid_grid::transport::Inbox;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::codec::{decode, encode_frame, read_frame, PROTOCOL};
use crate::identity::node_id;

/// Most bytes gathered into one write.
const WRITE_BYTES_MAX: usize = 256 * 1024;
/// Most messages taken from a peer's queue at once (joined, then written in writes of at most
/// [`WRITE_BYTES_MAX`]).
const BATCH_MESSAGES_MAX: usize = 1024;
/// A stream that cannot be opened, or a write that does not finish, in this long is given up.
const STREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// Read buffer per inbound stream.
const READ_BUFFER: usize = 64 * 1024;

/// The outbound streams, one writer task per peer. Shared by the grid's sending side and the
/// swarm's event loop, which starts writers.
pub(crate) struct Writers {
    control: Control,
    max_frame_bytes: usize,
    queues: Mutex<HashMap<NodeId, mpsc::UnboundedSender<Msg>>>,
}

impl Writers {
    pub(crate) fn new(control: Control, max_frame_bytes: usize) -> Self {
        Writers { control, max_frame_bytes, queues: Mutex::new(HashMap::new()) }
    }

    /// Queues `msg` on the stream to `to`, or gives it back if there is no live stream.
    pub(crate) fn send(&self, to: NodeId, msg: Msg) -> Option<Msg> {
        match self.queues.lock().expect("writers lock").get(&to) {
            Some(queue) => queue.send(msg).err().map(|e| e.0),
            None => Some(msg),
        }
    }

    /// Opens a stream to `peer` (node `to`) with `msg` as its first message. Must run inside
    /// the runtime.
    pub(crate) fn start(&self, to: NodeId, peer: PeerId, msg: Msg) {
        let (queue, rx) = mpsc::unbounded_channel();
        let _ = queue.send(msg);
        self.queues.lock().expect("writers lock").insert(to, queue);
        let control = self.control.clone();
        tokio::spawn(write_loop(control, peer, to, rx, self.max_frame_bytes));
    }
}

async fn write_loop(
    mut control: Control,
    peer: PeerId,
    node: NodeId,
    mut queue: mpsc::UnboundedReceiver<Msg>,
    max_frame_bytes: usize,
) {
    let writes = metrics::counter!("sessiongrid_p2p_writes_total");
    let mut sent = HashMap::new();
    let failed = metrics::counter!("sessiongrid_p2p_send_failures_total");
    let mut stream =
        match tokio::time::timeout(STREAM_TIMEOUT, control.open_stream(peer, PROTOCOL)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                debug!(node, error = %e, "no stream to peer");
                failed.increment(queue.len() as u64);
                return;
            }
            Err(_) => {
                debug!(node, "opening a stream to peer timed out");
                failed.increment(queue.len() as u64);
                return;
            }
        };
    let joined = metrics::counter!("sessiongrid_p2p_appends_joined_total");
    let mut buf = Vec::with_capacity(4096);
    let mut framed = Vec::new();
    let mut batch = Vec::new();
    while let Some(first) = queue.recv().await {
        // Let the tasks ready now (partition actors, connections) queue theirs first: one
        // write then carries them all, a hot partition's appends joined into one.
        tokio::task::yield_now().await;
        batch.push(first);
        while batch.len() < BATCH_MESSAGES_MAX {
            let Ok(msg) = queue.try_recv() else { break };
            batch.push(msg);
        }
        joined.increment(coalesce(&mut batch) as u64);
        let mut msgs = batch.drain(..);
        let mut broke = None;
        while broke.is_none() {
            let msg = msgs.next();
            if let Some(msg) = &msg {
                match encode_frame(&mut buf, msg, max_frame_bytes) {
                    Ok(()) => framed.push(msg.kind()),
                    Err(e) => {
                        warn!(node, error = %e, "message to peer dropped");
                        failed.increment(1);
                    }
                }
            }
            // A write when the buffer is full, and one for the rest at the end.
            let last = msg.is_none();
            if buf.len() >= WRITE_BYTES_MAX || (last && !buf.is_empty()) {
                match write(&mut stream, &buf).await {
                    Ok(()) => writes.increment(1),
                    Err(e) => broke = Some(e),
                }
                buf.clear();
            }
            if last {
                break;
            }
        }
        if let Some(e) = broke {
            debug!(node, error = %e, "stream to peer broke");
            failed.increment((framed.len() + msgs.len() + queue.len()) as u64);
            return;
        }
        drop(msgs);
        for kind in framed.drain(..) {
            let counter = sent.entry(kind).or_insert_with(
                || metrics::counter!("sessiongrid_p2p_messages_sent_total", "kind" => kind),
            );
            counter.increment(1);
        }
    }
}

async fn write(stream: &mut Stream, bytes: &[u8]) -> std::io::Result<()> {
    let written = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    match tokio::time::timeout(STREAM_TIMEOUT, written).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "write timed out")),
    }
}

/// Reads every stream peers open to this node, delivering their messages to `inbox`.
pub(crate) async fn accept_loop(
    mut incoming: IncomingStreams,
    inbox: Inbox,
    max_frame_bytes: usize,
) {
    while let Some((peer, stream)) = incoming.next().await {
        tokio::spawn(read_loop(peer, stream, inbox.clone(), max_frame_bytes));
    }
}

async fn read_loop(peer: PeerId, stream: Stream, inbox: Inbox, max_frame_bytes: usize) {
    let from = node_id(&peer);
    let received = metrics::counter!("sessiongrid_p2p_messages_received_total");
    let bad = metrics::counter!("sessiongrid_p2p_bad_messages_total");
    let mut reader = BufReader::with_capacity(READ_BUFFER, stream);
    loop {
        let frame = match read_frame(&mut reader, max_frame_bytes).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(e) => {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    bad.increment(1);
                    warn!(node = from, error = %e, "peer sent a bad frame; closing its stream");
                } else {
                    debug!(node = from, error = %e, "stream from peer ended");
                }
                return;
            }
        };
        match decode(&frame) {
            Ok(msg) => {
                received.increment(1);
                inbox.message(from, msg);
            }
            Err(e) => {
                bad.increment(1);
                warn!(node = from, error = %e, "peer sent a message that does not decode; closing its stream");
                return;
            }
        }
    }
}
