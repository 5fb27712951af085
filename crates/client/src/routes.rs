//! [`Routes`]: which node is each hash slot's primary, read from `CLUSTER SHARDS`, so a command
//! about one key goes straight to the node that holds it instead of through one that forwards
//! it. A route is only ever a shortcut: every node serves every key.

use std::collections::HashMap;

use crate::connection::Value;

/// Redis Cluster's hash slots.
pub const SLOTS: u16 = 16384;

/// Each slot's primary, as an index into `nodes` (the nodes' Redis door addresses).
#[derive(Debug, PartialEq)]
pub struct Routes {
    nodes: Vec<String>,
    primary: Vec<Option<u16>>,
}

impl Routes {
    /// The routes a `CLUSTER SHARDS` reply gives, if they spread the slots over more than one
    /// node. A node gives itself for every slot when it cannot map slots to its partitions, and
    /// to a TLS client; a client that followed that would send all its load to one node.
    pub fn from_shards(reply: &Value) -> Option<Routes> {
        let Value::Array(shards) = reply else { return None };
        let mut routes = Routes { nodes: Vec::new(), primary: vec![None; usize::from(SLOTS)] };
        let mut index = HashMap::new();
        for shard in shards {
            let Value::Array(fields) = shard else { continue };
            let field = |name: &[u8]| {
                fields.chunks(2).find_map(|kv| match kv {
                    [Value::Bulk(k), v] if k.as_ref() == name => Some(v),
                    _ => None,
                })
            };
            let (Some(Value::Array(slots)), Some(Value::Array(nodes))) =
                (field(b"slots"), field(b"nodes"))
            else {
                continue;
            };
            let Some(address) = nodes.iter().find_map(primary_address) else { continue };
            let next = u16::try_from(routes.nodes.len()).ok()?;
            let node = *index.entry(address.clone()).or_insert_with(|| {
                routes.nodes.push(address);
                next
            });
            for range in slots.chunks(2) {
                let [Value::Int(first), Value::Int(last)] = range else { continue };
                let (Ok(first), Ok(last)) = (u16::try_from(*first), u16::try_from(*last)) else {
                    continue;
                };
                for slot in first..=last.min(SLOTS - 1) {
                    routes.primary[usize::from(slot)] = Some(node);
                }
            }
        }
        let used = routes.primary.iter().flatten().collect::<std::collections::HashSet<_>>();
        (used.len() > 1).then_some(routes)
    }

    /// The address of `slot`'s primary, if the routes know it.
    pub fn node(&self, slot: u16) -> Option<&str> {
        let i = (*self.primary.get(usize::from(slot))?)?;
        self.nodes.get(usize::from(i)).map(String::as_str)
    }
}

/// `host:port` of a shard's node whose role is `master`.
fn primary_address(node: &Value) -> Option<String> {
    let Value::Array(fields) = node else { return None };
    let (mut ip, mut port, mut primary) = (None, None, false);
    for kv in fields.chunks(2) {
        match kv {
            [Value::Bulk(k), Value::Bulk(v)] if k.as_ref() == b"ip" => {
                ip = std::str::from_utf8(v).ok().filter(|ip| !ip.is_empty())
            }
            [Value::Bulk(k), Value::Int(p)] if k.as_ref() == b"port" => {
                port = u16::try_from(*p).ok().filter(|p| *p != 0)
            }
            [Value::Bulk(k), Value::Bulk(v)] if k.as_ref() == b"role" => {
                primary = v.as_ref() == b"master"
            }
            _ => {}
        }
    }
    let (ip, port) = (ip?, port?);
    primary
        .then(|| if ip.contains(':') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::Bulk(s.to_string().into())
    }

    fn shard(ranges: &[(i64, i64)], ip: &str, port: i64) -> Value {
        let slots = ranges.iter().flat_map(|(a, b)| [Value::Int(*a), Value::Int(*b)]).collect();
        let node = Value::Array(vec![
            bulk("id"),
            bulk("00ab"),
            bulk("port"),
            Value::Int(port),
            bulk("ip"),
            bulk(ip),
            bulk("role"),
            bulk("master"),
        ]);
        Value::Array(vec![
            bulk("slots"),
            Value::Array(slots),
            bulk("nodes"),
            Value::Array(vec![node]),
        ])
    }

    #[test]
    fn each_slot_goes_to_its_shards_primary() {
        let reply = Value::Array(vec![
            shard(&[(0, 0), (2, 100)], "127.0.0.1", 7000),
            shard(&[(1, 1), (101, 16383)], "::1", 7001),
        ]);
        let routes = Routes::from_shards(&reply).unwrap();
        assert_eq!(routes.node(0), Some("127.0.0.1:7000"));
        assert_eq!(routes.node(1), Some("[::1]:7001"));
        assert_eq!(routes.node(50), Some("127.0.0.1:7000"));
        assert_eq!(routes.node(16383), Some("[::1]:7001"));
        assert_eq!(routes.node(16384), None);
    }

    #[test]
    fn one_node_for_every_slot_or_a_malformed_reply_is_no_routes() {
        let one = Value::Array(vec![shard(&[(0, 16383)], "127.0.0.1", 7000)]);
        assert_eq!(Routes::from_shards(&one), None);
        assert_eq!(Routes::from_shards(&bulk("nonsense")), None);
        let bad = Value::Array(vec![
            shard(&[(0, 99999)], "127.0.0.1", 7000),
            shard(&[(-1, 5)], "", 7001),
            Value::Int(3),
        ]);
        assert_eq!(Routes::from_shards(&bad), None);
    }
}
