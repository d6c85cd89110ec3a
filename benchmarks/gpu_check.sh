#!/usr/bin/env bash
# The GPU check in one command, under 8 minutes on one H100/H200: benchmarks/gpu_check.py (scores and speed, its
# docstring says what), then, where the server's packages are there, benchmarks/serve.py on the random 0.6B (the
# serving issue's figures). On a CUDA machine, or anywhere with --dry-run (gpu_check.py only).
# Where the machine lacks qrr's own dependencies (the lent GPU machines have torch, transformers, typer, rich and
# httpx, but no orjson, no starlette or uvicorn and no Qwen3 tokenizer), put wheels in .gpu/wheels and the
# tokenizer in .gpu/tokenizer (`.gpu/` is ignored; the device tool carries it with `carry: [".gpu"]`):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_17_x86_64 \
#       -d .gpu/wheels orjson starlette uvicorn
#   mkdir -p .gpu/tokenizer && cp "$(python -c 'import tests.tiny as t; print(t.tokenizer_files())')"/* .gpu/tokenizer/
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import orjson, starlette, uvicorn" 2>/dev/null && ls .gpu/wheels/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/qrr-site .gpu/wheels/*.whl
    export PYTHONPATH=/tmp/qrr-site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -d .gpu/tokenizer ] && [ -z "${QRR_TOKENIZER:-}" ]; then
    export QRR_TOKENIZER=$PWD/.gpu/tokenizer
fi
export PYTHONUNBUFFERED=1
python3 benchmarks/gpu_check.py "$@"
case " $* " in *" --dry-run "*) exit 0 ;; esac
if python3 -c "import starlette, uvicorn" 2>/dev/null; then
    model=/tmp/qrr-gpu-check-0.6b
    python3 -c "import sys; from pathlib import Path; from qrr.bench import build_random_model, find_tokenizer
build_random_model('0.6b', Path(sys.argv[1]), Path(sys.argv[2] or find_tokenizer()))" "$model" "${QRR_TOKENIZER:-}"
    python3 benchmarks/serve.py "$model" --requests 64 --docs 8 | tee "${OUT:-.}/serve.txt"
else
    echo "gpu_check: no starlette/uvicorn here, so no serving figures (see this script's header)" >&2
fi
