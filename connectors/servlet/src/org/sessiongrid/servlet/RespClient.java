package org.sessiongrid.servlet;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.SSLSocketFactory;

/**
 * A small Redis-protocol (RESP2) client for the grid's door: a pool of connections, spread over
 * every grid address, that fails over to the next address when one stops answering. A command
 * about one session ({@link #callInSlot}) goes to the node that holds it, as {@link Routes} say.
 *
 * <p>Replies are {@code byte[]} (bulk and simple strings), {@code Long}, {@code List<Object>},
 * {@code null}, or a {@link GridError} for an error reply. A command that failed on the network
 * is sent again on another address only if it is safe to repeat ({@code retry}).
 */
final class RespClient implements Closeable {
    private static final Logger LOG = Logger.getLogger(RespClient.class.getName());
    /** How long routes are followed before they are read again. */
    private static final long ROUTES_MAX_AGE_NANOS = 10_000_000_000L;
    /**
     * How long a node that failed a routed call is not routed to: a node whose announced address
     * this client cannot reach would otherwise cost a connect timeout at every read of the routes.
     */
    private static final long DOWN_FOR_NANOS = 60_000_000_000L;

    /** An error reply: the text starts with its code ({@code CONFLICT}, {@code LOGINREJECTED}, ...). */
    static final class GridError extends RuntimeException {
        private static final long serialVersionUID = 1L;

        GridError(String message) {
            super(message);
        }

        boolean is(String code) {
            return getMessage().startsWith(code);
        }
    }

    private final List<InetSocketAddress> addresses;
    /** The ACL user to log in as; {@code null}: the {@code default} user. */
    private final String user;
    private final byte[] password;
    private final int timeoutMillis;
    /** TLS to the grid's TLS ports; {@code null}: plain TCP. */
    private final SSLSocketFactory tls;
    private final int poolSize;
    private final BlockingQueue<Connection> idle;
    /** Idle connections to slots' primaries, by address. */
    private final ConcurrentHashMap<InetSocketAddress, BlockingQueue<Connection>> routedIdle =
            new ConcurrentHashMap<>();
    private final AtomicInteger next = new AtomicInteger();
    private volatile Routes routes;
    /**
     * When the routes were read, or a caller began reading them ({@code System.nanoTime()}); 0:
     * read them at the next routed call.
     */
    private final AtomicLong routesReadAt = new AtomicLong();
    /** Nodes not routed to, each until when ({@code System.nanoTime()}). */
    private final ConcurrentHashMap<InetSocketAddress, Long> downUntil = new ConcurrentHashMap<>();
    private volatile boolean closed;

    RespClient(List<InetSocketAddress> addresses, String user, byte[] password, int poolSize,
            int timeoutMillis, SSLSocketFactory tls) {
        if (addresses.isEmpty()) {
            throw new IllegalArgumentException("no grid address");
        }
        this.addresses = List.copyOf(addresses);
        this.user = user;
        this.password = password;
        this.timeoutMillis = timeoutMillis;
        this.tls = tls;
        this.poolSize = poolSize;
        this.idle = new ArrayBlockingQueue<>(poolSize);
    }

    /**
     * Runs one command about the keys of hash {@code slot}: on the slot's primary if the routes
     * know it, which saves the node the hop to it; otherwise, or if that node does not answer,
     * as {@link #call} runs it.
     */
    Object callInSlot(boolean retry, int slot, Object... args) throws IOException {
        InetSocketAddress target = route(slot);
        if (target != null) {
            Connection c = null;
            try {
                c = borrowAt(target);
                Object reply = c.call(args);
                release(c);
                if (!again(reply) || !retry) {
                    return reply;
                }
            } catch (RuntimeException e) {
                if (c != null) {
                    c.close();
                }
                throw e;
            } catch (IOException e) {
                LOG.log(Level.FINE, "a session's node did not answer; trying through another", e);
                downUntil.put(target, System.nanoTime() + DOWN_FOR_NANOS);
                dropIdle(target); // its other idle connections are likely dead too
                if (c != null) {
                    c.close();
                    if (!retry) {
                        throw e; // sent, perhaps run: not to be sent again
                    }
                }
            }
            routesReadAt.set(0); // a partition moving or a node that died: read the routes again
        }
        return call(retry, args);
    }

    /**
     * The primary of {@code slot}, reading the routes first if they are old. None over TLS:
     * nodes announce their plain doors only.
     */
    private InetSocketAddress route(int slot) {
        if (tls != null) {
            return null;
        }
        long read = routesReadAt.get();
        long now = System.nanoTime() | 1;
        boolean old = read == 0 || now - read > ROUTES_MAX_AGE_NANOS;
        // One caller reads them; the others go by the old ones meanwhile.
        if (old && routesReadAt.compareAndSet(read, now)) {
            try {
                routes = Routes.fromShards(call(true, "CLUSTER", "SHARDS"));
            } catch (IOException | RuntimeException e) {
                routes = null;
                LOG.log(Level.FINE, "could not read the grid's routes", e);
            }
        }
        Routes r = routes;
        InetSocketAddress node = r == null ? null : r.node(slot);
        Long down = node == null ? null : downUntil.get(node);
        if (down != null && System.nanoTime() - down < 0) {
            return null;
        }
        return node;
    }

    /** A reply worth sending again: a partition failing over, a write its owners did not confirm. */
    private static boolean again(Object reply) {
        return reply instanceof GridError e && (e.is("TRYAGAIN") || e.is("INDETERMINATE"));
    }

    private void dropIdle(InetSocketAddress address) {
        BlockingQueue<Connection> queue = routedIdle.get(address);
        Connection c;
        while (queue != null && (c = queue.poll()) != null) {
            c.close();
        }
    }

    private Connection borrowAt(InetSocketAddress address) throws IOException {
        BlockingQueue<Connection> queue = routedIdle.get(address);
        Connection c = queue == null ? null : queue.poll();
        return c != null ? c : new Connection(address, true);
    }

    /**
     * Runs one command. With {@code retry} (the caller's command is safe to repeat), a network
     * failure, a {@code TRYAGAIN} (a partition failing over, nothing done) or an
     * {@code INDETERMINATE} (a write its owners did not confirm) is sent again, on the next
     * address, until the timeout has passed.
     */
    Object call(boolean retry, Object... args) throws IOException {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000L;
        IOException last = null;
        for (int attempt = 0; ; attempt++) {
            Connection c = null;
            try {
                c = borrow();
                Object reply = c.call(args);
                release(c);
                if (!again(reply) || !retry || System.nanoTime() > deadline) {
                    return reply;
                }
            } catch (RuntimeException e) {
                if (c != null) {
                    c.close(); // a reply it could not parse: the stream is out of step
                }
                throw e;
            } catch (IOException e) {
                last = e;
                if (c != null) {
                    c.close();
                }
                LOG.log(Level.FINE, "grid connection failed; trying another address", e);
                if (!retry || System.nanoTime() > deadline) {
                    throw last;
                }
            }
            sleepQuietly(Math.min(50L * (attempt + 1), 250));
        }
    }

    private Connection borrow() throws IOException {
        Connection c = idle.poll();
        if (c != null) {
            return c;
        }
        IOException last = null;
        for (int i = 0; i < addresses.size(); i++) {
            InetSocketAddress address = addresses.get(Math.floorMod(next.getAndIncrement(), addresses.size()));
            try {
                return new Connection(address, false);
            } catch (IOException e) {
                last = e;
            }
        }
        throw new IOException("no grid address answers " + addresses, last);
    }

    /** A connection subscribed to {@code channel}; {@link Subscription#next()} blocks for a message. */
    Subscription subscribe(String channel) throws IOException {
        Connection c = borrow();
        try {
            Object reply = c.call("SUBSCRIBE", channel);
            if (reply instanceof GridError e) {
                throw new IOException("the grid refused the subscription: " + e.getMessage());
            }
            c.socket.setSoTimeout(0); // messages come when they come
        } catch (IOException | RuntimeException e) {
            c.close();
            throw e;
        }
        return new Subscription(c);
    }

    /** A subscribed connection. */
    final class Subscription implements Closeable {
        private final Connection connection;

        private Subscription(Connection connection) {
            this.connection = connection;
        }

        /** The next message's payload; other pushes (subscription confirmations) are skipped. */
        byte[] next() throws IOException {
            while (true) {
                Object push = connection.read();
                if (push instanceof List<?> parts && parts.size() == 3 && parts.get(2) instanceof byte[] payload
                        && parts.get(0) instanceof byte[] kind && "message".equals(new String(kind, StandardCharsets.UTF_8))) {
                    return payload;
                }
            }
        }

        @Override
        public void close() {
            connection.close();
        }
    }

    private void release(Connection c) {
        BlockingQueue<Connection> queue = c.routed
                ? routedIdle.computeIfAbsent(c.address, a -> new ArrayBlockingQueue<>(poolSize))
                : idle;
        if (closed || !queue.offer(c)) {
            c.close();
        }
    }

    @Override
    public void close() {
        closed = true;
        List<BlockingQueue<Connection>> queues = new ArrayList<>(routedIdle.values());
        queues.add(idle);
        for (BlockingQueue<Connection> queue : queues) {
            Connection c;
            while ((c = queue.poll()) != null) {
                c.close();
            }
        }
    }

    private static void sleepQuietly(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private final class Connection {
        private final InetSocketAddress address;
        /** Taken to a slot's primary: goes back among that node's idle connections. */
        private final boolean routed;
        private final Socket socket;
        private final InputStream in;
        private final OutputStream out;

        Connection(InetSocketAddress address, boolean routed) throws IOException {
            this.address = address;
            this.routed = routed;
            Socket plain = new Socket();
            // One attempt gets a third of a call's time, so a node that hangs leaves time to
            // try the others.
            int attempt = Math.max(500, timeoutMillis / 3);
            try {
                plain.connect(address, attempt);
                plain.setSoTimeout(attempt);
                plain.setTcpNoDelay(true);
            } catch (IOException e) {
                plain.close();
                throw e;
            }
            socket = tls == null ? plain : secure(plain, address);
            try {
                in = new BufferedInputStream(socket.getInputStream(), 16 * 1024);
                out = new BufferedOutputStream(socket.getOutputStream(), 16 * 1024);
                if (password != null) {
                    Object reply = user == null ? call("AUTH", password) : call("AUTH", user, password);
                    if (reply instanceof GridError e) {
                        throw new IOException("grid refused the credentials: " + e.getMessage());
                    }
                }
            } catch (IOException e) {
                socket.close();
                throw e;
            }
        }

        /** TLS over {@code plain}, the node's certificate checked against its host name or address. */
        private Socket secure(Socket plain, InetSocketAddress address) throws IOException {
            try {
                SSLSocket secure = (SSLSocket) tls.createSocket(plain, address.getHostString(), address.getPort(), true);
                SSLParameters parameters = secure.getSSLParameters();
                parameters.setEndpointIdentificationAlgorithm("HTTPS");
                secure.setSSLParameters(parameters);
                secure.startHandshake();
                return secure;
            } catch (IOException e) {
                plain.close();
                throw e;
            }
        }

        Object call(Object... args) throws IOException {
            out.write(('*' + Integer.toString(args.length) + "\r\n").getBytes(StandardCharsets.US_ASCII));
            for (Object arg : args) {
                byte[] bytes = arg instanceof byte[] b ? b : String.valueOf(arg).getBytes(StandardCharsets.UTF_8);
                out.write(('$' + Integer.toString(bytes.length) + "\r\n").getBytes(StandardCharsets.US_ASCII));
                out.write(bytes);
                out.write('\r');
                out.write('\n');
            }
            out.flush();
            return read();
        }

        private Object read() throws IOException {
            int type = in.read();
            if (type < 0) {
                throw new EOFException("grid closed the connection");
            }
            String line = line();
            switch (type) {
                case '+':
                    return line.getBytes(StandardCharsets.UTF_8);
                case '-':
                    return new GridError(line);
                case ':':
                    return Long.parseLong(line);
                case '$': {
                    int n = Integer.parseInt(line);
                    if (n < 0) {
                        return null;
                    }
                    byte[] bytes = in.readNBytes(n);
                    if (bytes.length < n || in.read() != '\r' || in.read() != '\n') {
                        throw new EOFException("truncated reply");
                    }
                    return bytes;
                }
                case '*': {
                    int n = Integer.parseInt(line);
                    if (n < 0) {
                        return null;
                    }
                    List<Object> items = new ArrayList<>(n);
                    for (int i = 0; i < n; i++) {
                        items.add(read());
                    }
                    return items;
                }
                default:
                    throw new IOException("not a RESP2 reply: " + (char) type);
            }
        }

        private String line() throws IOException {
            ByteArrayOutputStream buf = new ByteArrayOutputStream(32);
            int b;
            while ((b = in.read()) != '\r') {
                if (b < 0) {
                    throw new EOFException("truncated reply");
                }
                buf.write(b);
            }
            if (in.read() != '\n') {
                throw new IOException("malformed reply line");
            }
            return buf.toString(StandardCharsets.UTF_8);
        }

        void close() {
            try {
                socket.close();
            } catch (IOException ignored) {
                // closing anyway
            }
        }
    }
}
