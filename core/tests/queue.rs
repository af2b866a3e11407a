//! Queue semantics, one behaviour per test, against a real PostgreSQL (a fresh database each).

use std::collections::HashSet;
use std::time::Duration;

use flowforge_core::queue::maintenance::Retention;
use flowforge_core::queue::{
    Backoff, FailOutcome, ListFilter, NewTask, Queue, TaskStatus, Wakeups,
};
use flowforge_core::Error;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(30);

async fn queue() -> Queue {
    let url = flowforge_testkit::fresh_database()
        .await
        .expect("test database");
    let pool = PgPoolOptions::new()
        .max_connections(20)
        .connect(&url)
        .await
        .expect("connect");
    flowforge_core::db::MIGRATOR
        .run(&pool)
        .await
        .expect("migrate");
    Queue::new(pool)
}

fn task(queue: &str) -> NewTask {
    NewTask::new(queue, "noop", json!({}))
}

/// Enqueues `tasks` and returns their ids, in order.
async fn ids_of(q: &Queue, tasks: &[NewTask]) -> Vec<Uuid> {
    q.enqueue_many(tasks)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.task.id)
        .collect()
}

/// Completes every claimed task and returns the ids completed.
async fn complete(q: &Queue, claimed: &[flowforge_core::queue::ClaimedTask]) -> Vec<Uuid> {
    let done: Vec<(Uuid, Uuid)> = claimed.iter().map(|c| (c.id, c.lease_id)).collect();
    q.complete_many(&done).await.unwrap()
}

/// Makes finished tasks look two days old: created and finished then. Their UUIDv7 ids carry
/// the creation time, so the ids change too (and their idempotency keys follow). Returns the new ids.
async fn age_history(q: &Queue, ids: &[Uuid]) -> Vec<Uuid> {
    let aged: Vec<(Uuid, Uuid)> = sqlx::query_as(
        r#"
        WITH aged AS (
            SELECT id AS old_id,
                   (lpad(to_hex(floor(extract(epoch FROM now() - interval '2 days') * 1000)::bigint), 12, '0')
                    || substr(replace(id::text, '-', ''), 13))::uuid AS new_id
            FROM flowforge.task_history WHERE id = ANY($1)
        ), moved AS (
            UPDATE flowforge.task_history h
            SET id = a.new_id, created_at = now() - interval '2 days', finished_at = now() - interval '2 days'
            FROM aged a WHERE h.id = a.old_id
            RETURNING a.old_id, a.new_id
        ), keys AS (
            UPDATE flowforge.idempotency_keys k SET task_id = m.new_id FROM moved m WHERE k.task_id = m.old_id
            RETURNING 1
        )
        SELECT old_id, new_id FROM moved WHERE (SELECT count(*) FROM keys) >= 0
        "#,
    )
    .bind(ids)
    .fetch_all(q.db().pool())
    .await
    .unwrap();
    let by_old: std::collections::HashMap<Uuid, Uuid> = aged.into_iter().collect();
    ids.iter().map(|id| by_old[id]).collect()
}

async fn status_of(q: &Queue, id: Uuid) -> TaskStatus {
    q.get(id).await.unwrap().expect("task exists").status
}

#[tokio::test]
async fn enqueued_task_reads_back_with_every_field() {
    let q = queue().await;
    let mut t = NewTask::new("emails", "sleep", json!({"ms": 5}));
    t.priority = 7;
    t.max_attempts = 3;
    t.timeout_secs = 9;
    t.idempotency_key = Some("k".into());
    let e = q.enqueue_many(&[t]).await.unwrap().remove(0);
    assert!(e.created);
    let got = q.get(e.task.id).await.unwrap().unwrap();
    assert_eq!(got, e.task);
    assert_eq!(got.id.get_version_num(), 7, "ids are UUIDv7");
    assert_eq!((got.queue.as_str(), got.kind.as_str()), ("emails", "sleep"));
    assert_eq!(got.payload, json!({"ms": 5}));
    assert_eq!(
        (got.priority, got.max_attempts, got.timeout, got.attempts),
        (7, 3, 9, 0)
    );
    assert_eq!(got.status, TaskStatus::Queued);
    assert_eq!(got.idempotency_key.as_deref(), Some("k"));
    assert!(got.started_at.is_none() && got.finished_at.is_none());
}

#[tokio::test]
async fn batch_enqueue_returns_ids_in_request_order() {
    let q = queue().await;
    let tasks: Vec<NewTask> = (0..2000)
        .map(|i| NewTask::new("bulk", "noop", json!({ "i": i })))
        .collect();
    let out = q.enqueue_many(&tasks).await.unwrap();
    assert_eq!(out.len(), 2000);
    for (i, e) in out.iter().enumerate() {
        assert!(e.created);
        assert_eq!(e.task.payload, json!({ "i": i }));
    }
    let distinct: HashSet<Uuid> = out.iter().map(|e| e.task.id).collect();
    assert_eq!(distinct.len(), 2000);
}

#[tokio::test]
async fn idempotency_key_returns_the_original_task() {
    let q = queue().await;
    let mut t = task("q");
    t.idempotency_key = Some("order-1".into());
    let first = q.enqueue_many(&[t.clone()]).await.unwrap().remove(0);
    t.payload = json!({"different": true});
    let again = q.enqueue_many(&[t.clone()]).await.unwrap().remove(0);
    assert!(first.created && !again.created);
    assert_eq!(again.task, first.task);
    // The same key in another queue is another task.
    t.queue = "other".into();
    assert!(q.enqueue_many(&[t]).await.unwrap()[0].created);
}

#[tokio::test]
async fn idempotent_enqueue_under_concurrent_duplicates_creates_one_task() {
    let q = queue().await;
    let mut handles = Vec::new();
    for _ in 0..24 {
        let q = q.clone();
        handles.push(tokio::spawn(async move {
            let mut t = task("q");
            t.idempotency_key = Some("dup".into());
            q.enqueue_many(&[t]).await.unwrap().remove(0)
        }));
    }
    let results: Vec<_> = futures::future::join_all(handles)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(results.iter().filter(|e| e.created).count(), 1);
    let ids: HashSet<Uuid> = results.iter().map(|e| e.task.id).collect();
    assert_eq!(ids.len(), 1);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM flowforge.tasks")
        .fetch_one(q.db().pool())
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn duplicate_keys_within_one_batch_resolve_to_the_first() {
    let q = queue().await;
    let mut a = task("q");
    a.idempotency_key = Some("same".into());
    let b = a.clone();
    let out = q.enqueue_many(&[a, task("q"), b]).await.unwrap();
    assert!(out[0].created && out[1].created && !out[2].created);
    assert_eq!(out[2].task.id, out[0].task.id);
}

#[tokio::test]
async fn claims_follow_priority_then_run_at_and_skip_future_tasks() {
    let q = queue().await;
    let now = chrono::Utc::now();
    let mut low_old = task("q");
    low_old.run_at = Some(now - chrono::Duration::seconds(60));
    let mut high = task("q");
    high.priority = 10;
    let low_new = task("q");
    let mut delayed = task("q");
    delayed.priority = 100;
    delayed.run_at = Some(now + chrono::Duration::hours(1));
    let ids: Vec<Uuid> = ids_of(&q, &[low_old, high, low_new, delayed]).await;
    let claimed = q.claim("q", 10, "w", LEASE).await.unwrap();
    let order: Vec<Uuid> = claimed.iter().map(|t| t.id).collect();
    assert_eq!(
        order,
        vec![ids[1], ids[0], ids[2]],
        "priority first, then oldest run_at; delayed skipped"
    );
    assert!(claimed.iter().all(|t| t.attempt == 1));
    assert_eq!(status_of(&q, ids[3]).await, TaskStatus::Queued);
    // Other queues are not touched.
    assert!(q.claim("other", 10, "w", LEASE).await.unwrap().is_empty());
}

#[tokio::test]
async fn racing_claimers_never_get_the_same_task() {
    let q = queue().await;
    let tasks: Vec<NewTask> = (0..3000).map(|_| task("race")).collect();
    q.enqueue_many(&tasks).await.unwrap();
    let mut handles = Vec::new();
    for w in 0..6 {
        let q = q.clone();
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = q.claim("race", 37, &format!("w{w}"), LEASE).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                let done: Vec<(Uuid, Uuid)> = batch.iter().map(|t| (t.id, t.lease_id)).collect();
                let completed = q.complete_many(&done).await.unwrap();
                assert_eq!(
                    completed.len(),
                    done.len(),
                    "a claimed task could not be completed"
                );
                mine.extend(batch.into_iter().map(|t| t.id));
            }
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let distinct: HashSet<Uuid> = all.iter().copied().collect();
    assert_eq!(all.len(), 3000, "every task claimed exactly once");
    assert_eq!(distinct.len(), 3000);
    let succeeded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM flowforge.task_history WHERE status = 'succeeded' AND attempts = 1",
    )
    .fetch_one(q.db().pool())
    .await
    .unwrap();
    assert_eq!(succeeded, 3000);
}

#[tokio::test]
async fn expired_lease_is_rescued_and_the_old_holder_cannot_complete() {
    let q = queue().await;
    let id = q.enqueue_many(&[task("q")]).await.unwrap()[0].task.id;
    let first = q
        .claim("q", 1, "w1", Duration::from_millis(300))
        .await
        .unwrap()
        .remove(0);
    // Not expired yet: nothing to rescue.
    assert_eq!(q.rescue_expired(100).await.unwrap().requeued, 0);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let rescued = q.rescue_expired(100).await.unwrap();
    assert_eq!((rescued.requeued, rescued.dead), (1, 0));
    let t = q.get(id).await.unwrap().unwrap();
    assert_eq!((t.status, t.attempts), (TaskStatus::Queued, 1));
    assert!(t.last_error.unwrap().contains("lease expired"));

    let second = q.claim("q", 1, "w2", LEASE).await.unwrap().remove(0);
    assert_eq!(second.attempt, 2);
    // The first holder's late completion and failure change nothing.
    assert!(q
        .complete_many(&[(id, first.lease_id)])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        q.fail(id, first.lease_id, "late", true).await.unwrap(),
        FailOutcome::LeaseLost
    );
    assert!(q
        .heartbeat(&[first.lease_id], LEASE)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        q.complete_many(&[(id, second.lease_id)]).await.unwrap(),
        vec![id]
    );
    assert_eq!(status_of(&q, id).await, TaskStatus::Succeeded);
}

#[tokio::test]
async fn expired_lease_on_the_last_attempt_makes_the_task_dead() {
    let q = queue().await;
    let mut t = task("q");
    t.max_attempts = 1;
    let id = q.enqueue_many(&[t]).await.unwrap()[0].task.id;
    q.claim("q", 1, "w", Duration::from_millis(200))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(q.rescue_expired(100).await.unwrap().dead, 1);
    let t = q.get(id).await.unwrap().unwrap();
    assert_eq!(t.status, TaskStatus::Dead);
    assert!(t.finished_at.is_some());
}

#[tokio::test]
async fn heartbeat_keeps_a_lease_alive() {
    let q = queue().await;
    let id = q.enqueue_many(&[task("q")]).await.unwrap()[0].task.id;
    let lease = Duration::from_millis(400);
    let c = q.claim("q", 1, "w", lease).await.unwrap().remove(0);
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(q.heartbeat(&[c.lease_id], lease).await.unwrap(), vec![id]);
    }
    assert_eq!(
        q.rescue_expired(100).await.unwrap().requeued,
        0,
        "a heartbeating task is not rescued"
    );
    assert_eq!(status_of(&q, id).await, TaskStatus::Running);
}

#[tokio::test]
async fn failures_back_off_exponentially_then_die_and_can_be_redriven() {
    let backoff = Backoff {
        base: Duration::from_secs(2),
        cap: Duration::from_secs(60),
    };
    let q = queue().await.with_backoff(backoff);
    let mut t = task("q");
    t.max_attempts = 4;
    let id = q.enqueue_many(&[t]).await.unwrap()[0].task.id;
    for attempt in 1..=3 {
        // Make the retry due now so the next attempt can be claimed at once.
        sqlx::query("UPDATE flowforge.tasks SET run_at = now() WHERE id = $1")
            .bind(id)
            .execute(q.db().pool())
            .await
            .unwrap();
        let c = q.claim("q", 1, "w", LEASE).await.unwrap().remove(0);
        assert_eq!(c.attempt, attempt);
        let before = chrono::Utc::now();
        let FailOutcome::Retrying { run_at } = q.fail(id, c.lease_id, "boom", true).await.unwrap()
        else {
            panic!("attempt {attempt} should be retried");
        };
        let delay = (run_at - before).num_milliseconds();
        let ceiling = backoff.ceiling(attempt).as_millis() as i64;
        assert!(
            delay <= ceiling + 1000,
            "attempt {attempt}: delay {delay} ms over ceiling {ceiling} ms"
        );
        assert!(
            delay >= -1000,
            "attempt {attempt}: retry scheduled in the past ({delay} ms)"
        );
    }
    sqlx::query("UPDATE flowforge.tasks SET run_at = now() WHERE id = $1")
        .bind(id)
        .execute(q.db().pool())
        .await
        .unwrap();
    let c = q.claim("q", 1, "w", LEASE).await.unwrap().remove(0);
    assert_eq!(
        q.fail(id, c.lease_id, "final", true).await.unwrap(),
        FailOutcome::Dead
    );
    let dead = q.get(id).await.unwrap().unwrap();
    assert_eq!((dead.status, dead.attempts), (TaskStatus::Dead, 4));
    assert_eq!(dead.last_error.as_deref(), Some("final"));
    assert_eq!(q.stats().await.unwrap()[0].dead, 1);

    let again = q.retry(id).await.unwrap();
    assert_eq!((again.status, again.attempts), (TaskStatus::Queued, 0));
    assert_eq!(q.claim("q", 1, "w", LEASE).await.unwrap()[0].id, id);
    // Only dead or cancelled tasks can be re-driven.
    assert!(matches!(q.retry(id).await, Err(Error::Conflict { .. })));
    assert!(matches!(
        q.retry(Uuid::now_v7()).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn backoff_ceilings_grow_across_retries() {
    // Full jitter makes single delays random; the ceiling per attempt must grow. Measure the largest
    // delay over many tasks for attempts 1 and 4.
    let backoff = Backoff {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(3600),
    };
    let q = queue().await.with_backoff(backoff);
    let n = 60;
    let mut t = task("q");
    t.max_attempts = 10;
    let ids: Vec<Uuid> = q
        .enqueue_many(&vec![t; n])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.task.id)
        .collect();
    let mut max_delay = [0i64; 5];
    for slot in max_delay.iter_mut().skip(1) {
        sqlx::query("UPDATE flowforge.tasks SET run_at = now()")
            .execute(q.db().pool())
            .await
            .unwrap();
        let claimed = q.claim("q", n as i64, "w", LEASE).await.unwrap();
        assert_eq!(claimed.len(), n);
        for c in claimed {
            let now = chrono::Utc::now();
            if let FailOutcome::Retrying { run_at } =
                q.fail(c.id, c.lease_id, "x", true).await.unwrap()
            {
                *slot = (*slot).max((run_at - now).num_milliseconds());
            }
        }
    }
    assert_eq!(ids.len(), n);
    assert!(max_delay[1] <= 1000 + 500, "{max_delay:?}");
    assert!(
        max_delay[4] > 2000,
        "attempt 4's ceiling is 8 s; 60 draws all under 2 s is implausible: {max_delay:?}"
    );
    assert!(max_delay[4] <= 8000 + 500, "{max_delay:?}");
}

#[tokio::test]
async fn non_retryable_failure_goes_straight_to_dead() {
    let q = queue().await;
    let id = q.enqueue_many(&[task("q")]).await.unwrap()[0].task.id;
    let c = q.claim("q", 1, "w", LEASE).await.unwrap().remove(0);
    assert_eq!(
        q.fail(id, c.lease_id, "bad payload", false).await.unwrap(),
        FailOutcome::Dead
    );
    assert_eq!(q.get(id).await.unwrap().unwrap().attempts, 1);
}

#[tokio::test]
async fn cancel_only_works_on_queued_tasks() {
    let q = queue().await;
    let ids: Vec<Uuid> = ids_of(&q, &[task("q"), task("q")]).await;
    let cancelled = q.cancel(ids[0]).await.unwrap();
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    assert!(cancelled.finished_at.is_some());
    assert!(matches!(
        q.cancel(ids[0]).await,
        Err(Error::Conflict { .. })
    ));
    q.claim("q", 1, "w", LEASE).await.unwrap();
    match q.cancel(ids[1]).await {
        Err(Error::Conflict { status, .. }) => assert_eq!(status, "running"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(
        q.cancel(Uuid::now_v7()).await,
        Err(Error::NotFound(_))
    ));
    // A cancelled task can be re-driven.
    assert_eq!(q.retry(ids[0]).await.unwrap().status, TaskStatus::Queued);
}

#[tokio::test]
async fn cancel_racing_claims_never_both_win() {
    let q = queue().await;
    let ids: Vec<Uuid> = ids_of(&q, &(0..400).map(|_| task("q")).collect::<Vec<_>>()).await;
    let claimer = {
        let q = q.clone();
        tokio::spawn(async move {
            let mut claimed = HashSet::new();
            loop {
                let batch = q.claim("q", 5, "w", LEASE).await.unwrap();
                if batch.is_empty() {
                    return claimed;
                }
                claimed.extend(batch.into_iter().map(|t| t.id));
            }
        })
    };
    let cancellers: Vec<_> = ids
        .chunks(100)
        .map(|chunk| {
            let q = q.clone();
            let chunk = chunk.to_vec();
            tokio::spawn(async move {
                let mut cancelled = HashSet::new();
                for id in chunk {
                    match q.cancel(id).await {
                        Ok(_) => {
                            cancelled.insert(id);
                        }
                        Err(Error::Conflict { .. }) => {}
                        Err(e) => panic!("unexpected error {e}"),
                    }
                }
                cancelled
            })
        })
        .collect();
    let claimed = claimer.await.unwrap();
    let mut cancelled = HashSet::new();
    for c in cancellers {
        cancelled.extend(c.await.unwrap());
    }
    assert!(
        claimed.is_disjoint(&cancelled),
        "a task was both claimed and cancelled"
    );
    assert_eq!(
        claimed.len() + cancelled.len(),
        400,
        "every task was either claimed or cancelled"
    );
}

#[tokio::test]
async fn release_hands_tasks_back_without_using_an_attempt() {
    let q = queue().await;
    let id = q.enqueue_many(&[task("q")]).await.unwrap()[0].task.id;
    let c = q.claim("q", 1, "w", LEASE).await.unwrap().remove(0);
    assert_eq!(q.release(&[(id, c.lease_id)]).await.unwrap(), vec![id]);
    let t = q.get(id).await.unwrap().unwrap();
    assert_eq!((t.status, t.attempts), (TaskStatus::Queued, 0));
    // Releasing again (stale lease) does nothing.
    assert!(q.release(&[(id, c.lease_id)]).await.unwrap().is_empty());
}

#[tokio::test]
async fn pruning_removes_only_tasks_past_retention_in_batches_and_frees_their_keys() {
    let q = queue().await;
    let mut keyed = task("q");
    keyed.idempotency_key = Some("old-key".into());
    let mut tasks = vec![keyed.clone()];
    tasks.extend((0..249).map(|_| task("q")));
    let old: Vec<Uuid> = ids_of(&q, &tasks).await;
    let claimed = q.claim("q", 1000, "w", LEASE).await.unwrap();
    complete(&q, &claimed).await;
    // Age them by two days; then add fresh finished tasks and one old dead task.
    let old = age_history(&q, &old).await;
    let fresh = q.enqueue_many(&[task("q"), task("q")]).await.unwrap();
    let claimed = q.claim("q", 10, "w", LEASE).await.unwrap();
    complete(&q, &claimed).await;
    let mut dying = task("q");
    dying.max_attempts = 1;
    let dead_id = q.enqueue_many(&[dying]).await.unwrap()[0].task.id;
    let c = q.claim("q", 1, "w", LEASE).await.unwrap().remove(0);
    q.fail(dead_id, c.lease_id, "x", true).await.unwrap();
    let dead_id = age_history(&q, &[dead_id]).await[0];

    let retention = Retention {
        finished: Duration::from_secs(86400),
        dead: Duration::from_secs(7 * 86400),
    };
    assert_eq!(
        q.prune(retention, 100).await.unwrap(),
        100,
        "one batch at a time"
    );
    assert_eq!(q.prune_all(retention, 100).await.unwrap(), 150);
    for id in &old {
        assert!(q.get(*id).await.unwrap().is_none());
    }
    for e in &fresh {
        assert_eq!(status_of(&q, e.task.id).await, TaskStatus::Succeeded);
    }
    assert_eq!(
        status_of(&q, dead_id).await,
        TaskStatus::Dead,
        "dead tasks have their own retention"
    );
    // The pruned task's idempotency key is free again.
    assert!(q.enqueue_many(&[keyed]).await.unwrap()[0].created);
}

#[tokio::test]
async fn listing_pages_through_active_and_finished_tasks() {
    let q = queue().await;
    let ids: Vec<Uuid> = ids_of(&q, &(0..25).map(|_| task("q")).collect::<Vec<_>>()).await;
    q.enqueue_many(&[task("other")]).await.unwrap();
    let claimed = q.claim("q", 10, "w", LEASE).await.unwrap();
    q.complete_many(
        &claimed
            .iter()
            .take(5)
            .map(|c| (c.id, c.lease_id))
            .collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = q
            .list(&ListFilter {
                queue: Some("q".into()),
                status: None,
                after,
                limit: 7,
            })
            .await
            .unwrap();
        assert!(page.tasks.len() <= 7);
        seen.extend(page.tasks.iter().map(|t| t.id));
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "every task once, in id order");
    let succeeded = q
        .list(&ListFilter {
            queue: Some("q".into()),
            status: Some(TaskStatus::Succeeded),
            after: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(succeeded.tasks.len(), 5);
    assert!(succeeded.next_cursor.is_none());
}

#[tokio::test]
async fn stats_count_tasks_by_state() {
    let q = queue().await;
    let mut delayed = task("a");
    delayed.run_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    let mut old = task("a");
    old.run_at = Some(chrono::Utc::now() - chrono::Duration::seconds(30));
    q.enqueue_many(&[task("a"), task("a"), delayed, old, task("b")])
        .await
        .unwrap();
    q.claim("b", 1, "w", LEASE).await.unwrap();
    let stats = q.stats().await.unwrap();
    assert_eq!(stats.len(), 2);
    let a = &stats[0];
    assert_eq!(
        (a.queue.as_str(), a.ready, a.scheduled, a.running, a.dead),
        ("a", 3, 1, 0, 0)
    );
    // Age counts from when the task became ready, and never before it was created.
    assert!(
        a.oldest_ready_age_seconds >= 0.0 && a.oldest_ready_age_seconds < 25.0,
        "{a:?}"
    );
    let b = &stats[1];
    assert_eq!((b.ready, b.running), (0, 1));
}

#[tokio::test]
async fn listeners_are_woken_by_enqueues_on_their_queues() {
    let q = queue().await;
    let stop = CancellationToken::new();
    let wakeups = Wakeups::spawn(q.db().clone(), vec!["watched".into()], stop.clone());
    // The first wake-up comes when LISTEN is established.
    tokio::time::timeout(Duration::from_secs(10), wakeups.wait())
        .await
        .expect("listener connects");
    // Connecting wakes every waiter and also leaves one wake-up for whoever waits next; take
    // those before watching for enqueues, or a stale one could be mistaken for them.
    while tokio::time::timeout(Duration::from_millis(200), wakeups.wait())
        .await
        .is_ok()
    {}
    q.enqueue_many(&[task("watched")]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), wakeups.wait())
        .await
        .expect("woken by an enqueue on the watched queue");
    q.enqueue_many(&[task("elsewhere")]).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), wakeups.wait())
            .await
            .is_err(),
        "not woken by another queue"
    );
    stop.cancel();
}

#[tokio::test]
async fn succeeded_tasks_are_deleted_at_once_when_not_retained() {
    let q = queue().await.with_keep_succeeded(false);
    let mut keyed = task("q");
    keyed.idempotency_key = Some("k".into());
    let ids: Vec<Uuid> = ids_of(&q, &[keyed.clone(), task("q")]).await;
    let claimed = q.claim("q", 10, "w", LEASE).await.unwrap();
    let mut completed = complete(&q, &claimed).await;
    completed.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(completed, expected);
    for id in &ids {
        assert!(q.get(*id).await.unwrap().is_none(), "succeeded task kept");
    }
    // Its idempotency key is free again.
    assert!(q.enqueue_many(&[keyed]).await.unwrap()[0].created);
}

#[tokio::test]
async fn task_wait_ledger_counts_whole_minutes_once_and_sums_windows() {
    let q = queue().await;
    let mut traced = task("ledger");
    traced.trace_parent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
    q.enqueue_many(&[traced, task("ledger"), task("ledger"), task("ledger")])
        .await
        .unwrap();
    let claimed = q.claim("ledger", 10, "w", LEASE).await.unwrap();
    assert_eq!(claimed.len(), 4);
    assert_eq!(
        claimed.iter().filter(|c| c.trace_parent.is_some()).count(),
        1,
        "the trace context travels with the task"
    );
    // Ten minutes ago, two tasks started 0.5 s after becoming ready and two 10 s after.
    for (i, c) in claimed.iter().enumerate() {
        let waited = if i < 2 { 0.5 } else { 10.0 };
        sqlx::query(
            "UPDATE flowforge.tasks SET started_at = now() - interval '10 minutes',
                 run_at = now() - interval '10 minutes' - make_interval(secs => $2),
                 created_at = now() - interval '10 minutes' - make_interval(secs => $2)
             WHERE id = $1",
        )
        .bind(c.id)
        .bind(waited)
        .execute(q.db().pool())
        .await
        .unwrap();
    }
    // One finished (in the history), three still running: both are counted.
    complete(&q, &claimed[..1]).await;

    let threshold = Duration::from_secs(1);
    let settle = Duration::from_secs(5);
    let horizon = Duration::from_secs(86_400);
    let written = q
        .step_task_wait_ledger(threshold, settle, horizon)
        .await
        .unwrap();
    // Four starts of one queue in one minute: one row.
    assert_eq!(written, 1);
    // A second step (another replica, or the next interval) adds nothing.
    assert_eq!(
        q.step_task_wait_ledger(threshold, settle, horizon)
            .await
            .unwrap(),
        0
    );
    let windows = q
        .task_wait_windows(&[Duration::from_secs(300), Duration::from_secs(1_800)])
        .await
        .unwrap();
    // The 5-minute window ends where the ledger is complete and misses starts 10 minutes ago.
    assert_eq!((windows[0].started, windows[0].within), (0, 0));
    assert_eq!((windows[1].started, windows[1].within), (4, 2));
}
