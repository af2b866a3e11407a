-- The task-wait SLI per minute, kept beyond task retention so that SLO windows up to 30 days can
-- be computed from the database (flowforge-scaler publishes burn rates from it).
-- One row per (minute of start, queue) that had starts: tasks started, and tasks started within
-- the threshold of becoming ready. Rows are written once, when the minute is complete.
CREATE TABLE flowforge.task_wait_minutes (
    minute  timestamptz NOT NULL,
    queue   text        NOT NULL,
    started bigint      NOT NULL CHECK (started >= 0),
    within  bigint      NOT NULL CHECK (within >= 0 AND within <= started),
    PRIMARY KEY (minute, queue)
);

-- How far the ledger is complete (exclusive). One row per ledger; writers lock it, so replicas
-- that step the ledger at the same moment take turns and the second finds nothing left to do.
CREATE TABLE flowforge.ledger_watermarks (
    name text PRIMARY KEY,
    upto timestamptz
);
INSERT INTO flowforge.ledger_watermarks (name, upto) VALUES ('task_wait', NULL);
