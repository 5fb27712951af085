//! The libp2p swarm and its event loop.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::pnet::{PnetConfig, PreSharedKey};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    identify, kad, noise, ping, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm, Transport,
};
use sessiongrid_cluster::{Msg, NodeId};
use sessiongrid_grid::transport::{Inbox, Transport as GridTransport};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::codec::PROTOCOL;
use crate::identity::node_id;
use crate::streams::{accept_loop, Writers};

const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/sessiongrid/kad/1.0.0");
const IDENTIFY_PROTOCOL: &str = "/sessiongrid/id/1.0.0";
/// How often unreachable `--join` addresses are dialled again.
const REDIAL: Duration = Duration::from_secs(1);

pub struct NetConfig {
    pub keypair: Keypair,
    pub listen: SocketAddr,
    pub join: Vec<SocketAddr>,
    /// The cluster secret; peers without the same one cannot connect.
    pub secret: Option<Vec<u8>>,
    pub max_frame_bytes: usize,
    /// Where this node's Redis door answers (`host:port`; an unspecified host is read as the
    /// address peers reach this node at), told to peers for cluster-aware clients.
    pub door: Option<String>,
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    stream: libp2p_stream::Behaviour,
    /// Checks every connection now and then; one that stops answering is closed, so a peer's
    /// stream is never reopened onto a connection that died without a word (a host crash).
    ping: ping::Behaviour,
}

/// The grid's handle on the network: send a message to a node by id.
pub struct Net {
    /// Live streams to peers; a message goes straight to its peer's stream. Set once started.
    writers: OnceLock<Arc<Writers>>,
    /// Messages for peers without a live stream go through the event loop, which opens one
    /// (and those sent before it started wait there).
    outbound: mpsc::UnboundedSender<(NodeId, Msg)>,
    /// What starting needs, until the grid starts the transport on its engine thread.
    unstarted: Mutex<Option<Unstarted>>,
    pub id: NodeId,
}

struct Unstarted {
    config: NetConfig,
    inbox: Inbox,
    outbound: mpsc::UnboundedReceiver<(NodeId, Msg)>,
}

impl GridTransport for Net {
    fn send(&self, to: NodeId, msg: Msg) {
        let unsent = match self.writers.get() {
            Some(writers) => writers.send(to, msg),
            None => Some(msg),
        };
        if let Some(msg) = unsent {
            let _ = self.outbound.send((to, msg));
        }
    }

    fn start(&self) -> Result<(), String> {
        let Some(unstarted) = self.unstarted.lock().expect("net lock").take() else {
            return Ok(()); // started already
        };
        let writers = Net::start_here(unstarted).map_err(|e| format!("{e:#}"))?;
        let _ = self.writers.set(writers);
        Ok(())
    }
}

fn multiaddr(addr: SocketAddr) -> Multiaddr {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) => Protocol::Ip4(ip),
        std::net::IpAddr::V6(ip) => Protocol::Ip6(ip),
    };
    Multiaddr::empty().with(ip).with(Protocol::Tcp(addr.port()))
}

fn transport(
    key: &Keypair,
    secret: Option<&[u8]>,
) -> anyhow::Result<Boxed<(PeerId, StreamMuxerBox)>> {
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    let noise = noise::Config::new(key).context("noise")?;
    let upgraded = match secret {
        Some(secret) => {
            let psk = PreSharedKey::new(Sha256::digest(secret).into());
            tcp.and_then(move |socket, _| PnetConfig::new(psk).handshake(socket))
                .upgrade(Version::V1Lazy)
                .authenticate(noise)
                .multiplex(yamux::Config::default())
                .timeout(Duration::from_secs(10))
                .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
                .boxed()
        }
        None => tcp
            .upgrade(Version::V1Lazy)
            .authenticate(noise)
            .multiplex(yamux::Config::default())
            .timeout(Duration::from_secs(10))
            .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
            .boxed(),
    };
    Ok(upgraded)
}

impl Net {
    /// A transport that, once started ([`GridTransport::start`]), listens and dials and
    /// delivers peers' messages to `inbox`.
    pub fn new(config: NetConfig, inbox: Inbox) -> Net {
        let id = node_id(&config.keypair.public().to_peer_id());
        let (outbound, rx) = mpsc::unbounded_channel();
        let unstarted = Unstarted { config, inbox, outbound: rx };
        Net { writers: OnceLock::new(), outbound, unstarted: Mutex::new(Some(unstarted)), id }
    }

    /// Starts listening and dialling, with every task of the transport on the current runtime.
    fn start_here(unstarted: Unstarted) -> anyhow::Result<Arc<Writers>> {
        let Unstarted { config, inbox, outbound: rx } = unstarted;
        let peer_id = config.keypair.public().to_peer_id();
        let id = node_id(&peer_id);
        let transport = transport(&config.keypair, config.secret.as_deref())?;
        let max_frame_bytes = config.max_frame_bytes;
        let door = config.door.clone();
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair)
            .with_tokio()
            .with_other_transport(|_| transport)?
            .with_behaviour(|key| {
                let me = key.public().to_peer_id();
                let mut agent = format!("sessiongrid/{}", env!("CARGO_PKG_VERSION"));
                if let Some(door) = &door {
                    agent.push_str(&format!(" {DOOR_PREFIX}{door}"));
                }
                let identify = identify::Behaviour::new(
                    identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                        .with_agent_version(agent),
                );
                let mut kad = kad::Behaviour::with_config(
                    me,
                    kad::store::MemoryStore::new(me),
                    kad::Config::new(KAD_PROTOCOL),
                );
                // On a LAN no external address is ever confirmed; without this Kademlia stays a
                // client and nobody learns about anybody.
                kad.set_mode(Some(kad::Mode::Server));
                let ping = ping::Behaviour::new(ping::Config::new());
                Behaviour { identify, kad, stream: libp2p_stream::Behaviour::new(), ping }
            })?
            .with_swarm_config(|c| {
                c.with_idle_connection_timeout(Duration::from_secs(3600))
                    // Open streams with their protocol name instead of waiting a round trip
                    // for the peer to confirm it.
                    .with_substream_upgrade_protocol_override(Version::V1Lazy)
            })
            .build();
        let mut control = swarm.behaviour().stream.new_control();
        let incoming = control.accept(PROTOCOL).context("accepting grid streams")?;
        tokio::spawn(accept_loop(incoming, inbox.clone(), max_frame_bytes));
        let writers = Arc::new(Writers::new(control, max_frame_bytes));
        swarm.listen_on(multiaddr(config.listen)).context("listening for peers")?;
        let joins: Vec<Multiaddr> = config.join.iter().copied().map(multiaddr).collect();
        info!(node = id, %peer_id, listen = %config.listen, "p2p transport started");
        tokio::spawn(run(swarm, rx, inbox, joins, writers.clone()));
        Ok(writers)
    }
}

struct State {
    inbox: Inbox,
    peers: HashMap<NodeId, PeerId>,
    joins: Vec<Multiaddr>,
    /// Join addresses with a live connection.
    joined: BTreeSet<Multiaddr>,
    /// When a failed handshake from each address was last logged as a warning.
    refused_logged: HashMap<IpAddr, tokio::time::Instant>,
    /// The address each peer's last connection came from or went to.
    remote_ip: HashMap<PeerId, IpAddr>,
}

/// A failed handshake from one address is logged as a warning at most this often (peers that
/// still dial a node restarted under a new identity retry by the dozen each second).
const REFUSED_LOG_EVERY: Duration = Duration::from_secs(30);

async fn run(
    mut swarm: Swarm<Behaviour>,
    mut outbound: mpsc::UnboundedReceiver<(NodeId, Msg)>,
    inbox: Inbox,
    joins: Vec<Multiaddr>,
    writers: Arc<Writers>,
) {
    let mut state = State {
        inbox,
        peers: HashMap::new(),
        joins,
        joined: BTreeSet::new(),
        refused_logged: HashMap::new(),
        remote_ip: HashMap::new(),
    };
    let mut redial = tokio::time::interval(REDIAL);
    let mut last_bootstrap = tokio::time::Instant::now() - REDIAL;
    loop {
        tokio::select! {
            next = outbound.recv() => {
                let Some((to, msg)) = next else { break };
                // Another message may have opened the stream since this one was queued.
                let Some(msg) = writers.send(to, msg) else { continue };
                match state.peers.get(&to) {
                    Some(peer) => writers.start(to, *peer, msg),
                    None => {
                        debug!(node = to, "no address for node yet; looking it up");
                        metrics::counter!("sessiongrid_p2p_send_failures_total").increment(1);
                        if last_bootstrap.elapsed() >= REDIAL {
                            last_bootstrap = tokio::time::Instant::now();
                            let _ = swarm.behaviour_mut().kad.bootstrap();
                        }
                    }
                }
            }
            event = swarm.select_next_some() => on_event(&mut swarm, &mut state, event),
            _ = redial.tick() => {
                for addr in state.joins.clone() {
                    if !state.joined.contains(&addr) {
                        if let Err(e) = swarm.dial(addr.clone()) {
                            debug!(%addr, error = %e, "dial failed");
                        }
                    }
                }
            }
        }
    }
}

/// Marks the Redis door's address in the agent version peers announce.
const DOOR_PREFIX: &str = "door=";

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// The Redis door a peer announced in its agent version, if any, with an unspecified host
/// read as `remote`, the address its connection has.
fn door_of(agent: &str, remote: Option<IpAddr>) -> Option<String> {
    let door = agent.split(' ').find_map(|w| w.strip_prefix(DOOR_PREFIX))?;
    match door.parse::<SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => {
            Some(SocketAddr::new(remote?, addr.port()).to_string())
        }
        _ => Some(door.to_string()),
    }
}

/// True if `remote` is the `--join` address `join` (a remote address may carry a `/p2p/<id>`
/// suffix the join address lacks).
fn same_address(remote: &Multiaddr, join: &Multiaddr) -> bool {
    remote.iter().zip(join.iter()).all(|(a, b)| a == b)
}

fn remember(state: &mut State, peer: PeerId) -> NodeId {
    let id = node_id(&peer);
    state.peers.insert(id, peer);
    id
}

fn on_event(swarm: &mut Swarm<Behaviour>, state: &mut State, event: SwarmEvent<BehaviourEvent>) {
    match event {
        SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
            let id = remember(state, peer_id);
            let addr = endpoint.get_remote_address().clone();
            if let Some(ip) = ip_of(&addr) {
                state.remote_ip.insert(peer_id, ip);
            }
            metrics::counter!("sessiongrid_p2p_connections_total").increment(1);
            if endpoint.is_dialer() {
                let joined = state.joins.iter().find(|j| same_address(&addr, j)).cloned();
                if let Some(j) = joined {
                    state.joined.insert(j);
                    state.inbox.seed(id);
                }
                swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                let _ = swarm.behaviour_mut().kad.bootstrap();
            }
            debug!(node = id, %peer_id, "connected");
        }
        SwarmEvent::ConnectionClosed { peer_id, endpoint, num_established, .. } => {
            if num_established == 0 && endpoint.is_dialer() {
                let addr = endpoint.get_remote_address();
                state.joined.retain(|j| !same_address(addr, j));
            }
            debug!(%peer_id, "disconnected");
        }
        SwarmEvent::IncomingConnectionError { error, send_back_addr, .. } => {
            metrics::counter!("sessiongrid_p2p_handshake_failures_total").increment(1);
            let now = tokio::time::Instant::now();
            let ip = ip_of(&send_back_addr);
            let warned = ip.and_then(|ip| state.refused_logged.get(&ip));
            if warned.is_some_and(|at| now.duration_since(*at) < REFUSED_LOG_EVERY) {
                debug!(peer = %send_back_addr, error = %error, "refused a peer");
            } else {
                if let Some(ip) = ip {
                    if state.refused_logged.len() >= 1024 {
                        state.refused_logged.clear(); // many strangers: start over
                    }
                    state.refused_logged.insert(ip, now);
                }
                warn!(
                    peer = %send_back_addr,
                    error = %error,
                    "refused a peer (a wrong or missing cluster secret, or a peer still dialing a \
                     node that restarted under a new identity; repeats from this address are \
                     logged at debug for 30 s)"
                );
            }
        }
        SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
            peer_id,
            info,
            ..
        })) => {
            let id = remember(state, peer_id);
            let door = door_of(&info.agent_version, state.remote_ip.get(&peer_id).copied());
            if let Some(door) = door {
                state.inbox.door(id, door);
            }
            for addr in info.listen_addrs {
                swarm.behaviour_mut().kad.add_address(&peer_id, addr);
            }
        }
        SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
            peer,
            connection,
            result: Err(error),
        })) => {
            debug!(%peer, %error, "a connection stopped answering pings; closing it");
            swarm.close_connection(connection);
        }
        SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated { peer, .. })) => {
            remember(state, peer);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_door_on_every_interface_is_reached_where_the_peer_is() {
        let remote = Some("10.1.2.3".parse().unwrap());
        let agent = "sessiongrid/0.1.0 door=0.0.0.0:6380";
        assert_eq!(door_of(agent, remote).as_deref(), Some("10.1.2.3:6380"));
        assert_eq!(door_of(agent, None), None, "nowhere to reach it yet");
        let agent = "sessiongrid/0.1.0 door=127.0.0.2:6379";
        assert_eq!(door_of(agent, remote).as_deref(), Some("127.0.0.2:6379"));
        assert_eq!(
            door_of("sessiongrid/0.1.0 door=grid-1:6379", remote).as_deref(),
            Some("grid-1:6379")
        );
        assert_eq!(door_of("sessiongrid/0.1.0", remote), None, "no door (an embedded node)");
    }
}
