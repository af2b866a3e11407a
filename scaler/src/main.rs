//! `flowforge-scaler`: see `flowforge_scaler` for everything but start-up.
#![forbid(unsafe_code)]

use flowforge_core::config::{exit_config_error, parse_or_exit};
use flowforge_scaler::app::{Application, Error};
use flowforge_scaler::config::{Command, Config};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    flowforge_core::config::exit_code(run().await)
}

async fn run() -> anyhow::Result<()> {
    let config: Config = parse_or_exit();
    if let Some(Command::Healthcheck) = config.command {
        return flowforge_core::admin::healthcheck(config.admin_addr)
            .await
            .map_err(anyhow::Error::msg);
    }
    if let Some(Command::Simulate(args)) = config.command {
        // Offline: no database, no servers, no logs beyond the report.
        return match flowforge_scaler::simulate::run(args) {
            Err(err) => match err.downcast_ref::<flowforge_scaler::simulate::InputError>() {
                Some(bad) => exit_config_error(&bad.0),
                None => Err(err),
            },
            ok => ok,
        };
    }
    if let Err(reason) = config.validate() {
        exit_config_error(&reason);
    }
    flowforge_core::telemetry::init_logs(&config.log.log_format, std::io::stderr);
    let local = match &config.command {
        Some(Command::Migrate) => {
            return Ok(flowforge_core::db::migrate_command(
                &config.db,
                &config.secrets,
                "flowforge-scaler",
            )
            .await?)
        }
        Some(Command::Local(args)) => {
            if let Err(reason) = args.validate() {
                exit_config_error(&reason);
            }
            Some(args.clone())
        }
        Some(Command::Simulate(_) | Command::Healthcheck) | None => None,
    };
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(Error::Config(reason)) => exit_config_error(&reason),
        Err(err @ Error::Bind { .. }) => exit_config_error(&err.to_string()),
        Err(err) => return Err(err.into()),
    };
    let Some(local) = local else {
        app.run_until_stopped(flowforge_core::shutdown::shutdown_signal())
            .await?;
        return Ok(());
    };
    // Local autoscaling: on SIGTERM the workers drain first, then the scaler stops.
    let grpc = format!("http://{}", app.grpc_addr());
    let stop_workers = CancellationToken::new();
    let mut driver = tokio::spawn(flowforge_scaler::local::run(
        grpc,
        local,
        stop_workers.clone(),
    ));
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = server_stopped.await;
    }));
    let driven = tokio::select! {
        _ = flowforge_core::shutdown::shutdown_signal() => {
            stop_workers.cancel();
            (&mut driver).await
        }
        ended = &mut driver => ended,
    };
    let _ = stop_server.send(());
    server.await??;
    driven??;
    Ok(())
}
