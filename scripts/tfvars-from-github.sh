#!/usr/bin/env bash
# Writes github.auto.tfvars.json into the current directory (a terraform/envs/<env> root) from
# the GitHub variables the Terraform workflows pass in the environment, so that a CI plan or
# apply uses the same account-specific values as the operator's first apply (docs/deploy.md,
# step 8). Unset or empty variables are left out (the root's default, or a committed
# *.auto.tfvars, applies); Terraform loads this file after ci.auto.tfvars, so these values win.
#
#   TF_STATE_BUCKET            -> state_bucket
#   TF_STATE_KMS_KEY_ARN       -> state_kms_key_arn
#   ECR_REGISTRY               -> ecr_registry_id
#   GITHUB_REPOSITORY          -> github_repository (set by GitHub Actions: OWNER/NAME)
#   ALERT_EMAILS               -> alert_emails (comma-separated)
#   EKS_ADMIN_PRINCIPAL_ARNS   -> eks_admin_principal_arns (comma-separated)
set -euo pipefail

python3 - <<'PY'
import json
import os


def one(name):
    value = os.environ.get(name, "").strip()
    return value or None


def many(name):
    value = one(name)
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


values = {
    "state_bucket": one("TF_STATE_BUCKET"),
    "state_kms_key_arn": one("TF_STATE_KMS_KEY_ARN"),
    "ecr_registry_id": one("ECR_REGISTRY"),
    "github_repository": one("GITHUB_REPOSITORY"),
    "alert_emails": many("ALERT_EMAILS"),
    "eks_admin_principal_arns": many("EKS_ADMIN_PRINCIPAL_ARNS"),
}
values = {k: v for k, v in values.items() if v is not None}
with open("github.auto.tfvars.json", "w") as f:
    json.dump(values, f, indent=2)
    f.write("\n")
print("github.auto.tfvars.json:", ", ".join(sorted(values)) or "(empty)")
PY
