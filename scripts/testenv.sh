#!/usr/bin/env bash
# The real services lading's integration and e2e tests run against, on loopback only:
#   dockerd (own socket, data root, exec root), a second dockerd that is a single-node swarm manager (tests must not
#   init swarm on the shared one), a v2 registry (plain) and one with htpasswd auth,
#   sshd (own host key, authorized key, known_hosts; remote DOCKER_HOST = the test dockerd), s3rver.
# Usage: scripts/testenv.sh up | down | status | env
#   up      start what is not running (idempotent, ~1 s when all is up) and write $ROOT/env.json
#   down    stop only the processes this script started (pid files + command line check) and their children
#   status  one line per service
#   env     print shell exports for the services (eval "$(scripts/testenv.sh env)")
# Tests read connection details from $ROOT/env.json (test/helpers/env.ts); ROOT=${LADING_TESTENV:-/tmp/lading-testenv}.
set -euo pipefail
ROOT=${LADING_TESTENV:-/tmp/lading-testenv}
REPO=$(cd "$(dirname "$0")/.." && pwd)
REGISTRY_PORT=${LADING_TEST_REGISTRY_PORT:-5000}
AUTH_REGISTRY_PORT=${LADING_TEST_AUTH_REGISTRY_PORT:-5001}
SSH_PORT=${LADING_TEST_SSH_PORT:-2222}
S3_PORT=${LADING_TEST_S3_PORT:-4568}
# Several environments on one machine (parallel work): each needs its own swarm port and its own address pool for
# user-defined bridge networks (two dockerds handing out the same subnet would route each other's containers).
SWARM_PORT=${LADING_TEST_SWARM_PORT:-2377}
ADDRESS_POOL=${LADING_TEST_ADDRESS_POOL:-}
DOCKER_SOCK="$ROOT/docker.sock"
export DOCKER_HOST="unix://$DOCKER_SOCK"
# A second dockerd that is a single-node swarm manager (swarm must not touch the shared daemon above).
SWARM_DIR="$ROOT/swarm"
SWARM_DOCKER_HOST="unix://$SWARM_DIR/docker.sock"
PIDS="$ROOT/pids"
TEST_IMAGE=lading-test/busybox:base

log() { printf 'testenv: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# A pid from our pid file that is alive and still runs a command line naming $ROOT (guards against pid reuse).
our_pid() {
  local f="$PIDS/$1.pid" pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$ROOT" || return 1
  echo "$pid"
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1; shift 2 # the second argument names what is awaited, for the reader
  local tries=$((secs * 10))
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

docker_ok() { docker info >/dev/null 2>&1; }
http_ok() { curl -fs -o /dev/null "$1"; }
http_up() { curl -s -o /dev/null "$1"; } # any HTTP answer (auth registry answers 401)
ssh_ok() { exec 3<>"/dev/tcp/127.0.0.1/$SSH_PORT" && head -c 4 <&3 | grep -q SSH; }

start_bg() { # start_bg NAME LOGFILE COMMAND... — detached, own session, pid recorded
  local name=$1 logf=$2; shift 2
  setsid "$@" >"$logf" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
}

up_dockerd() {
  if docker_ok; then return; fi
  [ -S "$DOCKER_SOCK" ] && rm -f "$DOCKER_SOCK"
  mkdir -p "$ROOT/docker" "$ROOT/exec"
  start_bg dockerd "$ROOT/logs/dockerd.log" dockerd --host "$DOCKER_HOST" --data-root "$ROOT/docker" \
    --exec-root "$ROOT/exec" --pidfile "$ROOT/dockerd.pid" --storage-driver=vfs --bridge=none --iptables=false \
    --ip-masq=false ${ADDRESS_POOL:+--default-address-pool "base=$ADDRESS_POOL,size=24"}
  wait_for 60 dockerd docker_ok || { tail -20 "$ROOT/logs/dockerd.log" >&2; die "dockerd did not start (log: $ROOT/logs/dockerd.log)"; }
}

swarm_docker() { DOCKER_HOST="$SWARM_DOCKER_HOST" docker "$@"; }
swarm_state() { swarm_docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null; }

# The swarm dockerd: same flags as the shared one (vfs, no bridge, no iptables — swarm works without them here:
# tests use host networking), its own socket, roots and pid file; swarm bound to loopback.
up_swarm() {
  if ! swarm_docker info >/dev/null 2>&1; then
    rm -f "$SWARM_DIR/docker.sock"
    mkdir -p "$SWARM_DIR/data" "$SWARM_DIR/exec"
    start_bg swarm-dockerd "$ROOT/logs/swarm-dockerd.log" dockerd --host "$SWARM_DOCKER_HOST" \
      --data-root "$SWARM_DIR/data" --exec-root "$SWARM_DIR/exec" --pidfile "$SWARM_DIR/dockerd.pid" \
      --storage-driver=vfs --bridge=none --iptables=false --ip-masq=false
    wait_for 60 swarm-dockerd swarm_docker info || { tail -20 "$ROOT/logs/swarm-dockerd.log" >&2; die "the swarm dockerd did not start (log: $ROOT/logs/swarm-dockerd.log)"; }
  fi
  if [ "$(swarm_state)" != active ]; then
    swarm_docker swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$SWARM_PORT" --data-path-addr 127.0.0.1 \
      >/dev/null || die "docker swarm init failed on $SWARM_DOCKER_HOST (log: $ROOT/logs/swarm-dockerd.log)"
  fi
}

down_swarm() {
  if our_pid swarm-dockerd >/dev/null; then
    swarm_docker swarm leave --force >/dev/null 2>&1 || true
    ids=$(swarm_docker ps -aq 2>/dev/null || true)
    # shellcheck disable=SC2086 # a list of container ids
    if [ -n "$ids" ]; then swarm_docker rm -f $ids >/dev/null 2>&1 || true; fi
  fi
  stop swarm-dockerd
  for p in $(pgrep -f "$SWARM_DIR/exec" 2>/dev/null || true); do kill -KILL "$p" 2>/dev/null || true; done
  # network namespaces dockerd bind-mounted under its exec root
  awk -v d="$SWARM_DIR/exec/" 'index($2, d) == 1 { print $2 }' /proc/mounts | while IFS= read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  rm -f "$SWARM_DIR/docker.sock"
}

write_registry_config() { # NAME PORT [htpasswd]
  local name=$1 port=$2 auth=${3:-}
  mkdir -p "$ROOT/$name/data"
  {
    echo "version: 0.1"
    echo "log: { level: warn }"
    echo "storage: { filesystem: { rootdirectory: $ROOT/$name/data }, delete: { enabled: true } }"
    echo "http: { addr: 127.0.0.1:$port, secret: lading-test-env }"
    if [ -n "$auth" ]; then echo "auth: { htpasswd: { realm: lading-test, path: $auth } }"; fi
  } >"$ROOT/$name/config.yml"
}

up_registry() {
  if ! http_ok "http://127.0.0.1:$REGISTRY_PORT/v2/"; then
    write_registry_config registry "$REGISTRY_PORT"
    start_bg registry "$ROOT/logs/registry.log" /usr/bin/docker-registry serve "$ROOT/registry/config.yml"
    wait_for 20 registry http_ok "http://127.0.0.1:$REGISTRY_PORT/v2/" || die "registry did not start (log: $ROOT/logs/registry.log)"
  fi
  if ! http_up "http://127.0.0.1:$AUTH_REGISTRY_PORT/v2/"; then
    mkdir -p "$ROOT/auth-registry"
    # Users: lading (a plain v2 login), and the user names cloud registries use with short-lived tokens, so the
    # ECR and Google auth paths can be proven against this registry by token stand-ins handing out these passwords.
    : >"$ROOT/auth-registry/htpasswd"
    for user in lading AWS oauth2accesstoken; do
      local pw="$ROOT/auth-registry/password-$user"
      [ -s "$pw" ] || (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pw")
      htpasswd -Bbn "$user" "$(cat "$pw")" | head -1 >>"$ROOT/auth-registry/htpasswd"
    done
    write_registry_config auth-registry "$AUTH_REGISTRY_PORT" "$ROOT/auth-registry/htpasswd"
    start_bg auth-registry "$ROOT/logs/auth-registry.log" /usr/bin/docker-registry serve "$ROOT/auth-registry/config.yml"
    wait_for 20 auth-registry http_up "http://127.0.0.1:$AUTH_REGISTRY_PORT/v2/" || die "auth registry did not start (log: $ROOT/logs/auth-registry.log)"
  fi
}

up_sshd() {
  local d="$ROOT/ssh"
  mkdir -p "$d" /run/sshd
  [ -f "$d/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C lading-test-host -f "$d/host_ed25519"
  [ -f "$d/host_ecdsa" ] || ssh-keygen -q -t ecdsa -N '' -C lading-test-host -f "$d/host_ecdsa"
  [ -f "$d/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C lading-test-client -f "$d/client_ed25519"
  cp "$d/client_ed25519.pub" "$d/authorized_keys"
  cat >"$d/sshd_config" <<CFG
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $d/host_ed25519
HostKey $d/host_ecdsa
AuthorizedKeysFile $d/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PidFile $d/sshd.pid
SetEnv DOCKER_HOST=$DOCKER_HOST
MaxStartups 100:30:200
MaxSessions 100
Subsystem sftp /usr/lib/openssh/sftp-server
CFG
  {
    echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$d/host_ed25519.pub")"
    echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$d/host_ecdsa.pub")"
  } >"$d/known_hosts"
  cat >"$d/ssh_config" <<CFG
Host lading-test
  HostName 127.0.0.1
  Port $SSH_PORT
  User root
  IdentityFile $d/client_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $d/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
CFG
  if ! our_pid sshd >/dev/null || ! ssh_ok; then
    # -D keeps sshd in the foreground of its own session so the recorded pid is the listener.
    start_bg sshd "$ROOT/logs/sshd.log" /usr/sbin/sshd -D -f "$d/sshd_config" -E "$ROOT/logs/sshd.log"
    wait_for 10 sshd ssh_ok || die "sshd did not start (log: $ROOT/logs/sshd.log)"
  fi
}

up_s3() {
  if http_up "http://127.0.0.1:$S3_PORT/"; then return; fi
  local bin="$REPO/node_modules/.bin/s3rver"
  [ -x "$bin" ] || die "s3rver is not installed: run 'bash scripts/setup.sh' (npm ci) first"
  mkdir -p "$ROOT/s3"
  start_bg s3rver "$ROOT/logs/s3rver.log" node "$bin" --directory "$ROOT/s3" --address 127.0.0.1 --port "$S3_PORT" \
    --configure-bucket lading-test --silent
  wait_for 20 s3rver http_up "http://127.0.0.1:$S3_PORT/" || die "s3rver did not start (log: $ROOT/logs/s3rver.log)"
}

up_image() {
  if docker image inspect "$TEST_IMAGE" >/dev/null 2>&1; then return; fi
  local img="$ROOT/img"
  mkdir -p "$img/bin"
  cp /bin/busybox "$img/bin/busybox"
  printf 'FROM scratch\nCOPY bin /bin\nCMD ["/bin/busybox","httpd","-f","-p","127.0.0.1:8080"]\n' >"$img/Dockerfile"
  docker build -q -t "$TEST_IMAGE" "$img" >/dev/null
}

write_env() {
  cat >"$ROOT/env.json" <<JSON
{
  "root": "$ROOT",
  "dockerHost": "$DOCKER_HOST",
  "swarmDockerHost": "$SWARM_DOCKER_HOST",
  "registry": { "host": "127.0.0.1:$REGISTRY_PORT" },
  "authRegistry": {
    "host": "127.0.0.1:$AUTH_REGISTRY_PORT", "username": "lading", "passwordFile": "$ROOT/auth-registry/password-lading",
    "passwordFiles": {
      "lading": "$ROOT/auth-registry/password-lading",
      "AWS": "$ROOT/auth-registry/password-AWS",
      "oauth2accesstoken": "$ROOT/auth-registry/password-oauth2accesstoken"
    }
  },
  "ssh": {
    "host": "127.0.0.1", "port": $SSH_PORT, "user": "root",
    "privateKey": "$ROOT/ssh/client_ed25519", "knownHosts": "$ROOT/ssh/known_hosts", "config": "$ROOT/ssh/ssh_config",
    "alias": "lading-test"
  },
  "s3": { "endpoint": "http://127.0.0.1:$S3_PORT", "region": "us-east-1", "accessKeyId": "S3RVER", "secretAccessKey": "S3RVER", "bucket": "lading-test" },
  "testImage": "$TEST_IMAGE",
  "busybox": "/bin/busybox"
}
JSON
}

cmd_up() {
  mkdir -p "$ROOT" "$PIDS" "$ROOT/logs"
  chmod 700 "$ROOT"
  up_dockerd
  up_registry
  up_sshd
  up_s3
  up_image
  up_swarm
  write_env
  log "up: dockerd $DOCKER_HOST, swarm manager $SWARM_DOCKER_HOST, registry 127.0.0.1:$REGISTRY_PORT (+auth :$AUTH_REGISTRY_PORT), sshd 127.0.0.1:$SSH_PORT, s3 127.0.0.1:$S3_PORT"
}

descendants() { # all descendants of a pid, deepest first
  local kids
  kids=$(pgrep -P "$1" 2>/dev/null || true)
  for k in $kids; do descendants "$k"; echo "$k"; done
}

stop() { # stop NAME: TERM our pid (and its process tree), wait, then KILL what is left
  local name=$1 pid tree
  pid=$(our_pid "$name") || { rm -f "$PIDS/$name.pid"; return 0; }
  tree="$(descendants "$pid") $pid"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  for p in $tree; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null; done
  rm -f "$PIDS/$name.pid"
  log "stopped $name ($pid)"
}

cmd_down() {
  [ -d "$ROOT" ] || return 0
  if our_pid dockerd >/dev/null; then
    # Containers, services and a swarm left by tests would otherwise outlive dockerd as shims.
    docker swarm leave --force >/dev/null 2>&1 || true
    ids=$(docker ps -aq 2>/dev/null || true)
    # shellcheck disable=SC2086 # a list of container ids
    if [ -n "$ids" ]; then docker rm -f $ids >/dev/null 2>&1 || true; fi
  fi
  down_swarm
  # extra sshd instances a fleet test or bench started (test/helpers/sshd-fleet.ts) and did not stop
  for f in "$PIDS"/fleet-*.pid; do [ -e "$f" ] || continue; f=${f##*/}; stop "${f%.pid}"; done
  for name in s3rver sshd auth-registry registry dockerd; do stop "$name"; done
  # containerd shims that dockerd started run in their own sessions; they name our exec root.
  for p in $(pgrep -f "$ROOT/exec" 2>/dev/null || true); do kill -KILL "$p" 2>/dev/null || true; done
  rm -f "$DOCKER_SOCK"
  local left
  left=$(pgrep -af "$ROOT" 2>/dev/null | grep -v -e "testenv.sh" -e pgrep || true)
  if [ -n "$left" ]; then log "error: processes still running under $ROOT:"; echo "$left" >&2; exit 1; fi
}

cmd_status() {
  local s
  for name in dockerd swarm-dockerd registry auth-registry sshd s3rver; do
    if s=$(our_pid "$name"); then echo "$name: running (pid $s)"; else echo "$name: not started by this script"; fi
  done
  docker_ok && echo "docker: answering at $DOCKER_HOST" || echo "docker: not answering"
  echo "swarm: $(swarm_state || true) at $SWARM_DOCKER_HOST"
}

cmd_env() {
  echo "export DOCKER_HOST='$DOCKER_HOST'"
  echo "export LADING_TESTENV='$ROOT'"
  echo "export LADING_SWARM_DOCKER_HOST='$SWARM_DOCKER_HOST'"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
