#!/usr/bin/env bash
# Install everything the tests need into a fresh virtualenv, then run the whole suite.
# The heavy stack (CPU torch, Unsloth, transformers, trl, peft) is what the smoke test and
# the training watchdog run for real on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${TEST_VENV:-.venv-test}"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e ".[test]"
# CPU torch first; then the pinned Unsloth stack without dependency resolution, since
# unsloth's metadata would otherwise pull xformers, triton and a CUDA build of torch.
"$venv/bin/python" -m pip install -q "torch==2.13.0"
"$venv/bin/python" -m pip install -q --no-deps -r requirements/smoke-cpu.txt
# The HTML report's test renders it in headless Chromium, and the completion tests source the
# scripts in zsh and fish; where this script may install system packages, they must run.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    if ! command -v chromium >/dev/null || ! command -v zsh >/dev/null || ! command -v fish >/dev/null; then
        apt-get update -qq && apt-get install -y -qq chromium zsh fish >/dev/null
    fi
    export UNSLOTH_DOCTOR_TEST_BROWSER=required UNSLOTH_DOCTOR_TEST_SHELLS=required
fi
"$venv/bin/python" -m doctor kb test --quiet
# pytest exits 5 when it collected no tests; that fails this script like any other failure.
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
