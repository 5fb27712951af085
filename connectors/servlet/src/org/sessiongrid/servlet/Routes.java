package org.sessiongrid.servlet;

import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Which grid node is each hash slot's primary, read from {@code CLUSTER SHARDS}, so a session's
 * commands go straight to the node that holds it instead of through one that forwards them. A
 * route is only ever a shortcut: every node serves every key.
 */
final class Routes {
    /** Redis Cluster's hash slots. */
    static final int SLOTS = 16384;

    private final InetSocketAddress[] primary;

    private Routes(InetSocketAddress[] primary) {
        this.primary = primary;
    }

    /** The primary of {@code slot}, or {@code null} if these routes do not know it. */
    InetSocketAddress node(int slot) {
        return slot >= 0 && slot < SLOTS ? primary[slot] : null;
    }

    /** The hash slot of the key a session {@code id} is stored under. */
    static int slotOfSession(String id) {
        return slot(("sg:session:" + id).getBytes(StandardCharsets.UTF_8));
    }

    /** The Redis Cluster hash slot of {@code key}: CRC16 of its hash tag, if it has one, or of it. */
    static int slot(byte[] key) {
        int from = 0;
        int to = key.length;
        for (int open = 0; open < key.length; open++) {
            if (key[open] == '{') {
                for (int close = open + 1; close < key.length; close++) {
                    if (key[close] == '}') {
                        if (close > open + 1) {
                            from = open + 1;
                            to = close;
                        }
                        break;
                    }
                }
                break;
            }
        }
        return crc16(key, from, to) % SLOTS;
    }

    /** CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0. */
    static int crc16(byte[] bytes, int from, int to) {
        int crc = 0;
        for (int i = from; i < to; i++) {
            crc ^= (bytes[i] & 0xff) << 8;
            for (int bit = 0; bit < 8; bit++) {
                crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1;
            }
            crc &= 0xffff;
        }
        return crc;
    }

    /**
     * The routes a {@code CLUSTER SHARDS} reply gives, or {@code null} if it does not spread the
     * slots over more than one node: a node gives itself for every slot when it cannot map slots
     * to its partitions, and a client that followed that would send all its load to one node.
     */
    static Routes fromShards(Object reply) {
        if (!(reply instanceof List<?> shards)) {
            return null;
        }
        InetSocketAddress[] primary = new InetSocketAddress[SLOTS];
        Map<String, InetSocketAddress> known = new HashMap<>();
        for (Object shard : shards) {
            Map<String, Object> fields = fields(shard);
            InetSocketAddress node = null;
            if (fields.get("nodes") instanceof List<?> nodes) {
                for (Object n : nodes) {
                    Map<String, Object> f = fields(n);
                    if (f.get("ip") instanceof byte[] ip && f.get("port") instanceof Long port
                            && "master".equals(text(f.get("role"))) && ip.length > 0 && port > 0 && port < 65536) {
                        String host = new String(ip, StandardCharsets.UTF_8);
                        node = known.computeIfAbsent(host + " " + port,
                                k -> InetSocketAddress.createUnresolved(host, port.intValue()));
                        break;
                    }
                }
            }
            if (node == null || !(fields.get("slots") instanceof List<?> slots)) {
                continue;
            }
            for (int i = 0; i + 1 < slots.size(); i += 2) {
                if (slots.get(i) instanceof Long first && slots.get(i + 1) instanceof Long last) {
                    for (long s = Math.max(0, first); s <= Math.min(SLOTS - 1, last); s++) {
                        primary[(int) s] = node;
                    }
                }
            }
        }
        Set<InetSocketAddress> used = new HashSet<>();
        for (InetSocketAddress a : primary) {
            if (a != null) {
                used.add(a);
            }
        }
        return used.size() > 1 ? new Routes(resolved(primary)) : null;
    }

    /** The same addresses, resolved once (a node's address is usually an IP already). */
    private static InetSocketAddress[] resolved(InetSocketAddress[] primary) {
        Map<InetSocketAddress, InetSocketAddress> done = new HashMap<>();
        InetSocketAddress[] out = new InetSocketAddress[primary.length];
        for (int i = 0; i < primary.length; i++) {
            InetSocketAddress a = primary[i];
            if (a != null) {
                out[i] = done.computeIfAbsent(a, u -> new InetSocketAddress(u.getHostString(), u.getPort()));
            }
        }
        return out;
    }

    /** A RESP2 map (a flat list of names and values) by name. */
    private static Map<String, Object> fields(Object flat) {
        Map<String, Object> map = new HashMap<>();
        if (flat instanceof List<?> list) {
            for (int i = 0; i + 1 < list.size(); i += 2) {
                String name = text(list.get(i));
                if (name != null) {
                    map.put(name, list.get(i + 1));
                }
            }
        }
        return map;
    }

    private static String text(Object o) {
        return o instanceof byte[] b ? new String(b, StandardCharsets.UTF_8) : null;
    }
}
