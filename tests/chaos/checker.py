"""The history of a chaos run and the rules it must keep.

Times are ``time.monotonic()`` of the one process that ran every client, so they compare. A
write that got an error or no answer may or may not have taken effect ("unknown"); the rules
allow either, never a value older than the last acknowledged one:

* **Registers** (each key written by one client, in order, every write a unique value or a
  delete): a read returns the value of the last write acknowledged before the read started, or
  of a later write issued before the read ended (acknowledged or not). The final read, through
  every node once the cluster has settled, is held to the same rule. A read may also return the
  value of an earlier write its client gave up on (no answer): a node that was paused or cut
  off carries out, once back, what its socket took meanwhile, after that client's later writes,
  as any server does. Such reads are counted (`late_unanswered_writes`), not violations.
* **Counters** (INCR by one client): every answer is above the previous one and between the
  increments acknowledged and those sent so far; the final value too.
* **Compare-and-set** (``SESSION.SET IFVERSION`` of counter ``n`` in shared sessions): no two
  acknowledged sets wrote the same ``n`` (one of them lost the other's update), and a read
  never returns less than an ``n`` acknowledged before it started; the session never vanishes.
* **Logins with MAX 1**: once the faults stop, no user has two live sessions on any node.
* **Rotation**: a rotated-away id never reads as a session again, and the new id keeps the
  attribute written before the rotation.
* **Events**: every acknowledged ``SESSION.CREATE`` reaches, at least once, every subscriber
  that was subscribed before the request and stayed so to the end, on a node no fault touched
  from the request on (a node cut off, paused or short of disk may be declared dead, and a
  member declared dead misses what was published meanwhile: the documented limit), nor one the
  cluster declared dead meanwhile (the nodes' logs say when: a coordinator on a lossy link
  declares live nodes dead). Under ``serve``, a creation made through a node a fault touched
  while it ran need not reach the other nodes: that node may have served a side of its own,
  whose primary publishes to that side's members only (the merge brings the session over, not
  its event).

Under ``when_split = serve`` both sides of a split serve, and when they merge each key keeps one
side's copy whole (the higher version), as the architecture notes say. The windows of the faults
that may leave two sides serving (from a cut, a node cut off, packet loss, a slow link or a
pause until it healed and the cluster settled, and the times a node was declared dead; not a
kill, a lost data directory or a full disk) are where sides may form, so:

* reads that overlap a window are not checked (counted as ``unchecked_reads``): they may see
  the other side;
* a write, increment or ``IFVERSION`` set that overlaps a window may be lost at the merge (the
  other side's copy of the key may win): it does not raise the floor later reads are held to,
  and two such sets may both write the same ``n``; everything outside the windows is held to the
  rules above (what both sides had before the split survives the merge), as is the final read;
* ``MAX 1``: a user who logged in during a window may keep a session of each side;
* rotation: the old id read right after a rotation in a window may still be live on the other
  side, and a rotation in a window may lose the attribute set just before it on the other side;
  the old id must be gone for good at the end all the same (an ended session wins the merge).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

# After a node declared dead joins again, the tables with it take a moment to reach the
# partitions that publish events.
REJOIN_GRACE_S = 2.0


@dataclass
class Write:
    n: int
    value: str | None
    start: float
    end: float
    acked: bool


@dataclass
class Subscription:
    """One subscriber connection to one node, from its subscription to its end (``None``: it
    lasted to the end of the run), and the sessions whose creation it was told of."""
    node: int
    start: float
    end: float | None = None
    created: set[str] = field(default_factory=set)


@dataclass
class Report:
    operations: dict
    violations: list[str] = field(default_factory=list)
    # Reads of an unanswered write carried out late (allowed; see the module's rules).
    late: list[str] = field(default_factory=list)


class History:
    def __init__(self, split: str = "deny") -> None:
        self.split = split
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.wall0 = time.time()
        self.writes: dict[str, dict[int, Write]] = {}
        self.reads: list[tuple[str, str | None, float, float, bool, int]] = []
        # Per counter: (increments sent so far, the answer or None, start, end).
        self.incrs: dict[str, list[tuple[int, int | None, float, float]]] = {}
        self.counters_final: list[tuple[str, int]] = []
        self.shared: list[str] = []
        self.cas_sets: list[tuple[str, int, float, float, bool]] = []
        self.session_reads: list[tuple[str, int | None, float, float, bool]] = []
        self.logins: list[tuple[str, int, int]] = []
        self.login_times: list[tuple[str, float, float]] = []
        # (old id, new id, cart token, when the cart was set, when the rotation was answered)
        self.rotated_ids: list[tuple[str, str, str, float, float]] = []
        self.old_reads: list[tuple[str, bool, float]] = []
        self.rotations_final: list[tuple[str, str, str, bool, str | None]] = []
        self.counts = {"total": 0, "ok": 0, "failed": 0}
        self.extra: list[str] = []
        self.fault_log: list[tuple[float, str]] = []
        # Faults by the nodes they touched: [start, end (None: not over), nodes], from t0;
        # a fault is over once healed and the cluster settled.
        self.node_faults: list[list] = []
        # Under `serve`: [start, end (None: not over)] of the faults that may split the cluster
        # into two serving sides (not a kill, a lost data directory or a full disk: a node
        # down or refusing writes serves no side of its own), and of the times a node was
        # declared dead, from t0.
        self.windows: list[list] = []
        # The entries of `node_faults` that do not split (kills and the like).
        self.downs: list[list] = []
        # Acknowledged creations: (session id, request sent, answer received (monotonic), the
        # node it went through).
        self.created: list[tuple[str, float, float, int]] = []
        self.subscriptions: list[Subscription] = []

    def _count(self, ok: bool) -> None:
        with self.lock:
            self.counts["total"] += 1
            self.counts["ok" if ok else "failed"] += 1

    # -- recording --------------------------------------------------------------------------

    def write(self, key: str, n: int, value: str | None, start: float, end: float, acked) -> None:
        self._count(bool(acked))
        with self.lock:
            self.writes.setdefault(key, {})[n] = Write(n, value, start, end, bool(acked))

    def read(self, key: str, value, start: float, end: float, final: bool = False,
             node: int = -1) -> None:
        self._count(True)
        with self.lock:
            self.reads.append((key, value, start, end, final, node))

    def incr(self, key: str, sent: int, reply: int | None, start: float = 0.0,
             end: float = 0.0) -> None:
        self._count(reply is not None)
        with self.lock:
            self.incrs.setdefault(key, []).append((sent, reply, start, end))

    def final_counter(self, key: str, value: int) -> None:
        self.counters_final.append((key, value))

    def shared_sessions(self, ids: list[str]) -> None:
        self.shared = list(ids)

    def cas(self, sid: str, n: int, start: float, end: float, acked: bool) -> None:
        self._count(acked)
        with self.lock:
            self.cas_sets.append((sid, n, start, end, acked))

    def session_read(self, sid: str, n: int | None, start: float, end: float,
                     final: bool = False) -> None:
        self._count(True)
        with self.lock:
            self.session_reads.append((sid, n, start, end, final))

    def op(self, what: str, ok: bool) -> None:
        self._count(ok)

    def login(self, user: str, start: float, end: float, ok: bool) -> None:
        self._count(ok)
        with self.lock:
            self.login_times.append((user, start, end))

    def logged_in(self, user: str, live: int, node: int) -> None:
        self.logins.append((user, live, node))

    def rotated(self, old: str, new: str, token: str, at: float, start: float = 0.0) -> None:
        self._count(True)
        with self.lock:
            self.rotated_ids.append((old, new, token, start or at, at))

    def old_id_read(self, old: str, found: bool, start: float) -> None:
        self._count(True)
        with self.lock:
            self.old_reads.append((old, found, start))

    def rotations(self) -> list[tuple[str, str, str]]:
        return [(old, new, token) for old, new, token, _, _ in self.rotated_ids]

    def rotation_final(self, old: str, new: str, token: str, gone: bool, cart) -> None:
        self.rotations_final.append((old, new, token, gone, cart))

    def register_keys(self) -> list[str]:
        return sorted(self.writes)

    def counter_keys(self) -> list[str]:
        return sorted(self.incrs)

    def violation(self, what: str) -> None:
        self.extra.append(what)

    def diverged(self, start: float, end: float) -> bool:
        """Under ``serve``: whether ``start``..``end`` (monotonic) overlaps a window where the
        two sides of a split may each have served the request."""
        if self.split != "serve":
            return False
        a, b = start - self.t0, end - self.t0
        return any(s <= b and (e is None or e >= a) for s, e in self.windows)

    def served_apart(self, node: int, start: float, end: float) -> bool:
        """Under ``serve``: whether a fault touched ``node`` while a request through it ran
        (``start``..``end``, monotonic): it may have served a side of its own."""
        if self.split != "serve":
            return False
        a, b = start - self.t0, end - self.t0
        return any(node in nodes and s <= b and (e is None or e >= a)
                   for s, e, nodes in self.node_faults)

    def fault(self, at: float, what: str, nodes: set[int], splits: bool = True) -> None:
        with self.lock:
            self.fault_log.append((at, what))
            entry = [at, None, nodes]
            self.node_faults.append(entry)
            if splits:
                self.windows.append([at, None])
            else:
                self.downs.append(entry)  # the same list: `fault_over` ends both

    def declared_dead(self, logs: list[str]) -> None:
        """Adds to the faults, from the nodes' logs (one text per node, by index), the times a
        coordinator declared a node dead until it joined again and the tables with it had reached
        its partitions: a node left out of the topology may miss session events published
        meanwhile (the documented limit), and a coordinator on a lossy link declares live nodes
        dead without any fault on them."""
        def at(stamp: str) -> float:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - self.wall0

        owner: dict[str, int] = {}
        # Each node's ids, by when they started: one restarted with its data lost has a new one.
        started: dict[int, list[tuple[float, str]]] = {}
        for i, text in enumerate(logs):
            for m in re.finditer(r"^(\S+Z) .*p2p transport started node=(\d+)", text,
                                 re.MULTILINE):
                owner[m.group(2)] = i
                started.setdefault(i, []).append((at(m.group(1)), m.group(2)))

        def current(i: int, t: float) -> str | None:
            ids = [node for since, node in started.get(i, []) if since <= t]
            return ids[-1] if ids else None

        marks: list[tuple[float, str, str]] = []
        for text in logs:
            for m in re.finditer(r"^(\S+Z) .*(member declared dead|node joining) node=(\d+)",
                                 text, re.MULTILINE):
                marks.append((at(m.group(1)), m.group(2), m.group(3)))
        # Declared dead until that node (under any of its ids: one restarted with its data lost
        # comes back under a new one) joins again.
        out: dict[int, float] = {}
        for t, what, node in sorted(marks):
            i = owner.get(node)
            if i is None or current(i, t) != node:
                continue  # an id the node no longer has: that restart is a fault of its own
            if what == "member declared dead":
                out.setdefault(i, t)
            elif i in out:
                start = out.pop(i)
                self.node_faults.append([start, t + REJOIN_GRACE_S, {i}])
                self.split_window(i, start, t + REJOIN_GRACE_S)
        for i, start in out.items():
            self.node_faults.append([start, None, {i}])
            self.split_window(i, start, None)

    def split_window(self, i: int, start: float, end: float | None) -> None:
        """Node ``i`` was declared dead from ``start`` to ``end``: a window where it may have
        served a side of its own, unless it was down (killed) meanwhile."""
        def down(fault: list) -> bool:
            s, e, nodes = fault
            return i in nodes and (end is None or s <= end) and (e is None or e >= start)
        if not any(down(f) for f in self.downs):
            self.windows.append([start, end])

    def fault_over(self) -> None:
        with self.lock:
            now = time.monotonic() - self.t0
            if self.node_faults and self.node_faults[-1][1] is None:
                self.node_faults[-1][1] = now
            if self.windows and self.windows[-1][1] is None:
                self.windows[-1][1] = now

    def session_created(self, sid: str, start: float, node: int) -> None:
        end = time.monotonic()
        with self.lock:
            self.created.append((sid, start, end, node))

    def subscribed(self, node: int) -> Subscription:
        s = Subscription(node, time.monotonic())
        with self.lock:
            self.subscriptions.append(s)
        return s


def check(h: History) -> Report:
    report = Report(operations=dict(h.counts))
    v = report.violations
    v.extend(h.extra)
    unchecked = _registers(h, v, report.late)
    report.operations["late_unanswered_writes"] = len(report.late)
    if h.split == "serve":
        report.operations["unchecked_reads"] = unchecked
    _counters(h, v)
    _cas(h, v)
    split_users = {u for u, start, end in h.login_times if h.diverged(start, end)}
    for user, live, node in h.logins:
        if live > 1 and user not in split_users:
            v.append(f"user {user} has {live} live sessions on node {node} (MAX 1)")
    for old, found, start in h.old_reads:
        if found and not h.diverged(start, start):
            v.append(f"rotated-away session {old} read back as live at t={start - h.t0:.3f}s")
    split_rotations = {old for old, _, _, start, at in h.rotated_ids if h.diverged(start, at)}
    for old, new, token, gone, cart in h.rotations_final:
        if not gone:
            v.append(f"rotated-away session {old} is live again at the end")
        if cart != token and old not in split_rotations:
            v.append(f"session {new}, rotated from {old}: cart {cart!r}, acknowledged {token!r}")
    report.operations["events_checked"] = _events(h, v)
    return report


def _events(h: History, v: list[str]) -> int:
    """The events rule; returns how many (creation, subscriber) pairs it checked."""
    checked = 0
    for sid, start, answered, via in h.created:
        if h.served_apart(via, start, answered):
            continue
        since = start - h.t0
        touched = set().union(*(nodes for _, end, nodes in h.node_faults
                                if end is None or end >= since))
        for s in h.subscriptions:
            if s.end is not None or s.start > start or s.node in touched:
                continue
            checked += 1
            if sid not in s.created:
                v.append(f"session {sid} created at t={since:.3f}s never reached the "
                         f"subscriber of node {s.node} (subscribed at t={s.start - h.t0:.3f}s)")
    return checked


def partition(key: str, partitions: int = 256) -> int:
    """The key's partition: CRC16 (XMODEM, as Redis Cluster) of the key or its {tag}."""
    k = key.encode()
    start = k.find(b"{")
    if start >= 0:
        end = k.find(b"}", start + 1)
        if end > start + 1:
            k = k[start + 1:end]
    crc = 0
    for byte in k:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc % partitions


def _registers(h: History, v: list[str], late: list[str]) -> int:
    """The registers rule; returns how many reads it left unchecked (``serve``'s windows)."""
    unchecked = 0
    # The acknowledged writes each read is held to: not those of a window (worked out once).
    held = {key: [w for w in writes.values() if w.acked and not h.diverged(w.start, w.end)]
            for key, writes in h.writes.items()}
    for key, value, start, end, final, node in h.reads:
        if h.diverged(start, end):
            unchecked += 1
            continue
        writes = h.writes.get(key, {})
        acked = [w.n for w in held.get(key, []) if w.end < start]
        floor = max(acked, default=0)
        # Writes the read may see: the last acknowledged one and any later one already sent.
        allowed = [w for w in writes.values() if w.n >= floor and w.start < end]
        if value is None:
            ok = floor == 0 or any(w.value is None for w in allowed)
        else:
            ok = any(w.value == value for w in allowed)
        # A write its client gave up on (no answer in 3 s) may still be carried out later, even
        # after that client's next writes: a node paused or cut off runs, once back, what its
        # socket received meanwhile, as any server does. Counted, not a violation.
        unanswered = [w for w in writes.values() if not w.acked and w.n < floor and w.start < end]
        if not ok and any(w.value == value for w in unanswered):
            late.append(f"{key}: t={start - h.t0:.3f}s read {value!r} through node {node}, "
                        f"an unanswered write older than the acknowledged #{floor}")
            continue
        if not ok:
            last = writes.get(floor)
            want = last.value if last else None
            when = "final read" if final else f"t={start - h.t0:.3f}s"
            acked_at = f" (acknowledged at t={last.end - h.t0:.3f}s)" if last else ""
            v.append(f"{key} (partition {partition(key)}): {when} read {value!r} through node "
                     f"{node}; the last acknowledged "
                     f"write (#{floor}) wrote {want!r}{acked_at}")
    return unchecked


def _counters(h: History, v: list[str]) -> None:
    for key, answers in h.incrs.items():
        # `acked`: the acknowledged increments the counter must hold (under `serve`, not those
        # of a window, which the merge may undo); `since`: when the previous answer was asked.
        acked = sent = previous = 0
        since = None
        for n, reply, start, end in answers:
            sent = n
            if reply is None:
                continue
            diverged = h.diverged(start, end)
            acked += 0 if diverged else 1
            merged_since = since is not None and h.diverged(since, end)
            if diverged or merged_since:
                # Answered by one side, or after a merge that may have kept the other's count.
                if not acked <= reply <= sent:
                    v.append(f"{key}: INCR #{n} answered {reply}, with {acked} acknowledged "
                             f"outside splits of {sent} sent")
            elif not (acked <= reply <= sent) or reply <= previous:
                v.append(f"{key}: INCR #{n} answered {reply} after {previous}, with {acked} "
                         f"acknowledged of {sent} sent")
            previous, since = reply, start
        for k, final in h.counters_final:
            if k == key and not (acked <= final <= sent):
                v.append(f"{key}: final value {final}, with {acked} increments acknowledged "
                         f"of {sent} sent")


def _cas(h: History, v: list[str]) -> None:
    seen: dict[tuple[str, int], int] = {}
    for sid, n, start, end, acked in h.cas_sets:
        # Under `serve`, each side may accept its own set of the same n in a window.
        if acked and not h.diverged(start, end):
            seen[(sid, n)] = seen.get((sid, n), 0) + 1
    for (sid, n), times in seen.items():
        if times > 1:
            v.append(f"session {sid}: {times} acknowledged IFVERSION sets wrote n={n} "
                     f"(an update was lost)")
    held = [(s, m, set_end) for s, m, set_start, set_end, acked in h.cas_sets
            if acked and not h.diverged(set_start, set_end)]
    for sid, n, start, end, final in h.session_reads:
        if n is not None and h.diverged(start, end):
            continue
        floor = max((m for s, m, set_end in held if s == sid and set_end < start), default=0)
        when = "final read" if final else f"t={start - h.t0:.3f}s"
        if n is None:
            v.append(f"session {sid} vanished ({when})")
        elif n < floor:
            v.append(f"session {sid}: {when} read n={n}, below the acknowledged n={floor}")
