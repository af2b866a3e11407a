//! The worker as a process: crashes, drains, configuration errors, several workers on one queue,
//! a database restart and the `migrate` subcommand. Each test runs the real binary against its own
//! database.

mod helpers;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use flowforge_core::queue::{NewTask, TaskStatus};
use flowforge_testkit::PgCluster;
use helpers::*;
use nix::sys::signal::Signal;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_task_task_runs_again_after_lease_expiry() {
    let (url, queue) = fresh_queue().await;
    // One slot, so the tasks enqueued later wait for worker B.
    let mut a = Worker::start(
        WorkerEnv::new(&url)
            .set("FLOWFORGE_LEASE", "1s")
            .set("FLOWFORGE_CONCURRENCY", "1"),
    )
    .await;
    let long = enqueue(&queue, &[task("sleep", json!({"ms": 2500}))]).await[0];
    let running = wait_for_status(&queue, long, TaskStatus::Running).await;
    assert_eq!(running.attempts, 1);
    let others = enqueue(
        &queue,
        &(0..20).map(|_| task("noop", json!({}))).collect::<Vec<_>>(),
    )
    .await;

    a.signal(Signal::SIGKILL);
    let code = a
        .child
        .wait_exit(Duration::from_secs(10))
        .await
        .expect("worker A dies");
    assert_eq!(code, None, "worker A was killed by a signal");
    let still = get(&queue, long).await;
    assert_eq!(
        (still.status, still.attempts),
        (TaskStatus::Running, 1),
        "the killed worker's task stays running (leased) until its lease expires"
    );

    let _b = Worker::start(WorkerEnv::new(&url)).await;
    let done = wait_for_status(&queue, long, TaskStatus::Succeeded).await;
    assert_eq!(
        done.attempts, 2,
        "the attempt lost with worker A counts, worker B's is the second"
    );
    for t in wait_all_finished(&queue, &others, DEADLINE).await {
        assert_eq!(
            (t.status, t.attempts),
            (TaskStatus::Succeeded, 1),
            "task {} queued behind the crash",
            t.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_and_hands_back_the_rest() {
    let (url, queue) = fresh_queue().await;
    let grace = Duration::from_secs(3);
    let mut worker = Worker::start(
        WorkerEnv::new(&url)
            .set("FLOWFORGE_CONCURRENCY", "16")
            .set("FLOWFORGE_SHUTDOWN_GRACE", "3s"),
    )
    .await;
    // One enqueue, so one claim starts them all together. Short tasks are long enough to still be
    // running when SIGTERM arrives, and well within the grace period.
    let mut tasks: Vec<_> = (0..4).map(|_| task("sleep", json!({"ms": 1000}))).collect();
    tasks.extend((0..8).map(|_| task("sleep", json!({"ms": 30_000}))));
    let ids = enqueue(&queue, &tasks).await;
    let (short, long) = ids.split_at(4);
    eventually("every task to have started", DEADLINE, || async {
        let tasks = tasks_by_id(&queue, &ids).await;
        let started = tasks
            .iter()
            .filter(|t| t.status == TaskStatus::Running || t.status == TaskStatus::Succeeded)
            .count();
        if started == ids.len() {
            Ok(())
        } else {
            Err(count_by_status(&tasks))
        }
    })
    .await;

    worker.signal(Signal::SIGTERM);
    let signalled = tokio::time::Instant::now();
    // Readiness turns off first, for the whole drain.
    let mut saw_503 = false;
    while signalled.elapsed() < grace {
        match worker.readyz().await {
            Some(503) => {
                saw_503 = true;
                break;
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            None => break,
        }
    }
    assert!(saw_503, "/readyz answers 503 while the worker drains");

    let code = worker
        .child
        .wait_exit(grace + Duration::from_secs(15))
        .await
        .expect("the worker exits after the grace period");
    assert_eq!(code, Some(0), "a drained worker exits 0");

    for t in tasks_by_id(&queue, short).await {
        assert_eq!(
            (t.status, t.attempts),
            (TaskStatus::Succeeded, 1),
            "in-flight task {} finishes within the grace period",
            t.id
        );
    }
    // Handed back: queued, ready again at once, the attempt given back, no failure recorded.
    let now = chrono::Utc::now();
    let states: Vec<_> = tasks_by_id(&queue, long)
        .await
        .into_iter()
        .map(|t| (t.status, t.attempts, t.run_at <= now, t.last_error))
        .collect();
    let expected = vec![(TaskStatus::Queued, 0, true, None); long.len()];
    assert_eq!(
        states, expected,
        "tasks still running when the grace period ended are handed back without using an \
         attempt: (status, attempts, ready now, last_error) of each"
    );
}

/// Runs the worker binary with only `envs` in its environment, for up to 30 s (then kills it);
/// returns its exit code (`None` if it did not exit by itself) and its stderr.
fn run_worker_once(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
    use std::io::Read;
    let mut cmd = Command::new(worker_bin());
    cmd.args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("running the worker binary");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(status) = child.try_wait().expect("waiting for the worker") {
            break status.code();
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    (code, stderr)
}

#[test]
fn bad_config_exits_64_with_one_line_reason() {
    // (variable, bad value, what the reason must name)
    let cases: [(&str, &str, &[&str]); 7] = [
        ("FLOWFORGE_CONCURRENCY", "0", &["concurrency", "'0'"]),
        ("FLOWFORGE_LEASE", "soon", &["lease", "soon"]),
        ("FLOWFORGE_LEASE", "100ms", &["lease", "300ms"]),
        ("FLOWFORGE_QUEUES", "Bad", &["queues", "Bad"]),
        ("FLOWFORGE_POLL_INTERVAL", "0s", &["poll-interval"]),
        (
            "FLOWFORGE_ADMIN_ADDR",
            "nowhere",
            &["admin-addr", "nowhere"],
        ),
        ("DATABASE_URL", "not a url", &["DATABASE_URL"]),
    ];
    // Should a bad value be accepted, the worker must not collide with anything while it runs.
    let admin = format!("127.0.0.1:{}", flowforge_testkit::free_port());
    for (var, value, needles) in cases {
        let mut envs = vec![("FLOWFORGE_ADMIN_ADDR", admin.as_str())];
        envs.retain(|(k, _)| *k != var);
        envs.push((var, value));
        let (code, stderr) = run_worker_once(&[], &envs);
        assert_eq!(
            code,
            Some(64),
            "{var}={value:?} exits 64; stderr: {stderr:?}"
        );
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "{var}={value:?} explains itself in one line; stderr: {stderr:?}"
        );
        assert!(
            lines[0].contains("configuration error")
                && needles.iter().all(|n| lines[0].contains(n)),
            "{var}={value:?}: the reason names the problem ({needles:?}); got {:?}",
            lines[0]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_share_a_queue_without_double_execution() {
    let (url, queue) = fresh_queue().await;
    let env = WorkerEnv::new(&url).set("FLOWFORGE_CONCURRENCY", "32");
    let a = Worker::start(env.clone()).await;
    let b = Worker::start(env).await;

    let mut tasks: Vec<NewTask> = (0..2000).map(|i| task("noop", json!({"i": i}))).collect();
    tasks.extend((0..300).map(|_| task("sleep", json!({"ms": 5}))));
    let ids = enqueue(&queue, &tasks).await;
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        tasks.len(),
        "distinct ids"
    );

    let done = wait_all_finished(&queue, &ids, Duration::from_secs(60)).await;
    let twice: Vec<_> = done
        .iter()
        .filter(|t| t.status != TaskStatus::Succeeded || t.attempts != 1)
        .map(|t| {
            (
                t.id,
                t.kind.clone(),
                t.status,
                t.attempts,
                t.last_error.clone(),
            )
        })
        .collect();
    assert!(
        twice.is_empty(),
        "every task succeeds on its first and only attempt; {} did not, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );

    // Each completion is counted once, by the worker that ran it.
    let total = tasks.len() as f64;
    let (per_worker, all_outcomes) = eventually(
        "both workers' completion counters to add up to the task count",
        DEADLINE,
        || async {
            let (ma, mb) = (a.metrics().await, b.metrics().await);
            let name = "flowforge_tasks_completed_total";
            let succeeded = [("outcome", "succeeded")];
            let per_worker = (
                counter_sum(&ma, name, &succeeded),
                counter_sum(&mb, name, &succeeded),
            );
            let all_outcomes = counter_sum(&ma, name, &[]) + counter_sum(&mb, name, &[]);
            if per_worker.0 + per_worker.1 >= total {
                Ok((per_worker, all_outcomes))
            } else {
                Err((per_worker, all_outcomes))
            }
        },
    )
    .await;
    assert_eq!(
        (per_worker.0 + per_worker.1, all_outcomes),
        (total, total),
        "succeeded completions over both workers (A {}, B {}) and all outcomes",
        per_worker.0,
        per_worker.1
    );
    assert!(
        per_worker.0 > 0.0 && per_worker.1 > 0.0,
        "both workers took a share: A {}, B {}",
        per_worker.0,
        per_worker.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_survives_database_restart() {
    let cluster = PgCluster::start().expect("a dedicated PostgreSQL cluster");
    let url = cluster.create_database().await.expect("a database");
    let queue = migrated_queue(&url).await;
    let worker = Worker::start(WorkerEnv::new(&url)).await;

    let warmup = enqueue(
        &queue,
        &(0..100)
            .map(|_| task("noop", json!({})))
            .collect::<Vec<_>>(),
    )
    .await;
    wait_all_finished(&queue, &warmup, DEADLINE).await;
    // Still flowing when the database goes away: some are queued, some in flight.
    let before = enqueue(
        &queue,
        &(0..200)
            .map(|_| task("sleep", json!({"ms": 50})))
            .collect::<Vec<_>>(),
    )
    .await;

    cluster.stop().expect("stopping PostgreSQL");
    tokio::time::sleep(Duration::from_secs(1)).await;
    eventually(
        "/readyz to stop answering 200 while the database is down",
        DEADLINE,
        || async {
            match worker.readyz().await {
                Some(200) => Err(200),
                _ => Ok(()),
            }
        },
    )
    .await;
    cluster.restart().expect("restarting PostgreSQL");

    // The test's own pool reconnects too; its connections died with the server.
    let queue = migrated_queue(&url).await;
    let after = enqueue(
        &queue,
        &(0..100)
            .map(|_| task("noop", json!({})))
            .collect::<Vec<_>>(),
    )
    .await;
    let all: Vec<_> = warmup
        .iter()
        .chain(&before)
        .chain(&after)
        .copied()
        .collect();
    let done = wait_all_finished(&queue, &all, Duration::from_secs(90)).await;
    let failed: Vec<_> = done
        .iter()
        .filter(|t| t.status != TaskStatus::Succeeded)
        .map(|t| (t.id, t.status, t.attempts, t.last_error.clone()))
        .collect();
    assert!(
        failed.is_empty(),
        "every task, before and after the restart, succeeds; {} did not, e.g. {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    worker.wait_ready(DEADLINE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_subcommand_applies_the_schema() {
    let url = flowforge_testkit::fresh_database()
        .await
        .expect("a fresh test database");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connecting");
    let tables = [
        "flowforge.tasks",
        "flowforge.task_history",
        "flowforge.idempotency_keys",
    ];
    let exists = |table: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
                .bind(table)
                .fetch_one(&pool)
                .await
                .expect("querying the catalog")
        }
    };
    for table in tables {
        assert!(!exists(table).await, "{table} does not exist before");
    }

    // Twice: applying an up-to-date schema again is a no-op.
    for run in 1..=2 {
        let url = url.clone();
        let (code, stderr) = tokio::task::spawn_blocking(move || {
            run_worker_once(&["migrate"], &[("DATABASE_URL", url.as_str())])
        })
        .await
        .expect("running migrate");
        assert_eq!(code, Some(0), "migrate run {run} exits 0; stderr: {stderr}");
    }
    for table in tables {
        assert!(exists(table).await, "{table} exists after migrate");
    }
    let queue = flowforge_core::queue::Queue::new(pool);
    let id = enqueue(&queue, &[task("noop", json!({}))]).await[0];
    assert_eq!(get(&queue, id).await.status, TaskStatus::Queued);
}

/// With FLOWFORGE_STOP_ON_STDIN_EOF a worker drains and exits 0 when its parent's end of the
/// stdin pipe closes, as it does when the parent dies (`flowforge-scaler local` relies on it so
/// workers never outlive it).
#[tokio::test]
async fn closing_stdin_stops_a_worker_that_asked_for_it() {
    let (url, _queue) = fresh_queue().await;
    let port = flowforge_testkit::free_port();
    let env = WorkerEnv::new(&url)
        .set("FLOWFORGE_STOP_ON_STDIN_EOF", "true")
        .set("FLOWFORGE_ADMIN_ADDR", format!("127.0.0.1:{port}"));
    let mut child = tokio::process::Command::new(worker_bin())
        .envs(env.vars.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawning the worker");
    flowforge_testkit::wait_for_http(
        &format!("http://127.0.0.1:{port}/readyz"),
        Duration::from_secs(30),
    )
    .await
    .expect("the worker gets ready");
    // Still running while the pipe is open.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited with stdin open"
    );
    drop(child.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the worker exits after stdin closes")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
