//! The container images, built and run for real: `buildah bud` on the repository's Dockerfile
//! with its `binaries` stage fed the static (musl) release binaries through a named build
//! context, then `podman --runtime runc run` of each image against the test database, answering
//! `/healthz` and `/readyz`, its own health check passing, read-only, without capabilities, as
//! the image's numeric non-root user, with no shell inside.
//!
//! The binaries come from `FLOWFORGE_IMAGE_BINARIES` (a directory; `scripts/test.sh` builds
//! them with `cargo build --release --target x86_64-unknown-linux-musl` and sets it), or
//! `target/x86_64-unknown-linux-musl/release`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use flowforge_testkit::{free_port, wait_for_http, which};

/// The bar for every final image: 20 MB.
const MAX_IMAGE_BYTES: u64 = 20_000_000;
const BINARIES: [&str; 3] = ["flowforge-api", "flowforge-worker", "flowforge-scaler"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn run(program: &Path, args: &[&str]) -> Result<Output> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    Ok(out)
}

fn check(program: &Path, args: &[&str]) -> Result<String> {
    let out = run(program, args)?;
    ensure!(
        out.status.success(),
        "{} {}: {}\n{}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The directory the Dockerfile's `binaries` stage is replaced with: the three binaries and a
/// CA bundle.
fn binaries_context(dir: &Path) -> Result<()> {
    let source = match std::env::var_os("FLOWFORGE_IMAGE_BINARIES") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("target/x86_64-unknown-linux-musl/release"),
    };
    for name in BINARIES {
        let from = source.join(name);
        ensure!(
            from.is_file(),
            "{} not found: build the static binaries first \
             (cargo build --release --target x86_64-unknown-linux-musl, as scripts/test.sh does) \
             or set FLOWFORGE_IMAGE_BINARIES",
            from.display()
        );
        std::fs::copy(&from, dir.join(name))?;
    }
    std::fs::copy(
        "/etc/ssl/certs/ca-certificates.crt",
        dir.join("ca-certificates.crt"),
    )
    .context("copying the system CA bundle (package ca-certificates)")?;
    Ok(())
}

/// A container removed when dropped.
struct Container {
    podman: PathBuf,
    id: String,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = run(&self.podman, &["rm", "-f", "-t", "0", &self.id]);
    }
}

/// `podman run` as this machine allows it (runc, modest ulimits), without the systemd timer podman
/// would set up for the image's health check (it is run by hand below).
const PODMAN_RUN: [&str; 9] = [
    "--runtime",
    "runc",
    "run",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
    "--health-interval",
    "disable",
];

fn podman_run_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    PODMAN_RUN
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .collect()
}

struct Tools {
    buildah: PathBuf,
    podman: PathBuf,
}

impl Tools {
    fn find() -> Result<Tools> {
        let missing = |t: &str| format!("{t} not found: run scripts/install-deps.sh test");
        Ok(Tools {
            buildah: which("buildah").with_context(|| missing("buildah"))?,
            podman: which("podman").with_context(|| missing("podman"))?,
        })
    }

    fn build(&self, context: &Path, target: &str, tag: &str) -> Result<()> {
        let binaries = format!("binaries={}", context.display());
        let root = repo_root();
        let dockerfile = root.join("Dockerfile");
        check(
            &self.buildah,
            &[
                "bud",
                "--quiet",
                // Docker format keeps HEALTHCHECK (OCI images have no such field).
                "--format",
                "docker",
                "--layers=false",
                "--pull=never",
                "--build-context",
                &binaries,
                "--target",
                target,
                "-t",
                tag,
                "-f",
                dockerfile.to_str().unwrap(),
                root.to_str().unwrap(),
            ],
        )?;
        Ok(())
    }

    /// `podman run -d` as the machine allows (runc, modest ulimits), hardened as on Kubernetes:
    /// read-only root, no capabilities, no privilege escalation; host network, every address
    /// set to 127.0.0.1 by `env`; `mounts` as `HOST:CONTAINER:ro`.
    fn run(&self, image: &str, env: &[(&str, String)], mounts: &[String]) -> Result<Container> {
        let mut argv: Vec<String> = PODMAN_RUN
            .iter()
            .copied()
            .chain([
                "-d",
                "--network",
                "host",
                "--read-only",
                "--cap-drop",
                "ALL",
                "--security-opt",
                "no-new-privileges",
            ])
            .map(|s| s.to_string())
            .collect();
        for (k, v) in env {
            argv.push("-e".into());
            argv.push(format!("{k}={v}"));
        }
        for m in mounts {
            argv.push("-v".into());
            argv.push(m.clone());
        }
        argv.push(image.into());
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let id = check(&self.podman, &argv)?;
        Ok(Container {
            podman: self.podman.clone(),
            id,
        })
    }

    fn logs(&self, c: &Container) -> String {
        run(&self.podman, &["logs", &c.id])
            .map(|o| {
                String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr)
            })
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn images_build_from_scratch_stay_small_and_serve_health_checks() -> Result<()> {
    let tools = Tools::find()?;
    let context = tempfile::tempdir()?;
    binaries_context(context.path())?;
    let url = flowforge_testkit::fresh_database().await?;
    // Migrated by the image itself below; the tokens file is mounted read-only.
    let secrets = tempfile::tempdir()?;
    std::fs::write(
        secrets.path().join("tokens.json"),
        r#"{"tokens":["image-test-token"]}"#,
    )?;
    // The container's user (65532) must read it.
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(secrets.path(), std::fs::Permissions::from_mode(0o755))?;
        std::fs::set_permissions(
            secrets.path().join("tokens.json"),
            std::fs::Permissions::from_mode(0o644),
        )?;
    }
    let run_id = uuid::Uuid::new_v4().simple().to_string();

    for name in BINARIES {
        let tag = format!("localhost/{name}:test-{}", &run_id[..8]);
        tools.build(context.path(), name, &tag)?;
        let _cleanup = remove_image_on_drop(&tools.podman, &tag);

        let size: u64 = check(
            &tools.podman,
            &["image", "inspect", "--format", "{{.Size}}", &tag],
        )?
        .parse()?;
        println!("{name}: image {:.1} MB", size as f64 / 1e6);
        ensure!(
            size <= MAX_IMAGE_BYTES,
            "{name}: image is {size} bytes, over {MAX_IMAGE_BYTES}"
        );
        let user = check(
            &tools.podman,
            &["image", "inspect", "--format", "{{.Config.User}}", &tag],
        )?;
        assert_eq!(user, "65532:65532", "{name}: numeric non-root user");
        let health = check(
            &tools.podman,
            &[
                "image",
                "inspect",
                "--format",
                "{{json .Config.Healthcheck}}",
                &tag,
            ],
        )?;
        assert!(
            health.contains(&format!("/usr/local/bin/{name}")) && health.contains("healthcheck"),
            "{name}: health check is the binary's own: {health}"
        );
        // No shell in the image.
        let shell = run(
            &tools.podman,
            &podman_run_args(&["--rm", "--entrypoint", "/bin/sh", &tag, "-c", "true"]),
        )?;
        let why = String::from_utf8_lossy(&shell.stderr);
        assert!(
            !shell.status.success() && why.contains("no such file or directory"),
            "{name}: /bin/sh should not exist in the image: {why}"
        );

        if name == "flowforge-api" {
            // Migrations from the image, as the Kubernetes Job runs them.
            let database = format!("DATABASE_URL={url}");
            let out = run(
                &tools.podman,
                &podman_run_args(&[
                    "--rm",
                    "--network",
                    "host",
                    "--read-only",
                    "-e",
                    &database,
                    &tag,
                    "migrate",
                ]),
            )?;
            ensure!(
                out.status.success(),
                "migrate in the image: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }

        let admin = free_port();
        let mut env = vec![
            ("DATABASE_URL", url.clone()),
            ("FLOWFORGE_ADMIN_ADDR", format!("127.0.0.1:{admin}")),
            ("FLOWFORGE_API_ADDR", format!("127.0.0.1:{}", free_port())),
            ("FLOWFORGE_GRPC_ADDR", format!("127.0.0.1:{}", free_port())),
        ];
        let mut mounts = Vec::new();
        if name == "flowforge-api" {
            env.push((
                "FLOWFORGE_API_TOKENS_SECRET",
                "file:/secrets/tokens.json".into(),
            ));
            mounts.push(format!("{}:/secrets:ro", secrets.path().display()));
        }
        let started = Instant::now();
        let container = tools.run(&tag, &env, &mounts)?;
        let ready = wait_for_http(
            &format!("http://127.0.0.1:{admin}/readyz"),
            Duration::from_secs(60),
        )
        .await;
        if let Err(err) = ready {
            bail!("{name}: not ready: {err:#}\n{}", tools.logs(&container));
        }
        println!(
            "{name}: container start to ready {:.0} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
        wait_for_http(
            &format!("http://127.0.0.1:{admin}/healthz"),
            Duration::from_secs(5),
        )
        .await?;
        // The image's own health check, run inside the container.
        let out = run(&tools.podman, &["healthcheck", "run", &container.id])?;
        assert!(
            out.status.success(),
            "{name}: health check failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // JSON logs on stderr.
        let logs = tools.logs(&container);
        let first = logs.lines().next().unwrap_or_default();
        assert!(
            serde_json::from_str::<serde_json::Value>(first).is_ok(),
            "{name}: the first log line is not JSON: {first}"
        );
        drop(container);
    }
    Ok(())
}

/// Removes the image `tag` when dropped.
fn remove_image_on_drop(podman: &Path, tag: &str) -> impl Drop {
    struct Remove(PathBuf, String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = run(&self.0, &["rmi", "-f", &self.1]);
        }
    }
    Remove(podman.to_path_buf(), tag.to_owned())
}
