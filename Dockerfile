# The analytics server as a container image:
#   docker build -t analytics .
#   docker run -d -p 8000:8000 -v analytics-data:/data --name analytics analytics
# Debian's own Python (3.11 in bookworm); BASE selects another Debian-like base with a python3 package.
ARG BASE=debian:bookworm-slim

# Stage 1: the wheel, built from the source, and a virtual environment with it and its dependencies (without
# pip, and without the tests some dependencies ship).
FROM ${BASE} AS build
# pip reads PIP_CERT from the environment: a CA bundle (mounted at build time) for builds behind a proxy that
# re-signs TLS. Empty for everyone else.
ARG PIP_CERT
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md /src/
COPY analytics /src/analytics
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/analytics \
 && /opt/analytics/bin/pip wheel --quiet --no-deps --wheel-dir /wheels /src \
 && /opt/analytics/bin/pip install --quiet /wheels/*.whl \
 && /opt/analytics/bin/pip uninstall --yes --quiet pip setuptools \
 && find /opt/analytics/lib -depth -path '*/site-packages/*' \( -name tests -o -name 'test_*.py' \) -exec rm -rf {} + \
 && /opt/analytics/bin/analytics --version

# Stage 2: what runs: Python, the time zone database, the virtual environment. No compiler, pip, cache, source
# or test. Data in the volume /data, owned by the user analytics (uid 10001).
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 tzdata \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && groupadd --system --gid 10001 analytics \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin analytics \
 && mkdir /data \
 && chown analytics:analytics /data
COPY --from=build /opt/analytics /opt/analytics
ENV PATH=/opt/analytics/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ANALYTICS_DATABASE_URL=sqlite:////data/analytics.db \
    ANALYTICS_SERVER_HOST=0.0.0.0 \
    ANALYTICS_SERVER_PORT=8000
LABEL org.opencontainers.image.title="analytics" \
      org.opencontainers.image.description="Privacy-first, cookieless web analytics server"
VOLUME /data
USER analytics
EXPOSE 8000
# `analytics health` asks /api/health on the configured port: 200 only when the database answers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["analytics", "health"]
# SIGTERM (docker stop): stop accepting, answer what is in flight, commit every queued event, exit 0.
STOPSIGNAL SIGTERM
CMD ["analytics", "serve"]
