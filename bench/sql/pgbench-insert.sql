-- pgbench reference: one single-row INSERT per transaction, durable commit.
INSERT INTO bench_insert (payload) VALUES ('{"n":1}');
