# syntax=docker/dockerfile:1.7
# The ledger image: `ledger` as the entrypoint (the chart runs `ledger node`, the archiver
# `ledger archiver`), as a non-root user, on a slim Debian runtime.
#
#   docker build -t ledger:dev .
#
# Builds need BuildKit (the default in Docker 23+) for the cache mounts below.

# --- build ----------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder

# bindgen generates RocksDB's bindings at build time and loads libclang for it (protoc is
# vendored by the build). Debian's current clang; versions are not pinned because bookworm's
# security updates replace them.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang libclang-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# Why target/debug: the workspace has one build profile, `dev`, fully optimised (opt-level 3
# for the workspace and every dependency, see [profile.dev] in Cargo.toml), so that the C++
# RocksDB build happens once per machine; target/debug/ledger is the optimised binary that
# is tested and benchmarked. A --release build would be a second, untested configuration.
# The cache mounts keep the registry and the target directory between builds (a cold build
# compiles RocksDB: 15-30 minutes on 2 cores); the binary is copied out of the mount in the
# same step, since the mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --locked --workspace --bin ledger \
 && install -D -m 0755 target/debug/ledger /out/ledger

# --- runtime --------------------------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates: TLS to ElastiCache (rediss://) and RDS. libstdc++ (RocksDB) is in the
# base image already.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 ledger \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin ledger \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/ledger

COPY --from=builder /out/ledger /usr/local/bin/ledger

# Defaults for a container; the chart sets these (and LEDGER_PEERS) explicitly.
ENV LEDGER_DATA_DIR=/var/lib/ledger \
    LEDGER_API_LISTEN=0.0.0.0:8080 \
    LEDGER_RPC_LISTEN=0.0.0.0:8180 \
    LEDGER_LOG_FORMAT=json

VOLUME ["/var/lib/ledger"]
# 8080: REST API and probes; 8180: Raft gRPC between voters.
EXPOSE 8080 8180

# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001

# Kubernetes ignores HEALTHCHECK: the chart's probes call /health/live and /health/ready.
# checkov:skip=CKV_DOCKER_2:Kubernetes ignores Docker HEALTHCHECK; the chart probes /health/live and /health/ready, and the runtime image carries no HTTP client to call them
ENTRYPOINT ["ledger"]
CMD ["node"]
