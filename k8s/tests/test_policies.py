"""Policy tests of the rendered overlays: what k8s/README.md promises, checked on what ships.

Run (scripts/check-manifests.sh does):
    ~/.cache/flowforge/manifest-venv/bin/python -m unittest discover -s k8s/tests -v

Each overlay is rendered with `kubectl kustomize` (KUBECTL overrides the command), or read from
$FLOWFORGE_RENDERED_DIR/<overlay>.yaml when that is set.
"""

import ipaddress
import os
import re
import shutil
import subprocess
import unittest
from pathlib import Path

import yaml

K8S = Path(__file__).resolve().parent.parent
OVERLAYS = ("dev", "staging", "prod")
COMPONENTS = ("flowforge-api", "flowforge-worker", "flowforge-scaler")
NAMESPACE = "flowforge"
UID = 65532

# The address ranges each overlay must put into the NetworkPolicies: the VPC (ALB -> API), the
# database subnets (5432), the interface endpoint subnets (443).
CIDRS = {
    "dev": {"vpc": "10.10.0.0/16", "db": "10.10.32.0/20", "aws": "10.10.48.0/24"},
    "staging": {"vpc": "10.20.0.0/16", "db": "10.20.32.0/20", "aws": "10.20.48.0/24"},
    "prod": {"vpc": "10.30.0.0/16", "db": "10.30.32.0/20", "aws": "10.30.48.0/24"},
}
# The AWS account of each overlay (k8s/README.md, "What an overlay sets"): its IRSA roles and its
# ACM certificate live there.
ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
# One ServiceAccount, and one IAM role flowforge-<env>-<component>, per component.
SERVICE_ACCOUNTS = {
    "flowforge-api": "api",
    "flowforge-worker": "worker",
    "flowforge-scaler": "scaler",
    "flowforge-migrate": "migrate",
}
# ClusterRoles every cluster has that grant broad access; nothing of FlowForge's may bind them.
BROAD_CLUSTER_ROLES = {"cluster-admin", "admin", "edit", "view"}
# RBAC verbs that hand out more than they name.
ESCALATING_VERBS = {"escalate", "bind", "impersonate"}
HOSTS = {
    "dev": "api.dev.flowforge.example.com",
    "staging": "api.staging.flowforge.example.com",
    "prod": "api.flowforge.example.com",
}
PROMETHEUS = "ns:monitoring/app.kubernetes.io/name=prometheus"
KEDA = "ns:keda/app.kubernetes.io/name=keda-operator"
KUBE_DNS = "ns:kube-system/k8s-app=kube-dns"


def expected_paths(cidrs):
    """Every network path each pod may use, and nothing more: (direction, peer, port)."""
    out = {
        ("egress", KUBE_DNS, "UDP/53"),
        ("egress", KUBE_DNS, "TCP/53"),
        ("egress", f"cidr:{cidrs['db']}", "TCP/5432"),
        ("egress", f"cidr:{cidrs['aws']}", "TCP/443"),
    }
    scrape = {("ingress", PROMETHEUS, "TCP/admin")}
    return {
        "flowforge-api": out | scrape | {("ingress", f"cidr:{cidrs['vpc']}", "TCP/https")},
        "flowforge-worker": out | scrape,
        "flowforge-scaler": out | scrape | {("ingress", KEDA, "TCP/grpc")},
        "flowforge-migrate": out,
    }


# Resources that exist outside the rendered manifests, created once per cluster (k8s/README.md).
EXTERNAL_CONFIGMAPS = {"flowforge-rds-ca"}


def render(overlay):
    rendered = os.environ.get("FLOWFORGE_RENDERED_DIR")
    if rendered:
        text = (Path(rendered) / f"{overlay}.yaml").read_text(encoding="utf-8")
    else:
        kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl") or "kubectl"
        text = subprocess.run(
            [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def duration_seconds(text):
    """'300s', '10s', '1m', '500ms' -> seconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


class Overlay:
    """One rendered overlay and questions about it."""

    def __init__(self, name):
        self.name = name
        self.objects = render(name)

    def of_kind(self, kind):
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind, name):
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        return found[0] if found else None

    def workloads(self):
        """(object, pod template) of every Deployment and Job."""
        return [
            (o, o["spec"]["template"])
            for o in self.objects
            if o["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet")
        ]

    def configmap(self, ref_name):
        """A ConfigMap by the name a pod refers to (kustomize has already added the hash)."""
        return self.get("ConfigMap", ref_name)

    def env(self, container):
        """The container's environment as the kubelet builds it: envFrom, then env wins."""
        out = {}
        for source in container.get("envFrom", []):
            cm = self.configmap(source["configMapRef"]["name"])
            out.update((cm or {}).get("data", {}))
        for var in container.get("env", []):
            if "value" in var:
                out[var["name"]] = var["value"]
            elif "configMapKeyRef" in var.get("valueFrom", {}):
                ref = var["valueFrom"]["configMapKeyRef"]
                out[var["name"]] = ((self.configmap(ref["name"]) or {}).get("data") or {})[ref["key"]]
        return out


def selects(selector, labels):
    """Whether a LabelSelector matches a label set."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def peer_name(peer):
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        return "cidr:" + block["cidr"] + ("" if not block.get("except") else f" except {block['except']}")
    ns = (peer.get("namespaceSelector") or {}).get("matchLabels", {}).get(
        "kubernetes.io/metadata.name", NAMESPACE if "namespaceSelector" not in peer else "*"
    )
    pods = peer.get("podSelector") or {}
    labels = ",".join(f"{k}={v}" for k, v in sorted((pods.get("matchLabels") or {}).items()))
    return f"ns:{ns}/{labels or '*'}"


def per_overlay(test):
    """Runs test(self, overlay) for every overlay, each as a subTest."""

    def run(self):
        for overlay in self.overlays:
            with self.subTest(overlay=overlay.name):
                test(self, overlay)

    run.__name__ = test.__name__
    run.__doc__ = test.__doc__
    return run


class OverlayTests(unittest.TestCase):
    """The same checks for every overlay, each as a subTest per overlay."""

    @classmethod
    def setUpClass(cls):
        cls.overlays = [Overlay(name) for name in OVERLAYS]

    def containers(self, overlay):
        for obj, template in overlay.workloads():
            spec = template["spec"]
            for c in spec.get("initContainers", []) + spec["containers"]:
                yield obj, template, c

    # --- resources and images -------------------------------------------------------------

    @per_overlay
    def test_every_container_has_cpu_and_memory_requests_and_limits(self, overlay):
        for obj, _, c in self.containers(overlay):
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for what in ("cpu", "memory"):
                    self.assertIn(
                        what,
                        res.get(part, {}),
                        f"{obj['kind']}/{obj['metadata']['name']} container {c['name']}: no {part}.{what}",
                    )

    @per_overlay
    def test_images_come_from_the_registry_with_a_tag_and_a_digest_never_latest(self, overlay):
        pattern = re.compile(
            r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/(flowforge-[a-z]+):([A-Za-z0-9._-]+)@sha256:[0-9a-f]{64}$"
        )
        for obj, _, c in self.containers(overlay):
            m = pattern.match(c["image"])
            self.assertIsNotNone(m, f"{obj['metadata']['name']}: image {c['image']!r} is not registry/name:tag@sha256:digest")
            self.assertNotEqual(m.group(2), "latest", c["image"])

    # --- identity ---------------------------------------------------------------------------

    @per_overlay
    def test_no_pod_uses_the_default_service_account_or_mounts_a_token(self, overlay):
        accounts = {sa["metadata"]["name"]: sa for sa in overlay.of_kind("ServiceAccount")}
        for obj, template, _ in self.containers(overlay):
            spec = template["spec"]
            name = spec.get("serviceAccountName")
            where = f"{obj['kind']}/{obj['metadata']['name']}"
            self.assertNotIn(name, (None, "", "default"), f"{where} uses the default ServiceAccount")
            self.assertIn(name, accounts, f"{where}: ServiceAccount {name} is not in the manifests")
            self.assertIs(spec.get("automountServiceAccountToken"), False, where)
            self.assertIs(accounts[name].get("automountServiceAccountToken"), False, name)

    @per_overlay
    def test_every_service_account_has_its_own_irsa_role_in_the_overlays_account(self, overlay):
        account = ACCOUNTS[overlay.name]
        seen = {}
        for sa in overlay.of_kind("ServiceAccount"):
            name = sa["metadata"]["name"]
            self.assertIn(name, SERVICE_ACCOUNTS, f"ServiceAccount {name} is not one of the components'")
            arn = sa["metadata"].get("annotations", {}).get("eks.amazonaws.com/role-arn", "")
            m = re.fullmatch(r"arn:aws:iam::(\d{12}):role/([\w+=,.@-]+)", arn)
            self.assertIsNotNone(m, f"{name}: no IRSA role ARN: {arn!r}")
            self.assertEqual(m.group(1), account, f"{name}: role in account {m.group(1)}, not {overlay.name}'s")
            self.assertEqual(m.group(2), f"flowforge-{overlay.name}-{SERVICE_ACCOUNTS[name]}", name)
            seen[name] = arn
        self.assertEqual(set(seen), set(SERVICE_ACCOUNTS), "a component without its ServiceAccount")
        self.assertEqual(len(seen), len(set(seen.values())), "two ServiceAccounts share an IAM role")

    @per_overlay
    def test_no_rbac_with_wildcards(self, overlay):
        """Roles and ClusterRoles name what they allow: no `*`, no escalating verbs, no aggregation."""
        for role in overlay.of_kind("Role") + overlay.of_kind("ClusterRole"):
            where = f"{role['kind']}/{role['metadata']['name']}"
            self.assertFalse(role.get("aggregationRule"), f"{where}: aggregates whatever other roles grant")
            for rule in role.get("rules") or []:
                for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                    for value in rule.get(field) or []:
                        self.assertNotIn("*", value, f"{where}: {field} {value}")
                self.assertFalse(ESCALATING_VERBS & set(rule.get("verbs") or []), f"{where}: {rule['verbs']}")

    @per_overlay
    def test_role_bindings_grant_only_our_roles_to_our_service_accounts(self, overlay):
        """No ClusterRoleBinding (nothing needs cluster-wide rights); a RoleBinding binds a Role or
        ClusterRole of these manifests (so the wildcard test has seen it), never a built-in broad one,
        and only to the components' own ServiceAccounts, never `default`, a user or a group."""
        self.assertEqual(
            [b["metadata"]["name"] for b in overlay.of_kind("ClusterRoleBinding")], [], "ClusterRoleBindings"
        )
        ours = {(r["kind"], r["metadata"]["name"]) for r in overlay.of_kind("Role") + overlay.of_kind("ClusterRole")}
        accounts = {sa["metadata"]["name"] for sa in overlay.of_kind("ServiceAccount")}
        for binding in overlay.of_kind("RoleBinding"):
            where = f"RoleBinding/{binding['metadata']['name']}"
            ref = binding["roleRef"]
            self.assertNotIn(ref["name"], BROAD_CLUSTER_ROLES, f"{where} binds {ref['name']}")
            self.assertFalse(ref["name"].startswith("system:"), f"{where} binds {ref['name']}")
            self.assertIn((ref["kind"], ref["name"]), ours, f"{where}: {ref['kind']} {ref['name']} is not in the manifests")
            self.assertTrue(binding.get("subjects"), f"{where}: no subjects")
            for subject in binding["subjects"]:
                self.assertEqual(subject["kind"], "ServiceAccount", f"{where}: binds {subject}")
                self.assertNotEqual(subject["name"], "default", f"{where}: binds the default ServiceAccount")
                self.assertIn(subject["name"], accounts, f"{where}: binds {subject['name']}")
                self.assertEqual(subject.get("namespace", NAMESPACE), NAMESPACE, where)

    # --- pod security -------------------------------------------------------------------------

    @per_overlay
    def test_namespace_enforces_the_restricted_pod_security_standard(self, overlay):
        ns = overlay.get("Namespace", NAMESPACE)
        self.assertIsNotNone(ns)
        labels = ns["metadata"]["labels"]
        for mode in ("enforce", "warn", "audit"):
            self.assertEqual(labels.get(f"pod-security.kubernetes.io/{mode}"), "restricted", mode)
        # Everything else lives in that namespace.
        for obj in overlay.objects:
            if obj["kind"] != "Namespace":
                self.assertEqual(obj["metadata"].get("namespace"), NAMESPACE, obj["metadata"]["name"])

    @per_overlay
    def test_pods_and_containers_are_restricted(self, overlay):
        for obj, template, c in self.containers(overlay):
            pod = template["spec"].get("securityContext", {})
            sc = c.get("securityContext", {})
            where = f"{obj['metadata']['name']}/{c['name']}"

            def effective(key):
                return sc.get(key, pod.get(key))

            self.assertIs(effective("runAsNonRoot"), True, where)
            self.assertEqual(effective("runAsUser"), UID, where)
            self.assertEqual(effective("runAsGroup"), UID, where)
            self.assertEqual((effective("seccompProfile") or {}).get("type"), "RuntimeDefault", where)
            self.assertIs(sc.get("allowPrivilegeEscalation"), False, where)
            self.assertIs(sc.get("readOnlyRootFilesystem"), True, where)
            self.assertNotEqual(sc.get("privileged"), True, where)
            self.assertEqual(sc.get("capabilities", {}).get("drop"), ["ALL"], where)
            self.assertFalse(sc.get("capabilities", {}).get("add"), where)
            spec = template["spec"]
            for host in ("hostNetwork", "hostPID", "hostIPC"):
                self.assertFalse(spec.get(host), f"{where}: {host}")
            for volume in spec.get("volumes", []):
                self.assertNotIn("hostPath", volume, where)

    # --- probes, ports, rollouts --------------------------------------------------------------

    @per_overlay
    def test_deployments_probe_healthz_and_readyz_on_a_named_port(self, overlay):
        for dep in overlay.of_kind("Deployment"):
            for c in dep["spec"]["template"]["spec"]["containers"]:
                ports = {p.get("name") for p in c.get("ports", [])}
                for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                    get = c.get(probe, {}).get("httpGet", {})
                    where = f"{dep['metadata']['name']}: {probe}"
                    self.assertEqual(get.get("path"), path, where)
                    self.assertIn(get.get("port"), ports, f"{where}: port must be one of the named ports")

    @per_overlay
    def test_every_port_is_named_and_services_target_named_ports_of_their_pods(self, overlay):
        for _, _, c in self.containers(overlay):
            for p in c.get("ports", []):
                self.assertTrue(p.get("name"), f"{c['name']}: port {p['containerPort']} has no name")
        for svc in overlay.of_kind("Service"):
            self.assertEqual(svc["spec"].get("type", "ClusterIP"), "ClusterIP", svc["metadata"]["name"])
            pods = [
                t for _, t in overlay.workloads() if selects({"matchLabels": svc["spec"]["selector"]}, t["metadata"]["labels"])
            ]
            self.assertTrue(pods, f"Service {svc['metadata']['name']} selects no pod")
            names = {p["name"] for t in pods for c in t["spec"]["containers"] for p in c.get("ports", [])}
            for port in svc["spec"]["ports"]:
                self.assertTrue(port.get("name"), svc["metadata"]["name"])
                self.assertIsInstance(port.get("targetPort"), str, f"{svc['metadata']['name']}: targetPort by name")
                self.assertIn(port["targetPort"], names, svc["metadata"]["name"])

    @per_overlay
    def test_deployments_roll_with_zero_unavailable_and_a_surge(self, overlay):
        scaled = {h["spec"]["scaleTargetRef"]["name"] for h in overlay.of_kind("HorizontalPodAutoscaler")}
        scaled |= {s["spec"]["scaleTargetRef"]["name"] for s in overlay.of_kind("ScaledObject")}
        for dep in overlay.of_kind("Deployment"):
            name = dep["metadata"]["name"]
            rolling = dep["spec"]["strategy"]["rollingUpdate"]
            self.assertEqual(dep["spec"]["strategy"]["type"], "RollingUpdate", name)
            self.assertIn(rolling.get("maxUnavailable"), (0, "0%"), name)
            self.assertNotIn(rolling.get("maxSurge"), (None, 0, "0%"), name)
            if name in scaled:
                self.assertNotIn("replicas", dep["spec"], f"{name}: autoscaled, an apply must not reset replicas")

    @per_overlay
    def test_every_deployment_has_a_disruption_budget(self, overlay):
        pdbs = overlay.of_kind("PodDisruptionBudget")
        for dep in overlay.of_kind("Deployment"):
            labels = dep["spec"]["template"]["metadata"]["labels"]
            self.assertTrue(
                [p for p in pdbs if selects(p["spec"]["selector"], labels)],
                f"{dep['metadata']['name']} has no PodDisruptionBudget",
            )

    @per_overlay
    def test_termination_grace_covers_the_drain(self, overlay):
        for dep in overlay.of_kind("Deployment"):
            spec = dep["spec"]["template"]["spec"]
            env = overlay.env(spec["containers"][0])
            drain = duration_seconds(env.get("FLOWFORGE_SHUTDOWN_GRACE", "25s"))
            drain += duration_seconds(env.get("FLOWFORGE_SHUTDOWN_DELAY", "0s"))
            grace = spec.get("terminationGracePeriodSeconds", 30)
            self.assertGreaterEqual(
                grace, drain + 10, f"{dep['metadata']['name']}: {grace}s does not cover a {drain}s drain + 10s"
            )

    @per_overlay
    def test_workers_drain_for_the_longest_task_the_api_accepts(self, overlay):
        # A task running when its worker is scaled in must be able to finish there.
        api = overlay.get("Deployment", "flowforge-api")
        worker = overlay.get("Deployment", "flowforge-worker")
        api_env = overlay.env(api["spec"]["template"]["spec"]["containers"][0])
        worker_env = overlay.env(worker["spec"]["template"]["spec"]["containers"][0])
        self.assertIn("FLOWFORGE_MAX_TASK_TIMEOUT", api_env, "the API's default is 24 h")
        longest = duration_seconds(api_env["FLOWFORGE_MAX_TASK_TIMEOUT"])
        drain = duration_seconds(worker_env.get("FLOWFORGE_SHUTDOWN_GRACE", "25s"))
        self.assertGreaterEqual(drain, longest, "the worker drains for less than the longest task")
        grace = worker["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
        self.assertGreaterEqual(grace, longest + 10)

    @per_overlay
    def test_services_listen_on_all_interfaces_inside_the_pod(self, overlay):
        # The binaries bind 127.0.0.1 by default: a probe or a peer could not reach them.
        for dep in overlay.of_kind("Deployment"):
            c = dep["spec"]["template"]["spec"]["containers"][0]
            env = overlay.env(c)
            ports = {p["containerPort"] for p in c["ports"]}
            for key in ("FLOWFORGE_ADMIN_ADDR", "FLOWFORGE_API_ADDR", "FLOWFORGE_GRPC_ADDR"):
                if key in env:
                    host, port = env[key].rsplit(":", 1)
                    self.assertEqual(host, "0.0.0.0", key)
                    self.assertIn(int(port), ports, f"{dep['metadata']['name']}: {key} is not a container port")
            self.assertIn("FLOWFORGE_ADMIN_ADDR", env, dep["metadata"]["name"])

    @per_overlay
    def test_everything_a_pod_mounts_or_reads_exists(self, overlay):
        secrets = {c["spec"]["secretName"] for c in overlay.of_kind("Certificate")}
        configmaps = {c["metadata"]["name"] for c in overlay.of_kind("ConfigMap")} | EXTERNAL_CONFIGMAPS
        for obj, template, c in self.containers(overlay):
            for volume in template["spec"].get("volumes", []):
                if "secret" in volume:
                    self.assertIn(volume["secret"]["secretName"], secrets, obj["metadata"]["name"])
                if "configMap" in volume:
                    self.assertIn(volume["configMap"]["name"], configmaps, obj["metadata"]["name"])
            for source in c.get("envFrom", []):
                self.assertIn(source["configMapRef"]["name"], configmaps, obj["metadata"]["name"])
            env = overlay.env(c)
            self.assertTrue(env.get("FLOWFORGE_DB_SECRET", "").startswith("aws-sm:flowforge/" + overlay.name + "/"))
            self.assertEqual(env.get("FLOWFORGE_DB_SSLMODE"), "verify-full")

    @per_overlay
    def test_the_migration_job_runs_migrate_as_the_schema_owner(self, overlay):
        job = overlay.get("Job", "flowforge-migrate")
        c = job["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(c["args"], ["migrate"])
        self.assertIn("/flowforge-api:", c["image"])
        self.assertEqual(overlay.env(c)["FLOWFORGE_DB_SECRET"], f"aws-sm:flowforge/{overlay.name}/db-owner")
        for dep in overlay.of_kind("Deployment"):
            env = overlay.env(dep["spec"]["template"]["spec"]["containers"][0])
            self.assertEqual(env["FLOWFORGE_DB_SECRET"], f"aws-sm:flowforge/{overlay.name}/db", dep["metadata"]["name"])

    # --- network ---------------------------------------------------------------------------------

    @per_overlay
    def test_a_default_deny_covers_every_pod_in_both_directions(self, overlay):
        denies = [
            p
            for p in overlay.of_kind("NetworkPolicy")
            if p["spec"]["podSelector"] == {}
            and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress")
            and not p["spec"].get("egress")
        ]
        self.assertTrue(denies, "no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)")

    def paths(self, overlay, template):
        """Every (direction, peer, port) the NetworkPolicies open for this pod."""
        labels = template["metadata"]["labels"]
        out = set()
        for policy in overlay.of_kind("NetworkPolicy"):
            spec = policy["spec"]
            if not selects(spec["podSelector"], labels) and spec["podSelector"] != {}:
                continue
            for direction, key, peers in (("ingress", "ingress", "from"), ("egress", "egress", "to")):
                for rule in spec.get(key) or []:
                    where = f"NetworkPolicy {policy['metadata']['name']}"
                    self.assertTrue(rule.get(peers), f"{where}: a {direction} rule without peers allows everyone")
                    self.assertTrue(rule.get("ports"), f"{where}: a {direction} rule without ports allows every port")
                    for peer in rule[peers]:
                        if "ipBlock" in peer:
                            net = ipaddress.ip_network(peer["ipBlock"]["cidr"])
                            self.assertGreater(net.prefixlen, 8, f"{where}: {net} is too wide")
                        for port in rule["ports"]:
                            out.add((direction, peer_name(peer), f"{port.get('protocol', 'TCP')}/{port['port']}"))
        return out

    @per_overlay
    def test_every_pod_may_use_exactly_the_paths_it_needs(self, overlay):
        expected = expected_paths(CIDRS[overlay.name])
        seen = set()
        for obj, template in overlay.workloads():
            name = template["metadata"]["labels"]["app.kubernetes.io/name"]
            self.assertIn(name, expected, f"{obj['metadata']['name']}: no expected network paths in this test")
            self.assertEqual(self.paths(overlay, template), expected[name], name)
            seen.add(name)
        self.assertEqual(seen, set(expected))

    @per_overlay
    def test_named_ports_in_network_policies_exist_on_the_pods_they_select(self, overlay):
        for policy in overlay.of_kind("NetworkPolicy"):
            for rule in policy["spec"].get("ingress") or []:
                for port in rule["ports"]:
                    if not isinstance(port["port"], str):
                        continue
                    for _, template in overlay.workloads():
                        if selects(policy["spec"]["podSelector"], template["metadata"]["labels"]):
                            names = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
                            self.assertIn(port["port"], names, f"{policy['metadata']['name']} -> {template['metadata']['labels']}")

    @per_overlay
    def test_overlay_ranges_lie_inside_the_vpc(self, overlay):
        vpc = ipaddress.ip_network(CIDRS[overlay.name]["vpc"])
        for key in ("db", "aws"):
            self.assertTrue(ipaddress.ip_network(CIDRS[overlay.name][key]).subnet_of(vpc), key)

    # --- ingress ---------------------------------------------------------------------------------

    @per_overlay
    def test_the_api_ingress_is_https_only_end_to_end(self, overlay):
        (ing,) = overlay.of_kind("Ingress")
        a = ing["metadata"]["annotations"]
        self.assertEqual(ing["spec"]["ingressClassName"], "alb")
        self.assertEqual(yaml.safe_load(a["alb.ingress.kubernetes.io/listen-ports"]), [{"HTTPS": 443}])
        self.assertEqual(a["alb.ingress.kubernetes.io/backend-protocol"], "HTTPS")
        self.assertEqual(a["alb.ingress.kubernetes.io/target-type"], "ip")
        self.assertTrue(a["alb.ingress.kubernetes.io/ssl-policy"].startswith("ELBSecurityPolicy-TLS13"))
        self.assertRegex(
            a["alb.ingress.kubernetes.io/certificate-arn"], rf"^arn:aws:acm:[a-z0-9-]+:{ACCOUNTS[overlay.name]}:certificate/"
        )
        hosts = [r["host"] for r in ing["spec"]["rules"]]
        self.assertEqual(hosts, [HOSTS[overlay.name]])
        self.assertEqual(hosts, [h for t in ing["spec"]["tls"] for h in t["hosts"]])
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                port = path["backend"]["service"]["port"]
                self.assertEqual(port, {"name": "https"})
        # The pods serve that port with TLS.
        api = overlay.get("Deployment", "flowforge-api")
        env = overlay.env(api["spec"]["template"]["spec"]["containers"][0])
        self.assertIn("FLOWFORGE_API_TLS_CERT", env)
        self.assertIn("FLOWFORGE_API_TLS_KEY", env)

    # --- autoscaling and monitoring -----------------------------------------------------------------

    @per_overlay
    def test_autoscalers_target_existing_deployments(self, overlay):
        deployments = {d["metadata"]["name"] for d in overlay.of_kind("Deployment")}
        for obj in overlay.of_kind("HorizontalPodAutoscaler") + overlay.of_kind("ScaledObject"):
            self.assertIn(obj["spec"]["scaleTargetRef"]["name"], deployments)
        self.assertIsNotNone(overlay.get("HorizontalPodAutoscaler", "flowforge-api"))
        self.assertIsNotNone(overlay.get("ScaledObject", "flowforge-worker"))

    @per_overlay
    def test_workers_serve_the_triggers_queues_at_its_target(self, overlay):
        (trigger,) = overlay.get("ScaledObject", "flowforge-worker")["spec"]["triggers"]
        worker = overlay.get("Deployment", "flowforge-worker")
        env = overlay.env(worker["spec"]["template"]["spec"]["containers"][0])
        self.assertEqual(set(env["FLOWFORGE_QUEUES"].split(",")), set(trigger["metadata"]["queues"].split(",")))
        self.assertEqual(float(env["FLOWFORGE_CONCURRENCY"]), float(trigger["metadata"]["targetTasksPerWorker"]))
        self.assertEqual(trigger["metadata"]["scalerAddress"], f"flowforge-scaler.{NAMESPACE}.svc.cluster.local:6000")
        cert = overlay.get("Certificate", "flowforge-scaler-tls")
        self.assertIn(trigger["metadata"]["scalerAddress"].rsplit(":", 1)[0], cert["spec"]["dnsNames"])

    @per_overlay
    def test_pod_monitors_produce_the_job_labels_the_rules_use(self, overlay):
        (rule,) = overlay.of_kind("PrometheusRule")
        wanted = set(re.findall(r'job="(flowforge-[a-z]+)"', yaml.safe_dump(rule["spec"])))
        self.assertEqual(wanted, set(COMPONENTS))
        jobs = set()
        for monitor in overlay.of_kind("PodMonitor"):
            label = monitor["spec"].get("jobLabel")
            self.assertEqual(label, "app.kubernetes.io/name", monitor["metadata"]["name"])
            for _, template in overlay.workloads():
                labels = template["metadata"]["labels"]
                if selects(monitor["spec"]["selector"], labels):
                    jobs.add(labels[label])
                    names = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
                    for endpoint in monitor["spec"]["podMetricsEndpoints"]:
                        self.assertIn(endpoint["port"], names)
        self.assertEqual(jobs, wanted)

    @per_overlay
    def test_pods_carry_the_loki_app_label(self, overlay):
        # Loki's stream label `app` is the pod label app.kubernetes.io/name (k8s/addons).
        for obj, template in overlay.workloads():
            self.assertRegex(template["metadata"]["labels"].get("app.kubernetes.io/name", ""), r"^flowforge-")
            self.assertEqual(template["metadata"]["labels"].get("app.kubernetes.io/environment"), overlay.name)

    def test_prod_spreads_every_deployment_over_zones(self):
        prod = next(o for o in self.overlays if o.name == "prod")
        for dep in prod.of_kind("Deployment"):
            keys = {c["topologyKey"] for c in dep["spec"]["template"]["spec"].get("topologySpreadConstraints", [])}
            self.assertIn("topology.kubernetes.io/zone", keys, dep["metadata"]["name"])


if __name__ == "__main__":
    unittest.main()
