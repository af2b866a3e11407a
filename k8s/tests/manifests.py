"""Rendered manifests: loading, splitting built-in from custom kinds, and validating the custom ones.

kubernetes-validate knows the built-in kinds only. The custom resources we ship (KEDA,
Prometheus Operator, cert-manager) are validated here against JSON schemas derived from the
pinned cloudcoil-models-* packages (generated from those projects' CRDs; install-deps.sh pins
them), made strict: an object with declared properties accepts no other keys, as the API server
would prune them (a misspelt field would silently do nothing).

    python manifests.py builtin RENDERED.yaml OUT.yaml   # the built-in kinds, for kubernetes-validate
    python manifests.py crds RENDERED.yaml...            # validate the custom kinds; exit 1 on errors
"""

import importlib
import sys

import yaml

# apiVersion group -> cloudcoil module. A custom kind of any other group fails validation (add
# its models here and to install-deps.sh).
CUSTOM_GROUPS = {
    "keda.sh": "cloudcoil.models.keda",
    "monitoring.coreos.com": "cloudcoil.models.prometheus_operator",
    "cert-manager.io": "cloudcoil.models.cert_manager",
}
# Groups served by the API server itself (the rest, with a dot, are custom).
BUILTIN_GROUPS = {
    "",
    "apps",
    "batch",
    "policy",
    "autoscaling",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
}


def load(path):
    """The objects of a multi-document YAML file (empty documents dropped)."""
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def group_of(obj):
    api_version = obj.get("apiVersion", "")
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def is_builtin(obj):
    return group_of(obj) in BUILTIN_GROUPS


def name_of(obj):
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def _strict(schema):
    """Every object schema with properties rejects unknown keys (in place)."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            _strict(value)
    elif isinstance(schema, list):
        for value in schema:
            _strict(value)
    return schema


_SCHEMAS = {}


def schema_for(obj):
    """The strict JSON schema of a custom object's kind and version, or None if we have none."""
    group = group_of(obj)
    version = obj.get("apiVersion", "").rsplit("/", 1)[-1]
    kind = obj.get("kind", "")
    key = (group, version, kind)
    if key not in _SCHEMAS:
        module_name = CUSTOM_GROUPS.get(group)
        model = None
        if module_name:
            try:
                module = importlib.import_module(f"{module_name}.{version}")
                model = getattr(module, kind, None)
            except ModuleNotFoundError:
                model = None
        _SCHEMAS[key] = (
            _strict(model.model_json_schema(by_alias=True, mode="validation")) if model else None
        )
    return _SCHEMAS[key]


def crd_errors(objects):
    """(object name, message) for every custom object that is invalid or has no schema."""
    import jsonschema  # kubernetes-validate's dependency

    out = []
    for obj in objects:
        if is_builtin(obj):
            continue
        schema = schema_for(obj)
        if schema is None:
            out.append((name_of(obj), f"no schema for {obj.get('apiVersion')} {obj.get('kind')}"))
            continue
        validator = jsonschema.Draft202012Validator(schema)
        for error in validator.iter_errors(obj):
            # The deepest, most specific cause of an anyOf/oneOf failure.
            best = jsonschema.exceptions.best_match([error]) or error
            while best.context:
                best = jsonschema.exceptions.best_match(best.context)
            where = "/".join(str(p) for p in best.absolute_path) or "(top)"
            out.append((name_of(obj), f"{where}: {best.message[:300]}"))
    return out


def main(argv):
    if len(argv) == 4 and argv[1] == "builtin":
        objects = [o for o in load(argv[2]) if is_builtin(o)]
        with open(argv[3], "w", encoding="utf-8") as f:
            yaml.safe_dump_all(objects, f, sort_keys=False)
        return 0
    if len(argv) >= 3 and argv[1] == "crds":
        failed = 0
        for path in argv[2:]:
            objects = [o for o in load(path) if not is_builtin(o)]
            errors = crd_errors(objects)
            for name, message in errors:
                print(f"{path}: {name}: {message}")
            failed += len(errors)
            kinds = sorted({o["kind"] for o in objects})
            if not errors:
                print(f"{path}: {len(objects)} custom resources valid ({', '.join(kinds)})")
        return 1 if failed else 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
