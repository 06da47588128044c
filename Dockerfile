# One image for both roles: `tandem serve` (the default) or `tandem worker`.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 tandem
WORKDIR /srv/tandem

COPY pyproject.toml README.md ./
COPY tandem ./tandem
COPY app ./app
COPY workers ./workers
RUN pip install --no-cache-dir . && mkdir -p /srv/tandem/var && chown tandem:tandem /srv/tandem/var

USER tandem
ENV TANDEM_GIT_CACHE_DIR=/srv/tandem/var/git \
    PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["tandem", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
