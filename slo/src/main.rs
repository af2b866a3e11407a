//! `flowforge-slo`: generates the rules, promtool tests and dashboards from `slo/slos.yaml`, and
//! checks that the committed ones are current.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use flowforge_slo::Outcome;

#[derive(Parser)]
#[command(name = "flowforge-slo", version, about)]
struct Cli {
    /// The repository root (where slo/slos.yaml is). Default: the checkout this binary was
    /// built from.
    #[arg(long, env = "FLOWFORGE_REPO_ROOT", global = true)]
    repo_root: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write alerts/flowforge-rules.yaml, its PrometheusRule copy
    /// k8s/base/monitoring/prometheusrule.yaml, the generated alerts/tests/*.yaml and
    /// dashboards/*.json.
    Generate,
    /// Exit 1, naming the files, if a committed generated file differs from what generate writes.
    Check,
    /// Print every rule and panel query of the committed files (PromQL, then LogQL), one per
    /// line as `kind<TAB>source<TAB>query`.
    Queries,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = cli.repo_root.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the crate lives in the repository")
            .to_owned()
    });
    let result = match cli.command {
        Command::Generate => flowforge_slo::write(&root).map(|report| {
            for (path, outcome) in report {
                let what = match outcome {
                    Outcome::Unchanged => "unchanged",
                    Outcome::Written => "written",
                    Outcome::Removed => "removed (no longer generated)",
                };
                println!("{what:>9}  {path}");
            }
        }),
        Command::Check => {
            flowforge_slo::check(&root).map(|()| println!("generated files are current"))
        }
        Command::Queries => flowforge_slo::queries(&root).and_then(|queries| {
            for q in queries {
                println!("{}\t{}\t{}", q.kind, q.source, q.expr.replace('\n', " "));
            }
            for q in flowforge_slo::logql_queries(&root)? {
                println!("logql\t{}\t{}", q.source, q.expr);
            }
            Ok(())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the message; a spec that does not parse or validate is bad
            // configuration (exit 64, as for every FlowForge binary), anything else a failure.
            eprintln!("flowforge-slo: {}", e.to_string().replace('\n', " "));
            match e {
                flowforge_slo::Error::Yaml { .. } | flowforge_slo::Error::Invalid { .. } => {
                    ExitCode::from(64)
                }
                _ => ExitCode::FAILURE,
            }
        }
    }
}
