-- W3C trace context of whoever enqueued a task (the API request's `traceparent`), so the worker's
-- logs for every attempt carry the same trace id as the request that created it.
-- Nullable, no default: adding it rewrites nothing.
ALTER TABLE flowforge.tasks ADD COLUMN trace_parent text;
ALTER TABLE flowforge.task_history ADD COLUMN trace_parent text;
