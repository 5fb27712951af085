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
    private GridSession session;
    private boolean looked;

    GridRequest(HttpServletRequest request, HttpServletResponse response, SessionGridFilter.Settings settings) {
        super(request);
        this.settings = settings;
        this.response = response;
        this.requestedId = cookie(request, settings.cookieName);
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
                Grid.Data data = settings.grid.get(requestedId, settings.app, true);
                // A session of another group is not this application's to see.
                if (data != null && settings.group.equals(data.group())) {
                    session = new GridSession(settings, getServletContext(), data, false);
                    return session;
                }
            }
            looked = true;
            if (!create) {
                return null;
            }
            String id = settings.grid.create(settings.group, settings.idleSeconds, settings.absoluteSeconds);
            Grid.Data data = settings.grid.get(id, settings.app, false);
            if (data == null) {
                throw new IllegalStateException("the grid lost a session it had just created");
            }
            session = new GridSession(settings, getServletContext(), data, true);
            settings.setCookie(response, id);
            for (HttpSessionListener l : settings.sessionListeners) {
                l.sessionCreated(new HttpSessionEvent(session));
            }
            return session;
        } catch (IOException e) {
            throw new UncheckedIOException("the session grid is unreachable", e);
        }
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
