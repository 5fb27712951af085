package org.sessiongrid.servlet;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The grid's session commands ({@code SESSION.*}), typed. */
final class Grid {
    /** An attribute as the grid stores it. */
    record Attr(String tag, byte[] value, long version) {
    }

    /** A session as {@code SESSION.GET} returns it. */
    record Data(String id, String group, long created, long lastAccess, long idleSeconds,
                long expiresAt, String principal, long version, Map<String, Attr> attrs) {
        /** This session after {@code SESSION.SET} of {@code sets} answered {@code version}. */
        Data written(Map<String, Attr> sets, long version) {
            Map<String, Attr> next = new LinkedHashMap<>(attrs);
            for (Map.Entry<String, Attr> s : sets.entrySet()) {
                next.put(s.getKey(), new Attr(s.getValue().tag(), s.getValue().value(), version));
            }
            return new Data(id, group, created, System.currentTimeMillis(), idleSeconds, expiresAt, principal,
                    version, Collections.unmodifiableMap(next));
        }
    }

    /** A refused login (policy {@code reject}). */
    static final class LoginRejected extends RuntimeException {
        private static final long serialVersionUID = 1L;

        LoginRejected(String message) {
            super(message);
        }
    }

    /** {@code IFVERSION} did not match: another request changed the session meanwhile. */
    static final class Conflict extends Exception {
        private static final long serialVersionUID = 1L;

        Conflict(String message) {
            super(message);
        }
    }

    private final RespClient client;

    Grid(RespClient client) {
        this.client = client;
    }

    private Object call(boolean retry, Object... args) throws IOException {
        return checked(client.call(retry, args));
    }

    /** A command about session {@code id}: sent to the node that holds it when the client knows which. */
    private Object callOn(String id, boolean retry, Object... args) throws IOException {
        return checked(client.callInSlot(retry, Routes.slotOfSession(id), args));
    }

    private static Object checked(Object reply) {
        if (reply instanceof RespClient.GridError e) {
            throw e;
        }
        return reply;
    }

    private static String text(Object o) {
        return o == null ? null : new String((byte[]) o, StandardCharsets.UTF_8);
    }

    /** Adds {@code name value} to a command's arguments, unless the value is null. */
    private static void option(List<Object> args, String name, Object value) {
        if (value != null) {
            args.add(name);
            args.add(value);
        }
    }

    String create(String group, Long idleSeconds, Long absoluteSeconds) throws IOException {
        List<Object> args = new ArrayList<>(List.of("SESSION.CREATE", group));
        option(args, "IDLE", idleSeconds);
        option(args, "ABSOLUTE", absoluteSeconds);
        // Repeated on a lost connection: at worst the first try left an unused session, which
        // expires.
        return text(call(true, args.toArray()));
    }

    /** The session, or null if it does not exist (never did, ended or expired). */
    Data get(String id, String app, boolean touch) throws IOException {
        List<Object> args = new ArrayList<>(List.of("SESSION.GET", id));
        option(args, "APP", app);
        if (!touch) {
            args.add("NOTOUCH");
        }
        Object reply = callOn(id, true, args.toArray());
        if (reply == null) {
            return null;
        }
        List<?> flat = (List<?>) reply;
        Map<String, Object> fields = new LinkedHashMap<>();
        for (int i = 0; i + 1 < flat.size(); i += 2) {
            fields.put(text(flat.get(i)), flat.get(i + 1));
        }
        Map<String, Attr> attrs = new LinkedHashMap<>();
        List<?> attrList = (List<?>) fields.get("attributes");
        for (int i = 0; attrList != null && i + 1 < attrList.size(); i += 2) {
            List<?> a = (List<?>) attrList.get(i + 1);
            attrs.put(text(attrList.get(i)), new Attr(text(a.get(0)), (byte[]) a.get(1), (Long) a.get(2)));
        }
        return new Data(text(fields.get("id")), text(fields.get("group")), (Long) fields.get("created"),
                (Long) fields.get("last-access"), (Long) fields.get("idle-timeout"),
                (Long) fields.get("expires-at"), text(fields.get("principal")),
                (Long) fields.get("version"), attrs);
    }

    /** Writes attributes: the new version, or -1 if the session does not exist. */
    long set(String id, Long ifVersion, Map<String, Attr> attrs) throws IOException, Conflict {
        List<Object> args = new ArrayList<>(List.of("SESSION.SET", id));
        option(args, "IFVERSION", ifVersion);
        for (Map.Entry<String, Attr> e : attrs.entrySet()) {
            args.add(e.getKey());
            args.add(e.getValue().tag());
            args.add(e.getValue().value());
        }
        try {
            Object reply = callOn(id, true, args.toArray());
            return reply == null ? -1 : (Long) reply;
        } catch (RespClient.GridError e) {
            if (e.is("CONFLICT")) {
                throw new Conflict(e.getMessage());
            }
            throw e;
        }
    }

    void del(String id, Collection<String> names) throws IOException {
        List<Object> args = new ArrayList<>(List.of("SESSION.DEL", id));
        args.addAll(names);
        callOn(id, true, args.toArray());
    }

    /** Marks the session used now, optionally with a new idle timeout. */
    void touch(String id, Long idleSeconds) throws IOException {
        if (idleSeconds == null) {
            callOn(id, true, "SESSION.TOUCH", id);
        } else {
            callOn(id, true, "SESSION.TOUCH", id, "IDLE", idleSeconds);
        }
    }

    boolean invalidate(String id) throws IOException {
        return Long.valueOf(1).equals(callOn(id, true, "SESSION.INVALIDATE", id));
    }

    /** The new id, or null if the session does not exist. */
    String rotate(String id) throws IOException {
        // Not repeated: a rotation that happened but whose answer was lost ended the old id.
        return text(callOn(id, false, "SESSION.ROTATE", id));
    }

    /** Logs the user in: the ids the policy ended, or null if the session does not exist. */
    List<String> login(String id, String principal, String policy, Integer max) throws IOException {
        List<Object> args = new ArrayList<>(List.of("SESSION.LOGIN", id, principal));
        option(args, "POLICY", policy);
        option(args, "MAX", max);
        try {
            Object reply = callOn(id, true, args.toArray());
            if (reply == null) {
                return null;
            }
            List<String> evicted = new ArrayList<>();
            for (Object o : (List<?>) reply) {
                evicted.add(text(o));
            }
            return evicted;
        } catch (RespClient.GridError e) {
            if (e.is("LOGINREJECTED")) {
                throw new LoginRejected(e.getMessage());
            }
            throw e;
        }
    }

    void logout(String id) throws IOException {
        callOn(id, true, "SESSION.LOGOUT", id);
    }
}
