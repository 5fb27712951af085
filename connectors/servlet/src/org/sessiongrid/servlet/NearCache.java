package org.sessiongrid.servlet;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Sessions this application read recently, kept so that a request can skip the grid.
 *
 * <p>A cached session is used only if it is no older than {@code maxAgeMillis}, and at least as
 * new as the version the browser last saw (the version cookie), so a user's requests always see
 * their own writes, whichever server wrote them. This server's own writes update the copy
 * ({@link #written}); changes made elsewhere (another application, another language, a forced
 * logout, an expiry) drop it when their event arrives ({@link EventFeed}), which tells the two
 * apart by the session version it carries. If an event is lost, {@code maxAgeMillis} bounds how
 * long a copy can lag. A hit still tells the grid the session was used, at most once per touch
 * interval, off the request's thread.
 */
final class NearCache {
    /**
     * A cached session, when this server last told the grid it was used, and whether this server
     * is writing over it.
     */
    private static final class Entry {
        final Grid.Data data;
        final long storedAt;
        long touchedAt;
        /** A write over this copy is under way ({@link #writing}): its event may come first. */
        boolean writing;

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
     * This server is about to write over version {@code base} of the session (under {@code
     * IFVERSION base}); it ends with {@link #written} if the write made {@code base + 1}, else
     * with {@link #drop}.
     */
    synchronized void writing(String id, long base) {
        Entry e = entries.get(id);
        if (e != null && e.data.version() == base) {
            e.writing = true;
        }
    }

    /**
     * This server wrote {@code sets} over version {@code base} of the cached session and the grid
     * answered {@code version}: the cache holds the result, as exactly as the grid does.
     */
    synchronized void written(String id, long base, Map<String, Grid.Attr> sets, long version) {
        Entry e = entries.get(id);
        if (e == null || e.data.version() != base || version != base + 1) {
            drop(id);
            return;
        }
        entries.put(id, new Entry(e.data.written(sets, version), now()));
    }

    /**
     * An event: the session changed and is now at {@code version}, or ended ({@code version} 0).
     * A copy at that version or newer already holds the change (this server wrote it) and stays,
     * as does one this server is writing over when the event is of the next version: this
     * server's write made it, or, made elsewhere, it fails this server's write, which drops the
     * copy then. Any other copy is dropped. Either way, a read that began before cannot put its
     * result.
     */
    synchronized void changed(String id, long version) {
        Entry e = entries.get(id);
        boolean current = e != null && version > 0
                && (e.data.version() >= version || (e.writing && version == e.data.version() + 1));
        if (!current) {
            drop(id);
            return;
        }
        generation++;
        drops.put(id, generation);
    }

    /** Forgets the copy of the session, and what reads that began before would put. */
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
