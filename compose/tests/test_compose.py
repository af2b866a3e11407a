"""Checks of docker-compose.yml and the build files it uses, without a Docker engine.

- the file is valid against the Compose Specification's JSON schema (the copy the dclint npm
  package ships; scripts/install-deps.sh pins it);
- it runs what `make up` runs (scripts/up.sh): PostgreSQL, flowforge-api, flowforge-scaler, the
  workers and Prometheus, on the same loopback ports, with the same database roles (migrations as
  the superuser, the services as the application role) and the same privileges;
- the images are pinned (never `latest`), the FlowForge services hardened, their health checks
  the binaries' own `healthcheck` subcommand;
- `docker compose watch` rebuilds a service from everything its binary is built from;
- the Dockerfile's compile stage: toolchain file before `rustup target add`, cache mounts, the
  `binaries` stage contract the image test (e2e/tests/images.rs) relies on;
- .dockerignore keeps build output out of the context at any depth.

Run (scripts/check-manifests.sh does):
    ~/.cache/flowforge/manifest-venv/bin/python -m unittest discover -s compose/tests -v

The schema is $FLOWFORGE_COMPOSE_SCHEMA, or
${FLOWFORGE_TOOLS_DIR:-~/.cache/flowforge}/compose-schema/compose.schema.json.
"""

import json
import os
import re
import tempfile
import tomllib
import unittest
from pathlib import Path

import jsonschema
import yaml
from docker.utils.build import PatternMatcher, exclude_paths

ROOT = Path(__file__).resolve().parent.parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
# Compose service -> the Dockerfile target (and binary) it runs.
FLOWFORGE = {
    "api": "flowforge-api",
    "worker": "flowforge-worker",
    "scaler": "flowforge-scaler",
    "migrate": "flowforge-api",
}
LONG_RUNNING = ("api", "worker", "scaler")
SERVICES = {"secrets-init", "postgres", "migrate", "app-role", "api", "worker", "scaler", "prometheus"}


def schema_path():
    explicit = os.environ.get("FLOWFORGE_COMPOSE_SCHEMA")
    if explicit:
        return Path(explicit)
    tools = os.environ.get("FLOWFORGE_TOOLS_DIR") or str(Path.home() / ".cache/flowforge")
    return Path(tools) / "compose-schema/compose.schema.json"


def load_compose():
    with open(COMPOSE_FILE, encoding="utf-8") as f:
        return yaml.safe_load(f)


def dockerfile_instructions():
    """(stage, INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    lines, current = [], ""
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    out, stage = [], None
    for line in lines:
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            m = re.search(r"\bAS\s+(\S+)$", rest, re.IGNORECASE)
            stage = m.group(1) if m else None
        out.append((stage, word, rest.strip()))
    return out


def stage_of(instructions, name):
    return [(w, a) for s, w, a in instructions if s == name]


def up_sh():
    return (ROOT / "scripts/up.sh").read_text(encoding="utf-8")


def shell_assignment(text, name):
    m = re.search(rf"^{name}=(\S+)$", text, re.MULTILINE)
    if not m:
        raise AssertionError(f"{name}= not found")
    return m.group(1)


def dockerignore_patterns():
    """The patterns as the Docker CLI (and buildah) reads them: comments and blanks dropped,
    each path cleaned."""
    out = []
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        path = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        out.append(("!" if negate else "") + path)
    return out


def excluded(path, matcher):
    """Whether .dockerignore leaves PATH (relative) out of the context: it or a parent matches."""
    parts = Path(path).parts
    return any(matcher.matches(str(Path(*parts[: i + 1]))) for i in range(len(parts)))


def port_of(address):
    return int(address.rsplit(":", 1)[1])


class ComposeTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.compose = load_compose()
        cls.services = cls.compose["services"]
        cls.dockerfile = dockerfile_instructions()

    def image_env(self, target):
        """The ENV of a final image's stage and of `runtime`, which it is built FROM."""
        env = {}
        for stage in ("runtime", target):
            for word, args in stage_of(self.dockerfile, stage):
                if word == "ENV":
                    env.update(dict(re.findall(r"(\w+)=(\S+)", args)))
        return env

    # --- the specification ----------------------------------------------------------------------

    def test_the_file_is_valid_against_the_compose_specification(self):
        path = schema_path()
        self.assertTrue(path.is_file(), f"{path} not found: run scripts/install-deps.sh test")
        schema = json.loads(path.read_text(encoding="utf-8"))
        # A schema too old to know `develop` would reject the watch configuration for that reason.
        self.assertIn("develop", schema["definitions"]["service"]["properties"])
        validator = jsonschema.Draft7Validator(schema)
        errors = [
            f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
            for e in validator.iter_errors(self.compose)
        ]
        self.assertEqual(errors, [], "docker-compose.yml does not follow the Compose Specification")

    # --- what `make up` runs --------------------------------------------------------------------

    def test_the_same_services_as_make_up(self):
        self.assertEqual(set(self.services), SERVICES)
        targets = {a.split()[-1] for _, w, a in self.dockerfile if w == "FROM" and a.startswith("runtime ")}
        self.assertEqual(targets, {"flowforge-api", "flowforge-worker", "flowforge-scaler"})
        for name, target in FLOWFORGE.items():
            service = self.services[name]
            self.assertEqual(service["build"], {"context": ".", "target": target}, name)
            self.assertIn(target, targets, name)
        self.assertEqual(self.services["migrate"]["command"], ["migrate"])
        text = up_sh()
        for binary in ("flowforge-api", "flowforge-worker", "flowforge-scaler"):
            self.assertIn(f"/release/{binary}", text, f"make up no longer runs {binary}")

    def test_images_are_pinned_never_latest(self):
        for name, service in self.services.items():
            image = service["image"]
            if "build" in service:
                # Built here from the Dockerfile target of the same name.
                self.assertEqual(image, f"{service['build']['target']}:dev", name)
                continue
            m = re.fullmatch(r"([a-z0-9.-]+\.[a-z]+)/([a-z0-9/_.-]+):([A-Za-z0-9._-]+)(@sha256:[0-9a-f]{64})?", image)
            self.assertIsNotNone(m, f"{name}: {image!r} is not registry/name:tag")
            self.assertNotEqual(m.group(3), "latest", f"{name}: {image}")
            self.assertRegex(m.group(3), r"\d+\.\d+", f"{name}: {image} is not a version tag")

    def test_published_ports_are_make_ups_defaults_on_loopback(self):
        text = up_sh()
        default = dict(re.findall(r"(\w+)=\$\{FLOWFORGE_UP_\w+:-(\d+)\}", text))
        pg = re.search(r"pg_args=\((\d+)\)", text)
        self.assertIsNotNone(pg, "scripts/up.sh: default PostgreSQL port not found")
        api, scaler = self.image_env("flowforge-api"), self.image_env("flowforge-scaler")
        expected = {
            "api": {
                (int(default["API_PORT"]), port_of(api["FLOWFORGE_API_ADDR"])),
                (int(default["API_ADMIN_PORT"]), port_of(api["FLOWFORGE_ADMIN_ADDR"])),
            },
            "scaler": {
                (int(default["SCALER_GRPC_PORT"]), port_of(scaler["FLOWFORGE_GRPC_ADDR"])),
                (int(default["SCALER_ADMIN_PORT"]), port_of(scaler["FLOWFORGE_ADMIN_ADDR"])),
            },
            "prometheus": {(int(default["PROMETHEUS_PORT"]), 9090)},
            "postgres": {(int(pg.group(1)), 5432)},
        }
        for name, service in self.services.items():
            published = set()
            for spec in service.get("ports", []):
                self.assertIsInstance(spec, str, f"{name}: ports as HOST_IP:HOST:CONTAINER strings")
                host_ip, host, container = spec.split(":")
                self.assertEqual(host_ip, "127.0.0.1", f"{name}: {spec} is published beyond loopback")
                published.add((int(host), int(container)))
            self.assertEqual(published, expected.get(name, set()), name)

    def test_migrations_run_as_the_superuser_and_the_services_as_the_application_role(self):
        text = up_sh()
        app_user, app_group = shell_assignment(text, "APP_USER"), shell_assignment(text, "APP_GROUP")
        init = (ROOT / "compose/init-secrets.sh").read_text(encoding="utf-8")
        role = (ROOT / "compose/app-role.sh").read_text(encoding="utf-8")
        self.assertEqual(shell_assignment(init, "APP_USER"), app_user)
        self.assertEqual(shell_assignment(role, "APP_GROUP"), app_group)
        superuser = self.services["postgres"]["environment"]["POSTGRES_USER"]
        self.assertRegex(init, rf'db_secret "\$SECRETS/db-owner.json" {superuser} ')
        self.assertRegex(init, r'db_secret "\$SECRETS/db-app.json" "\$APP_USER" ')
        self.assertEqual(self.services["migrate"]["environment"]["FLOWFORGE_DB_SECRET"], "file:/secrets/db-owner.json")
        for name in LONG_RUNNING:
            env = self.services[name]["environment"]
            self.assertEqual(env["FLOWFORGE_DB_SECRET"], "file:/secrets/db-app.json", name)
            self.assertNotIn("DATABASE_URL", env, name)
        # Every privilege `make up` grants the group, app-role grants too.
        grants = re.findall(rf"^GRANT .* TO \$APP_GROUP;$", text, re.MULTILINE)
        self.assertTrue(grants, "scripts/up.sh: no GRANT ... TO $APP_GROUP found")
        for grant in grants:
            self.assertTrue(grant in role, f"compose/app-role.sh lacks what scripts/up.sh grants: {grant}")
        self.assertIn("NOSUPERUSER", role)

    def test_services_start_in_make_ups_order(self):
        def after(name):
            return {k: v["condition"] for k, v in self.services[name].get("depends_on", {}).items()}

        self.assertEqual(after("postgres"), {"secrets-init": "service_completed_successfully"})
        self.assertEqual(after("migrate"), {"postgres": "service_healthy"})
        self.assertEqual(after("app-role"), {"migrate": "service_completed_successfully"})
        for name in LONG_RUNNING:
            self.assertEqual(after(name), {"app-role": "service_completed_successfully"}, name)
        # The one-shot helpers run the scripts they mount.
        for name in ("secrets-init", "app-role"):
            service = self.services[name]
            script = service["entrypoint"][-1]
            mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"] if v.startswith("./")}
            self.assertIn(script, mounts, f"{name}: {script} is not mounted")
            self.assertTrue((ROOT / mounts[script]).is_file(), mounts[script])

    def test_flowforge_services_are_hardened(self):
        for name in FLOWFORGE:
            service = self.services[name]
            self.assertIs(service.get("read_only"), True, name)
            self.assertEqual(service.get("cap_drop"), ["ALL"], name)
            self.assertIn("no-new-privileges:true", service.get("security_opt", []), name)
            self.assertNotIn("user", service, f"{name}: runs as the image's user (65532)")
            self.assertFalse(service.get("privileged"), name)
            for volume in service.get("volumes", []):
                self.assertTrue(volume.endswith(":ro"), f"{name}: {volume} is writable")

    def test_health_checks_are_the_binaries_own_subcommand(self):
        text = COMPOSE_FILE.read_text(encoding="utf-8")
        fetchers = [line for line in text.splitlines() if re.search(r"\b(curl|wget)\b", line)]
        self.assertEqual(fetchers, [], "no curl or wget: the images have neither")
        for target in sorted(set(FLOWFORGE.values())):
            checks = [a for w, a in stage_of(self.dockerfile, target) if w == "HEALTHCHECK"]
            self.assertEqual(len(checks), 1, target)
            self.assertTrue(
                checks[0].endswith(f'CMD ["/usr/local/bin/{target}", "healthcheck"]'), f"{target}: {checks[0]}"
            )
        for name, target in FLOWFORGE.items():
            health = self.services[name].get("healthcheck")
            if health is None:
                continue  # the image's
            self.assertFalse(health.get("disable"), name)
            if "test" in health:
                self.assertEqual(health["test"], ["CMD", f"/usr/local/bin/{target}", "healthcheck"], name)

    def test_prometheus_scrapes_every_service_under_the_rules_job_names(self):
        config = yaml.safe_load((ROOT / "compose/prometheus.yml").read_text(encoding="utf-8"))
        prometheus = self.services["prometheus"]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in prometheus["volumes"] if v.startswith("./")}
        self.assertEqual(mounts.get("/etc/prometheus/prometheus.yml"), "./compose/prometheus.yml")
        for rule_file in config["rule_files"]:
            directory, _, file = rule_file.rpartition("/")
            self.assertIn(directory, mounts, rule_file)
            self.assertTrue((ROOT / mounts[directory] / file).is_file(), rule_file)
        rules = (ROOT / "alerts/flowforge-rules.yaml").read_text(encoding="utf-8")
        jobs = set(re.findall(r'job="(flowforge-[a-z]+)"', rules))
        scraped = {}
        for job in config["scrape_configs"]:
            targets = [t for s in job.get("static_configs", []) for t in s["targets"]]
            targets += [f"{n}:{d['port']}" for d in job.get("dns_sd_configs", []) for n in d["names"]]
            scraped[job["job_name"]] = targets
        self.assertEqual(set(scraped), jobs)
        for service in LONG_RUNNING:
            target = FLOWFORGE[service]
            admin = port_of(self.image_env(target)["FLOWFORGE_ADMIN_ADDR"])
            self.assertEqual(scraped[target], [f"{service}:{admin}"], target)

    # --- hot reload -------------------------------------------------------------------------------

    def test_watch_rebuilds_each_service_from_what_its_binary_is_built_from(self):
        workspace = tomllib.loads((ROOT / "Cargo.toml").read_text(encoding="utf-8"))
        paths = {
            name: spec["path"]
            for name, spec in workspace["workspace"]["dependencies"].items()
            if isinstance(spec, dict) and "path" in spec
        }
        matcher = PatternMatcher(dockerignore_patterns())
        for name in LONG_RUNNING:
            crate = name
            watch = self.services[name]["develop"]["watch"]
            self.assertEqual({w["action"] for w in watch}, {"rebuild"}, name)
            watched = {os.path.normpath(w["path"]) for w in watch}
            # The crate, its workspace path dependencies, the files every build reads.
            manifest = tomllib.loads((ROOT / crate / "Cargo.toml").read_text(encoding="utf-8"))
            wanted = {crate, "Cargo.toml", "Cargo.lock", "rust-toolchain.toml", "Dockerfile"}
            wanted |= {os.path.normpath(paths[d]) for d in manifest.get("dependencies", {}) if d in paths}
            self.assertLessEqual(wanted, watched, f"{name}: a change to these would not rebuild it")
            for path in watched:
                self.assertTrue((ROOT / path).exists(), f"{name}: {path} does not exist")
                self.assertFalse(excluded(path, matcher), f"{name}: {path} is outside the build context")

    # --- the Dockerfile's build stages ------------------------------------------------------------

    def test_the_compile_stage_installs_the_toolchain_file_before_adding_the_target(self):
        channel = tomllib.loads((ROOT / "rust-toolchain.toml").read_text(encoding="utf-8"))["toolchain"]["channel"]
        arg = [a for s, w, a in self.dockerfile if s is None and w == "ARG" and a.startswith("RUST_VERSION=")]
        self.assertEqual(arg, [f"RUST_VERSION={channel}"], "the base image must carry the toolchain file's Rust")
        steps = stage_of(self.dockerfile, "compile")

        def index(what, matches):
            found = [i for i, (w, a) in enumerate(steps) if matches(w, a)]
            self.assertEqual(len(found), 1, f"compile stage: {what}: {found}")
            return found[0]

        toolchain = index("COPY rust-toolchain.toml", lambda w, a: w == "COPY" and a.split()[0] == "rust-toolchain.toml")
        target = index("rustup target add", lambda w, a: w == "RUN" and "rustup target add x86_64-unknown-linux-musl" in a)
        sources = index("COPY . .", lambda w, a: w == "COPY" and a == ". .")
        self.assertLess(toolchain, target, "rustup target add before the toolchain file is in place")
        self.assertLess(target, sources, "the toolchain layer must not depend on the sources")
        (build,) = [a for w, a in steps if w == "RUN" and "cargo build" in a]
        for target in ("/usr/local/cargo/registry", "/src/target"):
            self.assertRegex(build, rf"--mount=type=cache,(\S+,)?target={re.escape(target)}\b", target)
        self.assertIn("--locked", build)
        for binary in ("flowforge-api", "flowforge-worker", "flowforge-scaler"):
            self.assertIn(f"--bin {binary}", build)
            self.assertIn(f"target/x86_64-unknown-linux-musl/release/{binary}", build)
        self.assertRegex(build, r"/out/?$", "the binaries are copied out of the cache mount into /out")

    def test_the_binaries_stage_is_the_one_the_images_copy_from(self):
        # e2e/tests/images.rs replaces it with a directory: flowforge-{api,worker,scaler} and
        # ca-certificates.crt at its root.
        self.assertEqual(stage_of(self.dockerfile, "binaries"), [("FROM", "scratch AS binaries"), ("COPY", "--from=compile /out/ /")])
        for stage, word, args in self.dockerfile:
            if word == "COPY" and "--from=" in args and stage != "binaries":
                source = re.search(r"--from=(\S+)\s+(\S+)", args)
                self.assertEqual(source.group(1), "binaries", f"{stage}: {args}")
                self.assertIn(source.group(2), {"/flowforge-api", "/flowforge-worker", "/flowforge-scaler", "/ca-certificates.crt"})

    # --- .dockerignore ------------------------------------------------------------------------------

    def test_dockerignore_keeps_build_output_out_of_the_context_at_any_depth(self):
        outside = [
            "target/release/flowforge-api",
            "api/target/debug/x",
            "default_1.profraw",
            "api/default_1_0_2.profraw",
            "scaler/deep/er/x.profdata",
            ".github/lint/node_modules/m/index.js",
            "bench/peers/graphile/node_modules/pg/index.js",
            "terraform/envs/dev/.terraform/providers/p",
            "terraform/envs/dev/terraform.tfstate",
            "terraform/envs/dev/terraform.tfstate.backup",
            "slo/__pycache__/x.pyc",
            ".local/pg/data",
            ".git/HEAD",
            "bench/results/run.json",
        ]
        inside = [
            "Cargo.toml",
            "Cargo.lock",
            "rust-toolchain.toml",
            "core/src/lib.rs",
            "core/migrations/0001_queue.sql",
            "api/src/main.rs",
            "scaler/proto/scaler.proto",
            "bench/run.py",
            "terraform/modules/lambda_api/main.tf",
        ]
        with tempfile.TemporaryDirectory() as tmp:
            for path in outside + inside:
                (Path(tmp) / path).parent.mkdir(parents=True, exist_ok=True)
                (Path(tmp) / path).write_text("x", encoding="utf-8")
            context = exclude_paths(tmp, dockerignore_patterns())
        self.assertEqual(sorted(set(outside) & context), [], "sent with the build context")
        self.assertEqual(sorted(set(inside) - context), [], "missing from the build context")

    def test_everything_the_dockerfile_copies_from_the_context_is_in_it(self):
        matcher = PatternMatcher(dockerignore_patterns())
        for stage, word, args in self.dockerfile:
            if word == "COPY" and "--from=" not in args:
                for source in args.split()[:-1]:
                    if source != ".":
                        self.assertTrue((ROOT / source).exists(), f"{stage}: {source}")
                        self.assertFalse(excluded(source, matcher), f"{stage}: {source} is dockerignored")


if __name__ == "__main__":
    unittest.main()
