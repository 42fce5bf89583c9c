# loanapi image: `docker build -t loanapi .`
#
#   docker run -p 8000:8000 -e LOANAPI_SECRET_KEY=... loanapi     # SQLite in /app/data
#   docker compose up -d                                           # PostgreSQL: see compose.yaml
#
# Both stages use the same base image: the venv copied from the builder points at that image's
# /usr/local/bin/python3.

FROM python:3.12-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"
WORKDIR /build

# The dependencies, read from pyproject.toml: this layer is rebuilt only when pyproject.toml
# changes, not on every change to the code.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install --no-cache-dir -r requirements.txt

# The package itself (setuptools, src layout), without touching the dependencies installed above.
COPY README.md LICENSE ./
COPY src ./src
RUN pip install --no-cache-dir --no-deps . \
    && python -c "import loanapi.cli, loanapi.app"


FROM python:3.12-slim-bookworm AS runtime

# LOANAPI_ALEMBIC_INI is read by loanapi.migrate (not a setting): the migrations live in /app,
# outside the installed package, whatever the working directory of `loanapi db ...` is.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH="/opt/venv/bin:$PATH" \
    LOANAPI_ALEMBIC_INI=/app/alembic.ini \
    LOANAPI_DATABASE_URL=sqlite+aiosqlite:////app/data/loanapi.db

RUN groupadd --system --gid 10001 loanapi \
    && useradd --system --uid 10001 --gid loanapi --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin loanapi \
    && mkdir -p /app/data \
    && chown loanapi:loanapi /app/data

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY alembic.ini ./
COPY alembic ./alembic

# No VOLUME here: under compose the app is stateless (PostgreSQL); for the SQLite default mount
# a volume at /app/data yourself (`-v loanapi-data:/app/data`).
# Numeric, so that runtimes can tell it is not root (Kubernetes runAsNonRoot): loanapi.
USER 10001:10001

EXPOSE 8000

# No curl in the slim image: the venv's python asks /healthz (no database needed).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# Applies pending migrations, creates the first admin if none exists, then serves. The number of
# workers: override the command (compose.yaml passes LOANAPI_WORKERS).
CMD ["loanapi", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
