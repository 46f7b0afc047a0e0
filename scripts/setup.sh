#!/usr/bin/env bash
# Set up a virtual environment with the CPU build of torch and tunefactory (editable) with the extras that run on a
# CPU, then build the bundled tiny model. Usage: bash scripts/setup.sh [VENV_DIR] (default .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv}"
TORCH_VERSION="2.13.0"
CPU_EXTRAS="dev,bnb,gptq,awq,hqq,quanto,aqlm,deepspeed,api,media,metrics,tensorboard"

python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch first, CPU build; every later install is constrained to it so no dependency pulls a CUDA torch.
# Where no CPU wheel is at hand, set TORCH_INDEX=https://download.pytorch.org/whl/cpu.
"$VENV/bin/pip" install -q "torch==${TORCH_VERSION}" ${TORCH_INDEX:+--index-url "$TORCH_INDEX"}
CONSTRAINTS="$VENV/torch-constraint.txt"
"$VENV/bin/python" -c "import torch; print('torch==' + torch.__version__)" > "$CONSTRAINTS"
"$VENV/bin/pip" install -q -c "$CONSTRAINTS" -e ".[${CPU_EXTRAS}]"
"$VENV/bin/python" examples/build_tiny_model.py
echo "set up: $VENV (torch $(cat "$CONSTRAINTS"))"
