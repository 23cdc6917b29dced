#!/usr/bin/env bash
# Install everything and run the whole test suite (unit, integration with real LAMMPS/antechamber/
# PySCF, a real one-node SLURM cluster, and end-to-end tests in headless Chromium).
#   bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
if [ -f scripts/start_slurm.sh ]; then
  bash scripts/start_slurm.sh || echo "[test] WARNING: the local SLURM cluster did not start; SLURM tests will be skipped"
fi
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ -f scripts/stop_slurm.sh ]; then bash scripts/stop_slurm.sh >/dev/null 2>&1 || true; fi
exit $status
