#!/usr/bin/env bash
# One command for a machine with an accelerator (or a plain CPU): the default panel, MR-PRESSO,
# a simulation study and pairs per second, in float64 and float32, on every device JAX sees,
# printed as one table naming the device (see benchmarks/bench_accelerator.py).
#
#   benchmarks/run_accelerator.sh [--scale small|full] [--devices N] [--minutes 8]
#
# PYTHON picks the interpreter (default: the project's .venv, else python3). The sections stop
# starting after --minutes (8); the whole run is killed at 9.5 minutes as a last resort.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
export PYTHONUNBUFFERED=1
exec timeout 570 "$PY" benchmarks/bench_accelerator.py "$@"
