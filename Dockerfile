# One image for both roles: `tandem serve` (the default) or `tandem worker`.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 tandem

# Installed from a copy that is then removed: the image runs the package as a wheel install does,
# with nothing read from a source tree.
COPY pyproject.toml README.md /tmp/tandem/
COPY tandem /tmp/tandem/tandem
COPY app /tmp/tandem/app
COPY workers /tmp/tandem/workers
COPY cli /tmp/tandem/cli
RUN pip install --no-cache-dir /tmp/tandem && rm -rf /tmp/tandem \
    && mkdir -p /srv/tandem/var /srv/tandem/config /srv/tandem/metrics \
    && chown tandem:tandem /srv/tandem/var /srv/tandem/config /srv/tandem/metrics

USER tandem
WORKDIR /srv/tandem
# The setup flow writes the app's id and webhook secret to config/.env and its key beside it;
# docker-compose.yml keeps config/ on a volume, which takes this directory's owner.
ENV TANDEM_ENV_FILE=/srv/tandem/config/.env \
    TANDEM_GIT_CACHE_DIR=/srv/tandem/var/git \
    HOST=0.0.0.0 \
    PORT=8000 \
    PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["tandem", "serve", "--workers", "2"]
