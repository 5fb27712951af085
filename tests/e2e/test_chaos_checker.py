"""The chaos run's checker (tests/chaos/checker.py), on made-up histories.

Proves: a node the cluster declared dead, as the coordinators' logs say, is left out of the
events rule from then until it joined again (and 2 s more); an id a node had before it came
back with its data lost is not taken for the node's current one; a node nobody declared dead
is still held to the rule.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "chaos"))

from checker import History, Subscription, _events  # noqa: E402

T0 = datetime(2026, 12, 6, 0, 0, 0, tzinfo=timezone.utc)


def stamp(seconds: float) -> str:
    return datetime.fromtimestamp(T0.timestamp() + seconds, timezone.utc).isoformat().replace(
        "+00:00", "Z")


def line(seconds: float, text: str) -> str:
    return f"{stamp(seconds)}  INFO x: {text}\n"


def history() -> History:
    h = History()
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
    h.created = [("s1", 12.0)]
    h.subscriptions = [Subscription(node=1, start=0.0), Subscription(node=2, start=0.0)]
    violations: list[str] = []
    assert _events(h, violations) == 1
    assert violations == ["session s1 created at t=12.000s never reached the subscriber of "
                          "node 2 (subscribed at t=0.000s)"]


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
