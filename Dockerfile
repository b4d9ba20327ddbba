# syntax=docker/dockerfile:1
# paygrid's image: `docker build -t paygrid .`, then `docker run paygrid serve|worker|migrate`.
# docs/deploy.md says how it is proven without a container engine: tests/deploy/
# test_wheel_install.py installs the wheel exactly as below and runs all three commands.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build: the wheel from this tree, and a virtual environment with the locked dependencies.
FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
# The dependencies first (their layer is reused until uv.lock changes): exactly the locked
# versions, hash-checked, and binary wheels only, so no compiler is needed in either stage.
COPY pyproject.toml uv.lock ./
RUN uv export --frozen --no-emit-project --format requirements-txt -o /tmp/requirements.txt \
    && uv venv /opt/paygrid --python /usr/local/bin/python3 \
    && uv pip install --python /opt/paygrid/bin/python --require-hashes --only-binary :all: \
        -r /tmp/requirements.txt
# The wheel carries the code, migrations, templates, static files and guides (docs/).
COPY README.md ./
COPY docs ./docs
COPY src ./src
RUN uv build --wheel --out-dir /tmp/dist \
    && uv pip install --python /opt/paygrid/bin/python --no-deps /tmp/dist/paygrid-*.whl \
    && uv pip check --python /opt/paygrid/bin/python

# Runtime: the same Python, the virtual environment at the same path, no build tools.
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="paygrid" \
      org.opencontainers.image.description="Self-hosted payment gateway" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 paygrid \
    && useradd --system --uid 10001 --gid paygrid --home-dir /var/lib/paygrid --create-home \
        --shell /usr/sbin/nologin paygrid
COPY --from=build /opt/paygrid /opt/paygrid
# PAYGRID_HOST: listen on every interface of the container. PAYGRID_DATABASE_URL must be
# set (docs/deploy.md); unset, paygrid would start its embedded PostgreSQL in the data dir.
ENV PATH="/opt/paygrid/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PAYGRID_HOST=0.0.0.0 \
    PAYGRID_PORT=8000 \
    PAYGRID_DATA_DIR=/var/lib/paygrid
WORKDIR /var/lib/paygrid
USER 10001:10001
EXPOSE 8000
# The slim image has no curl: Python's urllib asks /healthz (any non-2xx answer raises).
# `paygrid worker` serves no HTTP on PAYGRID_PORT: compose.yaml gives workers their own check.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PAYGRID_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["paygrid"]
CMD ["serve"]
