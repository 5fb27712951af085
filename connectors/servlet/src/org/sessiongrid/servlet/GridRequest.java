package org.sessiongrid.servlet;

import java.io.IOException;
import java.io.UncheckedIOException;

import jakarta.servlet.http.Cookie;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletRequestWrapper;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.servlet.http.HttpSession;
import jakarta.servlet.http.HttpSessionEvent;
import jakarta.servlet.http.HttpSessionListener;

/** The request the application sees: its session is the grid's, found by the session cookie. */
final class GridRequest extends HttpServletRequestWrapper {
    private final SessionGridFilter.Settings settings;
    private final HttpServletResponse response;
    private final String requestedId;
    /** The session version the browser last saw (0 if it does not say). */
    private final long requestedVersion;
    private GridSession session;
    private boolean looked;

    GridRequest(HttpServletRequest request, HttpServletResponse response, SessionGridFilter.Settings settings) {
        super(request);
        this.settings = settings;
        this.response = response;
        this.requestedId = cookie(request, settings.cookieName);
        this.requestedVersion = version(cookie(request, settings.versionCookieName()));
    }

    private static long version(String cookie) {
        try {
            return cookie == null ? 0 : Long.parseLong(cookie);
        } catch (NumberFormatException e) {
            return Long.MAX_VALUE; // unreadable: never trust a cached copy
        }
    }

    private static String cookie(HttpServletRequest request, String name) {
        Cookie[] cookies = request.getCookies();
        if (cookies == null) {
            return null;
        }
        for (Cookie c : cookies) {
            if (name.equals(c.getName()) && !c.getValue().isEmpty()) {
                return c.getValue();
            }
        }
        return null;
    }

    HttpServletResponse response() {
        return response;
    }

    /** The session this request used, if any. */
    GridSession current() {
        return session;
    }

    @Override
    public HttpSession getSession() {
        return getSession(true);
    }

    @Override
    public HttpSession getSession(boolean create) {
        if (session != null && session.isValid()) {
            return session;
        }
        try {
            if (!looked && requestedId != null) {
                looked = true;
                Grid.Data data = load(requestedId);
                // A session of another group is not this application's to see.
                if (data != null && settings.group.equals(data.group())) {
                    session = new GridSession(settings, getServletContext(), response, data, false, requestedVersion);
                    return session;
                }
            }
            looked = true;
            if (!create) {
                return null;
            }
            long since = settings.nearCache == null ? 0 : settings.nearCache.generation();
            String id = settings.grid.create(settings.group, settings.idleSeconds, settings.absoluteSeconds);
            Grid.Data data = settings.grid.get(id, settings.app, false);
            if (data == null) {
                throw new IllegalStateException("the grid lost a session it had just created");
            }
            if (settings.nearCache != null) {
                settings.nearCache.put(data, since);
            }
            session = new GridSession(settings, getServletContext(), response, data, true, requestedVersion);
            settings.setCookie(response, id);
            for (HttpSessionListener l : settings.sessionListeners) {
                l.sessionCreated(new HttpSessionEvent(session));
            }
            return session;
        } catch (IOException e) {
            throw new UncheckedIOException("the session grid is unreachable", e);
        }
    }

    /** The session from the near cache if it has a fresh enough copy, else from the grid. */
    private Grid.Data load(String id) throws IOException {
        NearCache cache = settings.nearCache;
        if (cache == null) {
            return settings.grid.get(id, settings.app, true);
        }
        Grid.Data cached = cache.get(id, requestedVersion);
        if (cached == null) {
            long since = cache.generation();
            Grid.Data data = settings.grid.get(id, settings.app, true);
            if (data != null) {
                cache.put(data, since);
            }
            return data;
        }
        if (cache.touchDue(id)) {
            settings.touches.execute(() -> {
                try {
                    settings.grid.touch(id, null);
                } catch (IOException | RuntimeException e) {
                    cache.drop(id); // ended or unreachable: the next request asks the grid
                }
            });
        }
        return cached;
    }

    @Override
    public String changeSessionId() {
        GridSession s = (GridSession) getSession(false);
        if (s == null) {
            throw new IllegalStateException("no session to change the id of");
        }
        try {
            s.commit();
            String newId = settings.grid.rotate(s.getId());
            if (newId == null) {
                throw new IllegalStateException("the session ended before its id could change");
            }
            s.renamed(newId);
            settings.setCookie(response, newId);
            return newId;
        } catch (IOException e) {
            throw new UncheckedIOException("the session grid is unreachable", e);
        }
    }

    @Override
    public String getRequestedSessionId() {
        return requestedId;
    }

    @Override
    public boolean isRequestedSessionIdValid() {
        HttpSession s = getSession(false);
        return s != null && requestedId != null && requestedId.equals(s.getId());
    }

    @Override
    public boolean isRequestedSessionIdFromCookie() {
        return requestedId != null;
    }

    @Override
    public boolean isRequestedSessionIdFromURL() {
        return false;
    }
}
