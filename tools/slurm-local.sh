#!/usr/bin/env bash
# A one-node Slurm cluster on localhost, as root, for the atlas tests:
#   eval "$(bash tools/slurm-local.sh start DIR)"   # prints export SLURM_CONF=DIR/slurm.conf
#   bash tools/slurm-local.sh stop DIR
# It installs slurmctld, slurmd, slurm-client and munge when missing (Debian), writes a
# slurm.conf with its state and spool folders under DIR, sizes the node from nproc and
# free, starts munged (the packaged key), slurmctld and slurmd, and waits for the node.
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: slurm-local.sh start|stop DIR" >&2; exit 2; }
dir=$(realpath -m -- "$dir")   # slurm.conf needs absolute paths
conf=$dir/slurm.conf
# The paths as extended regular expressions, for pgrep/pkill.
quote_re() { printf '%s' "$1" | sed 's/[][\.*^$+?(){}|]/\\&/g'; }
daemons="-f $(quote_re "$conf")|--socket=$(quote_re "$dir/munge/")"

stop() {
    # Only pids whose command line names this DIR's files: a stale pid file must not
    # make us kill another process.
    for p in slurmd slurmctld munged; do
        pid=$(cat "$dir/$p.pid" 2>/dev/null || true)
        if [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/"; then
            kill "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/$p.pid"
    done
    # Whatever is left of this DIR's daemons (slurmd can take its time over SIGTERM):
    # TERM for up to 5 s, then KILL.
    for signal in TERM TERM TERM TERM TERM KILL; do
        pgrep -f -- "$daemons" >/dev/null || return 0
        pkill "-$signal" -f -- "$daemons" 2>/dev/null || true
        sleep 1
    done
}

case $cmd in
stop) stop; exit 0 ;;
start) ;;
*) echo "usage: slurm-local.sh start|stop DIR" >&2; exit 2 ;;
esac

# The daemons must not inherit the caller's descriptors (a Swift Process, for one, learns
# that its child ended when a socket it passed down closes: a daemon holding it would
# keep the caller waiting forever).
for fd in /proc/$$/fd/*; do
    n=${fd##*/}
    if [ "$n" -gt 2 ] 2>/dev/null; then eval "exec $n>&-" 2>/dev/null || true; fi
done
[ "$(id -u)" -eq 0 ] || { echo "slurm-local.sh: needs root (SlurmUser=root)" >&2; exit 3; }
missing=()
for p in slurmctld slurmd slurm-client munge; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "slurm-local.sh: installing ${missing[*]}" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
stop 2>/dev/null   # daemons of an earlier start in the same DIR
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
cpus=$(nproc)
mem=$(( $(free -m | awk '/^Mem:/ {print $2}') * 9 / 10 ))
cat > "$conf" <<CONF
ClusterName=inverseset
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPort=${SLURM_LOCAL_PORT:-6817}
SlurmdPort=$(( ${SLURM_LOCAL_PORT:-6817} + 1 ))
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
# Jobs that ask for no memory get 1 GB per CPU (not the whole node, which would run one at a time).
DefMemPerCPU=1024
MinJobAge=600
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
munged --force --socket="$dir/munge/munge.socket" --pid-file="$dir/munged.pid" \
       --log-file="$dir/munged.log" --seed-file="$dir/munge/seed" </dev/null >>"$dir/munged.log" 2>&1
export SLURM_CONF=$conf
# The daemons get no descriptor of ours: a caller reading our output to its end must not wait for them.
slurmctld -f "$conf" </dev/null >>"$dir/slurmctld.log" 2>&1
slurmd -f "$conf" -N localhost </dev/null >>"$dir/slurmd.log" 2>&1
for _ in $(seq 1 60); do
    if sinfo -h -o %T 2>/dev/null </dev/null | grep -qE '^(idle|mixed|allocated)'; then
        echo "export SLURM_CONF=$conf"
        exit 0
    fi
    sleep 1
done
echo "slurm-local.sh: the node did not come up; logs in $dir" >&2
sinfo >&2 || true
exit 1
