#!/usr/bin/env bash
# local-slurm.sh - run a real single-node Slurm cluster on this machine.
#
# Meant for a Debian/Ubuntu box where we are root and there is no systemd
# (containers, CI runners). Every daemon is started by hand and stopped by the
# PID in its pid file, never by name.
#
#   scripts/local-slurm.sh install   # apt-get install slurmctld slurmd slurm-client munge
#   scripts/local-slurm.sh start     # munged + slurmctld + slurmd, wait until the node is idle
#   scripts/local-slurm.sh start --fake-gpu
#                                    # the same, with the node advertising one GPU (gres gpu:1 on
#                                    # /dev/null): GPU requests can be tested on a CPU machine
#   scripts/local-slurm.sh status    # exit 0 if the cluster accepts jobs, 1 otherwise
#   scripts/local-slurm.sh stop      # stop the three daemons
#
# Environment knobs (all optional):
#   LOCAL_SLURM_PARTITION   partition name             [debug]
#   LOCAL_SLURM_DEFMEM      DefMemPerCPU in MB         [500]
#   LOCAL_SLURM_TIMEOUT     seconds to wait for health [60]
#   LOCAL_SLURM_APT_WAIT    seconds to wait for the dpkg lock [900]
#   LOCAL_SLURM_FAKE_GPU    1: as --fake-gpu              [0]
set -euo pipefail

PROG=$(basename "$0")

PARTITION=${LOCAL_SLURM_PARTITION:-debug}
DEFMEM=${LOCAL_SLURM_DEFMEM:-500}
TIMEOUT=${LOCAL_SLURM_TIMEOUT:-60}
APT_WAIT=${LOCAL_SLURM_APT_WAIT:-900}
FAKE_GPU=${LOCAL_SLURM_FAKE_GPU:-0}

PACKAGES=(slurmctld slurmd slurm-client munge)

SLURM_CONF=/etc/slurm/slurm.conf
GRES_CONF=/etc/slurm/gres.conf
# The first line of a gres.conf this script writes: only such a file is ever replaced or removed.
GRES_MARK="# Written by scripts/local-slurm.sh"
MUNGE_KEY=/etc/munge/munge.key
MUNGE_PID=/run/munge/munged.pid
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
CTLD_LOG=/var/log/slurm/slurmctld.log
SLURMD_LOG=/var/log/slurm/slurmd.log
MUNGE_LOG=/var/log/munge/munged.log

log() { printf '[%s] %s\n' "$PROG" "$*"; }
die() { printf '[%s] ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }

usage() {
    cat <<EOF
Usage: $PROG COMMAND [--fake-gpu]

Run a single-node Slurm cluster (slurmctld + slurmd + munged) on this machine.
Needs root, Debian/Ubuntu packages, and no systemd.

Commands:
  install   apt-get install -y --no-install-recommends ${PACKAGES[*]}
            (skipped when already installed; waits for a busy dpkg lock)
  start     start munged, write $SLURM_CONF, start slurmctld and slurmd,
            wait until the node is idle (idempotent; resumes a down/drained node)
            --fake-gpu: the node advertises one GPU (GresTypes=gpu, Gres=gpu:1, and
            $GRES_CONF: Name=gpu File=/dev/null), so that 'sbatch --gpus=1' is
            allocated it and runs with CUDA_VISIBLE_DEVICES=0 although there is no GPU.
            A later 'start' without it takes the GPU away again.
  stop      stop slurmd, slurmctld and munged by the PIDs in their pid files
  status    show the daemons and sinfo; exit 0 if the cluster accepts jobs
  -h, --help  this text

Environment: LOCAL_SLURM_PARTITION [$PARTITION], LOCAL_SLURM_DEFMEM (MB per CPU)
[$DEFMEM], LOCAL_SLURM_TIMEOUT (s) [$TIMEOUT], LOCAL_SLURM_APT_WAIT (s) [$APT_WAIT],
LOCAL_SLURM_FAKE_GPU=1 (as --fake-gpu) [$FAKE_GPU].

Snakemake (no accounting database, so status via squeue):
  snakemake --executor slurm --jobs 10 --slurm-status-command squeue \\
      --slurm-init-seconds-before-status-checks 2 \\
      --default-resources slurm_partition=$PARTITION runtime=10 mem_mb=500
EOF
}

need_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (it starts system daemons)"
}

# ---------------------------------------------------------------- processes --

# alive PID: the process exists and is not a zombie (a daemon killed by a
# signal stays a zombie until PID 1 reaps it, and kill -0 still succeeds then).
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    case ${stat%% *} in
        Z | X | x) return 1 ;;
        *) return 0 ;;
    esac
}

# pid_of PIDFILE COMM: print the PID if the pid file names a live process whose
# command name is COMM (guards against a stale file and a reused PID).
pid_of() {
    local pidfile=$1 comm=$2 pid
    [[ -s $pidfile ]] || return 1
    pid=$(tr -dc '0-9' <"$pidfile")
    [[ -n $pid ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]] || return 1
    alive "$pid" || return 1
    printf '%s\n' "$pid"
}

is_running() { pid_of "$1" "$2" >/dev/null; }

# stop_daemon NAME PIDFILE COMM
stop_daemon() {
    local name=$1 pidfile=$2 comm=$3 pid i
    if ! pid=$(pid_of "$pidfile" "$comm"); then
        if [[ -e $pidfile ]]; then
            log "$name: not running; removing stale $pidfile"
            rm -f "$pidfile"
        else
            log "$name: not running"
        fi
        return 0
    fi
    log "$name: stopping PID $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do          # 30 s
        alive "$pid" || break
        sleep 0.2
    done
    if alive "$pid"; then
        log "$name: PID $pid ignored SIGTERM for 30 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            alive "$pid" || break
            sleep 0.2
        done
        alive "$pid" && die "$name: PID $pid does not exit"
    fi
    rm -f "$pidfile"
    log "$name: stopped"
}

show_logs() {
    local f
    for f in "$MUNGE_LOG" "$CTLD_LOG" "$SLURMD_LOG"; do
        if [[ -r $f ]]; then
            printf '\n----- last 20 lines of %s -----\n' "$f" >&2
            tail -n 20 "$f" >&2 || true
        fi
    done
}

fail_with_logs() {
    printf '[%s] ERROR: %s\n' "$PROG" "$*" >&2
    show_logs
    exit 1
}

# ------------------------------------------------------------------ install --

all_installed() {
    local p st
    for p in "${PACKAGES[@]}"; do
        st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [[ $st == "install ok installed" ]] || return 1
    done
}

all_installable() {
    local p cand
    for p in "${PACKAGES[@]}"; do
        cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
        [[ -n $cand && $cand != "(none)" ]] || return 1
    done
}

# apt_retry CMD...: run an apt-get command, retrying while another apt/dpkg
# process holds a lock (DPkg::Lock::Timeout covers the dpkg lock; the lists
# lock of "apt-get update" is not covered, hence the loop).
apt_retry() {
    local deadline=$((SECONDS + APT_WAIT)) out rc
    out=$(mktemp)
    while :; do
        rc=0
        "$@" 2>&1 | tee "$out" || rc=${PIPESTATUS[0]}
        if [[ $rc -eq 0 ]]; then
            rm -f "$out"
            return 0
        fi
        if grep -qiE 'Could not get lock|Unable to lock|is held by process|dpkg frontend lock' "$out" \
            && ((SECONDS < deadline)); then
            log "another apt/dpkg process holds a lock; waiting ..."
            sleep 5
            continue
        fi
        rm -f "$out"
        return "$rc"
    done
}

cmd_install() {
    need_root
    if all_installed; then
        log "already installed: ${PACKAGES[*]}"
        return 0
    fi
    command -v apt-get >/dev/null || die "apt-get not found (this script supports Debian/Ubuntu only)"
    export DEBIAN_FRONTEND=noninteractive
    local opts=(-o "DPkg::Lock::Timeout=$APT_WAIT")
    if ! all_installable; then
        log "packages not known to apt yet; running apt-get update"
        apt_retry apt-get "${opts[@]}" update
    fi
    log "installing ${PACKAGES[*]}"
    apt_retry apt-get "${opts[@]}" install -y --no-install-recommends "${PACKAGES[@]}"
    all_installed || die "installation finished but the packages are not all installed"
    log "installed: $(dpkg-query -W -f='${Package} ${Version}  ' "${PACKAGES[@]}")"
}

# -------------------------------------------------------------------- munge --

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    if [[ ! -s $MUNGE_KEY ]]; then
        log "munge: creating $MUNGE_KEY"
        install -d -o munge -g munge -m 0700 /etc/munge
        mungekey --create --keyfile="$MUNGE_KEY" --force
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge
    install -d -o munge -g munge -m 0711 /var/lib/munge

    if is_running "$MUNGE_PID" munged && munge_ok; then
        log "munge: already running (PID $(pid_of "$MUNGE_PID" munged))"
        return 0
    fi
    if is_running "$MUNGE_PID" munged; then
        log "munge: running but credentials do not verify; restarting"
        stop_daemon munged "$MUNGE_PID" munged
    fi
    rm -f "$MUNGE_PID"
    log "munge: starting"
    # --force: start even if a socket left by a killed munged is still there.
    runuser -u munge -- /usr/sbin/munged --force \
        || fail_with_logs "munged failed to start"
    local i
    for ((i = 0; i < 50; i++)); do
        munge_ok && { log "munge: up (PID $(pid_of "$MUNGE_PID" munged || echo '?'))"; return 0; }
        sleep 0.2
    done
    fail_with_logs "munge does not answer (munge -n | unmunge fails)"
}

# ----------------------------------------------------------------- slurm.conf --

# render_conf HOST NODELINE: print the slurm.conf for this machine (with FAKE_GPU=1, the
# node line already carries Gres=gpu:1; see prepare_conf).
render_conf() {
    local host=$1 nline=$2
    cat <<EOF
# Written by scripts/local-slurm.sh - a single-node cluster on $host.
# It is rewritten on every 'local-slurm.sh start'.
ClusterName=localcluster
SlurmctldHost=$host(127.0.0.1)
AuthType=auth/munge
CryptoType=crypto/munge
SlurmUser=slurm
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$CTLD_LOG
SlurmdLogFile=$SLURMD_LOG
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without DefMemPerCPU a job that gives no --mem takes the whole node.
DefMemPerCPU=$DEFMEM
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# Finished jobs stay visible to squeue for MinJobAge seconds. Snakemake's
# --slurm-status-command squeue needs this >= 3x its init seconds.
MinJobAge=300
EOF
    if ((FAKE_GPU)); then
        printf '%s\n' "# --fake-gpu: the node advertises one GPU, on /dev/null (see gres.conf)." "GresTypes=gpu"
    fi
    cat <<EOF
$nline NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

# render_gres HOST: print the gres.conf of --fake-gpu (nothing without it). File=/dev/null
# stands for the device: Slurm allocates it and sets CUDA_VISIBLE_DEVICES=0.
render_gres() {
    ((FAKE_GPU)) || return 0
    printf '%s (--fake-gpu); removed by a start without it.\n' "$GRES_MARK"
    printf 'NodeName=%s Name=gpu File=/dev/null\n' "$1"
}

# gres_ours: there is no gres.conf, or it is one this script wrote.
gres_ours() {
    [[ ! -e $GRES_CONF ]] || [[ $(head -n 1 "$GRES_CONF") == "$GRES_MARK"* ]]
}

# Globals filled by prepare_conf: NODE_NAME, NEW_CONF and NEW_GRES (temp files, NEW_GRES empty
# without --fake-gpu), CONF_CHANGED (0/1: slurm.conf or gres.conf differ from what is installed).
prepare_conf() {
    local host nline
    host=$(hostname -s)
    nline=$(slurmd -C 2>/dev/null | head -n 1 || true)
    [[ $nline == NodeName=* ]] || die "'slurmd -C' did not print a NodeName= line"
    NODE_NAME=${nline#NodeName=}
    NODE_NAME=${NODE_NAME%% *}
    [[ $NODE_NAME == "$host" ]] \
        || die "slurmd -C reports NodeName=$NODE_NAME but 'hostname -s' is $host; they must match"
    # slurmd -C may report a Gres= of its own (from an existing gres.conf): ours replaces it.
    nline=$(sed -E 's/ Gres=[^ ]*//' <<<"$nline")
    if ((FAKE_GPU)); then
        nline="$nline Gres=gpu:1"
    fi
    gres_ours || die "$GRES_CONF was not written by this script; move it away first"
    NEW_CONF=$(mktemp)
    NEW_GRES=$(mktemp)
    trap 'rm -f "$NEW_CONF" "$NEW_GRES"' EXIT
    render_conf "$host" "$nline" >"$NEW_CONF"
    render_gres "$host" >"$NEW_GRES"
    CONF_CHANGED=1
    if [[ -f $SLURM_CONF ]] && cmp -s "$NEW_CONF" "$SLURM_CONF" && gres_installed; then
        CONF_CHANGED=0
    fi
}

# gres_installed: the installed gres.conf is NEW_GRES (none at all when NEW_GRES is empty).
gres_installed() {
    if [[ -s $NEW_GRES ]]; then
        [[ -f $GRES_CONF ]] && cmp -s "$NEW_GRES" "$GRES_CONF"
    else
        [[ ! -e $GRES_CONF ]]
    fi
}

install_conf() {
    install -d -m 0755 /etc/slurm
    install -m 0644 "$NEW_CONF" "$SLURM_CONF"
    log "wrote $SLURM_CONF"
    if [[ -s $NEW_GRES ]]; then
        install -m 0644 "$NEW_GRES" "$GRES_CONF"
        log "wrote $GRES_CONF (a fake GPU on /dev/null)"
    elif [[ -e $GRES_CONF ]]; then
        # A gpu line in gres.conf without GresTypes=gpu in slurm.conf breaks slurmd.
        rm -f "$GRES_CONF"
        log "removed $GRES_CONF (no --fake-gpu)"
    fi
}

# ------------------------------------------------------------------- health --

ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }

# node state as sinfo prints it (idle, mix, alloc, down*, drain, ...), one node.
node_state() { sinfo -h -N -o '%t' 2>/dev/null | head -n 1; }

# the cluster accepts jobs: controller UP, partition up, node usable.
cluster_ok() {
    ctld_up || return 1
    local st avail
    st=$(node_state)
    avail=$(sinfo -h -o '%a' 2>/dev/null | head -n 1)
    [[ $avail == up ]] || return 1
    case $st in
        idle | mix | alloc | comp) return 0 ;;
        *) return 1 ;;
    esac
}

wait_ctld_up() {
    local t0=$SECONDS deadline=$((SECONDS + TIMEOUT))
    until ctld_up; do
        # (a grace period: the daemon writes its pid file after forking)
        if ! is_running "$CTLD_PID" slurmctld && ((SECONDS - t0 >= 5)); then
            fail_with_logs "slurmctld is not running (it exited during start-up?)"
        fi
        ((SECONDS < deadline)) || fail_with_logs "slurmctld not UP after ${TIMEOUT}s (scontrol ping)"
        sleep 0.5
    done
}

# Wait until the node is usable; resume it if a previous run left it down or
# drained, and bring the partition up if it is down.
wait_node_idle() {
    local t0=$SECONDS deadline=$((SECONDS + TIMEOUT)) node=$NODE_NAME st avail last_resume=-100
    while :; do
        st=$(node_state)
        avail=$(sinfo -h -o '%a' 2>/dev/null | head -n 1)
        if [[ $avail != up && -n $avail ]]; then
            log "partition $PARTITION is '$avail'; setting it up"
            scontrol update partitionname="$PARTITION" state=up || true
        fi
        case $st in
            idle | mix | alloc | comp)
                [[ $avail == up ]] && { log "node $node is $st"; return 0; } ;;
            down | drain | drng | drain\~ | fail | failg | down\~ | inval)
                # "down*" (not responding) is left alone: slurmd registers soon.
                if ((SECONDS - last_resume >= 5)); then
                    log "node $node is '$st' (left over from an earlier run?); resuming it"
                    scontrol update nodename="$node" state=resume || true
                    last_resume=$SECONDS
                fi ;;
        esac
        if ! is_running "$SLURMD_PID" slurmd && ((SECONDS - t0 >= 5)); then
            fail_with_logs "slurmd is not running (it exited during start-up?)"
        fi
        ((SECONDS < deadline)) \
            || fail_with_logs "node $node not idle after ${TIMEOUT}s (state '${st:-unknown}'; sinfo: $(sinfo -h 2>&1 | head -n 3))"
        sleep 0.5
    done
}

# The node's generic resources as the controller sees them (sinfo %G: gpu:1 or (null)).
node_gres() { sinfo -h -N -o '%G' 2>/dev/null | head -n 1; }

wait_node_gpu() {
    local deadline=$((SECONDS + TIMEOUT)) gres
    until [[ $(node_gres) == gpu:1* ]]; do
        gres=$(node_gres)
        ((SECONDS < deadline)) || fail_with_logs "node advertises no GPU after ${TIMEOUT}s (sinfo %G: '${gres:-?}')"
        sleep 0.5
    done
    log "node $NODE_NAME advertises $(node_gres)"
}

# -------------------------------------------------------------------- start --

cmd_start() {
    need_root
    all_installed || die "Slurm/munge not installed; run '$PROG install' first"
    prepare_conf

    if ((CONF_CHANGED == 0)) && is_running "$MUNGE_PID" munged && munge_ok \
        && is_running "$CTLD_PID" slurmctld && is_running "$SLURMD_PID" slurmd \
        && cluster_ok; then
        log "already running and healthy"
        sinfo
        return 0
    fi

    start_munge

    if ((CONF_CHANGED)); then
        if is_running "$CTLD_PID" slurmctld || is_running "$SLURMD_PID" slurmd; then
            log "configuration changed; restarting the Slurm daemons"
            stop_daemon slurmd "$SLURMD_PID" slurmd
            stop_daemon slurmctld "$CTLD_PID" slurmctld
        fi
        install_conf
    fi

    install -d -o slurm -g slurm -m 0755 /var/lib/slurm
    install -d -o slurm -g slurm -m 0755 /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm

    if is_running "$CTLD_PID" slurmctld; then
        log "slurmctld: already running (PID $(pid_of "$CTLD_PID" slurmctld))"
    else
        rm -f "$CTLD_PID"
        log "slurmctld: starting"
        slurmctld || fail_with_logs "slurmctld failed to start"
    fi
    wait_ctld_up
    log "slurmctld: UP (PID $(pid_of "$CTLD_PID" slurmctld || echo '?'))"

    if is_running "$SLURMD_PID" slurmd; then
        log "slurmd: already running (PID $(pid_of "$SLURMD_PID" slurmd))"
    else
        rm -f "$SLURMD_PID"
        log "slurmd: starting"
        slurmd || fail_with_logs "slurmd failed to start"
    fi
    wait_node_idle
    if ((FAKE_GPU)); then
        wait_node_gpu
    fi
    log "cluster ready: partition '$PARTITION' on $(hostname -s), generic resources: $(node_gres)"
    sinfo
}

# --------------------------------------------------------------------- stop --

cmd_stop() {
    need_root
    stop_daemon slurmd "$SLURMD_PID" slurmd
    stop_daemon slurmctld "$CTLD_PID" slurmctld
    stop_daemon munged "$MUNGE_PID" munged
}

# ------------------------------------------------------------------- status --

cmd_status() {
    local name pidfile comm pid
    while read -r name pidfile comm; do
        if pid=$(pid_of "$pidfile" "$comm"); then
            printf '%-10s running (PID %s)\n' "$name" "$pid"
        else
            printf '%-10s not running\n' "$name"
        fi
    done <<EOF
munged $MUNGE_PID munged
slurmctld $CTLD_PID slurmctld
slurmd $SLURMD_PID slurmd
EOF
    if ! command -v sinfo >/dev/null; then
        echo "sinfo not installed"
        return 1
    fi
    if ! is_running "$CTLD_PID" slurmctld; then
        echo "cluster: NOT accepting jobs (slurmctld not running)"
        return 1
    fi
    echo
    sinfo 2>&1 || true
    echo "generic resources: $(node_gres)"
    echo
    if cluster_ok; then
        echo "cluster: accepting jobs"
        return 0
    fi
    if ! ctld_up; then
        echo "cluster: NOT accepting jobs (slurmctld does not answer scontrol ping)"
    else
        echo "cluster: NOT accepting jobs (node state '$(node_state)', partition '$(sinfo -h -o %a 2>/dev/null | head -n 1)')"
    fi
    return 1
}

# --------------------------------------------------------------------- main --

# parse_start_options ARGS...: the options of 'start'.
parse_start_options() {
    local a
    for a in "$@"; do
        case $a in
            --fake-gpu) FAKE_GPU=1 ;;
            *) die "unknown option of start: $a (see $PROG --help)" ;;
        esac
    done
    [[ $FAKE_GPU == 0 || $FAKE_GPU == 1 ]] || die "LOCAL_SLURM_FAKE_GPU must be 0 or 1, not '$FAKE_GPU'"
}

COMMAND=${1:-}
(($#)) && shift
if [[ $COMMAND != start ]] && (($#)); then
    die "$COMMAND takes no options: $* (see $PROG --help)"
fi

case $COMMAND in
    install) cmd_install ;;
    start) parse_start_options "$@"; cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    -h | --help | help | "") usage ;;
    *) usage >&2; die "unknown command: $COMMAND" ;;
esac
