# The registry image used by compose.yaml (API replicas and workers run the same image).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cyp_registry cyp_registry
COPY domain domain
COPY projections projections
COPY api api
COPY workers workers
COPY storage storage
COPY migrations migrations
RUN pip install --no-cache-dir .
ENV CYP_DATA_DIR=/data
VOLUME /data
EXPOSE 8080
CMD ["cyp-registry", "serve"]
