-- 1,000,000 finished tasks retained in the history, with time-ordered (UUIDv7-shaped) ids older
-- than anything the benchmark creates, spread over 4 queues.
INSERT INTO flowforge.task_history
    (id, queue, kind, payload, priority, status, attempts, max_attempts, run_at, timeout_secs,
     idempotency_key, created_at, started_at, finished_at, last_error)
SELECT (lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0') || '7'
        || substr(md5(i::text), 1, 3) || '8' || substr(md5((i * 7)::text), 1, 15))::uuid,
       'hist' || (i % 4), 'noop', '{"n":1}', 0, 'succeeded', 1, 5, ts, 300,
       CASE WHEN i % 10 = 0 THEN 'key-' || i END, ts, ts, ts + interval '5 ms', NULL
FROM generate_series(1, :rows) AS i,
     LATERAL (SELECT now() - interval '1 day' + i * interval '50 ms' AS ts) t;
INSERT INTO flowforge.idempotency_keys (queue, key, task_id)
SELECT queue, idempotency_key, id FROM flowforge.task_history WHERE idempotency_key IS NOT NULL;
VACUUM ANALYZE flowforge.task_history;
VACUUM ANALYZE flowforge.idempotency_keys;
