# syntax=docker/dockerfile:1.7
# The image is built without the `dev-tools` feature: no dev, devcluster, sandbox or bench
# subcommands in production (Cargo.toml [features]).
# psa-operator container image: a static-ish Rust binary (rustls, bundled SQLite; no OpenSSL)
# on a distroless base that has only glibc, CA certificates and a non-root user.
#
#   docker build -t psa-operator:dev .
#   docker run --rm psa-operator:dev --help
#
# The Helm chart and config/manager run it as UID/GID 65532 with a read-only root filesystem;
# the store lives on the volume mounted at /var/lib/psa-operator.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change does not rebuild them (cache mounts keep the
# registry and target directory between builds).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin psa-operator --no-default-features \
 && install -D -m 0755 target/release/psa-operator /out/usr/local/bin/psa-operator \
 && install -d -m 0750 /out/var/lib/psa-operator

# distroless "cc": glibc and libgcc (the Rust binary links them dynamically), CA roots, tzdata,
# /etc/passwd with nonroot = 65532; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="psa-operator" \
      org.opencontainers.image.description="Security alerts to ConnectWise PSA / Kaseya BMS tickets, as a Kubernetes operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/usr/local/bin/psa-operator /usr/local/bin/psa-operator
COPY --from=build --chown=65532:65532 /out/var/lib/psa-operator /var/lib/psa-operator
USER 65532:65532
WORKDIR /var/lib/psa-operator
# 8080: alert intake; 9090: /metrics, /healthz, /readyz.
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/psa-operator"]
CMD ["run", "--store=/var/lib/psa-operator/psa-operator.db"]
