#!/usr/bin/env bash
# The GPU check in one command (benchmarks/gpu_check.py says what it does): on a CUDA machine, or anywhere with
# --dry-run. Where the machine lacks qrr's own dependencies (the lent GPU machines have torch and transformers
# but no orjson and no Qwen3 tokenizer), put wheels in .gpu/wheels and the tokenizer in .gpu/tokenizer:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_17_x86_64 -d .gpu/wheels orjson
#   cp "$(python -c 'import tests.tiny as t; print(t.tokenizer_files())')"/* .gpu/tokenizer/
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import orjson" 2>/dev/null && ls .gpu/wheels/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/qrr-site .gpu/wheels/*.whl
    export PYTHONPATH=/tmp/qrr-site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -d .gpu/tokenizer ] && [ -z "${QRR_TOKENIZER:-}" ]; then
    export QRR_TOKENIZER=$PWD/.gpu/tokenizer
fi
export PYTHONUNBUFFERED=1
exec python3 benchmarks/gpu_check.py "$@"
