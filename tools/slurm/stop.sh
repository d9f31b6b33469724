#!/usr/bin/env bash
# Stop the one-node SLURM cluster that tools/slurm/start.sh started in STATE_DIR.
#
#   sudo tools/slurm/stop.sh [STATE_DIR]     # default STATE_DIR: /tmp/rnaseq-saliency-slurm
#
# Cancels the cluster's jobs, then stops slurmd, slurmctld and munged through the PID files in
# STATE_DIR (never by process name, so other SLURM or munge daemons on the machine are left
# alone), and removes the /etc/slurm/slurm.conf link that start.sh made. Stopping a cluster
# that is not running does nothing. Logs stay in STATE_DIR.
set -euo pipefail

# As in start.sh: a root PATH may lack the system directories (sudo without secure_path, su
# without -, CI runners); squeue, scancel and timeout are in /usr/bin. Append the ones PATH
# lacks, so those tools are found; PATH's own order still comes first.
for dir in /usr/local/sbin /usr/sbin /sbin /usr/local/bin /usr/bin /bin; do
  case ":${PATH-}:" in
    *":$dir:"*) ;;
    *) PATH="${PATH:+$PATH:}$dir" ;;
  esac
done
export PATH

STATE=${1:-/tmp/rnaseq-saliency-slurm}
case "$STATE" in
  /*) ;;
  *) STATE="$(pwd)/$STATE" ;;
esac

say() { echo "slurm/stop: $*" >&2; }

# pid_of PIDFILE NAME: the PID in PIDFILE, if that process is running and is still the daemon
# NAME (a PID in a stale file may belong to another process by now).
pid_of() {
  local pid
  pid=$(cat "$1" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
    && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && echo "$pid"
}

# stop PIDFILE:NAME...: send SIGTERM to each daemon, wait for all (SIGKILL after 10 s), remove
# the PID files. Daemons stopped together take one shutdown time (about 2 s), not the sum.
stop() {
  local entry pid pids=() names=() i
  for entry in "$@"; do
    pid=$(pid_of "${entry%%:*}" "${entry#*:}" || true)
    if [ -n "$pid" ]; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      names+=("${entry#*:} ($pid)")
    fi
  done
  for pid in "${pids[@]}"; do
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "process $pid ignored SIGTERM for 10 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  [ "${#names[@]}" -eq 0 ] || say "stopped ${names[*]}"
  for entry in "$@"; do
    rm -f "${entry%%:*}"
  done
}

if [ -e "$STATE/slurm.conf" ] && [ -s "$STATE/slurmctld.pid" ] && command -v scancel >/dev/null; then
  # Jobs still running would outlive slurmd (slurmstepd runs on its own): cancel them first.
  export SLURM_CONF="$STATE/slurm.conf"
  jobs=$(timeout 10 squeue --noheader --format %i 2>/dev/null || true)
  if [ -n "$jobs" ]; then
    # shellcheck disable=SC2086  # one job id per word
    timeout 10 scancel $jobs 2>/dev/null || true
    for _ in $(seq 1 50); do
      [ -z "$(timeout 5 squeue --noheader --states=PENDING,RUNNING,COMPLETING --format %i 2>/dev/null)" ] \
        && break
      sleep 0.2
    done
  fi
fi

# munged last: the SLURM daemons authenticate their shutdown messages through it.
stop "$STATE/slurmd.pid:slurmd" "$STATE/slurmctld.pid:slurmctld"
stop "$STATE/munge/munged.pid:munged"
rm -f "$STATE/munge/munge.socket" "$STATE/munge/munge.socket.lock"
# The link start.sh made for clients that ignore SLURM_CONF; anything else there is not ours.
if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$STATE/slurm.conf" ]; then
  rm -f /etc/slurm/slurm.conf
fi
