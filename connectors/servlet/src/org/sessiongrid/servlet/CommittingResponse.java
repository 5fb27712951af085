package org.sessiongrid.servlet;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;

import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.WriteListener;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.servlet.http.HttpServletResponseWrapper;

/**
 * Writes the session's changes before anything sends the response on its way: a redirect, an
 * error, or a flush (of the buffer, the writer or the stream) or close by the application. So the
 * browser's next request, perhaps to another server, finds them.
 */
final class CommittingResponse extends HttpServletResponseWrapper {
    private GridRequest request;
    private PrintWriter writer;
    private ServletOutputStream stream;

    CommittingResponse(HttpServletResponse response) {
        super(response);
    }

    void attach(GridRequest request) {
        this.request = request;
    }

    private void commitSession() throws IOException {
        GridSession s = request == null ? null : request.current();
        if (s != null) {
            s.commit();
        }
    }

    private void commitSessionUnchecked() {
        try {
            commitSession();
        } catch (IOException e) {
            throw new UncheckedIOException("the session could not be written to the grid", e);
        }
    }

    @Override
    public void sendRedirect(String location) throws IOException {
        commitSession();
        super.sendRedirect(location);
    }

    @Override
    public void sendError(int sc, String msg) throws IOException {
        commitSession();
        super.sendError(sc, msg);
    }

    @Override
    public void sendError(int sc) throws IOException {
        commitSession();
        super.sendError(sc);
    }

    @Override
    public void flushBuffer() throws IOException {
        commitSession();
        super.flushBuffer();
    }

    @Override
    public PrintWriter getWriter() throws IOException {
        if (writer == null) {
            writer = new PrintWriter(super.getWriter()) {
                @Override
                public void flush() {
                    commitSessionUnchecked();
                    super.flush();
                }

                @Override
                public void close() {
                    commitSessionUnchecked();
                    super.close();
                }
            };
        }
        return writer;
    }

    @Override
    public ServletOutputStream getOutputStream() throws IOException {
        if (stream == null) {
            ServletOutputStream inner = super.getOutputStream();
            stream = new ServletOutputStream() {
                @Override
                public void write(int b) throws IOException {
                    inner.write(b);
                }

                @Override
                public void write(byte[] b, int off, int len) throws IOException {
                    inner.write(b, off, len);
                }

                @Override
                public void flush() throws IOException {
                    commitSession();
                    inner.flush();
                }

                @Override
                public void close() throws IOException {
                    commitSession();
                    inner.close();
                }

                @Override
                public boolean isReady() {
                    return inner.isReady();
                }

                @Override
                public void setWriteListener(WriteListener listener) {
                    inner.setWriteListener(listener);
                }
            };
        }
        return stream;
    }
}
