//! `flowforge-api`: see `flowforge_api` for everything but start-up.
#![forbid(unsafe_code)]

use flowforge_api::app::{AppError, Application};
use flowforge_api::config::{Command, Config};
use flowforge_core::config::{exit_config_error, parse_or_exit};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    flowforge_core::config::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let config: Config = parse_or_exit();
    if let Err(reason) = config.validate() {
        exit_config_error(&reason);
    }
    if let Some(Command::Healthcheck) = config.command {
        return flowforge_core::admin::healthcheck(config.admin_addr)
            .await
            .map_err(anyhow::Error::msg);
    }
    flowforge_core::telemetry::init_logs(&config.log.log_format, std::io::stderr);
    if let Some(Command::Migrate) = config.command {
        return Ok(flowforge_core::db::migrate_command(
            &config.db,
            &config.secrets,
            "flowforge-api",
        )
        .await?);
    }
    let shutdown = flowforge_core::shutdown::shutdown_signal();
    let served = if flowforge_api::lambda::enabled() {
        flowforge_api::lambda::run(config, shutdown).await
    } else {
        match Application::build(config).await {
            Ok(app) => app.run_until_stopped(shutdown).await,
            Err(err) => Err(err),
        }
    };
    match served {
        Ok(()) => Ok(()),
        Err(AppError::Config(reason)) => exit_config_error(&reason),
        // An address that cannot be bound is configuration the operator must change.
        Err(err @ AppError::Bind { .. }) => exit_config_error(&err.to_string()),
        Err(err) => Err(err.into()),
    }
}
