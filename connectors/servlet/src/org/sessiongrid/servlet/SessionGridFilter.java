package org.sessiongrid.servlet;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SSLSocketFactory;

import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.FilterConfig;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.servlet.http.HttpSessionAttributeListener;
import jakarta.servlet.http.HttpSessionListener;

/**
 * Keeps a web application's HTTP sessions in a Sessiongrid grid. Configured in {@code web.xml}
 * only; see {@code docs/connectors/} for the parameters. An init-param value may name a Java
 * system property or an environment variable as {@code ${NAME}} or {@code ${NAME:default}}.
 */
public final class SessionGridFilter implements Filter {
    private static final Logger LOG = Logger.getLogger(SessionGridFilter.class.getName());
    private static final Pattern PLACEHOLDER = Pattern.compile("\\$\\{([^}:]+)(?::([^}]*))?}");

    /** What the filter was configured with, shared by every request. */
    static final class Settings {
        SessionGridFilter filter;
        Grid grid;
        RespClient client;
        String group;
        String app;
        String cookieName;
        String cookieDomain;
        String cookiePath;
        boolean cookieSecure;
        String cookieSameSite;
        Long idleSeconds;
        Long absoluteSeconds;
        String loginPolicy;
        Integer maxSessionsPerUser;
        /** principalFrom=attribute:NAME: the attribute whose value is the logged-in user. */
        String principalAttribute;
        /** principalFrom=userPrincipal: the container's authenticated user. */
        boolean principalFromContainer;
        final List<String> privateNames = new ArrayList<>();
        final List<HttpSessionListener> sessionListeners = new ArrayList<>();
        final List<HttpSessionAttributeListener> attributeListeners = new ArrayList<>();
        /** Recently read sessions (nearCacheSize &gt; 0), kept fresh by the grid's events. */
        NearCache nearCache;
        EventFeed eventFeed;
        /** Tells the grid, off the requests' threads, that cached sessions were used. */
        ExecutorService touches;

        boolean isPrivate(String name) {
            for (String p : privateNames) {
                if (p.endsWith("*") ? name.startsWith(p.substring(0, p.length() - 1)) : name.equals(p)) {
                    return true;
                }
            }
            return false;
        }

        /** The cookie that carries the session version the browser last saw. */
        String versionCookieName() {
            return cookieName + "_V";
        }

        void clearCookie(HttpServletResponse response) {
            cookie(response, cookieName, "", "; Max-Age=0");
        }

        void setCookie(HttpServletResponse response, String id) {
            cookie(response, cookieName, id, "");
        }

        void setVersionCookie(HttpServletResponse response, long version) {
            cookie(response, versionCookieName(), Long.toString(version), "");
        }

        private void cookie(HttpServletResponse response, String name, String value, String extra) {
            StringBuilder c = new StringBuilder(name).append('=').append(value).append(extra);
            c.append("; Path=").append(cookiePath).append("; HttpOnly");
            if (cookieDomain != null) {
                c.append("; Domain=").append(cookieDomain);
            }
            if (cookieSecure) {
                c.append("; Secure");
            }
            if (cookieSameSite != null) {
                c.append("; SameSite=").append(cookieSameSite);
            }
            response.addHeader("Set-Cookie", c.toString());
        }
    }

    /** A login the policy refused; the filter answers it with a page saying so. */
    static final class LoginRefused extends RuntimeException {
        private static final long serialVersionUID = 1L;

        LoginRefused(String message) {
            super(message);
        }
    }

    private Settings settings;

    @Override
    public void init(FilterConfig config) throws ServletException {
        Settings s = new Settings();
        s.filter = this;
        List<InetSocketAddress> addresses = new ArrayList<>();
        String grid = required(config, "grid");
        // rediss://: the grid's TLS ports (resp_tls_listen).
        boolean secure = grid.startsWith("rediss://");
        grid = grid.replaceFirst("^rediss?://", "");
        for (String part : grid.split(",")) {
            String a = part.trim().replaceFirst("^rediss?://", "");
            int colon = a.lastIndexOf(':');
            if (colon < 0) {
                throw new ServletException("grid address " + a + " is not host:port");
            }
            addresses.add(InetSocketAddress.createUnresolved(a.substring(0, colon), Integer.parseInt(a.substring(colon + 1))));
        }
        List<InetSocketAddress> resolved = new ArrayList<>();
        for (InetSocketAddress a : addresses) {
            resolved.add(new InetSocketAddress(a.getHostString(), a.getPort()));
        }
        byte[] password = null;
        String passwordFile = param(config, "passwordFile", null);
        if (passwordFile != null) {
            try {
                password = Files.readString(Path.of(passwordFile)).strip().getBytes(StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new ServletException("cannot read passwordFile " + passwordFile, e);
            }
        }
        int pool = Integer.parseInt(param(config, "poolSize", "32"));
        int timeout = Integer.parseInt(param(config, "timeoutMillis", "5000"));
        SSLSocketFactory tls = null;
        if (secure) {
            try {
                tls = Tls.socketFactory(param(config, "tlsCaFile", null), param(config, "tlsKeyStore", null),
                        param(config, "tlsKeyStorePasswordFile", null));
            } catch (IOException | GeneralSecurityException e) {
                throw new ServletException("cannot set up TLS to the grid: " + e.getMessage(), e);
            }
        }
        String user = param(config, "user", null);
        if (user != null && password == null) {
            throw new ServletException("user " + user + " needs its password in passwordFile");
        }
        s.client = new RespClient(resolved, user, password, pool, timeout, tls);
        s.grid = new Grid(s.client);
        s.group = required(config, "group");
        s.app = param(config, "app", config.getServletContext().getContextPath().replace("/", ""));
        if (s.app.isEmpty()) {
            s.app = "root";
        }
        s.cookieName = param(config, "cookieName", "SGSESSIONID");
        s.cookieDomain = param(config, "cookieDomain", null);
        s.cookiePath = param(config, "cookiePath", "/");
        s.cookieSecure = Boolean.parseBoolean(param(config, "cookieSecure", "false"));
        s.cookieSameSite = param(config, "cookieSameSite", "Lax");
        s.idleSeconds = longParam(config, "idleTimeoutSeconds");
        s.absoluteSeconds = longParam(config, "absoluteTimeoutSeconds");
        s.loginPolicy = param(config, "loginPolicy", null);
        Long max = longParam(config, "maxSessionsPerUser");
        s.maxSessionsPerUser = max == null ? null : max.intValue();
        String from = param(config, "principalFrom", "userPrincipal");
        if (from.startsWith("attribute:")) {
            s.principalAttribute = from.substring("attribute:".length());
        } else if (from.equals("userPrincipal")) {
            s.principalFromContainer = true;
        } else {
            throw new ServletException("principalFrom must be userPrincipal or attribute:<name>");
        }
        for (String p : param(config, "privateAttributes", "").split(",")) {
            if (!p.isBlank()) {
                s.privateNames.add(p.trim());
            }
        }
        for (String className : param(config, "listeners", "").split(",")) {
            if (className.isBlank()) {
                continue;
            }
            try {
                Object l = Thread.currentThread().getContextClassLoader().loadClass(className.trim())
                        .getDeclaredConstructor().newInstance();
                if (l instanceof HttpSessionListener sl) {
                    s.sessionListeners.add(sl);
                }
                if (l instanceof HttpSessionAttributeListener al) {
                    s.attributeListeners.add(al);
                }
            } catch (ReflectiveOperationException e) {
                throw new ServletException("cannot create listener " + className, e);
            }
        }
        Long cacheSize = longParam(config, "nearCacheSize");
        if (cacheSize != null && cacheSize > 0) {
            Long maxAge = longParam(config, "nearCacheMillis");
            s.nearCache = new NearCache(cacheSize.intValue(), maxAge == null ? 1000 : maxAge);
            s.eventFeed = EventFeed.start(s.client, s.group, s.nearCache);
            s.touches = new ThreadPoolExecutor(1, 1, 0, TimeUnit.MILLISECONDS, new ArrayBlockingQueue<>(4096),
                    r -> {
                        Thread t = new Thread(r, "sessiongrid-touch-" + s.app);
                        t.setDaemon(true);
                        return t;
                    }, new ThreadPoolExecutor.DiscardPolicy());
        }
        settings = s;
        LOG.info(() -> "sessions of " + s.app + " (group " + s.group + ") live in the grid at " + addresses);
    }

    private static String param(FilterConfig config, String name, String fallback) {
        String v = config.getInitParameter(name);
        if (v == null) {
            return fallback;
        }
        v = expand(v).trim();
        return v.isEmpty() ? fallback : v;
    }

    private static String required(FilterConfig config, String name) throws ServletException {
        String v = param(config, name, null);
        if (v == null) {
            throw new ServletException("the SessionGridFilter needs the init-param " + name);
        }
        return v;
    }

    private static Long longParam(FilterConfig config, String name) throws ServletException {
        String v = param(config, name, null);
        try {
            return v == null ? null : Long.valueOf(v);
        } catch (NumberFormatException e) {
            throw new ServletException(name + " must be a number, not " + v);
        }
    }

    /** Replaces ${NAME} and ${NAME:default} by a system property or environment variable. */
    static String expand(String value) {
        Matcher m = PLACEHOLDER.matcher(value);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String found = System.getProperty(m.group(1), System.getenv(m.group(1)));
            if (found == null) {
                found = m.group(2) != null ? m.group(2) : "";
            }
            m.appendReplacement(out, Matcher.quoteReplacement(found));
        }
        m.appendTail(out);
        return out.toString();
    }

    @Override
    public void doFilter(ServletRequest req, ServletResponse res, FilterChain chain)
            throws IOException, ServletException {
        if (!(req instanceof HttpServletRequest request) || !(res instanceof HttpServletResponse response)) {
            chain.doFilter(req, res);
            return;
        }
        CommittingResponse committing = new CommittingResponse(response);
        GridRequest wrapped = new GridRequest(request, response, settings);
        committing.attach(wrapped);
        try {
            if (settings.principalFromContainer) {
                followContainerLogin(wrapped, request);
            }
            chain.doFilter(wrapped, committing);
        } catch (RuntimeException | ServletException | IOException e) {
            LoginRefused refused = refusal(e);
            if (refused == null) {
                throw e;
            }
            if (settings.principalFromContainer) {
                request.logout(); // the container must not keep a login the grid refused
            }
            if (!response.isCommitted()) {
                response.reset();
                response.setStatus(HttpServletResponse.SC_CONFLICT);
                response.setContentType("text/html;charset=UTF-8");
                response.getWriter().write("<!doctype html><title>Login refused</title><h1>Login refused</h1>"
                        + "<p>This account is already signed in elsewhere, and only so many sessions are allowed.</p>");
            }
            return;
        } finally {
            GridSession s = wrapped.current();
            if (s != null) {
                try {
                    s.commit();
                } catch (IOException | RuntimeException e) {
                    LOG.log(Level.WARNING, "session " + s.getId() + " could not be written to the grid", e);
                }
            }
        }
    }

    private static LoginRefused refusal(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof LoginRefused r) {
                return r;
            }
        }
        return null;
    }

    /**
     * With container authentication: a user the container knows but whose grid session ended
     * (evicted, kicked, expired) is logged out; one whose session does not carry the login yet
     * is logged in, under the policy.
     */
    private void followContainerLogin(GridRequest wrapped, HttpServletRequest request) throws ServletException {
        if (request.getUserPrincipal() == null) {
            return;
        }
        String user = request.getUserPrincipal().getName();
        GridSession s = (GridSession) wrapped.getSession(false);
        if (s == null && wrapped.getRequestedSessionId() != null) {
            // Its grid session ended (evicted, kicked, expired): so does the container's login,
            // and the dead cookie goes, so the next login starts clean.
            request.logout();
            settings.clearCookie(wrapped.response());
            return;
        }
        if (s == null) {
            s = (GridSession) wrapped.getSession(true);
        }
        loggedIn(s, user);
    }

    /** The session's user is now {@code principal}: register the login with the grid. */
    void loggedIn(GridSession s, String principal) {
        if (principal.equals(s.principal())) {
            return;
        }
        s.changedElsewhere();
        try {
            List<String> evicted = settings.grid.login(s.getId(), principal, settings.loginPolicy, settings.maxSessionsPerUser);
            if (evicted != null && !evicted.isEmpty()) {
                LOG.info(() -> "login of " + principal + " ended " + evicted.size() + " older session(s)");
            }
        } catch (Grid.LoginRejected e) {
            throw new LoginRefused(e.getMessage());
        } catch (IOException e) {
            throw new UncheckedIOException("the session grid is unreachable", e);
        }
    }

    void loggedOut(GridSession s) {
        s.changedElsewhere();
        try {
            settings.grid.logout(s.getId());
        } catch (IOException e) {
            throw new UncheckedIOException("the session grid is unreachable", e);
        }
    }

    @Override
    public void destroy() {
        if (settings != null) {
            if (settings.eventFeed != null) {
                settings.eventFeed.stop();
                settings.touches.shutdownNow();
            }
            settings.client.close();
        }
    }
}
