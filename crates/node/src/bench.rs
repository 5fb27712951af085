//! `sessiongrid bench`: load from many clients over the Redis door, one test after another, with
//! a progress bar per test and a summary table (or JSON) at the end.
//!
//! Every client has its own connection (clients are spread over the given addresses) and sends
//! one command at a time, so a figure is what that many unpipelined users get. Errors (including
//! `TRYAGAIN`) are counted, not retried. Sessions the benchmark creates belong to `--group` and
//! expire after `--idle` seconds unused.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::json;
use sessiongrid_client::{Connection, Value};
use sessiongrid_embedded::secrets;

/// A call with no reply in this long counts as an error and ends that client's test.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Redis-door addresses of the grid (comma-separated); clients are spread over them.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:6379")]
    pub grid: Vec<String>,
    /// File holding the password of the Redis door, if it has one.
    #[arg(long, env = "SESSIONGRID_REQUIREPASS_FILE")]
    pub password_file: Option<PathBuf>,
    /// Concurrent clients, each with its own connection.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Seconds each test runs.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Bytes of the value each write stores.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Tests to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "create,get,set,login,kv-set,kv-get")]
    pub tests: Vec<Test>,
    /// Session group of the benchmark's sessions.
    #[arg(long, default_value = "bench")]
    pub group: String,
    /// Idle timeout (seconds) of the benchmark's sessions and keys.
    #[arg(long, default_value_t = 120)]
    pub idle: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Test {
    /// `SESSION.CREATE`
    Create,
    /// `SESSION.GET` (marks the session used)
    Get,
    /// `SESSION.SET` of one attribute of `--size` bytes
    Set,
    /// `SESSION.LOGIN` (the client's session switches between 100 users)
    Login,
    /// `SET` of a key with `--size` bytes and an expiry
    KvSet,
    /// `GET` of a key of `--size` bytes
    KvGet,
}

impl Test {
    fn name(self) -> &'static str {
        match self {
            Test::Create => "create",
            Test::Get => "get",
            Test::Set => "set",
            Test::Login => "login",
            Test::KvSet => "kv-set",
            Test::KvGet => "kv-get",
        }
    }
}

/// What one test measured.
struct Outcome {
    test: Test,
    elapsed: Duration,
    /// Latencies of the successful operations, in microseconds, sorted.
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

impl Outcome {
    fn ops(&self) -> usize {
        self.latencies_us.len()
    }

    fn rate(&self) -> f64 {
        self.ops() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile in milliseconds (0 with no operation).
    fn quantile_ms(&self, q: f64) -> f64 {
        let n = self.latencies_us.len();
        if n == 0 {
            return 0.0;
        }
        let i = ((n as f64 * q).ceil() as usize).clamp(1, n) - 1;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

/// Live figures of a running test, for its progress bar.
#[derive(Default)]
struct Counters {
    ops: AtomicU64,
    errors: AtomicU64,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.grid.is_empty() || args.clients == 0 || !args.seconds.is_finite() || args.seconds <= 0.0
    {
        bail!("bench needs at least one --grid address, one client and a positive --seconds");
    }
    let password = args.password_file.as_deref().map(secrets::read_secret).transpose()?;
    let auth = password.map(|p| sessiongrid_client::Auth::password(p.into()));
    let duration = Duration::from_secs_f64(args.seconds);
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>7} [{bar:30}] {msg}")
        .expect("a valid template")
        .progress_chars("=> ");
    let mut outcomes = Vec::new();
    for &test in &args.tests {
        let bar = bars.add(ProgressBar::new(duration.as_millis() as u64));
        bar.set_style(style.clone());
        bar.set_prefix(test.name());
        let outcome = run_test(&args, auth.as_ref(), test, duration, &bar).await?;
        bar.finish_with_message(format!("{:.0} ops/s, {} errors", outcome.rate(), outcome.errors));
        outcomes.push(outcome);
    }
    if args.json {
        println!("{}", summary_json(&args, &outcomes));
    } else {
        println!("{}", summary_table(&args, &outcomes));
    }
    if let Some(dead) = outcomes.iter().find(|o| o.ops() == 0) {
        bail!(
            "{}: no operation succeeded ({})",
            dead.test.name(),
            dead.first_error.as_deref().unwrap_or("no error either")
        );
    }
    Ok(())
}

async fn run_test(
    args: &BenchArgs,
    auth: Option<&sessiongrid_client::Auth>,
    test: Test,
    duration: Duration,
    bar: &ProgressBar,
) -> anyhow::Result<Outcome> {
    let counters = Arc::new(Counters::default());
    let value: Arc<[u8]> = vec![b'x'; args.size].into();
    // Every client connects and prepares before the clock starts.
    let mut clients = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let address = &args.grid[i % args.grid.len()];
        let mut conn = Connection::connect(address, auth, Duration::from_secs(5), None)
            .await
            .with_context(|| format!("connecting to {address}"))?;
        let subject = prepare(&mut conn, args, test, i, &value)
            .await
            .with_context(|| format!("preparing {} on {address}", test.name()))?;
        clients.push((conn, subject));
    }
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, (mut conn, subject))| {
            let counters = counters.clone();
            let value = value.clone();
            let (group, idle) = (args.group.clone(), args.idle.to_string());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let (mut errors, mut first_error) = (0u64, None);
                let mut n = 0usize;
                while Instant::now() < deadline {
                    let user = format!("bench-{i}-{}", n % 100);
                    let args: Vec<&[u8]> = match test {
                        Test::Create => {
                            vec![b"SESSION.CREATE", group.as_bytes(), b"IDLE", idle.as_bytes()]
                        }
                        Test::Get => vec![b"SESSION.GET", &subject],
                        Test::Set => vec![b"SESSION.SET", &subject, b"cart", b"utf8", &value],
                        Test::Login => vec![b"SESSION.LOGIN", &subject, user.as_bytes()],
                        Test::KvSet => vec![b"SET", &subject, &value, b"EX", idle.as_bytes()],
                        Test::KvGet => vec![b"GET", &subject],
                    };
                    let began = Instant::now();
                    let reply = match tokio::time::timeout(CALL_TIMEOUT, conn.call(&args)).await {
                        Ok(reply) => reply,
                        Err(_) => Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("no reply in {} s", CALL_TIMEOUT.as_secs()),
                        )),
                    };
                    let took = began.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                    n += 1;
                    match reply {
                        Ok(Ok(_)) => {
                            latencies.push(took);
                            counters.ops.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Err(text)) => {
                            errors += 1;
                            counters.errors.fetch_add(1, Ordering::Relaxed);
                            first_error.get_or_insert(text);
                        }
                        Err(e) => {
                            errors += 1;
                            counters.errors.fetch_add(1, Ordering::Relaxed);
                            first_error.get_or_insert(e.to_string());
                            break; // the connection is gone
                        }
                    }
                }
                (latencies, errors, first_error)
            })
        })
        .collect();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let elapsed = start.elapsed();
        bar.set_position(elapsed.as_millis() as u64);
        let ops = counters.ops.load(Ordering::Relaxed);
        bar.set_message(format!(
            "{:.0} ops/s, {} errors",
            ops as f64 / elapsed.as_secs_f64(),
            counters.errors.load(Ordering::Relaxed)
        ));
    }
    let mut outcome = Outcome {
        test,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
        errors: 0,
        first_error: None,
    };
    for task in tasks {
        let (latencies, errors, first_error) = task.await?;
        outcome.latencies_us.extend(latencies);
        outcome.errors += errors;
        if outcome.first_error.is_none() {
            outcome.first_error = first_error;
        }
    }
    outcome.elapsed = start.elapsed();
    outcome.latencies_us.sort_unstable();
    Ok(outcome)
}

/// Gets a client ready for `test`: the session or key it works on (empty for `create`).
async fn prepare(
    conn: &mut Connection,
    args: &BenchArgs,
    test: Test,
    client: usize,
    value: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let idle = args.idle.to_string();
    let mut call = async |command: &[&[u8]]| match tokio::time::timeout(
        CALL_TIMEOUT,
        conn.call(command),
    )
    .await
    {
        Err(_) => bail!("no reply in {} s", CALL_TIMEOUT.as_secs()),
        Ok(reply) => match reply? {
            Ok(reply) => Ok(reply),
            Err(text) => bail!("{text}"),
        },
    };
    Ok(match test {
        Test::Create => Vec::new(),
        Test::Get | Test::Set | Test::Login => {
            let create: [&[u8]; 4] =
                [b"SESSION.CREATE", args.group.as_bytes(), b"IDLE", idle.as_bytes()];
            let Value::Bulk(id) = call(&create).await? else { bail!("SESSION.CREATE gave no id") };
            call(&[b"SESSION.SET", &id, b"cart", b"utf8", value]).await?;
            id.to_vec()
        }
        Test::KvSet | Test::KvGet => {
            let key = format!("bench:{}:{client}", std::process::id()).into_bytes();
            call(&[b"SET", &key, value, b"EX", idle.as_bytes()]).await?;
            key
        }
    })
}

fn summary_table(args: &BenchArgs, outcomes: &[Outcome]) -> String {
    let mut out = format!(
        "{} clients over {} address(es), {} B values, {} s per test\n\n",
        args.clients,
        args.grid.len(),
        args.size,
        args.seconds
    );
    out += &format!(
        "{:<8} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8}\n",
        "TEST", "OPS", "OPS/S", "ERRORS", "P50 MS", "P99 MS", "MAX MS"
    );
    for o in outcomes {
        out += &format!(
            "{:<8} {:>10} {:>10.0} {:>8} {:>8.2} {:>8.2} {:>8.2}\n",
            o.test.name(),
            o.ops(),
            o.rate(),
            o.errors,
            o.quantile_ms(0.5),
            o.quantile_ms(0.99),
            o.quantile_ms(1.0),
        );
    }
    for o in outcomes {
        if let Some(e) = &o.first_error {
            out += &format!("{}: first error: {e}\n", o.test.name());
        }
    }
    out.trim_end().to_string()
}

fn summary_json(args: &BenchArgs, outcomes: &[Outcome]) -> serde_json::Value {
    let tests: Vec<_> = outcomes
        .iter()
        .map(|o| {
            json!({
                "test": o.test.name(),
                "ops": o.ops(),
                "seconds": o.elapsed.as_secs_f64(),
                "ops_per_second": o.rate(),
                "errors": o.errors,
                "first_error": o.first_error,
                "p50_ms": o.quantile_ms(0.5),
                "p99_ms": o.quantile_ms(0.99),
                "max_ms": o.quantile_ms(1.0),
            })
        })
        .collect();
    json!({ "clients": args.clients, "size": args.size, "addresses": args.grid, "tests": tests })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_taken_from_sorted_latencies() {
        let outcome = Outcome {
            test: Test::Get,
            elapsed: Duration::from_secs(2),
            latencies_us: (1..=100).map(|i| i * 1000).collect(),
            errors: 0,
            first_error: None,
        };
        assert_eq!(outcome.rate(), 50.0);
        assert_eq!(outcome.quantile_ms(0.5), 50.0);
        assert_eq!(outcome.quantile_ms(0.99), 99.0);
        assert_eq!(outcome.quantile_ms(1.0), 100.0);
        let empty = Outcome { latencies_us: Vec::new(), ..outcome };
        assert_eq!(empty.quantile_ms(0.99), 0.0);
    }
}
