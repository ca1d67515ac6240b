# streamcrm worker / generator image, for docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY src ./src
RUN pip install --no-cache-dir . && useradd --create-home streamcrm && mkdir /data && chown streamcrm /data
USER streamcrm
ENTRYPOINT ["streamcrm"]
CMD ["worker"]
