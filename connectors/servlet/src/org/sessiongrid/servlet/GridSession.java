package org.sessiongrid.servlet;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.io.ObjectStreamClass;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.Enumeration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.logging.Level;
import java.util.logging.Logger;

import jakarta.servlet.ServletContext;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.servlet.http.HttpSession;
import jakarta.servlet.http.HttpSessionAttributeListener;
import jakarta.servlet.http.HttpSessionBindingEvent;
import jakarta.servlet.http.HttpSessionBindingListener;
import jakarta.servlet.http.HttpSessionEvent;
import jakarta.servlet.http.HttpSessionListener;

/**
 * An {@link HttpSession} that lives in the grid, for the span of one request.
 *
 * <p>It is loaded once, when the request first asks for it. Attribute changes are kept here
 * and written when the request ends (or before a redirect, an error or a flush), only those
 * attributes, under {@code IFVERSION}. If another request of the same user changed the session
 * meanwhile, the session is read again and this request's changes are written over it: for each
 * attribute this request set or removed, it wins; every other attribute keeps the other
 * request's value.
 */
final class GridSession implements HttpSession {
    private static final Logger LOG = Logger.getLogger(GridSession.class.getName());
    private static final Object REMOVED = new Object();
    private static final int COMMIT_ATTEMPTS = 5;

    private final SessionGridFilter.Settings settings;
    private final ServletContext context;
    private String id;
    private Grid.Data data;
    private final boolean isNew;
    private boolean valid = true;
    /** Values read or written during this request, by attribute name as the application sees it. */
    private final Map<String, Object> values = new HashMap<>();
    /** Attributes set (value) or removed ({@link #REMOVED}) and not yet written. */
    private final Map<String, Object> changed = new LinkedHashMap<>();
    private Long newIdleSeconds;
    private final HttpServletResponse response;
    /** The version the browser's version cookie holds (near cache only). */
    private long cookieVersion;
    /** The version this request found. */
    private final long loadedVersion;
    /** Something other than an attribute write changed the session (a login, a rotation). */
    private boolean changedElsewhere;

    GridSession(SessionGridFilter.Settings settings, ServletContext context, HttpServletResponse response,
                Grid.Data data, boolean isNew, long cookieVersion) {
        this.settings = settings;
        this.context = context;
        this.response = response;
        this.data = data;
        this.id = data.id();
        this.isNew = isNew;
        this.cookieVersion = cookieVersion;
        this.loadedVersion = data.version();
    }

    private void checkValid() {
        if (!valid) {
            throw new IllegalStateException("the session was invalidated");
        }
    }

    void renamed(String newId) {
        forget();
        this.id = newId;
        changedElsewhere = true;
    }

    /** A login or logout changed the session in the grid; the near cache must read it again. */
    void changedElsewhere() {
        changedElsewhere = true;
    }

    private void forget() {
        if (settings.nearCache != null) {
            settings.nearCache.drop(id);
        }
    }

    boolean isValid() {
        return valid;
    }

    String principal() {
        return data.principal();
    }

    @Override
    public long getCreationTime() {
        checkValid();
        return data.created();
    }

    @Override
    public String getId() {
        return id;
    }

    @Override
    public long getLastAccessedTime() {
        checkValid();
        return data.lastAccess();
    }

    @Override
    public ServletContext getServletContext() {
        return context;
    }

    @Override
    public void setMaxInactiveInterval(int seconds) {
        // The grid has no session without an idle timeout: "never" becomes a day.
        newIdleSeconds = seconds > 0 ? (long) seconds : 24L * 3600;
    }

    @Override
    public int getMaxInactiveInterval() {
        return (int) (newIdleSeconds != null ? newIdleSeconds : data.idleSeconds());
    }

    /** The grid's name of an attribute: private ones are scoped to this application. */
    private String gridName(String name) {
        return settings.isPrivate(name) ? "app:" + settings.app + "/" + name : name;
    }

    /** The application's name of a grid attribute, or null if this application cannot see it. */
    private String appName(String gridName) {
        if (!gridName.startsWith("app:")) {
            return gridName;
        }
        String prefix = "app:" + settings.app + "/";
        return gridName.startsWith(prefix) ? gridName.substring(prefix.length()) : null;
    }

    @Override
    public Object getAttribute(String name) {
        checkValid();
        if (changed.containsKey(name)) {
            Object v = changed.get(name);
            return v == REMOVED ? null : v;
        }
        if (values.containsKey(name)) {
            return values.get(name);
        }
        Grid.Attr attr = data.attrs().get(gridName(name));
        Object value = attr == null ? null : decode(name, attr);
        values.put(name, value);
        return value;
    }

    private Object decode(String name, Grid.Attr attr) {
        try {
            switch (attr.tag()) {
                case "json":
                    return Json.read(new String(attr.value(), StandardCharsets.UTF_8));
                case "utf8":
                    return new String(attr.value(), StandardCharsets.UTF_8);
                case "bytes":
                    return attr.value().clone();
                default:
                    return deserialize(attr.value());
            }
        } catch (Exception | LinkageError e) {
            // A class that changed or went away with a redeploy: this request goes on without the
            // attribute. It stays in the grid for applications (or versions) that can read it.
            LOG.log(Level.WARNING, "session attribute " + name + " could not be read and was dropped", e);
            return null;
        }
    }

    private static Object deserialize(byte[] bytes) throws IOException, ClassNotFoundException {
        ClassLoader loader = Thread.currentThread().getContextClassLoader();
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes)) {
            @Override
            protected Class<?> resolveClass(ObjectStreamClass desc) throws IOException, ClassNotFoundException {
                try {
                    return Class.forName(desc.getName(), false, loader);
                } catch (ClassNotFoundException e) {
                    return super.resolveClass(desc);
                }
            }
        }) {
            return in.readObject();
        }
    }

    private static Grid.Attr encode(String name, Object value) {
        if (Json.representable(value)) {
            return new Grid.Attr("json", Json.write(value).getBytes(StandardCharsets.UTF_8), 0);
        }
        if (!(value instanceof Serializable)) {
            throw new IllegalArgumentException("session attribute " + name + " must be Serializable to live in the grid ("
                    + value.getClass().getName() + " is not)");
        }
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(buf)) {
            out.writeObject(value);
        } catch (IOException e) {
            throw new UncheckedIOException("session attribute " + name + " could not be serialized", e);
        }
        return new Grid.Attr("java", buf.toByteArray(), 0);
    }

    @Override
    public Enumeration<String> getAttributeNames() {
        checkValid();
        Set<String> names = new LinkedHashSet<>();
        for (String gridName : data.attrs().keySet()) {
            String name = appName(gridName);
            if (name != null) {
                names.add(name);
            }
        }
        for (Map.Entry<String, Object> e : changed.entrySet()) {
            if (e.getValue() == REMOVED) {
                names.remove(e.getKey());
            } else {
                names.add(e.getKey());
            }
        }
        return Collections.enumeration(names);
    }

    @Override
    public void setAttribute(String name, Object value) {
        checkValid();
        if (value == null) {
            removeAttribute(name);
            return;
        }
        encode(name, value); // fail now, in the application's call, if it cannot be stored
        if (settings.principalAttribute != null && settings.principalAttribute.equals(name)) {
            settings.filter.loggedIn(this, String.valueOf(value)); // may refuse the login
        }
        Object old = getAttribute(name);
        changed.put(name, value);
        values.put(name, value);
        if (old != value && old instanceof HttpSessionBindingListener l) {
            l.valueUnbound(new HttpSessionBindingEvent(this, name, old));
        }
        if (old != value && value instanceof HttpSessionBindingListener l) {
            l.valueBound(new HttpSessionBindingEvent(this, name, value));
        }
        for (HttpSessionAttributeListener l : settings.attributeListeners) {
            if (old == null) {
                l.attributeAdded(new HttpSessionBindingEvent(this, name, value));
            } else {
                l.attributeReplaced(new HttpSessionBindingEvent(this, name, old));
            }
        }
    }

    @Override
    public void removeAttribute(String name) {
        checkValid();
        Object old = getAttribute(name);
        if (old == null) {
            return;
        }
        changed.put(name, REMOVED);
        values.remove(name);
        if (settings.principalAttribute != null && settings.principalAttribute.equals(name)) {
            settings.filter.loggedOut(this);
        }
        if (old instanceof HttpSessionBindingListener l) {
            l.valueUnbound(new HttpSessionBindingEvent(this, name, old));
        }
        for (HttpSessionAttributeListener l : settings.attributeListeners) {
            l.attributeRemoved(new HttpSessionBindingEvent(this, name, old));
        }
    }

    @Override
    public void invalidate() {
        checkValid();
        try {
            settings.grid.invalidate(id);
        } catch (IOException e) {
            throw new UncheckedIOException("the grid could not invalidate the session", e);
        }
        valid = false;
        changed.clear();
        forget();
        for (HttpSessionListener l : settings.sessionListeners) {
            l.sessionDestroyed(new HttpSessionEvent(this));
        }
    }

    // Servlet 4 (javax) still declares these; the javax build uncomments them.
    //javax public javax.servlet.http.HttpSessionContext getSessionContext() {
    //javax     return null;
    //javax }
    //javax public Object getValue(String name) {
    //javax     return getAttribute(name);
    //javax }
    //javax public String[] getValueNames() {
    //javax     return Collections.list(getAttributeNames()).toArray(new String[0]);
    //javax }
    //javax public void putValue(String name, Object value) {
    //javax     setAttribute(name, value);
    //javax }
    //javax public void removeValue(String name) {
    //javax     removeAttribute(name);
    //javax }

    @Override
    public boolean isNew() {
        checkValid();
        return isNew;
    }

    /** Writes this request's changes; see the class comment for the merge rule. */
    void commit() throws IOException {
        if (!valid) {
            return;
        }
        NearCache cache = settings.nearCache;
        if (newIdleSeconds != null) {
            settings.grid.touch(id, newIdleSeconds);
            newIdleSeconds = null;
            changedElsewhere = true;
        }
        if (!changed.isEmpty()) {
            write(cache);
        }
        if (cache == null) {
            return;
        }
        if (changedElsewhere) {
            // The new version is not known here: read it, so the cache and the cookie have it.
            long since = cache.generation();
            Grid.Data fresh = settings.grid.get(id, settings.app, false);
            changedElsewhere = false;
            if (fresh == null) {
                valid = false;
                forget();
                return;
            }
            data = fresh;
            cache.put(fresh, since);
        }
        // The browser learns the version this request made, so that its next request, on any
        // server, never accepts an older cached copy. (No server has a copy of a new session.)
        long version = data.version();
        if (!isNew && version != loadedVersion && version != cookieVersion && !response.isCommitted()) {
            settings.setVersionCookie(response, version);
            cookieVersion = version;
        }
    }

    private void write(NearCache cache) throws IOException {
        Map<String, Grid.Attr> sets = new LinkedHashMap<>();
        Set<String> removes = new LinkedHashSet<>();
        for (Map.Entry<String, Object> e : changed.entrySet()) {
            if (e.getValue() == REMOVED) {
                removes.add(gridName(e.getKey()));
            } else {
                sets.put(gridName(e.getKey()), encode(e.getKey(), e.getValue()));
            }
        }
        if (!sets.isEmpty()) {
            long base = data.version();
            long version = base;
            // The cache keeps its copy only if this write lands on it; any other end drops it.
            boolean cacheWritten = false;
            if (cache != null) {
                cache.writing(id, base);
            }
            try {
                for (int attempt = 1; ; attempt++) {
                    try {
                        long written = settings.grid.set(id, version, sets);
                        if (written < 0) {
                            valid = false; // ended meanwhile (invalidated, evicted, expired)
                            return;
                        }
                        if (version == base) {
                            if (cache != null) {
                                cache.written(id, base, sets, written);
                                cacheWritten = true;
                            }
                            data = data.written(sets, written);
                        } else {
                            changedElsewhere = true; // merged over another request's changes
                        }
                        break;
                    } catch (Grid.Conflict conflict) {
                        if (attempt == COMMIT_ATTEMPTS) {
                            throw new IOException("session " + id + " kept changing: " + conflict.getMessage());
                        }
                        Grid.Data fresh = settings.grid.get(id, settings.app, false);
                        if (fresh == null) {
                            valid = false;
                            return;
                        }
                        LOG.fine(() -> "session changed by a concurrent request; this request's attributes win");
                        version = fresh.version();
                    }
                }
            } finally {
                if (cache != null && !cacheWritten) {
                    cache.drop(id);
                }
            }
        }
        if (!removes.isEmpty()) {
            settings.grid.del(id, removes);
            changedElsewhere = true;
        }
        changed.clear();
    }
}
