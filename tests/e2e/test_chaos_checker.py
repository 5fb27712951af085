"""The chaos run's checker (tests/chaos/checker.py), on made-up histories.

Proves: a node the cluster declared dead, as the coordinators' logs say, is left out of the
events rule from then until it joined again (and 2 s more); an id a node had before it came
back with its data lost is not taken for the node's current one; a node nobody declared dead
is still held to the rule. Under `when_split = serve`, a write or increment made during a
fault window may be undone by the merge, but one made outside every window may not, and
neither may under `deny`.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "chaos"))

from checker import History, Subscription, _events, check  # noqa: E402

T0 = datetime(2026, 12, 6, 0, 0, 0, tzinfo=timezone.utc)


def stamp(seconds: float) -> str:
    return datetime.fromtimestamp(T0.timestamp() + seconds, timezone.utc).isoformat().replace(
        "+00:00", "Z")


def line(seconds: float, text: str) -> str:
    return f"{stamp(seconds)}  INFO x: {text}\n"


def history(split: str = "deny") -> History:
    h = History(split)
    h.wall0 = T0.timestamp()
    h.t0 = 0.0
    return h


def test_a_node_declared_dead_misses_events_until_it_is_back_and_settled():
    h = history()
    logs = [
        line(0, "p2p transport started node=100")
        + line(10, "member declared dead node=200")
        + line(11, "node joining node=200"),
        line(0, "p2p transport started node=200"),
        line(0, "p2p transport started node=300"),
    ]
    h.declared_dead(logs)
    assert h.node_faults == [[10.0, 13.0, {1}]]
    # Created at 12 s: node 1 (back at 11 s, its partitions' tables maybe not yet) may miss it;
    # node 2 may not.
    h.created = [("s1", 12.0, 12.1, 0)]
    h.subscriptions = [Subscription(node=1, start=0.0), Subscription(node=2, start=0.0)]
    violations: list[str] = []
    assert _events(h, violations) == 1
    assert violations == ["session s1 created at t=12.000s never reached the subscriber of "
                          "node 2 (subscribed at t=0.000s)"]


def test_under_serve_a_creation_through_a_node_a_fault_touched_may_reach_its_side_only():
    h = history("serve")
    # Node 1 cut off from 10 s to 20 s: it may serve a side of its own, whose events reach
    # that side's members only. Node 2's subscriber, untouched, still must see creations made
    # through node 1 before and after the cut, and through node 0 during it.
    h.fault(10.0, "isolate node 1", {1})
    h.node_faults[-1][1] = 20.0
    h.windows[-1][1] = 20.0
    h.created = [("before", 5.0, 5.1, 1), ("cut-off", 12.0, 12.1, 1), ("majority", 12.0, 12.1, 0),
                 ("after", 25.0, 25.1, 1)]
    h.subscriptions = [Subscription(node=2, start=0.0)]
    violations: list[str] = []
    assert _events(h, violations) == 3
    assert violations == [
        f"session {sid} created at t={t:.3f}s never reached the subscriber of node 2 "
        "(subscribed at t=0.000s)" for sid, t in [("before", 5.0), ("majority", 12.0),
                                                    ("after", 25.0)]
    ]
    # Under deny a cut-off node serves nothing: every creation is checked.
    h.split = "deny"
    assert _events(h, []) == 4


def test_an_id_a_node_no_longer_has_is_not_the_node():
    h = history()
    # Node 1 came back at 5 s with its data lost (new id 201); its old id 200 is declared dead
    # at 6 s and never joins again: that says nothing of node 1 as it is now.
    logs = [
        line(0, "p2p transport started node=100") + line(6, "member declared dead node=200"),
        line(0, "p2p transport started node=200") + line(5, "p2p transport started node=201"),
    ]
    h.declared_dead(logs)
    assert h.node_faults == []


def split_history(split: str) -> History:
    """Register k: #1 acknowledged before a fault window (10-20 s), #2 acknowledged within it
    (the merge kept the other side's copy), read back after it; counter c: one increment
    before the window, one in it (the other side's count won), then one after."""
    h = history(split)
    h.node_faults = [[10.0, 20.0, {3}]]
    h.windows = [[10.0, 20.0]]
    h.write("k", 1, "k=1", 1.0, 1.1, True)
    h.write("k", 2, "k=2", 12.0, 12.1, True)
    h.read("k", "k=1", 25.0, 25.1)
    h.incr("c", 1, 1, 2.0, 2.1)
    h.incr("c", 2, 2, 13.0, 13.1)
    h.incr("c", 3, 2, 26.0, 26.1)
    return h


def test_under_serve_what_a_window_wrote_may_be_undone_by_the_merge():
    assert check(split_history("serve")).violations == []
    report = check(split_history("deny"))
    assert len(report.violations) == 2, report.violations


def test_under_serve_what_was_acknowledged_outside_the_windows_stays():
    h = split_history("serve")
    h.write("k", 3, "k=3", 27.0, 27.1, True)
    h.read("k", "k=2", 30.0, 30.1)
    h.incr("c", 4, 1, 31.0, 31.1)
    h.read("k", "k=1", 15.0, 15.1)  # in the window: not checked
    report = check(h)
    assert len(report.violations) == 2, report.violations
    assert report.operations["unchecked_reads"] == 1


def test_under_serve_a_kill_is_no_split():
    h = history("serve")
    h.fault(10.0, "kill -9 node 3", {3}, splits=False)
    h.node_faults[-1][1] = 20.0
    h.write("k", 1, "k=1", 1.0, 1.1, True)
    h.write("k", 2, "k=2", 9.0, 9.1, True)
    h.read("k", "k=1", 15.0, 15.1)
    assert len(check(h).violations) == 1


def test_under_serve_a_node_declared_dead_opens_a_window_unless_it_was_down():
    logs = [
        line(0, "p2p transport started node=100") + line(11, "member declared dead node=200")
        + line(19, "node joining node=200"),
        line(0, "p2p transport started node=200"),
    ]
    killed = history("serve")
    killed.fault(10.0, "kill -9 node 1", {1}, splits=False)
    killed.fault_over()  # ends at the (made-up) clock's now, past the rejoin
    killed.declared_dead(logs)
    assert killed.windows == []
    alive = history("serve")
    alive.declared_dead(logs)
    assert alive.windows == [[11.0, 21.0]]
