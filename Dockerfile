# syntax=docker/dockerfile:1
# FlowForge container images: one Dockerfile, one image per binary, chosen by target.
#
#   docker build --target flowforge-api -t flowforge-api .      (and flowforge-worker, -scaler)
#
# Stages:
#   compile   builds the three binaries as static musl executables (release profile). The
#             cargo registry and target directory are cache mounts (BuildKit's, or buildah's),
#             so a rebuild after an edit recompiles only the changed crates.
#   binaries  what the final stage copies from: the binaries and a CA bundle (Secrets Manager's
#             TLS client trusts the system roots). Replace this stage with a directory to package
#             binaries built elsewhere (CI's cached build; the tests, where no registry can be
#             reached), which also skips `compile`:
#               buildah bud --build-context binaries=DIR --target flowforge-api .
#             DIR holds flowforge-api, flowforge-worker, flowforge-scaler, ca-certificates.crt.
#   runtime   FROM scratch: the CA bundle, a numeric non-root user, JSON logs; no shell.
#   flowforge-api, flowforge-worker, flowforge-scaler
#             the images: runtime + one binary at /usr/local/bin/<name>, listening on all
#             addresses; the health check is the binary itself (`<name> healthcheck` asks its
#             own /healthz, no curl needed).
ARG RUST_VERSION=1.95.0

FROM docker.io/library/rust:${RUST_VERSION}-slim-bookworm AS compile
# musl-gcc for the C parts (ring); pinned to bookworm's version.
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools=1.2.3-1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The toolchain file first: it names the toolchain and its components. Installing that toolchain
# (the image's own, as RUST_VERSION equals its channel: compose/tests checks) and then adding the
# musl target to it happens once, in this layer, cached until the file changes; `cargo build`
# below then finds everything in place and downloads no toolchain.
COPY rust-toolchain.toml ./
RUN rustup toolchain install --no-self-update \
    && rustup target add x86_64-unknown-linux-musl
COPY . .
# Cache mounts (BuildKit, buildah): the crates.io registry and the target directory outlive the
# build, so a rebuild after a source change (`docker compose watch`) compiles only the changed
# workspace crates and links; the dependencies stay built. The binaries are copied out of the
# cached target directory, which is not part of the layer.
RUN --mount=type=cache,id=flowforge-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=flowforge-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=flowforge-target,target=/src/target,sharing=locked \
    cargo build --locked --release --target x86_64-unknown-linux-musl \
        --bin flowforge-api --bin flowforge-worker --bin flowforge-scaler \
    && mkdir /out \
    && cp target/x86_64-unknown-linux-musl/release/flowforge-api \
          target/x86_64-unknown-linux-musl/release/flowforge-worker \
          target/x86_64-unknown-linux-musl/release/flowforge-scaler \
          /etc/ssl/certs/ca-certificates.crt /out/

FROM scratch AS binaries
COPY --from=compile /out/ /

# Common to the three images.
FROM scratch AS runtime
LABEL org.opencontainers.image.source="https://github.com/flowforge/flowforge" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binaries /ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# Inside a container the ports are reached on the pod's address; outside one the binaries
# default to 127.0.0.1.
ENV FLOWFORGE_LOG_FORMAT=json \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532

FROM runtime AS flowforge-api
COPY --from=binaries /flowforge-api /usr/local/bin/flowforge-api
ENV FLOWFORGE_API_ADDR=0.0.0.0:8080 \
    FLOWFORGE_ADMIN_ADDR=0.0.0.0:9080
EXPOSE 8080 9080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/flowforge-api", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/flowforge-api"]

FROM runtime AS flowforge-worker
COPY --from=binaries /flowforge-worker /usr/local/bin/flowforge-worker
ENV FLOWFORGE_ADMIN_ADDR=0.0.0.0:9081
EXPOSE 9081
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/flowforge-worker", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/flowforge-worker"]

FROM runtime AS flowforge-scaler
COPY --from=binaries /flowforge-scaler /usr/local/bin/flowforge-scaler
ENV FLOWFORGE_GRPC_ADDR=0.0.0.0:6000 \
    FLOWFORGE_ADMIN_ADDR=0.0.0.0:9082
EXPOSE 6000 9082
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/flowforge-scaler", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/flowforge-scaler"]
