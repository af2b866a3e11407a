#!/usr/bin/env bash
# Installs or upgrades the cluster add-ons FlowForge's manifests rely on, each pinned to a chart
# version, with the values files beside this script. Idempotent (helm upgrade --install); run it
# once per cluster, before the first `kubectl apply` of an overlay. Versions and what each add-on
# is for: k8s/addons/README.md.
#
# Usage: CLUSTER_NAME=... AWS_REGION=... VPC_ID=... \
#        LBC_ROLE_ARN=... LOKI_ROLE_ARN=... LOKI_BUCKET_PREFIX=... k8s/addons/install.sh
set -euo pipefail

CERT_MANAGER_VERSION=v1.19.2
AWS_LOAD_BALANCER_CONTROLLER_VERSION=1.16.0  # controller v2.16.0
KEDA_VERSION=2.21.1
EXTERNAL_SECRETS_VERSION=1.1.1
KUBE_PROMETHEUS_STACK_VERSION=79.10.0
LOKI_VERSION=6.49.0
ALLOY_VERSION=1.3.0

: "${CLUSTER_NAME:?the EKS cluster name}"
: "${AWS_REGION:?the cluster region}"
: "${VPC_ID:?the cluster VPC id}"
: "${LBC_ROLE_ARN:?the IRSA role of the AWS Load Balancer Controller}"
: "${LOKI_ROLE_ARN:?the IRSA role Loki writes its S3 buckets with}"
: "${LOKI_BUCKET_PREFIX:?prefix of the S3 buckets of Loki: PREFIX-chunks, PREFIX-ruler}"
VALUES=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/values

helm repo add jetstack https://charts.jetstack.io --force-update
helm repo add eks https://aws.github.io/eks-charts --force-update
helm repo add kedacore https://kedacore.github.io/charts --force-update
helm repo add external-secrets https://charts.external-secrets.io --force-update
helm repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update
helm repo add grafana https://grafana.github.io/helm-charts --force-update
helm repo update

# cert-manager first: the FlowForge namespace's CA and certificates are its resources.
helm upgrade --install cert-manager jetstack/cert-manager --version "$CERT_MANAGER_VERSION" \
    --namespace cert-manager --create-namespace --wait \
    -f "$VALUES/cert-manager.yaml"

helm upgrade --install aws-load-balancer-controller eks/aws-load-balancer-controller \
    --version "$AWS_LOAD_BALANCER_CONTROLLER_VERSION" --namespace kube-system --wait \
    -f "$VALUES/aws-load-balancer-controller.yaml" \
    --set clusterName="$CLUSTER_NAME" --set region="$AWS_REGION" --set vpcId="$VPC_ID" \
    --set serviceAccount.annotations."eks\.amazonaws\.com/role-arn"="$LBC_ROLE_ARN"

helm upgrade --install keda kedacore/keda --version "$KEDA_VERSION" \
    --namespace keda --create-namespace --wait \
    -f "$VALUES/keda.yaml"

helm upgrade --install external-secrets external-secrets/external-secrets \
    --version "$EXTERNAL_SECRETS_VERSION" --namespace external-secrets --create-namespace --wait \
    -f "$VALUES/external-secrets.yaml"

helm upgrade --install kube-prometheus-stack prometheus-community/kube-prometheus-stack \
    --version "$KUBE_PROMETHEUS_STACK_VERSION" --namespace monitoring --create-namespace --wait \
    -f "$VALUES/kube-prometheus-stack.yaml"

helm upgrade --install loki grafana/loki --version "$LOKI_VERSION" \
    --namespace monitoring --wait \
    -f "$VALUES/loki.yaml" \
    --set loki.storage.bucketNames.chunks="$LOKI_BUCKET_PREFIX-chunks" \
    --set loki.storage.bucketNames.ruler="$LOKI_BUCKET_PREFIX-ruler" \
    --set loki.storage.s3.region="$AWS_REGION" \
    --set serviceAccount.annotations."eks\.amazonaws\.com/role-arn"="$LOKI_ROLE_ARN"

helm upgrade --install alloy grafana/alloy --version "$ALLOY_VERSION" \
    --namespace monitoring --wait \
    -f "$VALUES/alloy.yaml"
