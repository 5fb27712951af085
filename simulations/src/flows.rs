//! Clients running the session operations that span keys: the grid's own sequences
//! ([`sessiongrid_model::session::flows`]), one request at a time through the simulated
//! cluster, so faults land between any two of their steps.
//!
//! A flow is the grid's `async` code polled by hand: each single-key operation it awaits
//! leaves its request in a [`Port`] and waits until the world puts the answer there.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use sessiongrid_cluster::msg::Refusal;
use sessiongrid_model::config::SessionConfig;
use sessiongrid_model::session::flows::{self, Exec, LoginOutcome};
use sessiongrid_model::session::LoginPolicy;
use sessiongrid_model::{Op, Reply};

/// A request the simulated cluster refused or did not answer, as a flow sees it.
#[derive(Debug)]
pub struct Failed(pub Refusal);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for Failed {}

/// Where a flow leaves its next request and finds its answer.
#[derive(Default)]
struct Port {
    request: RefCell<Option<(Bytes, Op)>>,
    reply: RefCell<Option<Result<Reply, Refusal>>>,
    now_ms: Cell<u64>,
    client: usize,
    /// Ids this client's rotations gave out.
    issued: Cell<u64>,
}

/// The `n`th id client `client`'s rotations give out: its own, so never another's.
fn rotation_id(client: usize, n: u64) -> Bytes {
    Bytes::from(format!("sim-c{client}-r{n:010}"))
}

struct SimExec(Rc<Port>);

impl Exec for SimExec {
    type Error = Failed;

    fn exec(&self, key: Bytes, op: Op) -> impl Future<Output = Result<Reply, Failed>> {
        *self.0.request.borrow_mut() = Some((key, op));
        let port = self.0.clone();
        std::future::poll_fn(move |_| match port.reply.borrow_mut().take() {
            Some(answer) => Poll::Ready(answer.map_err(Failed)),
            None => Poll::Pending,
        })
    }

    fn new_id(&self) -> Bytes {
        let n = self.0.issued.get() + 1;
        self.0.issued.set(n);
        rotation_id(self.0.client, n)
    }

    fn now_ms(&self) -> u64 {
        self.0.now_ms.get()
    }
}

/// What a client asked for.
#[derive(Clone, Debug)]
pub enum Ask {
    Rotate {
        id: Bytes,
    },
    /// Logs `user` in on session `id`, at most one session per user (the oldest are evicted).
    Login {
        id: Bytes,
        user: Bytes,
    },
    Logout {
        id: Bytes,
    },
}

/// How it went.
#[derive(Debug)]
pub enum Outcome {
    Rotated(Option<Bytes>),
    LoggedIn(LoginOutcome),
    LoggedOut(bool),
    Failed(String),
}

/// What the flow needs next.
pub enum Step {
    Request(Bytes, Op),
    Done(Outcome),
}

pub struct Flow {
    pub ask: Ask,
    port: Rc<Port>,
    future: Pin<Box<dyn Future<Output = Outcome>>>,
}

impl Flow {
    /// A flow of client `client`; its first step comes from [`Flow::advance`].
    pub fn new(ask: Ask, client: usize, issued: u64) -> Flow {
        let port = Rc::new(Port { client, issued: Cell::new(issued), ..Port::default() });
        let x = SimExec(port.clone());
        let run = ask.clone();
        let future = Box::pin(async move {
            let config = SessionConfig::default();
            let failed = |e: flows::Error<Failed>| Outcome::Failed(e.to_string());
            match run {
                Ask::Rotate { id } => {
                    flows::rotate(&x, &config, &id).await.map_or_else(failed, Outcome::Rotated)
                }
                Ask::Login { id, user } => {
                    let login = flows::login(
                        &x,
                        &config,
                        &id,
                        user,
                        Some(LoginPolicy::EvictOldest),
                        Some(1),
                    );
                    login.await.map_or_else(failed, Outcome::LoggedIn)
                }
                Ask::Logout { id } => {
                    flows::logout(&x, &id).await.map_or_else(failed, Outcome::LoggedOut)
                }
            }
        });
        Flow { ask, port, future }
    }

    /// How many ids the flow's client has given out, this flow's included.
    pub fn issued(&self) -> u64 {
        self.port.issued.get()
    }

    /// Runs the flow with the answer to its last request (none at the start) until it needs
    /// another or is done.
    pub fn advance(&mut self, now_ms: u64, answer: Option<Result<Reply, Refusal>>) -> Step {
        self.port.now_ms.set(now_ms);
        *self.port.reply.borrow_mut() = answer;
        match self.future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(outcome) => Step::Done(outcome),
            Poll::Pending => match self.port.request.borrow_mut().take() {
                Some((key, op)) => Step::Request(key, op),
                None => Step::Done(Outcome::Failed("a flow waited on nothing".into())),
            },
        }
    }
}

/// The users clients log in, at most one session each.
pub const USERS: [&str; 3] = ["u0", "u1", "u2"];

/// What clients did with sessions, for the checks once the faults are over.
#[derive(Default)]
pub struct Ledger {
    /// The ids clients were given: by their creation, or by a rotation acknowledged. (A
    /// rotation that failed may leave a copy under an id nobody was given, which nobody can
    /// use: it ends with its idle timeout.)
    pub ids: Vec<Bytes>,
    /// Ids rotated away (acknowledged): never live again.
    pub rotated: Vec<Bytes>,
    pub flows: u64,
    pub flows_failed: u64,
    /// Users logged in while a split was served on both sides (`when_split = serve`): each
    /// side's registry admits a login, and the merge keeps one side's registry whole, so the
    /// other side's session stays logged in, unlisted (the documented cost of serving both).
    pub split_logins: std::collections::BTreeSet<Bytes>,
    /// Sessions logged in, out or rotated while a split was served on both sides, and the ids
    /// they were rotated to since: the merge keeps one side's copy of each whole, so such a
    /// session may end with the principal it had before (sim seed 3107 of `serve 2`: logged in
    /// as u1 through the majority, it went back to u2, which it had had before the split, and a
    /// later login of u2 elsewhere did not evict it; seed 8835: logged out, it went back to
    /// logged in, was rotated after the heal, and kept the user).
    pub split_sessions: std::collections::BTreeSet<Bytes>,
}

impl Ledger {
    pub fn done(&mut self, ask: &Ask, outcome: &Outcome) {
        self.flows += 1;
        match (ask, outcome) {
            (Ask::Rotate { id }, Outcome::Rotated(Some(new))) => {
                self.rotated.push(id.clone());
                self.ids.push(new.clone());
                if self.split_sessions.contains(id) {
                    self.split_sessions.insert(new.clone());
                }
            }
            (_, Outcome::Failed(_)) => self.flows_failed += 1,
            _ => {}
        }
    }

    /// The rules over what every id holds at the end (`None`: no live session): a rotated-away
    /// id stays gone, and no user has two live sessions.
    pub fn check(
        &self,
        at_end: &std::collections::BTreeMap<Bytes, Option<sessiongrid_model::session::Session>>,
    ) -> Vec<String> {
        let mut violations = Vec::new();
        for id in &self.rotated {
            if matches!(at_end.get(id), Some(Some(_))) {
                violations.push(format!("rotated-away session {id:?} is live at the end"));
            }
        }
        for user in USERS.into_iter().filter(|u| !self.split_logins.contains(u.as_bytes())) {
            let live: Vec<&Bytes> = at_end
                .iter()
                .filter(|(_, s)| {
                    s.as_ref().is_some_and(|s| s.principal.as_deref() == Some(user.as_bytes()))
                })
                .map(|(id, _)| id)
                .collect();
            if live.len() > 1 && !live.iter().any(|id| self.split_sessions.contains(*id)) {
                violations.push(format!(
                    "user {user} has {} live sessions (MAX 1): {live:?}",
                    live.len()
                ));
            }
        }
        violations
    }
}
