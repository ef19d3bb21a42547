# One image for the API and the workers; docker-compose.yml picks the command.
#
#   docker build .                                   # CPU torch (API, CPU workers)
#   docker build --build-arg TORCH_INDEX=https://pypi.org/simple .
#                                                    # CUDA torch 2.13.0 for GPU workers
#
# Stage 1 builds the dashboard, so the image needs nothing but the repository.
FROM node:20-slim AS dashboard
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend ./
RUN npm run build

FROM python:3.11-slim
# The pinned torch comes from PyTorch's CPU index by default (small); PyPI's Linux wheel of
# the same version is the CUDA build and brings its CUDA runtime as nvidia-* wheels, so a GPU
# host needs only the NVIDIA driver and the container toolkit.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 RLSERVE_DATA_DIR=/data
RUN apt-get update && apt-get install -y --no-install-recommends swig build-essential curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /srv
COPY pyproject.toml constraints.txt README.md ./
RUN pip install --index-url "$TORCH_INDEX" torch==2.13.0
COPY rlcore rlcore
COPY app app
COPY worker worker
COPY --from=dashboard /src/frontend/dist frontend/dist
RUN pip install -c constraints.txt . && useradd --create-home rlserve && mkdir -p /data && chown rlserve /data
USER rlserve
# The compiled kernels (recurrence, PPO loss), built for the image's user (a host with other vector units rebuilds it once).
RUN rlserve build-kernels
EXPOSE 8000
CMD ["uvicorn", "app.main:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
