//! `cargo run --release -p sessiongrid-simulations --bin sim -- [seeds N|A..B [serve|deny|noheal [ISOLATE]] | scale NODES PARTITIONS]`
//!
//! `seeds N` runs N fault-injection seeds (default: `when_split = serve`, with minorities
//! cut off for seconds and healed by merging; `deny`: `when_split = deny`; `noheal`: serve mode
//! without healing or long splits) and prints one line each (a failing seed prints its
//! violations and exits 1); `scale` forms a cluster of NODES, adds one, kills one, prints the
//! movement, balance, convergence and traffic figures, and exits 1 if a join or a death moved more
//! than 1.1x the ideal share or max/mean copies exceeds 1.05.

use sessiongrid_simulations::{scale, SimConfig, World};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        Some("scale") => {
            let nodes = num(1, 100) as usize;
            let partitions = num(2, (nodes as u64 * 32).min(u16::MAX as u64)) as u16;
            let started = std::time::Instant::now();
            match scale::run(nodes, partitions, num(3, 1)) {
                Some(r) => {
                    println!(
                        "{} nodes, {} partitions x {}: formed in {} ms (virtual)",
                        r.nodes, r.partitions, r.replicas, r.form_ms
                    );
                    println!(
                        "  join: {} copies moved, ideal {:.0} ({:.2}x), settled in {} ms",
                        r.join_moves,
                        r.join_ideal,
                        r.join_moves as f64 / r.join_ideal,
                        r.join_ms
                    );
                    println!(
                        "  kill: {} copies moved, ideal {:.0} ({:.2}x), settled in {} ms",
                        r.leave_moves,
                        r.leave_ideal,
                        r.leave_moves as f64 / r.leave_ideal.max(1.0),
                        r.leave_ms
                    );
                    println!(
                        "  balance max/mean: copies {:.3}, primaries {:.3}",
                        r.copies_balance, r.primaries_balance
                    );
                    println!(
                        "  idle traffic: {:.1} messages per node per second",
                        r.idle_msgs_per_node_per_s
                    );
                    println!(
                        "  (simulated in {:.1} s of real time)",
                        started.elapsed().as_secs_f64()
                    );
                    // Property 5 of the design: balanced placement, minimal movement.
                    let broken = [
                        (r.join_moves as f64 > 1.1 * r.join_ideal, "a join moved > 1.1x ideal"),
                        (r.leave_moves as f64 > 1.1 * r.leave_ideal, "a death moved > 1.1x ideal"),
                        (r.copies_balance > 1.05, "max/mean copies > 1.05"),
                    ];
                    for (_, what) in broken.iter().filter(|(bad, _)| *bad) {
                        eprintln!("placement property broken: {what}");
                    }
                    if broken.iter().any(|(bad, _)| *bad) {
                        std::process::exit(1);
                    }
                }
                None => {
                    eprintln!("the cluster did not settle");
                    std::process::exit(1);
                }
            }
        }
        Some("seeds") => {
            // A mode word and a count of nodes to isolate, each its own argument: anything else
            // (`"serve 2"` quoted as one, say) would silently run the default mode.
            let mode_ok =
                args.get(2).is_none_or(|m| ["serve", "deny", "noheal"].contains(&m.as_str()));
            let isolate_ok = args.get(3).is_none_or(|n| n.parse::<u64>().is_ok());
            if !mode_ok || !isolate_ok || args.len() > 4 {
                eprintln!("usage: sim seeds N|A..B [serve|deny|noheal [ISOLATE]]");
                std::process::exit(2);
            }
            let mut failed = 0;
            let deny = args.get(2).is_some_and(|a| a == "deny");
            // `N` runs seeds 0..N; `A..B` runs A..B.
            let (first, end) = match args.get(1).and_then(|a| a.split_once("..")) {
                Some((a, b)) => (a.parse().unwrap_or(0), b.parse().unwrap_or(0)),
                None => (0, num(1, 100)),
            };
            for seed in first..end {
                let mut cfg = SimConfig::new(seed);
                if deny {
                    cfg.cluster.split = sessiongrid_cluster::SplitPolicy::Deny;
                }
                cfg.lossy_under_serve = std::env::var("SIM_LOSSY_SERVE").map_or(true, |v| v != "0");
                if args.get(2).is_some_and(|a| a == "noheal") {
                    // The behaviour before healing: no long splits in serve mode.
                    cfg.cluster.heal_splits = false;
                    cfg.serve_splits = false;
                }
                cfg.isolate_max = num(3, 1) as usize;
                if let Ok(filter) = std::env::var("SIM_LOG") {
                    let _ = tracing_subscriber::fmt()
                        .with_env_filter(sessiongrid_simulations::log_filter(&filter))
                        .without_time()
                        .with_ansi(false)
                        .with_writer(std::io::stderr)
                        .try_init();
                }
                let r = World::new(cfg).run();
                println!(
                    "seed {seed}: {} acked writes, {} failed, {} sessions ({} flows, {} failed, {} changes owed to watchers), {} splits, {} merges, {} disk faults ({} partition restarts), {} lossy nodes, {} data lost, longest outage {} ms, {} violations",
                    r.acked_writes,
                    r.failed_writes,
                    r.sessions_created,
                    r.flows,
                    r.flows_failed,
                    r.changes_owed,
                    r.cuts,
                    r.merges,
                    r.disk_faults,
                    r.partition_restarts,
                    r.lossy_links,
                    r.data_lost,
                    r.longest_outage_ms,
                    r.violations.len()
                );
                if !r.violations.is_empty() {
                    failed += 1;
                    for v in &r.violations {
                        println!("  {v}");
                    }
                }
            }
            std::process::exit(i32::from(failed > 0));
        }
        _ => {
            eprintln!("usage: sim seeds N|A..B [serve|deny|noheal [ISOLATE]] | sim scale NODES [PARTITIONS] [SEED]");
            std::process::exit(2);
        }
    }
}
