-- FlowForge queue schema.
--
-- Two tables keep the hot path small:
--   tasks         queued and running tasks only; every claim, heartbeat and rescue touches just this.
--   task_history  finished tasks (succeeded, dead, cancelled), retained for a configurable time and
--                 pruned in batches. Finishing a task moves its row here in one statement.
-- Idempotency keys live in their own table so that a key stays unique per queue for as long as its
-- task is retained, whichever of the two tables holds the task.

CREATE SCHEMA IF NOT EXISTS flowforge;

CREATE TABLE flowforge.tasks (
    id               uuid        PRIMARY KEY,
    queue            text        NOT NULL,
    kind             text        NOT NULL,
    payload          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    priority         smallint    NOT NULL DEFAULT 0,
    status           text        NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running')),
    attempts         integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL CHECK (max_attempts >= 1),
    run_at           timestamptz NOT NULL DEFAULT now(),
    timeout_secs     integer     NOT NULL CHECK (timeout_secs >= 1),
    idempotency_key  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    last_error       text,
    -- Set while running: the claim's lease (fences completion) and when it expires.
    lease_id         uuid,
    lease_expires_at timestamptz,
    worker_id        text
) WITH (fillfactor = 80);

-- Claims: ready tasks of one queue in priority order, then by run_at.
CREATE INDEX tasks_claim_idx ON flowforge.tasks (queue, priority DESC, run_at) WHERE status = 'queued';
-- No index serves the rescue of expired leases: the table holds only active tasks, a rescue pass
-- every few seconds scans it cheaply, and every index here costs each claim an insertion.

CREATE TABLE flowforge.task_history (
    id               uuid        PRIMARY KEY,
    queue            text        NOT NULL,
    kind             text        NOT NULL,
    payload          jsonb       NOT NULL,
    priority         smallint    NOT NULL,
    status           text        NOT NULL CHECK (status IN ('succeeded', 'dead', 'cancelled')),
    attempts         integer     NOT NULL,
    max_attempts     integer     NOT NULL,
    run_at           timestamptz NOT NULL,
    timeout_secs     integer     NOT NULL,
    idempotency_key  text,
    created_at       timestamptz NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz NOT NULL,
    last_error       text
);

-- Listing by queue and status, newest ids (UUIDv7, time ordered) first or after a cursor.
CREATE INDEX task_history_queue_idx ON flowforge.task_history (queue, status, id);
-- Dead-task counts per queue (dead tasks are few; succeeded ones can be millions).
CREATE INDEX task_history_dead_idx ON flowforge.task_history (queue) WHERE status = 'dead';
-- Pruning needs no index of its own: ids are UUIDv7, so the primary key is ordered by creation
-- time, and a task cannot finish before it was created.

-- The smallest UUIDv7 of a given instant: ids below it were created before that instant.
CREATE FUNCTION flowforge.uuid7_floor(t timestamptz) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (lpad(to_hex(floor(extract(epoch FROM t) * 1000)::bigint), 12, '0') || '70008000000000000000')::uuid
$$;

CREATE TABLE flowforge.idempotency_keys (
    queue   text NOT NULL,
    key     text NOT NULL,
    task_id uuid NOT NULL,
    PRIMARY KEY (queue, key)
);

-- Wake-ups are NOTIFYs on the channel flowforge_tasks (payload: the queue name), sent by the
-- enqueueing process right after its commit; see core/src/queue/notify.rs for why not from a trigger.
