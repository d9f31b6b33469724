#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine, for testing the SLURM profile
# (profiles/slurm) without a real cluster. Needs root; no systemd.
#
#   sudo tools/slurm/start.sh [STATE_DIR]   # default STATE_DIR: /tmp/rnaseq-saliency-slurm
#   sinfo; snakemake --workflow-profile profiles/slurm ...
#   sudo tools/slurm/stop.sh [STATE_DIR]
#
# Installs Debian's slurm-wlm and munge when they are missing (apt-get). Starts munged (as user
# munge, on a socket in STATE_DIR), slurmctld and slurmd; one node (this host, on 127.0.0.1) with
# all CPUs, 90% of the memory and one placeholder GPU, in partition "main". Everything the
# daemons write (configuration, state, logs, PID files) stays under STATE_DIR. Running it again
# while the cluster is up changes nothing.
#
# Environment: SLURM_TEST_PARTITION (default main), SLURM_TEST_CTLD_PORT (6817),
# SLURM_TEST_SLURMD_PORT (6818), SLURM_TEST_TIMEOUT (seconds to wait for the node, 60),
# SLURM_TEST_NO_INSTALL=1 (never call apt-get).
#
# SLURM_CONF alone is not enough: Snakemake's job step (inside each job) drops SLURM_* variables
# before calling srun, which then reads /etc/slurm/slurm.conf. So that path becomes a symlink to
# STATE_DIR/slurm.conf (stop.sh removes it); a slurm.conf that is not such a link is left alone,
# and the script stops: this machine belongs to another SLURM cluster.
#
# Exit status: 0 up; 1 failed; 3 not root; 4 SLURM or munge missing and not installable;
# 5 /etc/slurm/slurm.conf belongs to another cluster.
set -euo pipefail

# Debian installs munged, slurmctld, slurmd and runuser in /usr/sbin (or /sbin), which is not on
# every root PATH (sudo without secure_path, su without -, CI runners). Append the system
# directories that PATH lacks, so those tools are found; PATH's own order still comes first.
for dir in /usr/local/sbin /usr/sbin /sbin /usr/local/bin /usr/bin /bin; do
  case ":${PATH-}:" in
    *":$dir:"*) ;;
    *) PATH="${PATH:+$PATH:}$dir" ;;
  esac
done
export PATH

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${1:-/tmp/rnaseq-saliency-slurm}
PARTITION=${SLURM_TEST_PARTITION:-main}
CTLD_PORT=${SLURM_TEST_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_TEST_SLURMD_PORT:-6818}
TIMEOUT=${SLURM_TEST_TIMEOUT:-60}

say() { echo "slurm/start: $*" >&2; }
die() { say "$2"; exit "$1"; }

[ "$(id -u)" -eq 0 ] || die 3 "needs root (it installs packages and starts munged, slurmctld and slurmd as root); run it with sudo, or skip the SLURM tests (pytest -m 'not slurm')"

case "$STATE" in
  /*) ;;
  *) STATE="$(pwd)/$STATE" ;;
esac
# The path goes into slurm.conf unquoted, and munged's socket path must fit a sockaddr_un.
[[ "$STATE" =~ ^[A-Za-z0-9/._-]+$ ]] || die 1 "state directory '$STATE': use letters, digits and / . _ - only"
[ "${#STATE}" -le 80 ] || die 1 "state directory '$STATE' is too long for munged's socket path (80 characters at most)"

install_packages() {
  local missing=0 tool
  for tool in munged munge slurmctld slurmd sinfo sbatch squeue scontrol; do
    command -v "$tool" >/dev/null 2>&1 || missing=1
  done
  [ "$missing" -eq 0 ] && return 0
  [ "${SLURM_TEST_NO_INSTALL:-}" = 1 ] && die 4 "slurm-wlm or munge is not installed (and SLURM_TEST_NO_INSTALL=1)"
  command -v apt-get >/dev/null 2>&1 || die 4 "slurm-wlm or munge is not installed, and there is no apt-get to install them"
  say "installing slurm-wlm and munge with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # An image with emptied package lists cannot install anything: refresh them once, first.
  if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
    apt-get update -q >&2 || die 4 "apt-get update failed"
  fi
  if ! apt-get install -y -q --no-install-recommends slurm-wlm munge >&2; then
    apt-get update -q >&2 || die 4 "apt-get update failed"
    apt-get install -y -q --no-install-recommends slurm-wlm munge >&2 \
      || die 4 "apt-get could not install slurm-wlm and munge"
  fi
}

# alive PIDFILE NAME: the process in PIDFILE runs and is the daemon NAME (after a reboot or
# a crash, a stale PID file can name an unrelated process).
alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
    && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

node_state() {
  sinfo --noheader --nodes "$NODE" --format %T 2>/dev/null | head -n 1 | tr -d '*~#$@+ '
}

install_packages

NODE=$(hostname -s)
CPUS=$(nproc)
MEMORY_MB=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
export SLURM_CONF="$STATE/slurm.conf"

ETC_CONF=/etc/slurm/slurm.conf
if [ "$(readlink "$ETC_CONF" 2>/dev/null)" != "$STATE/slurm.conf" ]; then
  if [ -e "$ETC_CONF" ] || [ -L "$ETC_CONF" ]; then
    die 5 "$ETC_CONF exists and is not a link to $STATE/slurm.conf: this machine has a SLURM configuration of its own; not starting a test cluster over it"
  fi
  mkdir -p "$(dirname "$ETC_CONF")"
  ln -s "$STATE/slurm.conf" "$ETC_CONF"
fi
mkdir -p "$STATE/ctld" "$STATE/slurmd" "$STATE/munge"
chmod 0755 "$STATE"

# munge: its own key, socket and PID file; munged refuses keys and directories that others can
# write, and runs as the munge user.
chown munge: "$STATE/munge"
chmod 0711 "$STATE/munge"
if [ ! -s "$STATE/munge/munge.key" ]; then
  (umask 077 && head -c 1024 /dev/urandom > "$STATE/munge/munge.key")
  chown munge: "$STATE/munge/munge.key"
fi
if ! alive "$STATE/munge/munged.pid" munged; then
  rm -f "$STATE/munge/munge.socket" "$STATE/munge/munge.socket.lock"
  runuser -u munge -- munged \
    --key-file="$STATE/munge/munge.key" \
    --socket="$STATE/munge/munge.socket" \
    --pid-file="$STATE/munge/munged.pid" \
    --log-file="$STATE/munge/munged.log" \
    --seed-file="$STATE/munge/munged.seed" \
    || die 1 "munged did not start; see $STATE/munge/munged.log"
fi
munge -n -S "$STATE/munge/munge.socket" | unmunge -S "$STATE/munge/munge.socket" >/dev/null \
  || die 1 "munge credentials do not round-trip; see $STATE/munge/munged.log"

# slurm.conf is rewritten only while slurmctld is down, so a running cluster keeps its config.
if ! alive "$STATE/slurmctld.pid" slurmctld; then
  sed -e "s|@HOST@|$NODE|g" -e "s|@STATE@|$STATE|g" -e "s|@CPUS@|$CPUS|g" \
    -e "s|@MEMORY_MB@|$MEMORY_MB|g" -e "s|@PARTITION@|$PARTITION|g" \
    -e "s|@CTLD_PORT@|$CTLD_PORT|g" -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" \
    "$HERE/slurm.conf.in" > "$STATE/slurm.conf.tmp"
  mv "$STATE/slurm.conf.tmp" "$STATE/slurm.conf"
  # Slurm drops a GPU without a device file, and nothing here binds devices (task/none, no
  # cgroups): /dev/null stands in for the placeholder's device.
  echo "NodeName=$NODE Name=gpu File=/dev/null" > "$STATE/gres.conf"
  # -i: start even when the saved state (from an earlier start) cannot be read.
  slurmctld -i -f "$STATE/slurm.conf" || die 1 "slurmctld did not start; see $STATE/slurmctld.log"
fi
if ! alive "$STATE/slurmd.pid" slurmd; then
  slurmd -f "$STATE/slurm.conf" || die 1 "slurmd did not start; see $STATE/slurmd.log"
fi

deadline=$((SECONDS + TIMEOUT))
while :; do
  state=$(node_state || true)
  case "$state" in
    idle | mixed | allocated) break ;;
    # A node that registered with a hiccup (for example right after a restart) is put back.
    down | drained | draining | drain)
      scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
  esac
  if [ "$SECONDS" -ge "$deadline" ]; then
    sinfo -N -l >&2 || true
    die 1 "node $NODE not idle after ${TIMEOUT}s (state: ${state:-none}); see $STATE/slurmctld.log and $STATE/slurmd.log"
  fi
  sleep 0.5
done

say "cluster up: node $NODE ($CPUS CPUs, $MEMORY_MB MB, 1 placeholder GPU), partition $PARTITION"
