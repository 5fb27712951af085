package org.sessiongrid.sample;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.servlet.http.HttpSession;

/**
 * A plain servlet application that knows nothing of the grid: a counter, a cart, a login kept in
 * the session attribute {@code user}, and an attribute page. Every answer is one line of text.
 */
public class ShopServlet extends HttpServlet {
    private static final long serialVersionUID = 1L;

    @Override
    protected void doGet(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        resp.setContentType("text/plain;charset=UTF-8");
        String path = req.getPathInfo() == null ? "/" : req.getPathInfo();
        HttpSession session;
        String out;
        switch (path) {
            case "/counter": {
                session = req.getSession();
                Integer n = (Integer) session.getAttribute("counter");
                n = n == null ? 1 : n + 1;
                session.setAttribute("counter", n);
                out = "counter=" + n;
                break;
            }
            case "/cart/add": {
                session = req.getSession();
                @SuppressWarnings("unchecked")
                List<String> cart = (List<String>) session.getAttribute("cart");
                cart = cart == null ? new ArrayList<>() : new ArrayList<>(cart);
                cart.add(req.getParameter("item"));
                session.setAttribute("cart", cart);
                out = "cart=" + String.join(",", cart);
                break;
            }
            case "/cart": {
                session = req.getSession(false);
                Object cart = session == null ? null : session.getAttribute("cart");
                out = "cart=" + (cart == null ? "" : String.join(",", castList(cart)));
                break;
            }
            case "/login": {
                req.getSession();
                req.changeSessionId(); // session fixation protection
                req.getSession().setAttribute("user", req.getParameter("user"));
                out = "logged in as " + req.getParameter("user");
                break;
            }
            case "/logout": {
                session = req.getSession(false);
                if (session != null) {
                    session.invalidate();
                }
                out = "logged out";
                break;
            }
            case "/whoami": {
                session = req.getSession(false);
                Object user = session == null ? null : session.getAttribute("user");
                out = "user=" + (user == null ? "" : user);
                break;
            }
            case "/set": {
                req.getSession().setAttribute(req.getParameter("name"), req.getParameter("value"));
                out = "ok";
                break;
            }
            case "/get": {
                session = req.getSession(false);
                Object value = session == null ? null : session.getAttribute(req.getParameter("name"));
                out = req.getParameter("name") + "=" + (value == null ? "" : value);
                break;
            }
            case "/slow": {
                // Sets an attribute, sends the first line at once, and finishes a second later.
                req.getSession().setAttribute("slow", req.getParameter("value"));
                resp.getWriter().println("started");
                resp.getWriter().flush();
                try {
                    Thread.sleep(1000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                out = "done";
                break;
            }
            case "/principal": {
                // The container's user (BASIC authentication in the tests), as the filter sees it.
                req.getSession();
                out = "principal=" + (req.getUserPrincipal() == null ? "" : req.getUserPrincipal().getName());
                break;
            }
            case "/id": {
                session = req.getSession(false);
                out = "id=" + (session == null ? "" : session.getId());
                break;
            }
            default:
                resp.sendError(HttpServletResponse.SC_NOT_FOUND);
                return;
        }
        resp.getWriter().println(out);
    }

    @SuppressWarnings("unchecked")
    private static List<String> castList(Object o) {
        return (List<String>) o;
    }
}
