package org.sessiongrid.servlet;

import java.io.IOException;

import jakarta.servlet.http.HttpServletResponse;
import jakarta.servlet.http.HttpServletResponseWrapper;

/**
 * Writes the session's changes before a redirect, an error or an explicit flush sends the
 * response, so the browser's next request (perhaps to another server) finds them.
 */
final class CommittingResponse extends HttpServletResponseWrapper {
    private GridRequest request;

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
}
