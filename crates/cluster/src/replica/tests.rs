use super::*;
use crate::msg::{Chunk, LogEntry, Term, Txn};
use crate::storage::MemStore;
use sessiongrid_model::Delta;

/// A follower (node 1) of partition 0, whose primary is node 7, and the topology it follows.
fn follower_of_7() -> (Replica<MemStore>, Topology) {
    let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
    let mut t = Topology::founded_by(7, 1);
    t.members = vec![1, 7];
    t.partitions[0].owners = vec![7, 1];
    t.partitions[0].target = vec![7, 1];
    let mut r = Replica::new(0, 1, cfg, MemStore::empty());
    r.adopt(Now { mono: 0, wall: 0 }, &t, &mut Vec::new());
    (r, t)
}

#[test]
fn a_lying_primary_cannot_overflow_versions_or_chunk_numbers() {
    let (mut r, mut t) = follower_of_7();
    let now = Now { mono: 0, wall: 0 };
    let mut out = Vec::new();
    let top = LogPos { term: Term { epoch: 1, primary: 7 }, version: u64::MAX };
    let entry = LogEntry {
        pos: top,
        key: Bytes::from_static(b"k"),
        delta: Delta::Whole(None),
        events: Vec::new(),
    };
    r.receive(
        now,
        7,
        ReplicaMsg::Append { prev: LogPos::ZERO, entries: vec![entry], published: 0 },
        &mut out,
    );
    let chunk = |seq| Chunk {
        id: 1,
        seq,
        after: None,
        through: Some(Bytes::from_static(b"m")),
        entries: Vec::new(),
        as_of: top,
    };
    r.receive(now, 7, ReplicaMsg::Chunk(chunk(0)), &mut out);
    r.receive(now, 7, ReplicaMsg::Chunk(chunk(u32::MAX)), &mut out);
    // Promoted: its next version saturates instead of overflowing.
    t.partitions[0].owners = vec![1];
    t.partitions[0].target = vec![1];
    t.epoch = 2;
    r.adopt(now, &t, &mut out);
    assert_eq!(r.b.next_version(), u64::MAX);
}

#[test]
fn a_new_primary_asks_its_followers_for_events_past_the_published_mark_and_numbers_on_past_them() {
    let (mut r, mut t) = follower_of_7();
    let now = Now { mono: 0, wall: 0 };
    let mut out = Vec::new();
    let at = |version| LogPos { term: Term { epoch: t.epoch, primary: 7 }, version };
    // Its copy comes by snapshot, which carries no events; nothing is published yet.
    let snapshot =
        Chunk { id: 1, seq: 0, after: None, through: None, entries: Vec::new(), as_of: at(14) };
    r.receive(now, 7, ReplicaMsg::Chunk(snapshot), &mut out);
    assert_eq!(r.position(), Some(at(14)));
    // Node 7 leaves; node 1 is primary, node 9 (which may keep events 7 had not got to
    // every member) its follower.
    t.members = vec![1, 7, 9];
    t.partitions[0].owners = vec![1, 9];
    t.partitions[0].target = vec![1, 9];
    t.epoch += 1;
    out.clear();
    r.adopt(now, &t, &mut out);
    r.tick(now, &mut out);
    let asked = out
        .iter()
        .any(|e| matches!(e, Effect::Send(_, 9, ReplicaMsg::EventsWanted { through: 14 })));
    assert!(asked, "{out:?}");
    // Its own writes are numbered far past anything its predecessor may have applied.
    assert_eq!(r.b.next_version(), 14 + TAKEOVER_VERSION_GAP + 1);
}

#[test]
fn a_follower_whose_disk_refuses_writes_takes_nothing_until_it_takes_writes_again() {
    let (mut r, t) = follower_of_7();
    let now = Now { mono: 0, wall: 0 };
    let at = |version| LogPos { term: Term { epoch: t.epoch, primary: 7 }, version };
    let append = || ReplicaMsg::Append {
        prev: LogPos::ZERO,
        entries: vec![LogEntry {
            pos: at(1),
            key: Bytes::from_static(b"k"),
            delta: Delta::Whole(None),
            events: Vec::new(),
        }],
        published: 0,
    };
    r.b.store.refusing = true;
    let mut out = Vec::new();
    r.receive(now, 7, append(), &mut out);
    assert_eq!(r.position(), Some(LogPos::ZERO), "nothing applied");
    assert!(out.is_empty(), "nothing acknowledged: {out:?}");
    r.b.store.refusing = false;
    r.receive(now, 7, append(), &mut out);
    assert_eq!(r.position(), Some(at(1)));
    assert!(out.iter().any(|e| matches!(e, Effect::Send(_, 7, ReplicaMsg::Ack { .. }))));
}

#[test]
fn a_learner_whose_copy_went_back_under_a_newer_table_is_reported_in_sync_only_anew() {
    let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
    let now = Now { mono: 0, wall: 0 };
    let mut t = Topology::founded_by(7, 1);
    t.members = vec![1, 7];
    t.partitions[0].target = vec![7, 1];
    t.epoch = 5;
    let mut r = Replica::new(0, 7, cfg, MemStore::empty());
    let mut out = Vec::new();
    r.adopt(now, &t, &mut out);
    let incr = Op::IncrBy { delta: 1 };
    r.request(now, Origin::Local(1), Bytes::from_static(b"k"), incr, &mut out);
    let pos = r.position().expect("a primary has a position");
    out.clear();
    r.receive(now, 1, ReplicaMsg::Ack { pos, epoch: 5 }, &mut out);
    assert!(
        out.iter().any(|e| matches!(e, Effect::Report(0, Report::Synced { node: 1, as_of: 5 }))),
        "{out:?}"
    );
    // Left out under table 6, which this node never saw, node 1 dropped its copy; a learner
    // again under table 7, it answers a probe from nothing.
    out.clear();
    r.receive(now, 1, ReplicaMsg::SyncRequest { pos: Some(LogPos::ZERO), epoch: 7 }, &mut out);
    let later = |ms| Now { mono: ms, wall: ms };
    r.tick(later(10_000), &mut out);
    assert!(!out.iter().any(|e| matches!(e, Effect::Report(_, Report::Synced { .. }))), "{out:?}");
    let resent = out.iter().any(|e| {
        matches!(e, Effect::Send(_, 1, ReplicaMsg::Append { entries, .. }) if !entries.is_empty())
    });
    assert!(resent, "the write goes again: {out:?}");
    // Caught up again, it counts from the table it acknowledged under.
    out.clear();
    r.receive(later(10_001), 1, ReplicaMsg::Ack { pos, epoch: 7 }, &mut out);
    assert!(
        out.iter().any(|e| matches!(e, Effect::Report(0, Report::Synced { node: 1, as_of: 7 }))),
        "{out:?}"
    );
}

#[test]
fn a_primary_with_no_copy_gives_way_to_an_owner_holding_one_and_snapshots_over_no_owner() {
    let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
    let mut t = Topology::founded_by(7, 1);
    t.members = vec![1, 7, 9];
    t.partitions[0].owners = vec![7, 1];
    t.partitions[0].target = vec![7, 1, 9];
    t.epoch = 5;
    // Node 7 never held partition 0 (or let its copy go); node 1, an owner, holds one.
    let mut r = Replica::new(0, 7, cfg, MemStore::empty());
    let mut out = Vec::new();
    let now = |ms| Now { mono: ms, wall: ms };
    r.adopt(now(0), &t, &mut out);
    let theirs = LogPos { term: Term { epoch: 3, primary: 1 }, version: 40 };
    let snapshot = |out: &[Effect], to| {
        out.iter().any(|e| matches!(e, Effect::Send(_, n, ReplicaMsg::Chunk(_)) if *n == to))
    };
    let gave_way =
        |out: &[Effect]| out.iter().any(|e| matches!(e, Effect::Report(0, Report::NoCopy)));
    out.clear();
    r.receive(now(1), 1, ReplicaMsg::SyncRequest { pos: Some(theirs), epoch: 5 }, &mut out);
    assert!(gave_way(&out) && !snapshot(&out, 1), "{out:?}");
    // It runs nothing meanwhile (its position stays zero, so even a restart of the partition,
    // which forgets that it gave way, finds it empty again).
    out.clear();
    r.request(
        now(2),
        Origin::Local(1),
        Bytes::from_static(b"k"),
        Op::IncrBy { delta: 1 },
        &mut out,
    );
    assert!(out.iter().any(|e| matches!(e, Effect::Reply(_, Err(Refusal::NotServing)))), "{out:?}");
    assert_eq!(r.position(), Some(LogPos::ZERO));
    // Asked again at once, it tells the coordinator again only after a while.
    out.clear();
    r.receive(now(3), 1, ReplicaMsg::Ack { pos: theirs, epoch: 5 }, &mut out);
    assert!(!gave_way(&out) && !snapshot(&out, 1), "{out:?}");
    let later = now(3 + r.b.cfg.retransmit_ms);
    r.receive(later, 1, ReplicaMsg::SyncRequest { pos: Some(theirs), epoch: 5 }, &mut out);
    assert!(gave_way(&out), "{out:?}");
    // A learner's copy is no owner's: it is replaced as always.
    out.clear();
    r.receive(later, 9, ReplicaMsg::SyncRequest { pos: Some(theirs), epoch: 5 }, &mut out);
    assert!(snapshot(&out, 9) && !gave_way(&out), "{out:?}");
    // An owner's incomplete copy (a resync cut short) holds what it has: not replaced.
    out.clear();
    let later = now(3 + 2 * r.b.cfg.retransmit_ms);
    r.receive(later, 1, ReplicaMsg::SyncRequest { pos: None, epoch: 5 }, &mut out);
    assert!(gave_way(&out) && !snapshot(&out, 1), "{out:?}");
}

#[test]
fn a_read_is_answered_at_once_only_when_the_request_path_would_answer_it_at_once() {
    let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
    let mut t = Topology::founded_by(7, 1);
    t.members = vec![1, 7];
    t.partitions[0].owners = vec![7, 1];
    t.partitions[0].target = vec![7, 1];
    t.epoch = 5;
    let mut r = Replica::new(0, 7, cfg, MemStore::empty());
    let mut out = Vec::new();
    let now = |ms| Now { mono: ms, wall: ms };
    let k = Bytes::from_static(b"k");
    r.adopt(now(0), &t, &mut out);
    // Taken over with no copy: nothing runs before the owner acknowledged the history.
    assert_eq!(r.read_now(now(1), &k, &Op::Get), None);
    let ack = |r: &mut Replica<MemStore>, out: &mut Vec<Effect>| {
        let pos = r.position().expect("a primary has a position");
        r.receive(now(2), 1, ReplicaMsg::Ack { pos, epoch: 5 }, out);
    };
    ack(&mut r, &mut out);
    assert_eq!(r.read_now(now(2), &k, &Op::Get), Some(Reply::Nil));
    // A write the follower does not have yet: a read waits for it, as a request would.
    let set = Op::Set {
        value: Bytes::from_static(b"v"),
        cond: sessiongrid_model::op::SetCond::Always,
        expiry: sessiongrid_model::op::ExpiryChange::At(100),
        get: false,
    };
    r.request(now(3), Origin::Local(1), k.clone(), set, &mut out);
    assert_eq!(r.read_now(now(3), &k, &Op::Get), None);
    ack(&mut r, &mut out);
    let v = Some(Reply::Bulk(Bytes::from_static(b"v")));
    assert_eq!(r.read_now(now(4), &k, &Op::Get), v);
    // Never a write, nor a read that finds its key expired (the request path deletes it).
    assert_eq!(r.read_now(now(4), &k, &Op::IncrBy { delta: 1 }), None);
    assert_eq!(r.read_now(now(101), &k, &Op::Get), None);
    // Nor while a transaction holds the partition.
    let txn = Txn { node: 7, id: 1 };
    r.query(now(5), Origin::Local(2), Query::Hold { txn, ms: 1000 }, &mut out);
    assert_eq!(r.read_now(now(5), &k, &Op::Get), None);
    r.query(now(6), Origin::Local(3), Query::Release { txn }, &mut out);
    assert_eq!(r.read_now(now(6), &k, &Op::Get), v);
}

#[test]
fn a_session_read_is_answered_at_once_until_its_touch_is_due() {
    use sessiongrid_model::session::op::SessionOp;
    let cfg = Arc::new(ClusterConfig { partitions: 1, ..ClusterConfig::default() });
    let mut t = Topology::founded_by(7, 1);
    t.members = vec![7];
    t.partitions[0].owners = vec![7];
    t.partitions[0].target = vec![7];
    let mut r = Replica::new(0, 7, cfg, MemStore::empty());
    let mut out = Vec::new();
    let now = |ms| Now { mono: ms, wall: ms };
    r.adopt(now(0), &t, &mut out);
    let k = Bytes::from_static(b"sg:session:s1");
    let (id, group) = (Bytes::from_static(b"s1"), Bytes::from_static(b"app"));
    let create = SessionOp::Create { id, group, idle_ms: 60_000, absolute_ms: None };
    r.request(now(1_000), Origin::Local(1), k.clone(), Op::Session(create), &mut out);
    let get = Op::Session(SessionOp::Get { touch: true, attrs: None, names: false });
    // Touched less than a granule ago: the read changes nothing, and is answered at once.
    assert!(r.read_now(now(1_500), &k, &get).is_some());
    let pos = r.position();
    // A granule later it moves the last access: a write, sent to be run.
    assert_eq!(r.read_now(now(2_500), &k, &get), None);
    assert_eq!(r.position(), pos, "nothing written by the attempt");
    // Any other write is never tried.
    let touch = Op::Session(SessionOp::Touch { idle_ms: None });
    assert_eq!(r.read_now(now(1_500), &k, &touch), None);
}

#[test]
fn a_follower_that_dropped_a_snapshot_midway_asks_for_a_new_one() {
    let (mut r, mut t) = follower_of_7();
    let now = Now { mono: 0, wall: 0 };
    let mut out = Vec::new();
    let as_of = LogPos { term: Term { epoch: t.epoch, primary: 7 }, version: 9 };
    let chunk = |seq, through: Option<&'static [u8]>| Chunk {
        id: 5,
        seq,
        after: None,
        through: through.map(Bytes::from_static),
        entries: Vec::new(),
        as_of,
    };
    r.receive(now, 7, ReplicaMsg::Chunk(chunk(0, Some(b"m"))), &mut out);
    // Left out of the partition for a while, it lets its copy go, then learns again.
    let owners = t.partitions[0].clone();
    t.partitions[0].owners = vec![7];
    t.partitions[0].target = vec![7];
    t.epoch += 1;
    r.adopt(now, &t, &mut out);
    t.partitions[0] = owners;
    t.epoch += 1;
    r.adopt(now, &t, &mut out);
    out.clear();
    // The primary goes on with the snapshot it started: chunk 1 alone cannot be installed.
    r.receive(now, 7, ReplicaMsg::Chunk(chunk(1, None)), &mut out);
    let asked = out
        .iter()
        .any(|e| matches!(e, Effect::Send(_, 7, ReplicaMsg::SyncRequest { epoch, .. }) if *epoch == t.epoch));
    assert!(asked, "{out:?}");
}

#[test]
fn a_late_chunk_of_a_replaced_snapshot_does_not_undo_newer_writes() {
    let (mut r, t) = follower_of_7();
    let now = Now { mono: 0, wall: 0 };
    let mut out = Vec::new();
    let term = Term { epoch: t.epoch, primary: 7 };
    let at = |version| LogPos { term, version };
    let snapshot = |id, version| Chunk {
        id,
        seq: 0,
        after: None,
        through: None,
        entries: Vec::new(),
        as_of: at(version),
    };
    r.receive(now, 7, ReplicaMsg::Chunk(snapshot(2, 14)), &mut out);
    assert_eq!(r.position(), Some(at(14)));
    let entry = LogEntry {
        pos: at(15),
        key: Bytes::from_static(b"k"),
        delta: Delta::Whole(None),
        events: Vec::new(),
    };
    let append = ReplicaMsg::Append { prev: at(14), entries: vec![entry], published: 0 };
    r.receive(now, 7, append, &mut out);
    assert_eq!(r.position(), Some(at(15)));
    // The primary's first snapshot, replaced by the second, arrives late; then the second
    // again.
    r.receive(now, 7, ReplicaMsg::Chunk(snapshot(1, 14)), &mut out);
    assert_eq!(r.position(), Some(at(15)), "the write after the snapshot is kept");
    r.receive(now, 7, ReplicaMsg::Chunk(snapshot(2, 14)), &mut out);
    assert_eq!(r.position(), Some(at(15)));
    // A new one is installed, even as of an older position (it rolls a copy back).
    r.receive(now, 7, ReplicaMsg::Chunk(snapshot(3, 13)), &mut out);
    assert_eq!(r.position(), Some(at(13)));
}

#[test]
fn a_node_declared_dead_keeps_its_copy_for_a_table_that_counts_it_again() {
    let (mut r, mut t) = follower_of_7();
    let now = Now { mono: 0, wall: 0 };
    let mut out = Vec::new();
    let at = LogPos { term: Term { epoch: t.epoch, primary: 7 }, version: 9 };
    let snapshot =
        Chunk { id: 1, seq: 0, after: None, through: None, entries: Vec::new(), as_of: at };
    r.receive(now, 7, ReplicaMsg::Chunk(snapshot), &mut out);
    assert_eq!(r.position(), Some(at));
    // Node 7's table declares node 1 dead: it is no member, so it serves nothing, but its copy
    // stays.
    let before = t.clone();
    t.members = vec![7, 9];
    t.partitions[0].owners = vec![7, 9];
    t.partitions[0].target = vec![7, 9];
    t.epoch += 1;
    r.adopt(now, &t, &mut out);
    assert!(r.is_idle());
    assert_eq!(r.position(), Some(at), "kept while no table counts this node");
    // A takeover's table, built on the one before, makes it primary: it serves its copy.
    let mut takeover = before;
    takeover.epoch = t.epoch + 1;
    takeover.members = vec![1, 9];
    takeover.partitions[0].owners = vec![1, 9];
    takeover.partitions[0].target = vec![1, 9];
    r.adopt(now, &takeover, &mut out);
    assert_eq!(r.position(), Some(at));
    // A table that counts it and gives the partition to others lets the copy go.
    let mut later = takeover.clone();
    later.epoch += 1;
    later.partitions[0].owners = vec![9];
    later.partitions[0].target = vec![9];
    r.adopt(now, &later, &mut out);
    assert_eq!(r.position(), Some(LogPos::ZERO));
}
