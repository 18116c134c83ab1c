#!/usr/bin/env bash
# README's first command installs requirements.txt only: prove that this alone gives a working app. In a
# fresh virtualenv made from requirements.txt (nothing the tests install), every page draws (AppTest) and
# `streamlit run app.py` answers its health check.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
server=""
cleanup() {
  [[ -n "$server" ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

python3 -m venv "$work/venv"
python="$work/venv/bin/python"
"$python" -m pip install -q --upgrade pip
"$python" -m pip install -q -r requirements.txt

"$python" scripts/check_pages.py

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LORA_LAB_DATA="$work/data" LORA_LAB_CACHE="$work/checkpoints" "$work/venv/bin/streamlit" run app.py \
  --server.headless true --server.address 127.0.0.1 --server.port "$port" \
  --browser.gatherUsageStats false >"$work/streamlit.log" 2>&1 &
server=$!
"$python" - "$port" "$server" <<'PY'
import os, sys, time, urllib.request

port, pid, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + 120
while True:
    try:
        answer = urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5).read()
        if answer == b"ok":
            print("streamlit run app.py: /_stcore/health says ok")
            break
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("streamlit run app.py exited before answering its health check")
    if time.monotonic() > deadline:
        sys.exit("streamlit run app.py did not answer /_stcore/health within 120 s")
    time.sleep(0.5)
PY
