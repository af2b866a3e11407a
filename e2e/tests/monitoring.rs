//! Monitoring end to end: the real binaries (the API, and the scaler in local mode running real
//! workers), a real Prometheus scraping them every second and evaluating the generated rules
//! (`alerts/flowforge-rules.yaml`), and traffic with successes, client errors, server errors,
//! late tasks and dead tasks. Then:
//! - every recording rule and every dashboard panel query returns data;
//! - the task-wait burn rates the scaler publishes from the database agree with the recording
//!   rules computed from its counters;
//! - every `/metrics` output passes `promtool check metrics`;
//! - the JSON log fields the LogQL panels use are in the processes' real log lines;
//! - the series count per process is printed (docs/monitoring.md records it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use flowforge_e2e::{client, eventually, Binary, Rig};
use flowforge_testkit::{free_port, which, MotoServer, Prometheus};
use serde_json::json;

const QUEUE: &str = "monitored";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// The generated rule file with every group evaluated at the server's global interval (1 s
/// here), written next to the Prometheus config.
fn rules_for_test(root: &Path, dir: &Path) -> Result<PathBuf> {
    let text = std::fs::read_to_string(root.join("alerts/flowforge-rules.yaml"))?;
    let mut rules: serde_json::Value = serde_norway::from_str(&text)?;
    for group in rules["groups"]
        .as_array_mut()
        .context("rule file without groups")?
    {
        if let Some(g) = group.as_object_mut() {
            g.remove("interval");
        }
    }
    let path = dir.join("rules.yaml");
    std::fs::write(&path, serde_norway::to_string(&rules)?)?;
    Ok(path)
}

fn prometheus_config(rules: &Path, jobs: &[(&str, Vec<String>)]) -> String {
    let mut config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n",
        rules.display()
    );
    for (job, targets) in jobs {
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        config.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        ));
    }
    config
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

async fn post_task(api: &str, token: &str, body: serde_json::Value) -> Result<u16> {
    Ok(client()
        .post(format!("{api}/v1/tasks"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?
        .status()
        .as_u16())
}

/// `promtool check metrics` on the `/metrics` of the admin server at `admin`; the series count.
async fn promtool_check_metrics(name: &str, admin: &str) -> Result<usize> {
    let text = client()
        .get(format!("{admin}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let promtool =
        which("promtool").context("promtool not found: run scripts/install-deps.sh test")?;
    let mut child = tokio::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    {
        use tokio::io::AsyncWriteExt as _;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(text.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!(
            "promtool check metrics on {name} ({admin}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count())
}

/// Every JSON object logged to `path` (other lines, e.g. from a crash, are skipped).
fn json_lines(path: &Path) -> Vec<serde_json::Map<String, serde_json::Value>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.as_object().cloned())
        .collect()
}

#[tokio::test]
async fn rules_and_panels_have_live_data_and_published_burn_rates_agree() -> Result<()> {
    let root = repo_root();
    let rig = Rig::new(MotoServer::shared().await?).await?;
    let dir = tempfile::tempdir()?;

    // The API and the workers log in as different roles, so the API alone can be made to fail.
    let api_user = format!("{}_api", rig.prefix);
    let work_user = format!("{}_work", rig.prefix);
    rig.create_login(&api_user, "pw").await?;
    rig.create_login(&work_user, "pw").await?;
    let api_db = rig.secret_name("api-db");
    let work_db = rig.secret_name("work-db");
    let tokens = rig.secret_name("tokens");
    rig.sm
        .create(&api_db, &rig.db_secret_json(&api_user, "pw"))
        .await?;
    rig.sm
        .create(&work_db, &rig.db_secret_json(&work_user, "pw"))
        .await?;
    rig.sm
        .create(&tokens, &json!({"tokens": ["t0ken"]}).to_string())
        .await?;
    let common = |db: &str| -> Vec<(&'static str, String)> {
        vec![
            ("FLOWFORGE_DB_SECRET", format!("aws-sm:{db}")),
            ("FLOWFORGE_API_TOKENS_SECRET", format!("aws-sm:{tokens}")),
            ("FLOWFORGE_SECRET_REFRESH", "5s".into()),
            ("FLOWFORGE_LOG_FORMAT", "json".into()),
            ("FLOWFORGE_QUEUES", QUEUE.into()),
        ]
    };
    let api_log = dir.path().join("api.log");
    let scaler_log = dir.path().join("scaler.log");
    let mut api_env = common(&api_db);
    api_env.push(("FLOWFORGE_DB_ACQUIRE_TIMEOUT", "1s".into()));
    let api = rig
        .spawn_with(Binary::Api, &[], &api_env, Some(&api_log))
        .await?;
    api.wait_ready(Duration::from_secs(30)).await?;

    // The scaler plays KEDA + HPA with real workers (they inherit its environment and log to
    // its output): 2 task slots each, at most 2 workers, kept for the whole test. A task counts
    // as late after 1 s, so the cold start and the backlog below make late tasks.
    let worker_base = free_port();
    let mut scaler_env = common(&work_db);
    scaler_env.extend([
        ("FLOWFORGE_SLO_TASK_WAIT", "1s".to_owned()),
        ("FLOWFORGE_CONCURRENCY", "2".to_owned()),
        ("FLOWFORGE_POLL_INTERVAL", "200ms".to_owned()),
    ]);
    let base = worker_base.to_string();
    let scaler = rig
        .spawn_with(
            Binary::Scaler,
            &[
                "local",
                "--target-tasks-per-worker",
                "2",
                "--max-workers",
                "2",
                "--polling-interval",
                "300ms",
                "--cooldown",
                "1h",
                "--scale-down-stabilization",
                "1h",
                "--worker-admin-base-port",
                &base,
            ],
            &scaler_env,
            Some(&scaler_log),
        )
        .await?;
    scaler.wait_ready(Duration::from_secs(30)).await?;

    let rules = rules_for_test(&root, dir.path())?;
    let workers: Vec<String> = (0..2)
        .map(|i| format!("127.0.0.1:{}", worker_base + i))
        .collect();
    let config = prometheus_config(
        &rules,
        &[
            ("flowforge-api", vec![host_port(&api.admin)]),
            ("flowforge-scaler", vec![host_port(&scaler.admin)]),
            ("flowforge-worker", workers.clone()),
        ],
    );
    let prometheus = Prometheus::start(&config, Some(&dir.path().join("prometheus.log"))).await?;

    // Traffic. Successes: quick tasks and slower ones that build a backlog (late starts).
    let token = "t0ken";
    let marker = format!("payload-marker-{}", rig.prefix);
    // Two rounds: Prometheus cannot see the increase that creates a series (a counter first
    // scraped at 45 has a rate of 0), so the first round creates every series and the second,
    // after they were scraped, is what the rates and quantiles see.
    for round in 0..2 {
        let mut created = 0;
        for i in 0..40 {
            let body = if i % 2 == 0 {
                json!({"queue": QUEUE, "kind": "noop"})
            } else {
                json!({"queue": QUEUE, "kind": "sleep", "payload": {"ms": 300}})
            };
            if post_task(&api.api, token, body).await? == 201 {
                created += 1;
            }
        }
        // A task whose payload the handler refuses: it dies, and its payload must not be logged.
        let body =
            json!({"queue": QUEUE, "kind": "sleep", "payload": {"ms": marker}, "max_attempts": 1});
        assert_eq!(post_task(&api.api, token, body).await?, 201);
        // Dead tasks (task-success SLO), client errors (4xx: not errors for availability).
        for _ in 0..3 {
            let body =
                json!({"queue": QUEUE, "kind": "fail", "payload": {"times": 5}, "max_attempts": 1});
            assert_eq!(post_task(&api.api, token, body).await?, 201);
        }
        assert_eq!(
            post_task(&api.api, token, json!({"queue": QUEUE})).await?,
            422,
            "a task without a kind is refused"
        );
        assert_eq!(
            post_task(&api.api, "wrong", json!({"queue": QUEUE, "kind": "noop"})).await?,
            401
        );
        let missing = client()
            .get(format!("{}/v1/tasks/{}", api.api, uuid::Uuid::now_v7()))
            .bearer_auth(token)
            .send()
            .await?;
        assert_eq!(missing.status().as_u16(), 404);
        // Server errors: the API's database role may not log in for a moment.
        sqlx::query(&format!("ALTER ROLE {api_user} NOLOGIN"))
            .execute(&rig.admin)
            .await?;
        rig.terminate_sessions(&api_user).await?;
        let mut server_errors = 0;
        for _ in 0..3 {
            let status =
                post_task(&api.api, token, json!({"queue": QUEUE, "kind": "noop"})).await?;
            if status >= 500 {
                server_errors += 1;
            }
        }
        sqlx::query(&format!("ALTER ROLE {api_user} LOGIN"))
            .execute(&rig.admin)
            .await?;
        assert!(server_errors > 0, "no 5xx while the API could not log in");
        eventually(
            "the API is ready again",
            Duration::from_secs(30),
            || async {
                Ok(
                    (post_task(&api.api, token, json!({"queue": QUEUE, "kind": "noop"})).await?
                        == 201)
                        .then_some(()),
                )
            },
        )
        .await?;
        // A database error the API has no answer for (a constraint it does not know about): a
        // 500, logged as an error.
        sqlx::query(
            "ALTER TABLE flowforge.tasks ADD CONSTRAINT e2e_refuse CHECK (kind <> 'refused') NOT VALID",
        )
        .execute(&rig.admin)
        .await?;
        let refused = post_task(&api.api, token, json!({"queue": QUEUE, "kind": "refused"})).await;
        sqlx::query("ALTER TABLE flowforge.tasks DROP CONSTRAINT e2e_refuse")
            .execute(&rig.admin)
            .await?;
        assert_eq!(refused?, 500, "an unexpected database error is a 500");
        assert!(created > 30, "only {created} of 40 tasks accepted");
        if round == 0 {
            eventually(
                "Prometheus has scraped the series of the first round",
                Duration::from_secs(60),
                || async {
                    let api_5xx = prometheus
                        .query("flowforge_http_requests_total{status=\"503\"}")
                        .await?;
                    let dead = prometheus
                        .query("flowforge_tasks_completed_total{outcome=\"dead\"}")
                        .await?;
                    let left: i64 =
                        sqlx::query_scalar("SELECT count(*) FROM flowforge.tasks WHERE queue = $1")
                            .bind(QUEUE)
                            .fetch_one(&rig.admin)
                            .await?;
                    Ok((!api_5xx.is_empty() && !dead.is_empty() && left == 0).then_some(()))
                },
            )
            .await?;
        }
    }

    // Everything runs: nothing ready or running is left.
    eventually("the queue drains", Duration::from_secs(120), || async {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM flowforge.tasks WHERE queue = $1")
            .bind(QUEUE)
            .fetch_one(&rig.admin)
            .await?;
        Ok((left == 0).then_some(()))
    })
    .await?;

    // Every recording rule and every panel query returns data.
    let queries = flowforge_slo::queries(&root)?;
    // Constants (the objectives, `vector(0.99)`) return data whatever happens: not evidence.
    let is_constant = |expr: &str| expr.trim().starts_with("vector(");
    let checked: Vec<_> = queries
        .iter()
        .filter(|q| q.kind != flowforge_slo::QueryKind::Alert && !is_constant(&q.expr))
        .collect();
    let constants = queries
        .iter()
        .filter(|q| q.kind != flowforge_slo::QueryKind::Alert && is_constant(&q.expr))
        .count();
    assert!(
        !checked.is_empty(),
        "no queries found in the generated files"
    );
    let empty: Mutex<BTreeMap<String, String>> = Mutex::default();
    let proven = eventually(
        "every recording rule and panel query returns data",
        Duration::from_secs(180),
        || {
            let prometheus = &prometheus;
            let checked = &checked;
            let empty = &empty;
            async move {
                let mut missing = BTreeMap::new();
                for q in checked.iter() {
                    // A panel's `... or vector(0)` fallback would answer for a metric that is
                    // not there: the metric itself must answer.
                    let expr = match q.expr.rsplit_once(" or vector(") {
                        Some((metric, _)) => metric,
                        None => q.expr.as_str(),
                    };
                    match prometheus.query(expr).await {
                        // NaN (0/0, a quantile of nothing) is not data.
                        Ok(samples) if samples.iter().any(|s| s.value.is_finite()) => {}
                        Ok(_) => {
                            missing.insert(q.source.clone(), expr.to_owned());
                        }
                        Err(err) => bail!("{}: {err:#}", q.source),
                    }
                }
                let done = missing.is_empty();
                *empty.lock().expect("lock") = missing;
                Ok(done.then_some(checked.len()))
            }
        },
    )
    .await;
    if let Err(err) = &proven {
        let lines: Vec<String> = empty
            .lock()
            .expect("lock")
            .iter()
            .map(|(s, e)| format!("  {s}: {e}"))
            .collect();
        panic!(
            "{err:#}; still without data:\n{}\ntargets: {:?}",
            lines.join("\n"),
            prometheus.targets().await?
        );
    }
    let proven = proven?;
    let by_kind = |k: flowforge_slo::QueryKind| checked.iter().filter(|q| q.kind == k).count();
    println!(
        "proven against live data (a finite value): {proven} queries ({} recording rules, {} panel queries); {constants} constant rules not counted; {} alert expressions are checked by promtool test rules",
        by_kind(flowforge_slo::QueryKind::Recording),
        by_kind(flowforge_slo::QueryKind::Panel),
        queries
            .iter()
            .filter(|q| q.kind == flowforge_slo::QueryKind::Alert)
            .count(),
    );

    // The scaler's own burn rates (from the database ledger) agree with the recording rules
    // (from its counters): the same late and on-time starts seen two ways.
    for window in ["30m", "1h"] {
        let rule = format!("max(flowforge_slo:burn_rate:rate{window}{{slo=\"task-wait\"}})");
        let published =
            format!("max(flowforge_slo_burn_rate{{slo=\"task-wait\",window=\"{window}\"}})");
        let last = Mutex::new((f64::NAN, f64::NAN));
        let agreed = eventually(
            &format!("the {window} burn rates agree"),
            Duration::from_secs(120),
            || {
                let (prometheus, rule, published, last) = (&prometheus, &rule, &published, &last);
                async move {
                    let r = prometheus.query(rule).await?.first().map(|s| s.value);
                    let p = prometheus.query(published).await?.first().map(|s| s.value);
                    let (Some(r), Some(p)) = (r, p) else {
                        return Ok(None);
                    };
                    *last.lock().expect("lock") = (r, p);
                    // Something must have burned, or agreeing would prove nothing.
                    Ok((p > 0.0 && (r - p).abs() <= 0.02 * p.max(r)).then_some((r, p)))
                }
            },
        )
        .await;
        match agreed {
            Ok((r, p)) => {
                println!("task-wait burn rate over {window}: rules {r:.3}, scaler {p:.3}")
            }
            Err(err) => {
                let (r, p) = *last.lock().expect("lock");
                panic!("{err:#}: rules {r}, scaler {p}")
            }
        }
    }
    let budget = prometheus
        .query("max(flowforge_slo_error_budget_remaining{slo=\"task-wait\"})")
        .await?;
    assert!(
        budget.first().is_some_and(|s| s.value < 1.0),
        "late tasks used some error budget: {budget:?}"
    );

    // Every /metrics output is clean, and its size is what docs/monitoring.md reports.
    let mut admins: Vec<(&str, String)> = vec![
        ("flowforge-api", api.admin.clone()),
        ("flowforge-scaler", scaler.admin.clone()),
    ];
    // The workers that run (the local autoscaler may have needed only one).
    let up_workers: Vec<String> = prometheus
        .targets()
        .await?
        .into_iter()
        .filter(|(job, _, health)| job == "flowforge-worker" && health == "up")
        .map(|(_, instance, _)| instance)
        .collect();
    assert!(!up_workers.is_empty(), "no worker is scraped");
    admins.extend(
        up_workers
            .iter()
            .map(|w| ("flowforge-worker", format!("http://{w}"))),
    );
    for (name, admin) in &admins {
        let series = promtool_check_metrics(name, admin).await?;
        println!("{name} ({admin}): {series} series");
    }

    // The fields the LogQL panels use are in the real log lines.
    let logs_by_app: Vec<(&str, _)> = json_lines(&api_log)
        .into_iter()
        .map(|l| ("flowforge-api", l))
        .chain(json_lines(&scaler_log).into_iter().map(|l| {
            // The workers write to the scaler's output; their own lines name their crate.
            let target = l.get("target").and_then(|t| t.as_str()).unwrap_or_default();
            let app = if target.starts_with("flowforge_worker") {
                "flowforge-worker"
            } else {
                "flowforge-scaler"
            };
            (app, l)
        }))
        .collect();
    let logs: Vec<_> = logs_by_app.iter().map(|(_, l)| l.clone()).collect();
    assert!(!logs.is_empty(), "no JSON log lines");
    let fields: BTreeSet<String> = logs.iter().flat_map(|l| l.keys().cloned()).collect();
    for required in ["timestamp", "level", "message", "target"] {
        if let Some(line) = logs.iter().find(|l| !l.contains_key(required)) {
            panic!("a log line without {required}: {line:?}");
        }
    }
    for required in [
        "request_id",
        "trace_id",
        "span_id",
        "task_id",
        "queue",
        "kind",
    ] {
        assert!(
            fields.contains(required),
            "no log line has {required}: {fields:?}"
        );
    }
    for q in flowforge_slo::logql_queries(&root)? {
        for field in &q.fields {
            assert!(
                fields.contains(field),
                "{}: the LogQL query uses {field}, which no log line has ({fields:?})",
                q.source
            );
        }
    }
    // Each LogQL panel's filters select real lines: evaluated here over the captured lines
    // (Loki itself cannot run here), with the stream label `app` taken from the process.
    for q in flowforge_slo::logql_queries(&root)? {
        let matching = logs_by_app
            .iter()
            .filter(|(app, line)| logql_selects(&q.expr, app, line))
            .count();
        assert!(
            matching > 0,
            "{}: no captured log line passes {}",
            q.source,
            q.expr
        );
        println!("{}: {matching} matching lines", q.source);
    }
    // A dead task's log lines carry the trace of the request that created it.
    let dead = logs
        .iter()
        .find(|l| l.get("message").and_then(|m| m.as_str()) == Some("attempt failed; task is dead"))
        .context("no 'task is dead' log line")?;
    for field in ["task_id", "queue", "kind", "trace_id"] {
        assert!(dead.contains_key(field), "{field} missing from {dead:?}");
    }
    // Nothing secret in the logs: neither the token nor the database password.
    let all_logs = std::fs::read_to_string(&api_log)? + &std::fs::read_to_string(&scaler_log)?;
    assert!(!all_logs.contains("t0ken"), "the API token was logged");
    assert!(!all_logs.contains("\"pw\""), "a password was logged");
    assert!(!all_logs.contains(&marker), "a task payload was logged");
    Ok(())
}

/// Whether the LogQL query `expr` (`{app=~"re"} | json [| field op value] [| line_format ...]`,
/// the shapes the dashboards use) selects `line` from the stream of `app`.
fn logql_selects(expr: &str, app: &str, line: &serde_json::Map<String, serde_json::Value>) -> bool {
    let selector = regex::Regex::new(r#"\{app(=~|=)"([^"]*)"\}"#).expect("selector pattern");
    let Some(sel) = selector.captures(expr) else {
        panic!("unexpected LogQL stream selector: {expr}")
    };
    let app_ok = match &sel[1] {
        "=" => app == &sel[2],
        _ => regex::Regex::new(&format!("^(?:{})$", &sel[2]))
            .expect("app pattern")
            .is_match(app),
    };
    if !app_ok {
        return false;
    }
    // The stages after `| json`: label filters (all must hold); `line_format` only formats.
    let Some((_, stages)) = expr.split_once("| json") else {
        return true;
    };
    let filter =
        regex::Regex::new(r#"^(\w+)\s*(>=|=~|!=|=)\s*("[^"]*"|[0-9.]+)$"#).expect("filter pattern");
    for stage in stages.split(" | ").map(str::trim).filter(|s| !s.is_empty()) {
        let stage = stage.trim_start_matches("| ").trim();
        if stage.starts_with("line_format") || stage.starts_with('[') {
            continue;
        }
        let Some(f) = filter.captures(stage) else {
            panic!("unexpected LogQL stage {stage:?} in {expr}")
        };
        let wanted = f[3].trim_matches('"');
        let text = match line.get(&f[1]) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => return false,
        };
        let holds = match &f[2] {
            ">=" => text
                .parse::<f64>()
                .ok()
                .zip(wanted.parse::<f64>().ok())
                .is_some_and(|(v, w)| v >= w),
            "=~" => regex::Regex::new(&format!("^(?:{wanted})$"))
                .expect("filter regex")
                .is_match(&text),
            "!=" => text != wanted,
            _ => text == wanted,
        };
        if !holds {
            return false;
        }
    }
    true
}
