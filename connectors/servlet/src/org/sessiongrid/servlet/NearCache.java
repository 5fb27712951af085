package org.sessiongrid.servlet;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Sessions this application read recently, kept so that a request can skip the grid.
 *
 * <p>A cached session is used only if it is no older than {@code maxAgeMillis}, and at least as
 * new as the version the browser last saw (the version cookie), so a user's requests always see
 * their own writes, whichever server wrote them. Changes made elsewhere (another application,
 * another language, a forced logout, an expiry) drop the copy when their event arrives
 * ({@link EventFeed}); if an event is lost, {@code maxAgeMillis} bounds how long a copy can lag.
 * A hit still tells the grid the session was used, at most once per touch interval, off the
 * request's thread.
 */
final class NearCache {
    /** A cached session, and when this server last told the grid it was used. */
    private static final class Entry {
        final Grid.Data data;
        final long storedAt;
        long touchedAt;

        Entry(Grid.Data data, long now) {
            this.data = data;
            this.storedAt = now;
            this.touchedAt = now;
        }
    }

    private final long maxAgeMillis;
    private final Map<String, Entry> entries;
    /**
     * The generation at which each recently dropped session was dropped, so a read that began
     * before the drop cannot put its older result back. Kept apart from {@link #entries}, so
     * events about sessions this server never cached do not push cached ones out.
     */
    private final Map<String, Long> drops;
    /** Bumped by every drop; a read remembers it when it starts (see {@link #generation()}). */
    private long generation;
    /**
     * Nothing read before this generation may be put: the last {@link #clear}, or the newest
     * drop mark that was forgotten to keep {@link #drops} bounded.
     */
    private long floor;
    /** False while events may be missed (the feed is not subscribed): the cache is not used. */
    private boolean following;

    NearCache(int capacity, long maxAgeMillis) {
        this.maxAgeMillis = maxAgeMillis;
        this.entries = lru(capacity, eldest -> { });
        this.drops = lru(capacity, eldest -> floor = Math.max(floor, eldest.getValue()));
    }

    private static <V> Map<String, V> lru(int capacity, Consumer<Map.Entry<String, V>> evicted) {
        return new LinkedHashMap<>(16, 0.75f, true) {
            private static final long serialVersionUID = 1L;

            @Override
            protected boolean removeEldestEntry(Map.Entry<String, V> eldest) {
                if (size() <= capacity) {
                    return false;
                }
                evicted.accept(eldest);
                return true;
            }
        };
    }

    private static long now() {
        return System.nanoTime() / 1_000_000;
    }

    /** Call before reading a session from the grid; hand the value to {@link #put}. */
    synchronized long generation() {
        return generation;
    }

    /** The cached session if it is fresh and at least at {@code minVersion}, else null. */
    synchronized Grid.Data get(String id, long minVersion) {
        Entry e = entries.get(id);
        if (e == null || !following) {
            return null;
        }
        if (now() - e.storedAt > maxAgeMillis || e.data.version() < minVersion) {
            entries.remove(id);
            return null;
        }
        return e.data;
    }

    /**
     * True if the grid should hear that the session was used: the last word is older than the
     * grid's own touch granularity (a second, or a twentieth of the idle timeout).
     */
    synchronized boolean touchDue(String id) {
        Entry e = entries.get(id);
        if (e == null) {
            return false;
        }
        long interval = Math.min(1000, e.data.idleSeconds() * 1000 / 20);
        long now = now();
        if (now - e.touchedAt < interval) {
            return false;
        }
        e.touchedAt = now;
        return true;
    }

    /** Keeps {@code data}, read from the grid by a read that began at generation {@code since}. */
    synchronized void put(Grid.Data data, long since) {
        if (!following || since < floor || drops.getOrDefault(data.id(), 0L) > since) {
            return;
        }
        Entry old = entries.get(data.id());
        if (old == null || old.data.version() <= data.version()) {
            entries.put(data.id(), new Entry(data, now()));
        }
    }

    /**
     * This server wrote {@code sets} over version {@code base} of the cached session and the grid
     * answered {@code version}: the cache holds the result, as exactly as the grid does.
     */
    synchronized void written(String id, long base, Map<String, Grid.Attr> sets, long version) {
        Entry e = entries.get(id);
        if (e == null || e.data.version() != base) {
            drop(id);
            return;
        }
        entries.put(id, new Entry(e.data.written(sets, version), now()));
    }

    /**
     * The session changed or ended elsewhere (an event). Events do not carry the session's own
     * version, so any event drops the copy, this server's own writes included.
     */
    synchronized void drop(String id) {
        generation++;
        entries.remove(id);
        drops.put(id, generation);
    }

    /** Events may have been missed (the feed reconnects, or is down): forget everything. */
    synchronized void clear(boolean following) {
        generation++;
        floor = generation;
        this.following = following;
        entries.clear();
        drops.clear();
    }
}
