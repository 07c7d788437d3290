#!/usr/bin/env bash
# start-rgw.sh - throwaway single-node Ceph RADOS Gateway (S3 API) on loopback, for tests.
#
# Installs the Debian packages if missing (needs root + apt), then builds a fresh
# one-mon / one-OSD (memstore = data kept in RAM) cluster under $RGW_DIR, starts
# radosgw (beast) on 127.0.0.1:$RGW_PORT, creates an S3 user with fixed keys and
# prints the endpoint and credentials. Everything binds to 127.0.0.1 only.
# No systemd; daemons daemonize themselves and write PID files to $RGW_DIR/run.
# Stop with stop-rgw.sh (same RGW_DIR). All data is lost on stop (memstore).
#
# Used by test/setup/service-daemons.js (npm test, npm run bench). RGW 16.2 behaviours measured with
# @aws-sdk/client-s3 that the S3 backend depends on:
#  - PutObject If-None-Match: * -> 412 on an existing key; races have exactly one winner.
#  - PutObject If-Match works only with the ETag WITHOUT quotes (prefix comparison); losers
#    of a race often get HTTP 500 instead of 412 (outcome unknown: re-read).
#  - CompleteMultipartUpload ignores If-None-Match and DeleteObject ignores If-Match.
#  - streamed PutObject bodies need requestChecksumCalculation 'WHEN_REQUIRED' (else 411).
#
# Tunables (environment):
#   RGW_DIR            state dir (wiped on start)            default /tmp/cephtest
#   RGW_PORT           S3 HTTP port                           default 7480
#   RGW_MON_PORT       ceph-mon msgr2 port                    default 3300
#   RGW_OSD_PORT_MIN/MAX  port range for the OSD              default 6800/7300
#   RGW_ACCESS_KEY / RGW_SECRET_KEY  S3 credentials           fixed test defaults
#   RGW_MEMSTORE_BYTES capacity the OSD reports (RAM-backed)  default 4 GiB
#   RGW_START_TIMEOUT  seconds to wait for each phase         default 120
set -euo pipefail

RGW_DIR=${RGW_DIR:-/tmp/cephtest}
RGW_PORT=${RGW_PORT:-7480}
RGW_MON_PORT=${RGW_MON_PORT:-3300}
RGW_OSD_PORT_MIN=${RGW_OSD_PORT_MIN:-6800}
RGW_OSD_PORT_MAX=${RGW_OSD_PORT_MAX:-7300}
RGW_ACCESS_KEY=${RGW_ACCESS_KEY:-TESTACCESSKEY0000001}
RGW_SECRET_KEY=${RGW_SECRET_KEY:-testsecretkey000000000000000000000000001}
RGW_MEMSTORE_BYTES=${RGW_MEMSTORE_BYTES:-4294967296}
RGW_START_TIMEOUT=${RGW_START_TIMEOUT:-120}
HOST=127.0.0.1
CONF="$RGW_DIR/ceph.conf"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
since() { local d=$(( $(now_ms) - $1 )); printf '%d.%03ds' $((d / 1000)) $((d % 1000)); }
T_START=$(now_ms)
log() { printf '[start-rgw +%s] %s\n' "$(since "$T_START")" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
# ours <pid>: process is alive (not a zombie) and was started with -c $CONF
ours() { [ -r "/proc/$1/cmdline" ] && tr '\0' '\n' < "/proc/$1/cmdline" | grep -qxF -- "$CONF"; }

# --- sanity: never wipe a directory we did not create -------------------------
case "$RGW_DIR" in /?*) ;; *) die "RGW_DIR must be an absolute path other than /";; esac
if [ -d "$RGW_DIR" ] && [ -n "$(ls -A "$RGW_DIR")" ] && [ ! -f "$RGW_DIR/ceph.conf" ]; then
  die "$RGW_DIR is not empty and was not made by start-rgw.sh; refusing to wipe it"
fi

# --- refuse to clobber a running instance -----------------------------------
if [ -d "$RGW_DIR/run" ]; then
  for pf in "$RGW_DIR"/run/*.pid; do
    [ -f "$pf" ] || continue
    pid=$(cat "$pf" 2>/dev/null || true)
    if [[ "$pid" =~ ^[0-9]+$ ]] && ours "$pid"; then
      die "an instance is already running from $RGW_DIR ($(basename "$pf" .pid) pid $pid); run stop-rgw.sh first"
    fi
  done
fi

# --- 1. install packages if needed ------------------------------------------
need_install=0
for b in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool; do
  command -v "$b" >/dev/null 2>&1 || need_install=1
done
pkgs=(ceph-mon ceph-osd radosgw)
for b in curl; do command -v "$b" >/dev/null 2>&1 || { need_install=1; pkgs+=("$b"); }; done
if [ "$need_install" = 1 ]; then
  [ "$(id -u)" = 0 ] || die "packages missing (${pkgs[*]}) and not root; install them first"
  log "installing ${pkgs[*]} (apt-get update + install --no-install-recommends)"
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    # keep package postinst scripts from trying to start system-wide daemons
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  rc=0
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${pkgs[@]}"; } >/tmp/start-rgw-apt.log 2>&1 || rc=$?
  [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || { tail -30 /tmp/start-rgw-apt.log >&2; die "apt-get failed (log: /tmp/start-rgw-apt.log)"; }
  log "packages installed"
fi
T_CLUSTER=$(now_ms)

for p in "$RGW_PORT" "$RGW_MON_PORT"; do
  port_open "$p" && die "port $HOST:$p already in use"
done

# --- 2. fresh state dir + config ----------------------------------------------
rm -rf "$RGW_DIR"
mkdir -p "$RGW_DIR"/{run,log,mon,osd,crash,rgw}
FSID=$(cat /proc/sys/kernel/random/uuid)

cat > "$CONF" <<EOF
[global]
fsid = $FSID
mon host = v2:$HOST:$RGW_MON_PORT
public addr = $HOST
cluster addr = $HOST
ms bind ipv4 = true
ms bind ipv6 = false
ms bind msgr1 = false
ms bind port min = $RGW_OSD_PORT_MIN
ms bind port max = $RGW_OSD_PORT_MAX
# throwaway test cluster: no cephx. radosgw defaults to ms_mon_client_mode=secure,
# which cannot work without cephx (hangs 300s with "get_initial_auth_request returned -13").
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
client mount timeout = 30
# keep every path under $RGW_DIR (nothing in /var/lib/ceph, /var/run/ceph, /var/log/ceph)
run dir = $RGW_DIR/run
admin socket = $RGW_DIR/run/\$name.asok
pid file = $RGW_DIR/run/\$name.pid
log file = $RGW_DIR/log/\$name.log
mon cluster log file = default=$RGW_DIR/log/ceph.\$channel.log cluster=$RGW_DIR/log/ceph.log
crash dir = $RGW_DIR/crash
keyring = $RGW_DIR/keyring
mon data = $RGW_DIR/mon/ceph-\$id
osd data = $RGW_DIR/osd/ceph-\$id
# single OSD, RAM-backed
osd objectstore = memstore
memstore device bytes = $RGW_MEMSTORE_BYTES
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 2
mon data avail crit = 0
# no ceph-mgr on purpose: suppress the "no active mgr" (MGR_DOWN) warning
mon mgr mkfs grace = 315360000
# single mon: commit map changes fast (default 1s per osdmap change => ~9s rgw pool setup)
paxos propose interval = 0.05
paxos min wait = 0.01

[client.rgw.a]
# tcp_nodelay=1: without it every GET costs ~40 ms (Nagle + delayed ACK)
rgw frontends = beast endpoint=$HOST:$RGW_PORT tcp_nodelay=1
rgw data = $RGW_DIR/rgw
rgw thread pool size = 64
rgw gc obj min wait = 60
rgw gc processor period = 60
EOF

STARTLOG="$RGW_DIR/log/startup.log"
C=(-c "$CONF")

kill_started() {   # only processes started by this script (PID files in $RGW_DIR/run), rgw->osd->mon
  local pat pf pid i
  for pat in 'client.*' 'osd.*' 'mon.*'; do
    for pf in "$RGW_DIR"/run/$pat.pid; do
      [ -f "$pf" ] || continue
      pid=$(cat "$pf"); ours "$pid" || continue
      kill -TERM "$pid" 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do ours "$pid" || break; sleep 0.1; done
      ours "$pid" && kill -KILL "$pid" 2>/dev/null || true
    done
  done
}
on_fail() {
  rc=$?
  [ "$rc" = 0 ] && return
  log "startup FAILED (rc=$rc); last log lines:"
  tail -n 20 "$STARTLOG" "$RGW_DIR"/log/*.log >&2 2>/dev/null || true
  kill_started
}
trap on_fail EXIT

wait_for() {  # wait_for <description> <command...>
  local what=$1; shift
  local deadline=$(( $(date +%s) + RGW_START_TIMEOUT ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "timeout waiting for $what"
    sleep 0.2
  done
}

# --- 3. monitor --------------------------------------------------------------
ceph-authtool --create-keyring "$RGW_DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >>"$STARTLOG" 2>&1
monmaptool --create --addv a "[v2:$HOST:$RGW_MON_PORT]" --fsid "$FSID" "$RGW_DIR/monmap" >>"$STARTLOG" 2>&1
ceph-mon "${C[@]}" --mkfs -i a --monmap "$RGW_DIR/monmap" --keyring "$RGW_DIR/keyring" >>"$STARTLOG" 2>&1
ceph-mon "${C[@]}" -i a >>"$STARTLOG" 2>&1          # daemonizes, writes run/mon.a.pid
wait_for "ceph-mon" ceph "${C[@]}" --connect-timeout 5 mon stat
log "mon up"

# --- 4. OSD (memstore) ---------------------------------------------------------
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
OSD_ID=$(ceph "${C[@]}" osd new "$OSD_UUID")
mkdir -p "$RGW_DIR/osd/ceph-$OSD_ID"
ceph-osd "${C[@]}" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" >>"$STARTLOG" 2>&1
ceph-osd "${C[@]}" -i "$OSD_ID" >>"$STARTLOG" 2>&1  # daemonizes, writes run/osd.N.pid
osd_up() { ceph "${C[@]}" osd stat -f json | grep -q '"num_up_osds":1'; }
wait_for "ceph-osd up" osd_up
log "osd.$OSD_ID up"

# --- 5. radosgw ----------------------------------------------------------------
radosgw "${C[@]}" -n client.rgw.a >>"$STARTLOG" 2>&1  # daemonizes, writes run/client.rgw.a.pid
rgw_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$HOST:$RGW_PORT/")" = 200 ]; }
wait_for "radosgw HTTP on $HOST:$RGW_PORT" rgw_ok
T_READY=$(since "$T_CLUSTER")
log "radosgw answering on http://$HOST:$RGW_PORT"

# --- 6. S3 user -------------------------------------------------------------------
radosgw-admin "${C[@]}" user create --uid=test --display-name="test user" \
  --access-key="$RGW_ACCESS_KEY" --secret-key="$RGW_SECRET_KEY" >"$RGW_DIR/user.json" 2>>"$STARTLOG"
trap - EXIT

cat > "$RGW_DIR/env" <<EOF
export S3_ENDPOINT=http://$HOST:$RGW_PORT
export AWS_ACCESS_KEY_ID=$RGW_ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$RGW_SECRET_KEY
export AWS_REGION=us-east-1
export CEPH_CONF=$CONF
EOF
log "ready: cluster bootstrap->HTTP answering $T_READY, script total $(since "$T_START")"
log "pids: $(cd "$RGW_DIR/run" && for f in *.pid; do printf '%s=%s ' "${f%.pid}" "$(cat "$f")"; done)"
log "stop with: RGW_DIR=$RGW_DIR stop-rgw.sh   (env file: $RGW_DIR/env)"
# machine-readable summary on stdout
cat <<EOF
S3_ENDPOINT=http://$HOST:$RGW_PORT
AWS_ACCESS_KEY_ID=$RGW_ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$RGW_SECRET_KEY
AWS_REGION=us-east-1
EOF
