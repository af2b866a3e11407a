#!/usr/bin/env python3
"""FlowForge benchmarks, side by side with their references in one run (see scripts/bench.sh).

Standard library only. Every server binds 127.0.0.1; every run is bounded in time.
"""
import datetime
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG = os.path.join(ROOT, "scripts", "pg.sh")
REL = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release")
GW = os.path.join(ROOT, "bench", "peers", "graphile")

DURATION = int(os.environ.get("BENCH_DURATION", "15"))
DRAIN_TASKS = int(os.environ.get("BENCH_DRAIN_TASKS", "200000"))
PICKUP_TASKS = int(os.environ.get("BENCH_PICKUP_TASKS", "1000"))
HISTORY_ROWS = int(os.environ.get("BENCH_HISTORY_ROWS", "1000000"))
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "insert,drain,pickup,history,rotation,activation").split(",")))
ROTATIONS = int(os.environ.get("BENCH_ROTATIONS", "10"))
ACTIVATIONS = int(os.environ.get("BENCH_ACTIVATIONS", "1000"))
ROTATION_REFRESH = os.environ.get("BENCH_ROTATION_REFRESH", "5s")
MOTO_SERVER = os.environ.get("FLOWFORGE_MOTO_SERVER") or os.path.join(
    os.environ.get("FLOWFORGE_TOOLS_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "flowforge"),
    "moto-venv", "bin", "moto_server")
CLIENTS = [8, 64]
REPS = int(os.environ.get("BENCH_REPS", "3"))
TOKEN = "bench-token-" + os.urandom(8).hex()


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="flowforge-bench-pg-")
        self.url = subprocess.check_output(["bash", PG, "start", self.dir], text=True).strip().splitlines()[-1]
        m = re.match(r"postgres://(\w+):(\w+)@([\d.]+):(\d+)/", self.url)
        self.user, self.password, self.host, self.port = m.groups()

    def db_url(self, db):
        return self.url.rsplit("/", 1)[0] + "/" + db

    def psql(self, db, sql, *extra):
        env = dict(os.environ, PGPASSWORD=self.password)
        return subprocess.check_output(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-h", self.host, "-p", self.port, "-U", self.user,
             "-d", db, *extra, "-c", sql] if sql is not None else
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-h", self.host, "-p", self.port, "-U", self.user,
             "-d", db, *extra],
            env=env, text=True).strip()

    def settings(self):
        return self.psql("postgres", "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings "
                         "WHERE name IN ('fsync','synchronous_commit','full_page_writes','shared_buffers','max_connections')")

    def destroy(self):
        subprocess.call(["bash", PG, "destroy", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Proc:
    """A FlowForge process; peak RSS (VmHWM) read before it is stopped."""

    def __init__(self, args, env, name):
        self.name = name
        self.log = open(os.path.join(tempfile.gettempdir(), f"flowforge-bench-{name}.log"), "w")
        self.p = subprocess.Popen(args, env=dict(os.environ, **env), stdout=self.log, stderr=self.log)

    def peak_rss_mib(self):
        try:
            with open(f"/proc/{self.p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            return None

    def stop(self):
        rss = self.peak_rss_mib()
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
        self.log.close()
        return rss


def wait_ready(url, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url, timeout=1).status == 200:
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready")


def pgbench_insert(c, clients):
    c.psql("ff", "DROP TABLE IF EXISTS bench_insert; CREATE TABLE bench_insert "
                 "(id bigserial PRIMARY KEY, payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")
    env = dict(os.environ, PGPASSWORD=c.password)
    out = subprocess.check_output(
        ["pgbench", "-n", "-c", str(clients), "-j", "2", "-T", str(DURATION), "-f",
         os.path.join(ROOT, "bench", "sql", "pgbench-insert.sql"), "-h", c.host, "-p", c.port, "-U", c.user, "ff"],
        env=env, text=True, stderr=subprocess.STDOUT)
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out).group(1))
    return tps


def series_count(admin):
    """Series on a process's /metrics (its metric cardinality), read under load."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(1 for line in text.splitlines() if line.strip() and not line.startswith("#"))


def start_api(c):
    port, admin = free_port(), free_port()
    tokens = os.path.join(tempfile.gettempdir(), "flowforge-bench-tokens.json")
    with open(tokens, "w") as f:
        json.dump({"tokens": [TOKEN]}, f)
    api = Proc([os.path.join(REL, "flowforge-api")], {
        "DATABASE_URL": c.db_url("ff"), "FLOWFORGE_API_TOKENS_SECRET": "file:" + tokens,
        "FLOWFORGE_API_ADDR": f"127.0.0.1:{port}", "FLOWFORGE_ADMIN_ADDR": f"127.0.0.1:{admin}",
        "FLOWFORGE_RATE_LIMIT_RPS": "0", "FLOWFORGE_DB_MAX_CONNECTIONS": "16", "RUST_LOG": "warn"}, "api")
    wait_ready(f"http://127.0.0.1:{admin}/readyz")
    return api, port, admin


def wrk_post(port, clients):
    out = subprocess.check_output(
        ["wrk", "-t2", f"-c{clients}", f"-d{DURATION}s", "--latency", "-s",
         os.path.join(ROOT, "bench", "wrk", "post-task.lua"), f"http://127.0.0.1:{port}/v1/tasks"],
        env=dict(os.environ, FLOWFORGE_BENCH_TOKEN=TOKEN), text=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    p99 = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out)
    p99_ms = None
    if p99:
        v, unit = float(p99.group(1)), p99.group(2)
        p99_ms = v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    return {"rps": rps, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else None, "p99_ms": p99_ms}


def api_enqueue(c, label):
    results = {}
    api, port, admin = start_api(c)
    try:
        for clients in CLIENTS:
            c.psql("ff", "TRUNCATE flowforge.tasks")
            log(f"API POST /v1/tasks, {clients} connections, {DURATION}s ({label})")
            results[clients] = wrk_post(port, clients)
            log(f"  -> {results[clients]}")
        results["series"] = series_count(admin)
        log(f"  API /metrics after the load: {results['series']} series")
    finally:
        rss = api.stop()
    c.psql("ff", "TRUNCATE flowforge.tasks")
    return results, rss


def ff_drain(c, label, extra_env=None):
    c.psql("ff", "TRUNCATE flowforge.tasks")
    subprocess.check_call([os.path.join(REL, "flowforge-bench"), "--database-url", c.db_url("ff"), "seed",
                           "--tasks", str(DRAIN_TASKS)])
    c.psql("ff", "VACUUM ANALYZE flowforge.tasks")
    admin = free_port()
    log(f"FlowForge worker drains {DRAIN_TASKS} noop tasks ({label})")
    t0 = time.monotonic()
    w = Proc([os.path.join(REL, "flowforge-worker")], {
        "DATABASE_URL": c.db_url("ff"), "FLOWFORGE_ADMIN_ADDR": f"127.0.0.1:{admin}", "FLOWFORGE_QUEUES": "bench",
        "FLOWFORGE_CONCURRENCY": os.environ.get("BENCH_WORKER_CONCURRENCY", "5000"),
        "FLOWFORGE_CLAIM_BATCH": os.environ.get("BENCH_WORKER_CLAIM_BATCH", "5000"), "RUST_LOG": "warn",
        **(extra_env or {})}, "worker")
    # The scaler watches the queue meanwhile, as in production: its series are read under load.
    scaler_admin = free_port()
    sc = Proc([os.path.join(REL, "flowforge-scaler")], {
        "DATABASE_URL": c.db_url("ff"), "FLOWFORGE_ADMIN_ADDR": f"127.0.0.1:{scaler_admin}",
        "FLOWFORGE_GRPC_ADDR": f"127.0.0.1:{free_port()}", "FLOWFORGE_SCALER_METRICS_INTERVAL": "1s",
        "RUST_LOG": "warn"}, "scaler")
    deadline = t0 + 300
    while True:
        if c.psql("ff", "SELECT NOT EXISTS (SELECT 1 FROM flowforge.tasks)") == "t":
            break
        if time.monotonic() > deadline:
            raise RuntimeError("drain did not finish in 300 s")
        time.sleep(0.02)
    seconds = time.monotonic() - t0
    series = series_count(admin)
    try:
        scaler_series = series_count(scaler_admin)
    except OSError as err:  # not up yet on a very short drain
        scaler_series = f"n/a ({err})"
    sc.stop()
    rss = w.stop()
    done = int(c.psql("ff", "SELECT count(*) FROM flowforge.task_history WHERE queue = 'bench' AND status = 'succeeded'"))
    left = int(c.psql("ff", "SELECT count(*) FROM flowforge.tasks"))
    c.psql("ff", "DELETE FROM flowforge.task_history WHERE queue = 'bench'")
    res = {"tasks": DRAIN_TASKS, "kept_in_history": done, "left": left, "seconds": seconds,
           "per_sec": DRAIN_TASKS / seconds, "rss_mib": rss, "series": series, "scaler_series": scaler_series}
    log(f"  -> {res}")
    return res


def node(script, db_url, *args):
    out = subprocess.check_output(["node", os.path.join(GW, script), *args],
                                  env=dict(os.environ, DATABASE_URL=db_url), text=True, cwd=GW)
    return json.loads(out.strip().splitlines()[-1])


def main():
    for tool in ("pgbench", "wrk", "node", "psql"):
        if subprocess.call(["bash", "-c", f"command -v {tool}"], stdout=subprocess.DEVNULL) != 0:
            sys.exit(f"bench: {tool} is missing: run `make bench` (scripts/install-deps.sh bench installs it)")
    c = Cluster()
    r = {"when": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
         "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.platform()}",
         "postgres": "", "settings": c.settings(), "duration_s": DURATION}
    try:
        c.psql("postgres", "CREATE DATABASE ff")
        c.psql("postgres", "CREATE DATABASE gw")
        r["postgres"] = c.psql("postgres", "SHOW server_version")
        subprocess.check_call([os.path.join(REL, "flowforge-api"), "migrate"],
                              env=dict(os.environ, DATABASE_URL=c.db_url("ff"), RUST_LOG="warn"))
        if "insert" in ONLY:
            r["pgbench"] = {}
            for clients in CLIENTS:
                log(f"pgbench single-row INSERT, {clients} clients, {DURATION}s")
                r["pgbench"][clients] = pgbench_insert(c, clients)
                log(f"  -> {r['pgbench'][clients]:.0f} tps")
            r["api"], r["api_rss_mib"] = api_enqueue(c, "empty history")
        if "drain" in ONLY:
            # Interleaved repetitions, median of each: the box is noisy (±15% run to run).
            runs = {"drain": [], "drain_no_history": [], "gw_drain": []}
            for rep in range(REPS):
                log(f"drain repetition {rep + 1} of {REPS}")
                runs["drain"].append(ff_drain(c, "empty history"))
                runs["drain_no_history"].append(
                    ff_drain(c, "succeeded tasks not retained", {"FLOWFORGE_RETENTION": "0s"}))
                log(f"graphile-worker drains {DRAIN_TASKS} jobs (best configuration)")
                runs["gw_drain"].append(node("drain.js", c.db_url("gw"), "--jobs", str(DRAIN_TASKS)))
                log(f"  -> {runs['gw_drain'][-1]['jobs_per_sec']:.0f} jobs/s")
            for key, rate in (("drain", "per_sec"), ("drain_no_history", "per_sec"), ("gw_drain", "jobs_per_sec")):
                ordered = sorted(runs[key], key=lambda x: x[rate])
                r[key] = dict(ordered[len(ordered) // 2], all_per_sec=[round(x[rate]) for x in runs[key]])
        if "pickup" in ONLY:
            log(f"pickup latency, {PICKUP_TASKS} tasks one at a time, idle worker")
            out = subprocess.check_output([os.path.join(REL, "flowforge-bench"), "--database-url", c.db_url("ff"),
                                           "pickup", "--tasks", str(PICKUP_TASKS)], text=True)
            r["pickup"] = json.loads(out.strip().splitlines()[-1])
            r["gw_pickup"] = node("pickup.js", c.db_url("gw"), "--n", str(PICKUP_TASKS))
            log(f"  -> flowforge {r['pickup']}, graphile {r['gw_pickup']}")
        if "activation" in ONLY:
            log(f"scale-from-zero signal, {ACTIVATIONS} activations from cold")
            out = subprocess.check_output([os.path.join(REL, "flowforge-bench"), "--database-url", c.db_url("ff"),
                                           "activation", "--n", str(ACTIVATIONS)], text=True)
            r["activation"] = json.loads(out.strip().splitlines()[-1])
            log(f"  -> {r['activation']}")
        if "rotation" in ONLY:
            log(f"{ROTATIONS} database credential rotations under steady load (refresh {ROTATION_REFRESH})")
            out = subprocess.check_output(
                [os.path.join(REL, "flowforge-bench"), "--database-url", c.db_url("ff"), "rotation",
                 "--rotations", str(ROTATIONS), "--refresh", ROTATION_REFRESH],
                env=dict(os.environ, FLOWFORGE_TEST_DATABASE_URL=c.url, FLOWFORGE_MOTO_SERVER=MOTO_SERVER,
                         RUST_LOG="warn"), text=True)
            r["rotation"] = json.loads(out.strip().splitlines()[-1])
            log(f"  -> {r['rotation']}")
        if "history" in ONLY:
            log(f"retaining {HISTORY_ROWS} finished tasks")
            c.psql("ff", None, "-v", f"rows={HISTORY_ROWS}", "-f", os.path.join(ROOT, "bench", "sql", "history.sql"))
            r["history_rows"] = int(c.psql("ff", "SELECT count(*) FROM flowforge.task_history"))
            r["api_history"], _ = api_enqueue(c, "1M retained")
            r["drain_history"] = ff_drain(c, "1M retained")
    finally:
        c.destroy()
    report(r)


def fmt(v, digits=0):
    return "n/a" if v is None else f"{v:,.{digits}f}"


def report(r):
    lines = [f"## Run of {r['when']}", "",
             f"Machine: {r['machine']}. PostgreSQL {r['postgres']} ({r['settings']}). "
             f"Throughput runs last {r['duration_s']} s each.", ""]
    if "pgbench" in r:
        lines += ["| enqueue, durable commits | 8 connections | 64 connections |", "|---|---|---|"]
        lines.append("| pgbench single-row INSERT (tps) | " + " | ".join(fmt(r["pgbench"][c]) for c in CLIENTS) + " |")
        lines.append("| FlowForge `POST /v1/tasks` (req/s) | " + " | ".join(fmt(r["api"][c]["rps"]) for c in CLIENTS) + " |")
        lines.append("| ratio FlowForge / pgbench | " + " | ".join(f"{r['api'][c]['rps'] / r['pgbench'][c]:.2f}x" for c in CLIENTS) + " |")
        lines.append("| FlowForge p99 latency (ms) | " + " | ".join(fmt(r["api"][c]["p99_ms"], 1) for c in CLIENTS) + " |")
        lines.append("| non-2xx responses | " + " | ".join(str(r["api"][c]["non_2xx"]) for c in CLIENTS) + " |")
        if "api_history" in r:
            lines.append(f"| FlowForge req/s with {r['history_rows']:,} finished tasks retained | " +
                         " | ".join(fmt(r["api_history"][c]["rps"]) for c in CLIENTS) + " |")
            lines.append("| change vs empty history | " + " | ".join(
                f"{(r['api_history'][c]['rps'] / r['api'][c]['rps'] - 1) * 100:+.1f}%" for c in CLIENTS) + " |")
        lines += ["", f"Peak RSS of flowforge-api under this load: {fmt(r.get('api_rss_mib'), 1)} MiB; "
                  f"series on its /metrics after the load (metric cardinality): {r['api'].get('series', 'n/a')}.", ""]
    if "drain" in r:
        gw = r["gw_drain"]
        lines += [f"Median of {REPS} interleaved repetitions (all runs' tasks/s in brackets).", "",
                  "| drain of no-op tasks | tasks | seconds | tasks/s |", "|---|---|---|---|",
                  f"| FlowForge worker (default: succeeded tasks kept 7 days) | {r['drain']['tasks']:,} | {r['drain']['seconds']:.2f} | {fmt(r['drain']['per_sec'])} {r['drain']['all_per_sec']} |",
                  f"| FlowForge worker, `FLOWFORGE_RETENTION=0s` (succeeded tasks deleted, as graphile-worker does) | {r['drain_no_history']['tasks']:,} | {r['drain_no_history']['seconds']:.2f} | {fmt(r['drain_no_history']['per_sec'])} {r['drain_no_history']['all_per_sec']} |",
                  f"| graphile-worker {gw.get('version', '')} ({json.dumps(gw.get('config', {}))}) | {gw['jobs']:,} | {gw['seconds']:.2f} | {fmt(gw['jobs_per_sec'])} {gw['all_per_sec']} |",
                  f"| ratio FlowForge / graphile-worker | | | {r['drain']['per_sec'] / gw['jobs_per_sec']:.2f}x (default), "
                  f"{r['drain_no_history']['per_sec'] / gw['jobs_per_sec']:.2f}x (not retained) |"]
        if "drain_history" in r:
            d = r["drain_history"]
            lines.append(f"| FlowForge with {r['history_rows']:,} retained | {d['tasks']:,} | {d['seconds']:.2f} | {fmt(d['per_sec'])} "
                         f"({(d['per_sec'] / r['drain']['per_sec'] - 1) * 100:+.1f}%) |")
        lines += ["", f"Peak RSS of flowforge-worker during the drain: {fmt(r['drain'].get('rss_mib'), 1)} MiB; "
                  f"series on its /metrics at the end of the drain: {r['drain'].get('series', 'n/a')}; "
                  f"flowforge-scaler watching the queue meanwhile: {r['drain'].get('scaler_series', 'n/a')} series.", ""]
    if "pickup" in r:
        p, g = r["pickup"], r["gw_pickup"]
        lines += ["| pickup latency, idle worker (ms) | p50 | p90 | p99 | max |", "|---|---|---|---|---|",
                  f"| FlowForge | {p['p50_ms']:.2f} | {p['p90_ms']:.2f} | {p['p99_ms']:.2f} | {p['max_ms']:.2f} |",
                  f"| graphile-worker | {g['p50_ms']:.2f} | {g['p90_ms']:.2f} | {g['p99_ms']:.2f} | {g['max_ms']:.2f} |", ""]
    if "activation" in r:
        a = r["activation"]
        lines += [f"| scale-from-zero signal ({a['n']} activations from cold) | p50 | p90 | p99 | max |",
                  "|---|---|---|---|---|",
                  f"| enqueue commit → StreamIsActive true (ms) | {a['p50_ms']:.2f} | {a['p90_ms']:.2f} | "
                  f"{a['p99_ms']:.2f} | {a['max_ms']:.2f} |",
                  "| KEDA postgresql trigger, default pollingInterval 30 s (by construction) | 15,000 (mean) | | | 30,000 |",
                  ""]
    if "rotation" in r:
        ro = r["rotation"]

        def stats(ms):
            ms = sorted(ms)
            return (f"{ms[len(ms) // 2]:.0f}", f"{max(ms):.0f}") if ms else ("n/a", "n/a")
        a, p = stats(ro["auth_failure_ms"]), stats(ro["periodic_ms"])
        lines += [f"| credential rotation under steady load ({ro['rotations']} rotations, refresh {ro['refresh_ms']} ms) "
                  "| median ms | max ms | all (ms) |", "|---|---|---|---|",
                  f"| auth-failure path: rotation written → first connection with it | {a[0]} | {a[1]} | "
                  f"{[round(x) for x in ro['auth_failure_ms']]} |",
                  f"| periodic path: rotation written → first connection with it | {p[0]} | {p[1]} | "
                  f"{[round(x) for x in ro['periodic_ms']]} |", "",
                  f"Requests during the rotations: {ro['requests']:,}, failed: {ro['failed_requests']}, "
                  f"tasks not succeeded: {ro['tasks_not_succeeded']}.", ""]
    text = "\n".join(lines)
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    with open(os.path.join(ROOT, "bench", "results", f"{stamp}.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(ROOT, "bench", "results", f"{stamp}.json"), "w") as f:
        json.dump(r, f, indent=2, default=str)
    print(text)


if __name__ == "__main__":
    main()
