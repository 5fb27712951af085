//! `CLUSTER ...` and the commands around it: what a Redis Cluster client routes by.
//!
//! The grid's partitions are Redis Cluster's hash slots folded: slot `s` (CRC16 of the key or
//! of its `{tag}`, mod 16384) is in partition `s % partitions` when the partition count divides
//! 16384, so a cluster-aware client learns each slot's primary (`CLUSTER SLOTS`, `SHARDS`,
//! `NODES`) and sends each key straight to its node. Every node still serves every key,
//! forwarding one whose primary is elsewhere, so a client with an old map is slower, never
//! wrong, and no node answers `MOVED`. A slot whose primary's door is unknown here (a peer
//! that has not announced it yet) is given as this node's; a client on a TLS connection is
//! given this node for every slot (peers announce their plain doors only).

use bytes::Bytes;
use sessiongrid_grid::directory::SlotMap;
use sessiongrid_model::key::{slot, SLOTS};
use sessiongrid_model::{KeyFilter, PartitionId, Reply};

use super::{CmdResult, Ctx};

/// A client's view of the cluster: the map, and how this node is reached.
struct View {
    map: SlotMap,
    /// This node's host and port, as the client reached it.
    me: (String, u16),
    partitions: u16,
}

/// The partition every key of `slot` is in: `slot % partitions`, when the partition count
/// divides the slots (the key hash is the same CRC16); `None` otherwise.
fn partition_of_slot(slot: u16, partitions: u16) -> Option<PartitionId> {
    SLOTS.is_multiple_of(partitions).then_some(slot % partitions)
}

impl View {
    fn of(ctx: &Ctx<'_>) -> View {
        let grid = &ctx.shared.grid;
        let mut map = grid.slot_map();
        if ctx.client.view.tls {
            map.doors.clear();
        }
        let laddr = ctx.client.view.laddr;
        View { map, me: (laddr.ip().to_string(), laddr.port()), partitions: grid.partitions() }
    }

    /// The nodes a client is sent to for `slot`, primary first.
    fn owners(&self, slot: u16) -> Vec<u64> {
        match partition_of_slot(slot, self.partitions) {
            Some(p) => self.map.reachable(p),
            None => vec![self.map.me],
        }
    }

    /// Runs of consecutive slots sent to the same nodes: `(first, last, nodes)`.
    fn ranges(&self) -> Vec<(u16, u16, Vec<u64>)> {
        let mut ranges: Vec<(u16, u16, Vec<u64>)> = Vec::new();
        for slot in 0..SLOTS {
            let owners = self.owners(slot);
            match ranges.last_mut() {
                Some((_, last, nodes)) if *nodes == owners => *last = slot,
                _ => ranges.push((slot, slot, owners)),
            }
        }
        ranges
    }

    /// The nodes a client can reach: this one first.
    fn nodes(&self) -> Vec<u64> {
        let others = self.map.members.iter().copied();
        std::iter::once(self.map.me)
            .chain(others.filter(|n| *n != self.map.me && self.map.doors.contains_key(n)))
            .collect()
    }

    fn address(&self, node: u64) -> (String, u16) {
        if node == self.map.me {
            return self.me.clone();
        }
        let door = self.map.doors.get(&node).map_or("", String::as_str);
        let (host, port) = door.rsplit_once(':').unwrap_or((door, "0"));
        (host.trim_start_matches('[').trim_end_matches(']').to_string(), port.parse().unwrap_or(0))
    }
}

fn id(node: u64) -> String {
    format!("{node:040x}")
}

fn bulk(text: impl Into<String>) -> Reply {
    Reply::Bulk(Bytes::from(text.into()))
}

pub async fn cluster(ctx: &mut Ctx<'_>) -> CmdResult {
    let sub = ctx.args.text(1).to_ascii_lowercase();
    let n = ctx.args.len();
    match (sub.as_str(), n) {
        ("slots", 2) => Ok(slots(&View::of(ctx))),
        ("shards", 2) => Ok(shards(&View::of(ctx))),
        ("nodes", 2) => Ok(Reply::Verbatim(Bytes::from(nodes(&View::of(ctx))))),
        ("myid" | "myshardid", 2) => Ok(bulk(id(View::of(ctx).map.me))),
        ("info", 2) => Ok(Reply::Verbatim(Bytes::from(info(&View::of(ctx))))),
        ("keyslot", 3) => Ok(Reply::Int(i64::from(slot(ctx.args.get(2))))),
        ("countkeysinslot", 3) => {
            let keys = keys_in_slot(ctx, slot_arg(ctx, 2)?, usize::MAX).await?;
            Ok(Reply::Int(keys.len() as i64))
        }
        ("getkeysinslot", 4) => {
            let count = usize::try_from(ctx.args.int(3)?)
                .map_err(|_| Reply::error("ERR Invalid number of keys"))?;
            let keys = keys_in_slot(ctx, slot_arg(ctx, 2)?, count).await?;
            Ok(Reply::Array(keys.into_iter().map(Reply::Bulk).collect()))
        }
        ("help", 2) => Ok(Reply::Array(
            [
                "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "SLOTS, SHARDS, NODES: where each hash slot's primary and replicas are.",
                "MYID, MYSHARDID: this node's id.",
                "INFO: the cluster's state.",
                "KEYSLOT <key>, COUNTKEYSINSLOT <slot>, GETKEYSINSLOT <slot> <count>.",
                "The grid places slots itself: no command moves them.",
            ]
            .into_iter()
            .map(|l| Reply::Status(l.into()))
            .collect(),
        )),
        (
            "slots" | "shards" | "nodes" | "myid" | "myshardid" | "info" | "keyslot"
            | "countkeysinslot" | "getkeysinslot" | "help",
            _,
        ) => {
            Err(Reply::error(format!("ERR wrong number of arguments for 'cluster|{sub}' command")))
        }
        _ => Err(Reply::error(format!(
            "ERR CLUSTER {} is not supported: the grid places hash slots itself",
            sub.to_uppercase()
        ))),
    }
}

fn slot_arg(ctx: &Ctx<'_>, i: usize) -> Result<u16, Reply> {
    u16::try_from(ctx.args.int(i)?)
        .ok()
        .filter(|s| *s < SLOTS)
        .ok_or_else(|| Reply::error("ERR Invalid slot"))
}

async fn keys_in_slot(ctx: &Ctx<'_>, wanted: u16, count: usize) -> Result<Vec<Bytes>, Reply> {
    let partitions = ctx.shared.grid.partitions();
    let scanned = match partition_of_slot(wanted, partitions) {
        Some(p) => p..p + 1,
        None => 0..partitions,
    };
    let mut keys = Vec::new();
    for p in scanned {
        let mut found = ctx.keys(p, KeyFilter::default()).await?;
        found.retain(|k| slot(k) == wanted);
        keys.append(&mut found);
    }
    keys.sort();
    keys.truncate(count);
    Ok(keys)
}

/// `CLUSTER SLOTS`: per run of slots, its first and last slot, then its nodes (primary first)
/// as host, port and id.
fn slots(view: &View) -> Reply {
    let ranges = view.ranges();
    let node = |n: u64| {
        let (host, port) = view.address(n);
        Reply::Array(vec![bulk(host), Reply::Int(i64::from(port)), bulk(id(n))])
    };
    Reply::Array(
        ranges
            .into_iter()
            .map(|(first, last, nodes)| {
                let bounds = [Reply::Int(i64::from(first)), Reply::Int(i64::from(last))];
                Reply::Array(bounds.into_iter().chain(nodes.into_iter().map(node)).collect())
            })
            .collect(),
    )
}

/// The runs of slots whose primary is `node`.
fn primary_ranges(ranges: &[(u16, u16, Vec<u64>)], node: u64) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for (first, last, _) in ranges.iter().filter(|(_, _, nodes)| nodes.first() == Some(&node)) {
        match out.last_mut() {
            Some((_, end)) if *end + 1 == *first => *end = *last,
            _ => out.push((*first, *last)),
        }
    }
    out
}

/// `CLUSTER SHARDS`: one shard per node, the slots it is primary of. A partition's followers
/// differ from partition to partition, so no node is given as another's replica.
fn shards(view: &View) -> Reply {
    let ranges = view.ranges();
    let shard = |n: u64| {
        let (host, port) = view.address(n);
        let slots = primary_ranges(&ranges, n)
            .into_iter()
            .flat_map(|(a, b)| [Reply::Int(i64::from(a)), Reply::Int(i64::from(b))])
            .collect();
        let node = Reply::Map(vec![
            (bulk("id"), bulk(id(n))),
            (bulk("port"), Reply::Int(i64::from(port))),
            (bulk("ip"), bulk(host.clone())),
            (bulk("endpoint"), bulk(host)),
            (bulk("role"), bulk("master")),
            (bulk("replication-offset"), Reply::Int(0)),
            (bulk("health"), bulk("online")),
        ]);
        Reply::Map(vec![
            (bulk("slots"), Reply::Array(slots)),
            (bulk("nodes"), Reply::Array(vec![node])),
        ])
    };
    Reply::Array(view.nodes().into_iter().map(shard).collect())
}

/// `CLUSTER NODES`: a line per node, each a primary of the slots it is primary of.
fn nodes(view: &View) -> String {
    let ranges = view.ranges();
    let mut out = String::new();
    for n in view.nodes() {
        let (host, port) = view.address(n);
        let flags = if n == view.map.me { "myself,master" } else { "master" };
        let cport = u32::from(port) + 10000;
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        out.push_str(&format!(
            "{} {host}:{port}@{cport} {flags} - 0 0 {} connected",
            id(n),
            view.map.epoch
        ));
        for (a, b) in primary_ranges(&ranges, n) {
            if a == b {
                out.push_str(&format!(" {a}"));
            } else {
                out.push_str(&format!(" {a}-{b}"));
            }
        }
        out.push('\n');
    }
    out
}

fn info(view: &View) -> String {
    let known = view.nodes().len();
    let epoch = view.map.epoch;
    format!(
        "cluster_state:ok\r\ncluster_slots_assigned:{SLOTS}\r\ncluster_slots_ok:{SLOTS}\r\n\
         cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{known}\r\n\
         cluster_size:{known}\r\ncluster_current_epoch:{epoch}\r\ncluster_my_epoch:{epoch}\r\n"
    )
}

/// `READONLY`, `READWRITE`, `ASKING`: every node serves every key consistently (a read goes
/// to the key's primary), so there is nothing to switch.
pub fn accepted() -> CmdResult {
    Ok(Reply::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn view(owners: Vec<Vec<u64>>, doors: &[(u64, &str)]) -> View {
        let partitions = owners.len() as u16;
        let map = SlotMap {
            me: 1,
            epoch: 9,
            owners,
            members: vec![1, 2, 3],
            doors: doors.iter().map(|(n, d)| (*n, d.to_string())).collect::<HashMap<_, _>>(),
        };
        View { map, me: ("127.0.0.1".into(), 7001), partitions }
    }

    #[test]
    fn slots_are_partitions_folded_and_runs_of_one_primary_merge() {
        let v =
            view(vec![vec![1, 2], vec![2, 1], vec![2, 3], vec![3, 1]], &[(2, "127.0.0.2:7002")]);
        // Partition 3's primary (node 3) has no known door: this node stands in.
        assert_eq!(v.owners(0), vec![1, 2]);
        assert_eq!(v.owners(5), vec![2, 1]);
        assert_eq!(v.owners(7), vec![1]);
        let ranges = v.ranges();
        assert_eq!(ranges.len(), 16384, "every neighbour differs here: {:?}", &ranges[..4]);
        assert_eq!(primary_ranges(&ranges, 2).len(), 4096);
        let one = view(vec![vec![1]; 4], &[]);
        assert_eq!(one.ranges(), vec![(0, 16383, vec![1])]);
        assert!(nodes(&one).starts_with(&format!("{} 127.0.0.1:7001@17001 myself,master", id(1))));
        assert!(nodes(&one).trim_end().ends_with(" connected 0-16383"));
        assert_eq!(v.address(2), ("127.0.0.2".into(), 7002));
        assert_eq!(v.nodes(), vec![1, 2], "node 3 cannot be reached");
    }

    #[test]
    fn a_partition_count_that_does_not_divide_the_slots_sends_every_slot_here() {
        let v = view(vec![vec![2]; 100], &[(2, "127.0.0.2:7002")]);
        assert_eq!(v.ranges(), vec![(0, 16383, vec![1])]);
    }
}
