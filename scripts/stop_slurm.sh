#!/usr/bin/env bash
# Stop the one-node SLURM started by scripts/start_slurm.sh (slurmd, slurmctld; munged too unless
# OPTIPOLY_KEEP_MUNGE=1). Stops only the processes whose pid files it wrote.
set -uo pipefail
DIR="${OPTIPOLY_SLURM_DIR:-/tmp/optipoly-slurm}"
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  exec sudo -n --preserve-env=OPTIPOLY_SLURM_DIR,OPTIPOLY_KEEP_MUNGE "$0" "$@"
fi
stop_pidfile() {
  local f="$1"
  [ -s "$f" ] || return 0
  local pid; pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$f"
}
if [ -f "$DIR/slurm.conf" ] && command -v scancel >/dev/null 2>&1; then
  SLURM_CONF="$DIR/slurm.conf" scancel --user="$(id -un)" >/dev/null 2>&1 || true
fi
stop_pidfile "$DIR/slurmd.pid"
stop_pidfile "$DIR/slurmctld.pid"
if [ "${OPTIPOLY_KEEP_MUNGE:-0}" != "1" ]; then
  stop_pidfile /run/munge/munged.pid
fi
echo "stop_slurm: stopped"
