# One image for the API and the workers; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 RLSERVE_DATA_DIR=/data
RUN apt-get update && apt-get install -y --no-install-recommends swig build-essential curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /srv
COPY pyproject.toml constraints.txt README.md ./
COPY rlcore rlcore
COPY app app
COPY worker worker
COPY frontend/dist frontend/dist
RUN pip install -c constraints.txt . && useradd --create-home rlserve && mkdir -p /data && chown rlserve /data
USER rlserve
EXPOSE 8000
CMD ["uvicorn", "app.main:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
