# The dev root against moto (scripts/check-infra.sh, "emulator"): what moto 5.2 cannot do is
# switched off here, and only here (docs/terraform.md, "Emulator gaps"). The package paths,
# state_bucket and the endpoint are passed by the script.
enable_budget                = false
enable_eks_addons            = false
enable_eks_access_entries    = false
enable_lambda_api_codedeploy = false
db_rotation_function_source  = "package"
secret_recovery_window_days  = 0
force_destroy                = true
# moto creates instances with the CA rds-ca-default, so a pinned CA makes the provider modify the
# instance right after creating it and wait for it a second time (80 s). In AWS the pin is a no-op:
# rds-ca-rsa2048-g1 is RDS's default for new instances.
db_ca_cert_identifier = null
