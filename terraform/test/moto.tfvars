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
