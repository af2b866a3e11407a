//! `flowforge-scaler`: see `flowforge_scaler` for everything but start-up.
#![forbid(unsafe_code)]

use flowforge_core::config::{exit_config_error, parse_or_exit};
use flowforge_scaler::app::{Application, Error};
use flowforge_scaler::config::{Command, Config};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    flowforge_core::config::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let config: Config = parse_or_exit();
    if let Err(reason) = config.validate() {
        exit_config_error(&reason);
    }
    flowforge_core::telemetry::init_logs(&config.log.log_format, std::io::stderr);
    if let Some(Command::Migrate) = config.command {
        return Ok(flowforge_core::db::migrate_command(
            &config.db,
            &config.secrets,
            "flowforge-scaler",
        )
        .await?);
    }
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(Error::Config(reason)) => exit_config_error(&reason),
        Err(err @ Error::Bind { .. }) => exit_config_error(&err.to_string()),
        Err(err) => return Err(err.into()),
    };
    app.run_until_stopped(flowforge_core::shutdown::shutdown_signal())
        .await?;
    Ok(())
}
