"""The pairing of add-on versions and CRD model versions stays written down, and true.

k8s/addons/README.md ("Schemas the checks validate against") lists, per add-on whose custom
resources the manifests use, the version k8s/addons/install.sh installs and the CRD models
scripts/install-deps.sh pins for the checks. They do not match (the README says why); this test
makes sure the table says what the two scripts do, so that a bump on either side cannot leave the
documented gap stale. Run by scripts/check-manifests.sh with the policy tests.
"""

import re
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
README = ROOT / "k8s/addons/README.md"
INSTALL = ROOT / "k8s/addons/install.sh"
INSTALL_DEPS = ROOT / "scripts/install-deps.sh"
# The custom resource groups the manifests use (k8s/tests/manifests.py), by add-on.
ADDONS = {
    "KEDA": ("KEDA_VERSION", "cloudcoil-models-keda"),
    "kube-prometheus-stack": ("KUBE_PROMETHEUS_STACK_VERSION", "cloudcoil-models-prometheus-operator"),
    "cert-manager": ("CERT_MANAGER_VERSION", "cloudcoil-models-cert-manager"),
}


def table_rows():
    text = README.read_text(encoding="utf-8")
    section = text.split("## Schemas the checks validate against", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] in ADDONS:
            rows[cells[0]] = cells
    return rows


class AddonSchemaTests(unittest.TestCase):
    def test_the_readme_pairs_the_installed_add_ons_with_the_pinned_models(self):
        rows = table_rows()
        self.assertEqual(set(rows), set(ADDONS), "k8s/addons/README.md: a row per add-on")
        install = INSTALL.read_text(encoding="utf-8")
        deps = INSTALL_DEPS.read_text(encoding="utf-8")
        for addon, (variable, package) in ADDONS.items():
            installed = re.search(rf"^{variable}=(\S+)", install, re.MULTILINE)
            self.assertIsNotNone(installed, f"{variable} not in install.sh")
            self.assertIn(f"`{variable}={installed.group(1)}`", rows[addon][1], addon)
            pinned = re.search(rf"\b{re.escape(package)}==([0-9.]+)", deps)
            self.assertIsNotNone(pinned, f"{package} not pinned in install-deps.sh")
            self.assertIn(f"`{package}=={pinned.group(1)}`", rows[addon][3], addon)
        # Every custom group manifests.py validates has its add-on here.
        manifests = (ROOT / "k8s/tests/manifests.py").read_text(encoding="utf-8")
        modules = set(re.findall(r'"cloudcoil\.models\.(\w+)"', manifests))
        self.assertEqual(modules, {p.removeprefix("cloudcoil-models-").replace("-", "_") for _, p in ADDONS.values()})


if __name__ == "__main__":
    unittest.main()
