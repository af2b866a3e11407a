#!/usr/bin/env bash
# make bench: FlowForge measured side by side with pgbench and graphile-worker on one ephemeral,
# durable PostgreSQL (fsync and synchronous_commit on). Figures go to bench/results/ and stdout.
#
# Environment (defaults in brackets):
#   BENCH_DURATION      seconds per throughput run [15]
#   BENCH_DRAIN_TASKS   tasks/jobs per drain [200000]
#   BENCH_PICKUP_TASKS  tasks/jobs for pickup latency [1000]
#   BENCH_HISTORY_ROWS  finished tasks retained for the history run [1000000]
#   BENCH_ONLY          comma list of parts to run: insert,drain,pickup,history,rotation,activation [all]
#   BENCH_ACTIVATIONS   scale-from-zero activations measured [1000]
#   BENCH_ROTATIONS     credential rotations under load [10]
#   BENCH_ROTATION_REFRESH  secret refresh period of the services in the rotation run [5s]
#   BENCH_REPS          interleaved repetitions of each drain, median reported [3]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"
cargo build --release --locked -p flowforge-api -p flowforge-worker -p flowforge-scaler -p flowforge-bench
exec python3 bench/run.py "$@"
