-- wrk script: POST /v1/tasks with a small noop task. The token comes from FLOWFORGE_BENCH_TOKEN.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("FLOWFORGE_BENCH_TOKEN")
wrk.body = '{"queue":"bench","kind":"noop","payload":{"n":1}}'
