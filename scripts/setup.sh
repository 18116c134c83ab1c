#!/usr/bin/env bash
# Install LoRA Lab into ./.venv. With --test, also what the tests need: the test packages, Debian's
# chromium (Playwright drives it; never `playwright install`) and Debian's Fashion-MNIST.
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=requirements.txt
if [[ "${1:-}" == "--test" ]]; then
  requirements=requirements-test.txt
  if ! command -v chromium >/dev/null || [[ ! -d /usr/share/datasets/fashion-mnist ]] \
      || ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    sudo=""; [[ $(id -u) -ne 0 ]] && sudo=sudo
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
      chromium dataset-fashion-mnist postgresql
  fi
fi
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r "$requirements"
