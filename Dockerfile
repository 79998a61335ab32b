# syntax=docker/dockerfile:1.7
#
# One image for the whole fleet: ingress, worker, scheduler and sim. Each service picks its
# binary with `command` (compose) or `command`/`args` (Kubernetes), so a release is built, scanned
# and pulled once and every component is guaranteed to run the same code.
#
#   docker build -t booking-fleet .
#   docker run --rm booking-fleet ingress

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder

# aws-lc-sys (TLS for reqwest) compiles C code and falls back to cmake on some targets.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /build
COPY . .

# Cache mounts keep the registry and the target directory between builds without baking them
# into a layer; the binaries are copied out because the cache mount vanishes after the RUN.
# --locked: the image is built from exactly the dependency versions that were tested.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked \
        --bin ingress --bin worker --bin scheduler --bin sim \
    && mkdir -p /out \
    && cp target/release/ingress target/release/worker target/release/scheduler \
          target/release/sim /out/

# ---------------------------------------------------------------------------------------------
# Runtime
# ---------------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

# ca-certificates: TLS to graph.facebook.com and api.cal.com.
# curl: container healthchecks (compose) probe /healthz from inside the container.
# tini: PID 1 that forwards SIGTERM to the binary, so the 10 s drain actually starts.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl tini \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid/gid so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 fleet \
    && useradd --system --uid 10001 --gid fleet --home-dir /nonexistent \
       --no-create-home --shell /usr/sbin/nologin fleet

COPY --from=builder /out/ /usr/local/bin/

# The example tenants file sits at the binaries' default path (TENANTS_FILE=config/tenants.toml,
# relative to the working directory); deployments mount their own over it.
WORKDIR /app
COPY --chown=root:root config/tenants.toml /app/config/tenants.toml

USER 10001:10001

ENV RUST_LOG=info

# Documentation only: ingress serves :8080; worker and scheduler admin ports are 9090 and 9091.
EXPOSE 8080 9090 9091

ENTRYPOINT ["/usr/bin/tini", "--"]
# No default binary: every service states which one it runs.
CMD ["sh", "-c", "echo 'choose a binary: ingress | worker | scheduler | sim' >&2; exit 64"]
