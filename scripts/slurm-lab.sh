#!/usr/bin/env bash
# The Slurm test cluster: a controller, N compute nodes and an OCI registry on this machine.
#
#   scripts/slurm-lab.sh up        start everything, wait until every node is idle, print the lab
#   scripts/slurm-lab.sh down      cancel the lab's jobs, stop every daemon by PID, remove the lab
#   scripts/slurm-lab.sh status    each daemon (PID, alive or not) and the nodes' Slurm states
#   scripts/slurm-lab.sh env       the lab's settings (the lines of $SLURM_LAB_DIR/lab.env)
#   scripts/slurm-lab.sh exec NODE -- CMD...   run CMD inside NODE's namespaces (nsenter)
#
# Settings (environment):
#   SLURM_LAB_DIR        where the lab lives (default ${TMPDIR:-/tmp}/intoto-slurm-lab); one lab
#                        per directory, so tests run theirs beside anyone else's
#   SLURM_LAB_NODES      number of compute nodes, node1..nodeN (default 3, at least 3)
#   SLURM_LAB_ISOLATION  auto (default: namespaces when this machine allows them, else loopback),
#                        namespaces (fail when it cannot), or loopback
#   SLURM_LAB_KEEP=1     `down` keeps the directory (logs) instead of removing it
#
# Isolation. In `namespaces` mode every slurmd runs in its own network, mount, UTS and PID
# namespaces (util-linux `unshare`): its host name is its node name; its only network is a veth
# on a bridge where ports are isolated from each other, so it reaches the controller and the
# registry at the bridge address and never another node; its file system is the host's with
# /tmp, /var/tmp, /dev/shm and the lab directory replaced by empty ones (this checkout, the
# software the jobs run, mounted back read-only when it lived under one of them), into which only its own
# directory ($LAB/nodes/NODE: keys/, jobs/, spool), the lab's shared directory ($LAB/shared,
# read-only: what every node reads, as a cluster's shared file system holds software, layouts
# and public keys), the Slurm configuration (read-only) and munge's socket are mounted back; its /proc shows only its own processes, and when the node
# stops, the kernel kills everything left in it. A node is reached with `nsenter` (the `exec`
# subcommand), never `ip netns exec`, which remounts /sys and hides the cgroup file system.
# The jobs run as root here (this machine has one account): the namespaces separate what a node
# sees, not what a root process that sets out to escape them could reach. On a real cluster the
# machines are separate and jobs run as the functionary's account.
#
# In `loopback` mode (no namespaces: an unprivileged container, a kernel without veth or
# bridges) the nodes are plain slurmd processes on 127.0.0.1 with one port each: they share the
# host's files and network, so nothing separates one node's key from another's. `up` says so.
#
# Daemons start detached (setsid, standard input from /dev/null, output to log files), on free
# ports and in the lab directory; `down` stops each by PID: TERM, TERM again after 5 s, then KILL.
set -euo pipefail

SELF=$(readlink -f "$0")
# The checkout this script belongs to: the software every node runs (the intoto program the
# jobs start, its bundles and node_modules), as a cluster's shared file system holds software.
REPO=$(dirname "$(dirname "$SELF")")
SCRIPTS=$(dirname "$SELF")
LAB=${SLURM_LAB_DIR:-${TMPDIR:-/tmp}/intoto-slurm-lab}
LAB=$(readlink -m "$LAB")
NODE_COUNT=${SLURM_LAB_NODES:-3}
ISOLATION=${SLURM_LAB_ISOLATION:-auto}
PARTITION=lab
export SLURM_CONF=$LAB/etc/slurm.conf
# Every daemon the lab starts carries this variable, so `down` recognises the lab's leftovers.
export INTOTO_SLURM_LAB=$LAB

say() { printf 'slurm-lab: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

# ---------------------------------------------------------------------------------------------
# Processes: start detached, record the PID, stop by PID.
# ---------------------------------------------------------------------------------------------

alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null && [[ $(ps -o stat= -p "$1" 2>/dev/null) != Z* ]]; }

# stop_pid PID NAME: TERM; after 5 s TERM again; after 5 s more KILL; returns once it is gone.
stop_pid() {
  local pid=$1 name=$2 i
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    alive "$pid" || return 0
    ((i == 50)) && { say "$name (pid $pid) ignored TERM; sending it again"; kill -TERM "$pid" 2>/dev/null || true; }
    sleep 0.1
  done
  say "$name (pid $pid) still running after 10 s; sending KILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  say "warning: $name (pid $pid) survived KILL"
}

# detach NAME LOG CMD...: starts CMD in its own session, detached from our terminal; records
# its PID in $LAB/pids/NAME.pid. (setsid does not fork here: a background job of a script is
# never a process group leader, so the PID recorded is the daemon's own.)
detach() {
  local name=$1 log=$2
  shift 2
  setsid "$@" </dev/null >>"$log" 2>&1 &
  echo $! >"$LAB/pids/$name.pid"
}

pid_of() { cat "$LAB/pids/$1.pid" 2>/dev/null || true; }

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for SECONDS WHAT CMD...: polls CMD every 0.1 s until it succeeds.
wait_for() {
  local limit=$1 what=$2 i
  shift 2
  for ((i = 0; i < limit * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------------------------------------
# Namespaces: can this machine give each node its own network, mount, UTS and PID namespaces?
# ---------------------------------------------------------------------------------------------

namespaces_work() {
  [[ $(id -u) -eq 0 ]] || return 1
  command -v ip >/dev/null && command -v unshare >/dev/null && command -v nsenter >/dev/null || return 1
  unshare --net --mount --uts --pid --fork --mount-proc --propagation private true 2>/dev/null || return 1
  local probe="ilabprobe$$"
  ip link add "$probe" type bridge 2>/dev/null || return 1
  ip link del "$probe"
}

# The first free 10.213.N.0/24 whose bridge name ilabN we can create (creating it is the lock).
make_bridge() {
  local n
  for ((n = 1; n < 255; n++)); do
    ip -o -4 addr show | grep -q " 10\.213\.$n\." && continue
    ip link add "ilab$n" type bridge 2>/dev/null || continue
    ip addr add "10.213.$n.1/24" dev "ilab$n"
    ip link set "ilab$n" up
    echo "$n"
    return 0
  done
  return 1
}

# Runs inside a node's new namespaces, as their PID 1 (see start_node_ns).
node_init() {
  local name=$1 own=$LAB/nodes/$1
  hostname "$name"
  ip link set lo up
  # Keep handles on what the node may see, then hide everything else under empty file systems.
  exec 3<"$own" 4<"$LAB/etc" 5<"$LAB/munge" 6<"$LAB/shared" 7<"$REPO"
  local d
  for d in /tmp /var/tmp /dev/shm; do
    [[ -d $d ]] && mount -t tmpfs -o mode=1777,size=256m "node-$d" "$d"
  done
  # A checkout under one of those (a CI clone in /tmp) would vanish with them: mount it back,
  # read-only, at the same path, so every node still runs the same software.
  case $REPO/ in
    /tmp/* | /var/tmp/* | /dev/shm/*)
      mkdir -p "$REPO"
      mount --no-canonicalize --bind /proc/self/fd/7 "$REPO"
      mount -o remount,bind,ro "$REPO"
      ;;
  esac
  mkdir -p "$LAB"
  mount -t tmpfs -o mode=0755,size=1m node-lab "$LAB"
  mkdir -p "$own" "$LAB/etc" "$LAB/munge" "$LAB/shared"
  mount --no-canonicalize --bind /proc/self/fd/3 "$own"
  mount --no-canonicalize --bind /proc/self/fd/4 "$LAB/etc"
  mount -o remount,bind,ro "$LAB/etc"
  mount --no-canonicalize --bind /proc/self/fd/5 "$LAB/munge"
  mount --no-canonicalize --bind /proc/self/fd/6 "$LAB/shared"
  mount -o remount,bind,ro "$LAB/shared"
  # The node's own freezer cgroup, where slurmd puts each job (proctrack/cgroup), so labs and
  # nodes never share Slurm's cgroup names.
  if [[ -n ${LAB_CGROUP:-} ]]; then
    mount --bind "$LAB_CGROUP/$name" /sys/fs/cgroup/freezer
  fi
  exec 3<&- 4<&- 5<&- 6<&- 7<&-
  cd "$own"
  # The host gives us eth0 and its address; wait for it (at most 10 s).
  local i
  for ((i = 0; i < 100; i++)); do
    ip -o -4 addr show dev eth0 2>/dev/null | grep -q inet && break
    sleep 0.1
  done
  ip -o -4 addr show dev eth0 2>/dev/null | grep -q inet || {
    echo "node $name: no network after 10 s" >&2
    exit 1
  }
  # PID 1 of the namespace: run slurmd, pass TERM on, reap every orphan (bash's wait does).
  slurmd -D -N "$name" -f "$SLURM_CONF" &
  local slurmd=$!
  trap 'kill -TERM $slurmd 2>/dev/null' TERM INT
  while kill -0 "$slurmd" 2>/dev/null; do wait || true; done
}

start_node_ns() {
  local name=$1 index=$2 net=$3
  local host_end="ilab$net-$index" addr="10.213.$net.$((10 + index))"
  detach "$name" "$LAB/nodes/$name/console.log" env LAB_CGROUP="$(cat "$LAB/pids/cgroup" 2>/dev/null || true)" \
    unshare --net --mount --uts --pid --fork --mount-proc --propagation private -- "$SELF" _node-init "$name"
  local outer init="" i
  outer=$(pid_of "$name")
  # unshare forks the namespace's PID 1; wait until it exists and is in the new network namespace.
  for ((i = 0; i < 100; i++)); do
    init=$(pgrep -P "$outer" | head -n1 || true)
    if [[ -n $init && $(readlink "/proc/$init/ns/net" 2>/dev/null) != "$(readlink /proc/self/ns/net)" ]]; then break; fi
    init=""
    sleep 0.05
  done
  [[ -n $init ]] || die "node $name did not start (see $LAB/nodes/$name/console.log)"
  echo "$init" >"$LAB/pids/$name.init"
  ip link add "$host_end" type veth peer name eth0 netns "$init"
  ip link set "$host_end" master "ilab$net"
  bridge link set dev "$host_end" isolated on # nodes reach the bridge address, never each other
  ip link set "$host_end" up
  nsenter -t "$init" -n ip addr add "$addr/24" dev eth0
  nsenter -t "$init" -n ip link set eth0 up
}

# ---------------------------------------------------------------------------------------------
# munge: Slurm's authentication, with the lab's own key and socket.
# ---------------------------------------------------------------------------------------------

start_munge() {
  mkdir -p "$LAB/munge-key" "$LAB/munge"
  chmod 0700 "$LAB/munge-key"
  chmod 0755 "$LAB/munge" # munged wants everyone to be able to reach its socket
  mungekey --create --keyfile="$LAB/munge-key/munge.key" >/dev/null
  detach munged "$LAB/log/munged.log" munged --foreground --socket="$LAB/munge/munge.socket" \
    --key-file="$LAB/munge-key/munge.key" --pid-file="$LAB/munge-key/munged.pid" \
    --seed-file="$LAB/munge-key/munged.seed" --log-file="$LAB/log/munged.log"
  wait_for 10 munged test -S "$LAB/munge/munge.socket" || die "munged did not start (see $LAB/log/munged.log)"
}

# ---------------------------------------------------------------------------------------------
# The registry: Debian's docker-registry, started and stopped by scripts/registry.sh (the one
# implementation the tests, benchmarks and demo use too), on the address every node reaches.
# Its PID is recorded with the lab's daemons.
# ---------------------------------------------------------------------------------------------

start_registry() {
  local addr=$1
  REGISTRY=$(REGISTRY_HOST=$addr "$SCRIPTS/registry.sh" up "$LAB/registry") || die "the registry did not start on $addr (see $LAB/registry/registry.log)"
  cp "$LAB/registry/registry.pid" "$LAB/pids/registry.pid"
}

stop_registry() {
  if [[ -f $LAB/registry/registry.pid ]]; then "$SCRIPTS/registry.sh" down "$LAB/registry" || true; fi
  stop_pid "$(pid_of registry)" registry
}

# ---------------------------------------------------------------------------------------------
# Slurm: slurmctld on the host, one slurmd per node.
# ---------------------------------------------------------------------------------------------

write_slurm_conf() {
  local mode=$1 ctl_addr=$2 ctl_port=$3 node_port=$4 net=${5:-} proctrack=proctrack/linuxproc
  local host
  host=$(hostname -s)
  [[ -f $LAB/pids/cgroup ]] && proctrack=proctrack/cgroup
  {
    cat <<EOF
# The intoto Slurm lab ($mode): written by scripts/slurm-lab.sh up; removed by down.
ClusterName=intotolab
SlurmctldHost=$host($ctl_addr)
SlurmctldPort=$ctl_port
SlurmdPort=$node_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$LAB/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$LAB/ctld/state
SlurmctldPidFile=$LAB/ctld/slurmctld.pid
SlurmctldLogFile=$LAB/log/slurmctld.log
SlurmdSpoolDir=$LAB/nodes/%n/spool
SlurmdPidFile=$LAB/nodes/%n/slurmd.pid
SlurmdLogFile=$LAB/nodes/%n/slurmd.log
LogTimeFormat=iso8601_ms
PlugStackConfig=$LAB/etc/plugstack.conf
ProctrackType=$proctrack
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
# Start a job as soon as it can run: no batching of submissions, no minimum interval between
# scheduling passes. (interval=30 is sched/builtin's default, stated first because the plugin
# would otherwise read sched_min_interval's 0 as its own and complain.)
SchedulerType=sched/builtin
SchedulerParameters=interval=30,batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# The nodes share this machine's CPUs and memory: trust the configuration, not the hardware.
SlurmdParameters=config_overrides
ReturnToService=2
# Finished jobs stay visible to squeue for 10 minutes (there is no accounting database here).
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
TreeWidth=65533
EOF
    local i
    for ((i = 1; i <= NODE_COUNT; i++)); do
      if [[ $mode == namespaces ]]; then
        echo "NodeName=node$i NodeHostname=node$i NodeAddr=10.213.$net.$((10 + i)) CPUs=2 RealMemory=1024 State=UNKNOWN"
      else
        echo "NodeName=node$i NodeHostname=$host NodeAddr=127.0.0.1 Port=$(free_port) CPUs=2 RealMemory=1024 State=UNKNOWN"
      fi
    done
    echo "PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
  } >"$SLURM_CONF"
  : >"$LAB/etc/plugstack.conf"
  printf 'CgroupPlugin=cgroup/v1\nCgroupMountpoint=/sys/fs/cgroup\nCgroupAutomount=no\n' >"$LAB/etc/cgroup.conf"
}

# probes_done IDS: every job in IDS completed.
probes_done() {
  local states
  states=$(squeue -h --states=all -j "$1" -o '%T' 2>/dev/null) || return 1
  [[ -n $states && -z $(grep -v '^COMPLETED$' <<<"$states") ]]
}

all_nodes_idle() {
  local states
  states=$(sinfo -h -N -p "$PARTITION" -o '%t' 2>/dev/null) || return 1
  [[ $(grep -c '^idle$' <<<"$states") -eq $NODE_COUNT ]]
}

# ---------------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------------

lab_running() {
  local f
  for f in "$LAB"/pids/*.pid; do
    [[ -e $f ]] && alive "$(cat "$f")" && return 0
  done
  return 1
}

# On any failure of `up` (an error, or a command failing under set -e): stop what started.
up_failed() {
  local status=$?
  ((status == 0)) && return 0
  say "up failed; stopping what started (logs kept in $LAB)"
  SLURM_LAB_KEEP=1 cmd_down >/dev/null 2>&1 || true
  exit "$status"
}

cmd_up() {
  [[ $NODE_COUNT =~ ^[0-9]+$ ]] && ((NODE_COUNT >= 3 && NODE_COUNT <= 32)) || die "SLURM_LAB_NODES must be 3 to 32, not '$NODE_COUNT'"
  local cmd
  for cmd in slurmctld slurmd sbatch squeue scancel sinfo munged mungekey docker-registry curl setsid; do
    command -v "$cmd" >/dev/null || die "$cmd is not installed (scripts/install-deps.sh installs the lab's packages)"
  done
  lab_running && die "a lab is already running in $LAB (scripts/slurm-lab.sh down first)"
  local mode
  case $ISOLATION in
    auto) if namespaces_work; then mode=namespaces; else mode=loopback; fi ;;
    namespaces) namespaces_work || die "SLURM_LAB_ISOLATION=namespaces, but this machine cannot make network, mount, UTS and PID namespaces and a bridge (needs root, util-linux unshare, iproute2)"; mode=namespaces ;;
    loopback) mode=loopback ;;
    *) die "SLURM_LAB_ISOLATION must be auto, namespaces or loopback, not '$ISOLATION'" ;;
  esac
  rm -rf "$LAB"
  mkdir -p "$LAB"/{etc,log,pids,ctld/state,shared}
  local i
  for ((i = 1; i <= NODE_COUNT; i++)); do mkdir -p "$LAB/nodes/node$i"/{keys,jobs,spool}; done
  trap 'up_failed' EXIT

  local net="" ctl_addr=127.0.0.1
  if [[ $mode == namespaces ]]; then
    net=$(make_bridge) || die "no free 10.213.N.0/24 network for the lab's bridge"
    echo "ilab$net" >"$LAB/pids/bridge"
    ctl_addr=10.213.$net.1
    # Job tracking by cgroup (a job's detached children end with it) when the cgroup v1
    # freezer is there; each node gets its own subtree, mounted as its freezer hierarchy.
    if [[ -d /sys/fs/cgroup/freezer && -f /sys/fs/cgroup/freezer/tasks ]]; then
      local cg=/sys/fs/cgroup/freezer/intoto-lab-$net
      for ((i = 1; i <= NODE_COUNT; i++)); do mkdir -p "$cg/node$i"; done
      echo "$cg" >"$LAB/pids/cgroup"
    fi
  else
    say "WARNING: no namespaces here: the nodes are plain processes on 127.0.0.1 sharing this machine's files and network; nothing keeps one node from reading another node's key"
  fi
  local ctl_port node_port
  ctl_port=$(free_port)
  node_port=$(free_port)

  start_munge
  start_registry "$ctl_addr"
  write_slurm_conf "$mode" "$ctl_addr" "$ctl_port" "$node_port" "$net"
  detach slurmctld "$LAB/log/slurmctld.out" slurmctld -D -f "$SLURM_CONF"
  for ((i = 1; i <= NODE_COUNT; i++)); do
    if [[ $mode == namespaces ]]; then
      start_node_ns "node$i" "$i" "$net"
    else
      detach "node$i" "$LAB/nodes/node$i/console.log" slurmd -D -N "node$i" -f "$SLURM_CONF"
    fi
  done
  wait_for 60 "nodes" all_nodes_idle || die "the nodes are not idle after 60 s: $(sinfo -h -N -o '%N=%t' 2>&1 | tr '\n' ' ') (logs in $LAB/log and $LAB/nodes/*/)"
  # Idle is not ready: the controller starts scheduling a few seconds after it starts. One
  # trivial job per node, run to completion, proves submission, scheduling and launch work.
  local probes=()
  for ((i = 1; i <= NODE_COUNT; i++)); do
    probes+=("$(sbatch --parsable -J lab-probe -w "node$i" -o /dev/null -e /dev/null --wrap true)")
  done
  local ids
  ids=$(IFS=,; echo "${probes[*]}")
  wait_for 60 "probe jobs" probes_done "$ids" || die "the probe jobs did not complete in 60 s: $(squeue -h --states=all -j "$ids" -o '%i %T %N %r' 2>&1 | tr '\n' ';') (logs in $LAB/log and $LAB/nodes/*/)"
  trap - EXIT

  local nodes
  nodes=$(seq -f 'node%g' -s, 1 "$NODE_COUNT")
  cat >"$LAB/lab.env" <<EOF
SLURM_LAB_DIR=$LAB
SLURM_LAB_MODE=$mode
SLURM_CONF=$SLURM_CONF
SLURM_LAB_PARTITION=$PARTITION
SLURM_LAB_NODES=$nodes
SLURM_LAB_NODE_ROOT=$LAB/nodes
SLURM_LAB_REGISTRY=$REGISTRY
SLURM_LAB_SHARED=$LAB/shared
SLURM_LAB_MUNGE_SOCKET=$LAB/munge/munge.socket
SLURM_LAB_PROCTRACK=$(sed -n 's/^ProctrackType=//p' "$SLURM_CONF")
EOF
  say "up ($mode): controller $ctl_addr:$ctl_port, nodes $nodes, registry $REGISTRY"
  say "each node's own directory: $LAB/nodes/NODE (keys/, jobs/); read-only on every node: $LAB/shared; export SLURM_CONF=$SLURM_CONF"
  cat "$LAB/lab.env"
}

# Processes that belong to the lab although it did not record them: anything left in a node's
# namespaces (namespaces mode), and slurmstepd processes carrying the lab's marker (loopback).
lab_leftovers() {
  local pid env
  for pid in $(pgrep -x slurmstepd || true) $(pgrep -f '^slurmstepd' || true); do
    env=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null || true)
    grep -qx "INTOTO_SLURM_LAB=$LAB" <<<"$env" && echo "$pid"
  done | sort -u
}

cmd_down() {
  [[ -d $LAB ]] || {
    say "no lab in $LAB"
    return 0
  }
  # Cancel every job first, so slurmd's step daemons kill the jobs' processes.
  if [[ -f $SLURM_CONF ]] && alive "$(pid_of slurmctld)"; then
    local jobs
    jobs=$(squeue -h -o '%i' 2>/dev/null | tr '\n' ',' || true)
    if [[ -n ${jobs%,} ]]; then
      scancel --quiet "${jobs%,}" 2>/dev/null || true
      wait_for 15 "jobs" bash -c '[[ -z $(squeue -h -t RUNNING,COMPLETING,CONFIGURING -o %i 2>/dev/null) ]]' || say "warning: jobs still running after 15 s: stopping the nodes anyway"
    fi
  fi
  local f name
  for f in "$LAB"/pids/node*.pid; do
    [[ -e $f ]] || continue
    name=$(basename "$f" .pid)
    if [[ -f $LAB/pids/$name.init ]]; then
      stop_pid "$(cat "$LAB/pids/$name.init")" "$name (its namespace's PID 1)"
    fi
    stop_pid "$(cat "$f")" "$name"
  done
  local pid
  for pid in $(lab_leftovers); do stop_pid "$pid" "leftover slurmstepd"; done
  stop_pid "$(pid_of slurmctld)" slurmctld
  stop_registry
  stop_pid "$(pid_of munged)" munged
  if [[ -f $LAB/pids/cgroup ]]; then
    local cg
    cg=$(cat "$LAB/pids/cgroup")
    [[ $cg == /sys/fs/cgroup/freezer/intoto-lab-* && -d $cg ]] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
  fi
  if [[ -f $LAB/pids/bridge ]]; then
    ip link del "$(cat "$LAB/pids/bridge")" 2>/dev/null || true
  fi
  if [[ ${SLURM_LAB_KEEP:-} == 1 ]]; then
    rm -rf "$LAB/pids"
    say "down; kept $LAB"
  else
    rm -rf "$LAB"
    say "down"
  fi
}

cmd_status() {
  [[ -f $LAB/lab.env ]] || {
    say "no lab in $LAB"
    return 1
  }
  local ok=0 f name pid
  echo "lab $LAB ($(sed -n 's/^SLURM_LAB_MODE=//p' "$LAB/lab.env"))"
  for f in "$LAB"/pids/*.pid; do
    name=$(basename "$f" .pid)
    pid=$(cat "$f")
    if alive "$pid"; then echo "  $name: pid $pid, running"; else
      echo "  $name: pid $pid, NOT RUNNING"
      ok=1
    fi
  done
  sinfo -h -N -o '  %N: %t' 2>&1 || ok=1
  return $ok
}

cmd_exec() {
  local name=${1:-}
  shift || true
  [[ ${1:-} == -- ]] && shift
  [[ -n $name && $# -gt 0 ]] || die "usage: slurm-lab.sh exec NODE -- CMD..."
  if [[ -f $LAB/pids/$name.init ]]; then
    exec nsenter -t "$(cat "$LAB/pids/$name.init")" --net --mount --uts --pid -- "$@"
  fi
  [[ -f $LAB/pids/$name.pid ]] || die "no node '$name' in $LAB"
  exec "$@" # loopback: the node is this machine
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cat "$LAB/lab.env" ;;
  exec)
    shift
    cmd_exec "$@"
    ;;
  _node-init) node_init "$2" ;;
  *)
    sed -n '2,8p' "$SELF" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
