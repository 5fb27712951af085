package org.sessiongrid.servlet;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Listens to the grid's events of this application's group and drops the near cache's copies of
 * sessions changed or ended elsewhere (a copy at the event's session version or newer stays). While it is not connected (and whenever it reconnects,
 * since events may have been missed meanwhile) the cache is emptied.
 */
final class EventFeed implements Runnable {
    private static final Logger LOG = Logger.getLogger(EventFeed.class.getName());
    private static final long RETRY_MILLIS = 500;

    private final RespClient client;
    private final String channel;
    private final NearCache cache;
    private volatile boolean stopped;
    private volatile RespClient.Subscription current;

    EventFeed(RespClient client, String group, NearCache cache) {
        this.client = client;
        this.channel = "sessiongrid:events:" + group;
        this.cache = cache;
    }

    static EventFeed start(RespClient client, String group, NearCache cache) {
        EventFeed feed = new EventFeed(client, group, cache);
        Thread t = new Thread(feed, "sessiongrid-events-" + group);
        t.setDaemon(true);
        t.start();
        return feed;
    }

    @Override
    public void run() {
        while (!stopped) {
            try (RespClient.Subscription sub = client.subscribe(channel)) {
                current = sub;
                cache.clear(true);
                LOG.fine(() -> "near cache follows " + channel);
                while (!stopped) {
                    apply(sub.next());
                }
            } catch (IOException | RuntimeException e) {
                cache.clear(false);
                if (!stopped) {
                    LOG.log(Level.FINE, "event feed lost; the near cache is empty until it is back", e);
                    try {
                        Thread.sleep(RETRY_MILLIS);
                    } catch (InterruptedException interrupted) {
                        return;
                    }
                }
            } finally {
                current = null;
            }
        }
    }

    private void apply(byte[] payload) {
        Object parsed = Json.read(new String(payload, StandardCharsets.UTF_8));
        if (!(parsed instanceof Map<?, ?> event) || !(event.get("id") instanceof String id)) {
            return;
        }
        long version = event.get("session_version") instanceof Number n ? n.longValue() : 0;
        cache.changed(id, version);
    }

    void stop() {
        stopped = true;
        RespClient.Subscription sub = current;
        if (sub != null) {
            sub.close();
        }
    }
}
