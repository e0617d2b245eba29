FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md openapi.yaml ./
COPY sieve ./sieve
COPY service ./service
COPY workers ./workers
RUN pip install . && useradd --create-home --uid 10001 sieve
USER sieve

EXPOSE 8000
# The API by default; the compose file runs `sieve worker` from the same image. While no API key exists
# (auth off), `sieve api` refuses 0.0.0.0 unless given --allow-anonymous (as the compose file does).
CMD ["sieve", "api", "--host", "0.0.0.0", "--port", "8000"]
