#!/usr/bin/env bash
# Install everything the tool needs on a fresh Debian/Ubuntu machine. Idempotent.
#   bash scripts/install.sh          # Python venv (.venv) + all Python packages (dashboard, simulation)
#   bash scripts/install.sh --test   # ... plus system packages for the tests: Chromium, SLURM, munge
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

if [ "$want_test" = 1 ]; then
  missing=()
  command -v chromium  >/dev/null 2>&1 || missing+=(chromium fonts-liberation)
  command -v slurmctld >/dev/null 2>&1 || missing+=(slurm-wlm)
  command -v munged    >/dev/null 2>&1 || missing+=(munge)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "[install] apt-get install ${missing[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[install] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[install] pip install -r requirements.txt"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  echo "$want" > "$stamp"
fi
echo "[install] done"
