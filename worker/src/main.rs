//! `flowforge-worker`: see `flowforge_worker` for everything but start-up.
#![forbid(unsafe_code)]

use flowforge_core::config::{exit_config_error, parse_or_exit};
use flowforge_worker::app::Application;
use flowforge_worker::config::{Command, Config};

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
            "flowforge-worker",
        )
        .await?);
    }
    let stop_on_stdin_eof = config.stop_on_stdin_eof;
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(flowforge_worker::Error::Config(reason)) => exit_config_error(&reason),
        // An address that cannot be bound is configuration the operator must change.
        Err(err @ flowforge_worker::Error::Bind { .. }) => exit_config_error(&err.to_string()),
        Err(err) => return Err(err.into()),
    };
    app.run_until_stopped(flowforge_core::shutdown::stop_requested(stop_on_stdin_eof))
        .await?;
    Ok(())
}
