"""What exists in a moto server, listed through its API (boto3, as an AWS client would).

Used by scripts/check-infra.sh to prove that `terraform destroy` left nothing behind.

  inventory.py URL REGION                      JSON {kind: [ids]} of every kind below
  inventory.py URL REGION --objects BUCKET     the object keys of an S3 bucket
  inventory.py URL REGION --make-bucket B      an (unversioned) bucket for the test's state
  inventory.py URL REGION --drop-bucket B      empty and delete it
  inventory.py --compare BEFORE AFTER_APPLY AFTER_DESTROY
                                               table of counts; exit 1 if anything that was
                                               not there before is still there at the end

What AWS itself makes or keeps is not counted: the default VPC and its parts, each VPC's default
network ACL and security group, AWS's own aliases and parameter groups, and KMS keys in
PendingDeletion (a deleted key waits out its
deletion window, 7 to 30 days, in AWS as in moto).
"""

import json
import sys

import boto3
import botocore.config

ACCOUNT = "123456789012"


def clients(url, region):
    def client(name):
        return boto3.client(
            name,
            endpoint_url=url,
            region_name=region,
            aws_access_key_id="moto",
            aws_secret_access_key="moto",
            config=botocore.config.Config(s3={"addressing_style": "path"}),
        )

    return client


def inventory(url, region):
    c = clients(url, region)
    ec2, iam, kms = c("ec2"), c("iam"), c("kms")
    default_vpcs = {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v.get("IsDefault")}

    def not_default_vpc(items):
        return [i for i in items if i.get("VpcId") not in default_vpcs]

    inv = {
        "ec2:vpc": [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")],
        "ec2:subnet": [s["SubnetId"] for s in not_default_vpc(ec2.describe_subnets()["Subnets"])],
        "ec2:security-group": [
            g["GroupId"]
            for g in not_default_vpc(ec2.describe_security_groups()["SecurityGroups"])
            if g["GroupName"] != "default"
        ],
        "ec2:route-table": [
            r["RouteTableId"] for r in not_default_vpc(ec2.describe_route_tables()["RouteTables"])
        ],
        "ec2:network-acl": [
            a["NetworkAclId"]
            for a in not_default_vpc(ec2.describe_network_acls()["NetworkAcls"])
            if not a.get("IsDefault")
        ],
        "ec2:internet-gateway": [
            g["InternetGatewayId"]
            for g in ec2.describe_internet_gateways()["InternetGateways"]
            if not any(a.get("VpcId") in default_vpcs for a in g.get("Attachments", []))
        ],
        "ec2:nat-gateway": [
            n["NatGatewayId"]
            for n in ec2.describe_nat_gateways()["NatGateways"]
            if n["State"] not in ("deleted", "deleting")
        ],
        "ec2:elastic-ip": [a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]],
        "ec2:vpc-endpoint": [
            e["VpcEndpointId"]
            for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]
            if e["State"].lower() not in ("deleted", "deleting")
        ],
        "ec2:flow-log": [f["FlowLogId"] for f in ec2.describe_flow_logs()["FlowLogs"]],
        "ec2:launch-template": [
            t["LaunchTemplateId"] for t in ec2.describe_launch_templates()["LaunchTemplates"]
        ],
        "iam:role": [r["RoleName"] for r in iam.list_roles()["Roles"]],
        "iam:policy": [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]],
        "iam:oidc-provider": [
            p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
        ],
        "kms:key": [
            k["KeyId"]
            for k in kms.list_keys()["Keys"]
            if kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] != "PendingDeletion"
        ],
        "kms:alias": [
            a["AliasName"]
            for a in kms.list_aliases()["Aliases"]
            if not a["AliasName"].startswith("alias/aws/")
        ],
        "secretsmanager:secret": [s["Name"] for s in c("secretsmanager").list_secrets()["SecretList"]],
        "rds:db-instance": [
            d["DBInstanceIdentifier"] for d in c("rds").describe_db_instances()["DBInstances"]
        ],
        "rds:db-subnet-group": [
            g["DBSubnetGroupName"] for g in c("rds").describe_db_subnet_groups()["DBSubnetGroups"]
        ],
        "rds:db-parameter-group": [
            g["DBParameterGroupName"]
            for g in c("rds").describe_db_parameter_groups()["DBParameterGroups"]
            if not g["DBParameterGroupName"].startswith("default.")
        ],
        "eks:cluster": c("eks").list_clusters()["clusters"],
        "ecr:repository": [
            r["repositoryName"] for r in c("ecr").describe_repositories()["repositories"]
        ],
        "lambda:function": [f["FunctionName"] for f in c("lambda").list_functions()["Functions"]],
        "apigatewayv2:api": [a["ApiId"] for a in c("apigatewayv2").get_apis()["Items"]],
        "codedeploy:application": c("codedeploy").list_applications()["applications"],
        "logs:log-group": [g["logGroupName"] for g in c("logs").describe_log_groups()["logGroups"]],
        "sns:topic": [t["TopicArn"] for t in c("sns").list_topics()["Topics"]],
        "sns:subscription": [
            s["SubscriptionArn"] for s in c("sns").list_subscriptions()["Subscriptions"]
        ],
        "budgets:budget": [
            b["BudgetName"]
            for b in c("budgets").describe_budgets(AccountId=ACCOUNT).get("Budgets", [])
        ],
        "s3:bucket": [b["Name"] for b in c("s3").list_buckets()["Buckets"]],
        "cloudwatch:alarm": [
            a["AlarmName"]
            for kind in ("MetricAlarms", "CompositeAlarms")
            for a in c("cloudwatch").describe_alarms().get(kind, [])
        ],
    }
    clusters = inv["eks:cluster"]
    inv["eks:nodegroup"] = [
        f"{cl}/{ng}" for cl in clusters for ng in c("eks").list_nodegroups(clusterName=cl)["nodegroups"]
    ]
    return inv


def objects(url, region, bucket):
    s3 = clients(url, region)("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return ", ".join(keys) or "(none)"


def make_bucket(url, region, bucket):
    s3 = clients(url, region)("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})


def drop_bucket(url, region, bucket):
    s3 = clients(url, region)("s3")
    for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=o["Key"])
    s3.delete_bucket(Bucket=bucket)


def compare(before_path, applied_path, after_path):
    with open(before_path) as f:
        before = json.load(f)
    with open(applied_path) as f:
        applied = json.load(f)
    with open(after_path) as f:
        after = json.load(f)
    left = {}
    lines = [f"    {'kind':<26} {'before':>6} {'applied':>7} {'after':>5}"]
    total_applied = 0
    for kind in sorted(set(before) | set(applied) | set(after)):
        b, a, z = before.get(kind, []), applied.get(kind, []), after.get(kind, [])
        total_applied += len(set(a) - set(b))
        lines.append(f"    {kind:<26} {len(b):>6} {len(a):>7} {len(z):>5}")
        extra = sorted(set(z) - set(b))
        if extra:
            left[kind] = extra
    lines.append(f"    emulator objects created by the applies: {total_applied}")
    if left:
        lines.append("    LEFT AFTER DESTROY:")
        for kind, ids in left.items():
            lines.append(f"      {kind}: {', '.join(ids)}")
    else:
        lines.append("    nothing left after destroy")
    print("\n".join(lines))
    return 1 if left else 0


def main():
    args = sys.argv[1:]
    if args and args[0] == "--compare":
        return compare(*args[1:4])
    url, region = args[0], args[1]
    if len(args) > 3 and args[2] == "--objects":
        print(objects(url, region, args[3]))
        return 0
    if len(args) > 3 and args[2] == "--make-bucket":
        make_bucket(url, region, args[3])
        return 0
    if len(args) > 3 and args[2] == "--drop-bucket":
        drop_bucket(url, region, args[3])
        return 0
    print(json.dumps(inventory(url, region), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
