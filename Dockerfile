FROM python:3.11-slim AS dependencies

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The sources stay out of the working directory: there, `python -m sieve…` would import them, not the
# installed package (in which service/ and workers/ are sieve.service and sieve.workers).
WORKDIR /src
COPY constraints.txt pyproject.toml ./
# The versions the tests passed with (constraints.txt). Wheels in a wheelhouse/ folder of the build context
# are taken first; `--build-arg PIP_NO_INDEX=1` installs from them alone, without reaching the index.
# The dependencies come first, in a stage of their own: a change to Sieve's code alone reuses it.
ARG PIP_NO_INDEX=0
RUN --mount=type=bind,target=/context \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -c constraints.txt --find-links /context/wheelhouse -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt && useradd --create-home --uid 10001 sieve

FROM dependencies
COPY README.md openapi.yaml ./
COPY sieve ./sieve
COPY service ./service
COPY workers ./workers
RUN --mount=type=bind,target=/context pip install --no-deps --find-links /context/wheelhouse .
USER sieve
WORKDIR /home/sieve

EXPOSE 8000
# The API by default; the compose file runs `sieve worker` from the same image. While no API key exists
# (auth off), `sieve api` refuses 0.0.0.0 unless given --allow-anonymous (as the compose file does).
CMD ["sieve", "api", "--host", "0.0.0.0", "--port", "8000"]
