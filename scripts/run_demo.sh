#!/usr/bin/env bash
# Install (first time only) and start the dashboard on the demo campaign, with the runner on a
# local dask cluster. Opens on http://127.0.0.1:8501
#   bash scripts/run_demo.sh [--preset smoke|quick|standard] [--port 8501]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${OPTIPOLY_PRESET:-quick}"; port=8501
while [ $# -gt 0 ]; do
  case "$1" in
    --preset) preset="$2"; shift 2;;
    --port) port="$2"; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
bash scripts/install.sh
export OPTIPOLY_PRESET="$preset"
exec .venv/bin/python -m streamlit run app.py --server.address 127.0.0.1 --server.port "$port" \
  --server.headless true --browser.gatherUsageStats false
