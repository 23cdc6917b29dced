#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine without systemd (for tests and laptops).
#
# Installs nothing: needs Debian's `slurm-wlm` and `munge` (apt-get install -y slurm-wlm munge).
# Starts munged (default socket /run/munge), slurmctld and slurmd with a config written to
# $OPTIPOLY_SLURM_DIR (default /tmp/optipoly-slurm): one node "localhost" with this machine's CPUs
# and memory, one partition "debug". Waits until `sinfo` shows the node idle, then prints the
# line to export:   export SLURM_CONF=$OPTIPOLY_SLURM_DIR/slurm.conf
# Stop with scripts/stop_slurm.sh. Must run as root (slurmd launches jobs as their users).
set -euo pipefail

DIR="${OPTIPOLY_SLURM_DIR:-/tmp/optipoly-slurm}"
TIMEOUT="${OPTIPOLY_SLURM_TIMEOUT:-60}"

for prog in munged slurmctld slurmd sinfo; do
  if ! command -v "$prog" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$prog" ]; then
    echo "start_slurm: '$prog' not found; install with: apt-get install -y slurm-wlm munge" >&2
    exit 2
  fi
done
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    exec sudo -n --preserve-env=OPTIPOLY_SLURM_DIR,OPTIPOLY_SLURM_TIMEOUT "$0" "$@"
  fi
  echo "start_slurm: must run as root or with password-less sudo (slurmd runs jobs as their" \
       "submitting user)" >&2
  exit 2
fi
export PATH="/usr/sbin:$PATH"

mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
HOST="$(hostname -s)"
CPUS="$(nproc)"
MEM_MB="$(awk '/MemTotal/ {printf "%d", $2/1024*0.9}' /proc/meminfo)"

# --- munge -----------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
  echo "start_slurm: creating /etc/munge/munge.key"
  mkdir -p /etc/munge
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown munge:munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 755 /run/munge
if ! munge -n >/dev/null 2>&1; then
  if id munge >/dev/null 2>&1; then
    runuser -u munge -- munged
  else
    munged --force
  fi
  for _ in $(seq 1 20); do munge -n >/dev/null 2>&1 && break; sleep 0.25; done
fi
munge -n | unmunge >/dev/null || { echo "start_slurm: munge does not work" >&2; exit 1; }

# --- slurm.conf --------------------------------------------------------------------------
cat > "$DIR/slurm.conf" <<CONF
# written by scripts/start_slurm.sh
ClusterName=optipoly
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmdTimeout=60
NodeName=localhost NodeHostname=${HOST} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM_MB} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
export SLURM_CONF="$DIR/slurm.conf"

# --- daemons -----------------------------------------------------------------------------
if [ -s "$DIR/slurmctld.pid" ] && kill -0 "$(cat "$DIR/slurmctld.pid")" 2>/dev/null; then
  echo "start_slurm: slurmctld already running (pid $(cat "$DIR/slurmctld.pid"))"
else
  slurmctld -f "$SLURM_CONF" -i
fi
if [ -s "$DIR/slurmd.pid" ] && kill -0 "$(cat "$DIR/slurmd.pid")" 2>/dev/null; then
  echo "start_slurm: slurmd already running (pid $(cat "$DIR/slurmd.pid"))"
else
  slurmd -f "$SLURM_CONF" -N localhost
fi

deadline=$(( $(date +%s) + TIMEOUT ))
state=""
while [ "$(date +%s)" -lt "$deadline" ]; do
  state="$(sinfo -h -N -n localhost -o %t 2>/dev/null | head -n1 || true)"
  case "$state" in
    idle|mix|alloc) break ;;
    down*|drain*) scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true ;;
  esac
  sleep 1
done
if [ "$state" != "idle" ] && [ "$state" != "mix" ] && [ "$state" != "alloc" ]; then
  echo "start_slurm: node not idle after ${TIMEOUT}s (state '$state'); logs in $DIR/log" >&2
  tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
  exit 1
fi
sinfo
echo "export SLURM_CONF=$SLURM_CONF"
