//! The simulator's seeds: properties hold under faults, runs replay exactly, and a planted bug is
//! caught. `SIM_SEEDS=n` sets how many seeds run; `SIM_SEED=s` replays one. For a failing seed:
//! `SIM_DUMP=1` prints every node's view of the key at the first bad read, `SIM_TRACE_KEY=k`
//! prints every client operation on key `k`, `SIM_OUTAGES=1` prints outages with the faults
//! before them, and `SIM_LOG=sessiongrid_cluster=trace` the protocol's own log.

use sessiongrid_simulations::{Report, SimConfig, World};

fn seeds() -> u64 {
    std::env::var("SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(40)
}

fn run(mut cfg: SimConfig) -> Report {
    if std::env::var("SIM_DENY").is_ok() {
        cfg.cluster.split = sessiongrid_cluster::SplitPolicy::Deny;
    }
    if let Some(n) = std::env::var("SIM_ISOLATE").ok().and_then(|n| n.parse().ok()) {
        cfg.isolate_max = n;
    }
    if let Ok(filter) = std::env::var("SIM_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(sessiongrid_simulations::log_filter(&filter))
            .without_time()
            .with_writer(std::io::stderr)
            .try_init();
    }
    World::new(cfg).run()
}

fn describe(r: &Report) -> String {
    format!(
        "seed {}: {} acked / {} failed writes, {} / {} failed reads, {} msgs, {} crashes, {} pauses, {} cuts, {} whole restarts, {} graceful restarts, epoch {}, longest outage {} ms",
        r.seed, r.acked_writes, r.failed_writes, r.reads, r.failed_reads, r.messages, r.crashes, r.pauses, r.cuts, r.whole_restarts, r.graceful_restarts, r.final_epoch, r.longest_outage_ms
    )
}

fn assert_clean(r: &Report) {
    assert!(
        r.violations.is_empty(),
        "{}\nviolations:\n  {}\nreplay: SIM_SEED={} cargo test -p sessiongrid-simulations --test seeds replay",
        describe(r),
        r.violations.join("\n  "),
        r.seed
    );
}

#[test]
fn a_quiet_cluster_loses_nothing_and_refuses_nothing() {
    let mut cfg = SimConfig::new(7);
    cfg.faults = false;
    cfg.drop = 0.0;
    cfg.duplicate = 0.0;
    let r = run(cfg);
    println!("{}", describe(&r));
    assert_clean(&r);
    assert!(r.acked_writes > 1000, "{}", describe(&r));
    assert_eq!(r.failed_writes + r.failed_reads, 0, "{}", describe(&r));
}

#[test]
fn every_seed_keeps_the_properties_under_faults() {
    for seed in 0..seeds() {
        let r = run(SimConfig::new(seed));
        println!("{}", describe(&r));
        assert_clean(&r);
    }
}

/// A seed of the default mode beyond the range CI runs. 11259, a checker artifact: a hash field
/// written through a split's majority, answered only once the next split had begun, may beat
/// the field written through the minority (the merge keeps a key whole); the minority's field
/// had been taken as written through one side only.
#[test]
fn a_seed_beyond_the_ci_range_keeps_the_properties() {
    let mut cfg = SimConfig::new(11259);
    cfg.lossy_under_serve = false; // its schedule as it was found
    let r = run(cfg);
    println!("{}", describe(&r));
    assert_clean(&r);
}

#[test]
fn both_sides_of_a_split_serve_and_the_smaller_merges_into_the_bigger_on_heal() {
    let mut merges = 0;
    for seed in 0..seeds() {
        let mut cfg = SimConfig::new(seed);
        cfg.isolate_max = 2;
        let r = run(cfg);
        println!("two cut off: {} merges {}", describe(&r), r.merges);
        assert_clean(&r);
        merges += r.merges;
    }
    assert!(merges > 0, "no split lasted long enough for a side to merge");
}

#[test]
fn a_minority_cut_off_refuses_rather_than_diverges_when_split_is_denied() {
    for seed in 0..seeds() {
        let mut cfg = SimConfig::new(seed);
        cfg.cluster.split = sessiongrid_cluster::SplitPolicy::Deny;
        let r = run(cfg);
        println!("deny {}", describe(&r));
        assert_clean(&r);
    }
}

/// Seeds that, with a node that hears and is heard only seconds late (a lossy link) under the
/// default `serve`, never merged (3314: a lossy coordinator's late ping made it a member of the
/// side that took over from it) or lost acknowledged writes (7227, 7463: a primary the
/// coordinator had declared dead reported a learner in sync that followed the other side's
/// table and had dropped its copy), or never finished merging (267, 4144, 5977: the table of a
/// member that took over from the lossy coordinator, sent by that member or relayed, was
/// adopted by that coordinator, since its sender was one of its members; 5477, 6770: the
/// winner, short of the members merging in, lost to the old table of the side merging into it).
/// And 16671, a checker artifact: a write issued through one split's minority and answered in
/// the next split was counted as that one's minority. 9052: a node declared dead on its side
/// (it dropped its copies) merged straight into the other side, which still listed it as an
/// owner and made it a partition's only one, empty. 26402: a coordinator woken from a pause
/// handled its member's takeover before its first tick, so before noting the pause; it met
/// that table as the other side's, won on its stale count, and acknowledged a write alone.
#[test]
fn lossy_nodes_under_serve_merge_and_lose_nothing() {
    for seed in [267, 3314, 4144, 5477, 5977, 6770, 7227, 7463, 9052, 16671, 26402] {
        let mut cfg = SimConfig::new(seed);
        cfg.lossy_under_serve = true;
        let r = run(cfg);
        println!("lossy serve {}", describe(&r));
        assert_clean(&r);
    }
}

/// Seeds that lost writes with two of five nodes cut off at once. Two causes: a primary that
/// missed the epochs in which a backup left the partition (and dropped its copy) took the
/// backup's old acknowledgements as proof that it was in sync when it came back as a learner
/// (7, 85, 194, ...); and a coordinator cut off just after publishing served a topology the
/// majority never saw, acknowledging a write as the partition's only owner (972).
#[test]
fn two_nodes_cut_off_at_once_lose_nothing_when_split_is_denied() {
    for seed in [7, 85, 194, 296, 332, 352, 380, 382, 972] {
        let mut cfg = SimConfig::new(seed);
        cfg.cluster.split = sessiongrid_cluster::SplitPolicy::Deny;
        cfg.isolate_max = 2;
        let r = run(cfg);
        println!("deny, two cut off: {}", describe(&r));
        assert_clean(&r);
    }
}

/// Seeds in which an answer that changed nothing (a DEL of a missing key, a GET) reflected a
/// write that had already been answered as indeterminate (it timed out waiting for a backup)
/// and was then lost in a failover: the acknowledged "nothing to delete" came undone. Such an
/// answer now waits until every counted follower has the primary's whole history.
#[test]
fn an_answer_never_reflects_a_write_that_may_still_be_lost() {
    let runs: [(u64, Option<usize>); 3] = [(1323, None), (3185, Some(1)), (1331, Some(2))];
    for (seed, isolate) in runs {
        let mut cfg = SimConfig::new(seed);
        if let Some(n) = isolate {
            cfg.cluster.split = sessiongrid_cluster::SplitPolicy::Deny;
            cfg.isolate_max = n;
        }
        let r = run(cfg);
        println!("{}", describe(&r));
        assert_clean(&r);
    }
}

#[test]
fn replay() {
    let seed = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let a = run(SimConfig::new(seed));
    let b = run(SimConfig::new(seed));
    println!("{}", describe(&a));
    assert_eq!(describe(&a), describe(&b), "a seed must replay exactly");
    assert_eq!(a.violations, b.violations);
    assert_clean(&a);
}

/// Runs seeds with a planted defect until one catches it; fails, naming `defect`, if none does.
fn caught(plant: impl Fn(&mut SimConfig), defect: &str) {
    for seed in 0..seeds() {
        let mut cfg = SimConfig::new(seed);
        plant(&mut cfg);
        let r = run(cfg);
        if !r.violations.is_empty() {
            println!("planted bug caught by seed {seed}: {}", r.violations[0]);
            return;
        }
    }
    panic!("no seed caught {defect}");
}

#[test]
fn acknowledging_before_the_backups_is_caught() {
    caught(
        |cfg| cfg.cluster.faults.ack_before_backups = true,
        "a primary that acknowledges before its backups have the write",
    );
}

#[test]
fn ignoring_watches_is_caught() {
    caught(
        |cfg| cfg.cluster.faults.watches_ignored = true,
        "primaries that make no attribute change travel, whoever watches",
    );
}

#[test]
fn sending_attribute_changes_to_the_wrong_members_is_caught() {
    caught(
        |cfg| cfg.cluster.faults.watchers_reversed = true,
        "primaries that send attribute changes to the members that do not watch them",
    );
}

#[test]
fn sending_events_only_once_is_caught() {
    caught(
        |cfg| cfg.cluster.faults.events_sent_once = true,
        "a primary that sends each session event only once",
    );
}
