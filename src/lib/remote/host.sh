# lading's host-side steps (POSIX sh). Sent over SSH on stdin behind `export NAME='value'` lines and a final
# `lading_step <name>` call: no user data is ever part of a command line the login shell parses.
# Layout under $LADING_ROOT/$LADING_PROJECT: releases/<id>/, current -> releases/<id>, history.jsonl, .lock
set -eu
umask 022

die() {
  printf 'lading: %s\n' "$*" >&2
  exit 1
}
now() { date -u +%s; }
project_dir() { printf '%s/%s' "$LADING_ROOT" "$LADING_PROJECT"; }

detect_compose() {
  if [ -n "${LADING_COMPOSE:-}" ]; then
    COMPOSE=$LADING_COMPOSE # detected by an earlier step of this deploy
  elif docker compose version >/dev/null 2>&1; then
    COMPOSE="docker compose"
  elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE="docker-compose"
  else
    die "neither 'docker compose' nor 'docker-compose' works on $(hostname): install the compose plugin"
  fi
}

# --- lock: .lock holds "<expiry epoch> <owner> <host>"; created with noclobber, so only one deploy holds it.
# The owner is a token unique to one deploy (run id + random). Every change to an existing .lock (renewing it,
# breaking a stale one, releasing it) happens under the .lock.break mutex and only after re-reading it, so a lock
# is only ever renewed or released by its owner and broken only when it is still the one judged stale.

# mkdir mutex; a leftover one (its holder was killed) older than a minute is removed first.
lock_mutex() {
  if mkdir "$1/.lock.break" 2>/dev/null; then return 0; fi
  if [ -n "$(find "$1" -maxdepth 1 -name .lock.break -mmin +1 2>/dev/null)" ]; then
    rmdir "$1/.lock.break" 2>/dev/null || true
    echo "removed a leftover lock mutex ($1/.lock.break)" >&2
    mkdir "$1/.lock.break" 2>/dev/null && return 0
  fi
  return 1
}

# lock_mutex, retried for about five seconds (a renewal or a release never waits on a stuck mutex for long)
lock_mutex_wait() {
  tries=0
  until lock_mutex "$1"; do
    tries=$((tries + 1))
    [ "$tries" -lt 50 ] || return 1
    sleep 0.1 2>/dev/null || sleep 1
  done
}

# "<expiry> <owner>" of the current .lock, or nothing
lock_fields() {
  held=$(head -n 1 "$1/.lock" 2>/dev/null || true)
  lexp=${held%% *}
  case "$lexp" in '' | *[!0-9]*) lexp=0 ;; esac
  rest=${held#* }
  lowner=${rest%% *}
}

# Extends our lease to now + TTL; fails when .lock is not ours any more (expired and broken, or released).
lock_renew() {
  d=$(project_dir)
  lock_mutex_wait "$d" || return 1
  lock_fields "$d"
  if [ "$lowner" != "$LADING_OWNER" ]; then
    rmdir "$d/.lock.break"
    return 1
  fi
  printf '%s %s %s\n' "$(($(now) + ${LADING_LOCK_TTL:?set by the runner}))" "$LADING_OWNER" "$(hostname)" >"$d/.lock.renew.$$"
  mv -f "$d/.lock.renew.$$" "$d/.lock"
  rmdir "$d/.lock.break"
}

# Before every mutating step of a deploy that holds the lock (LADING_LOCK_HELD=1): the lock must still be ours,
# and its lease is extended.
lock_check() {
  [ "${LADING_LOCK_HELD:-0}" = 1 ] || return 0
  # we hold the project's lock: no other step of this project is running, so a docker config here is a leftover
  rm -rf "$(project_dir)"/.docker-config.* 2>/dev/null || true
  lock_renew || die "this deploy ($LADING_OWNER) no longer holds the lock on $(hostname): another deploy broke it after its lease ran out; nothing more is changed here"
}

# Renews the lease every TTL/3 while the shell that took the lock lives (a killed runner's SSH session ends, the
# renewals stop, and the lease runs out); stops when the lock is no longer ours.
lock_heartbeat() {
  every=$((${LADING_LOCK_TTL:?set by the runner} / 3))
  [ "$every" -ge 1 ] || every=1
  shell=$$
  (
    trap - EXIT
    while sleep "$every"; do
      kill -0 "$shell" 2>/dev/null || exit 0
      lock_renew >/dev/null 2>&1 || exit 0
    done
  ) </dev/null >/dev/null 2>&1 &
}

step_lock() {
  d=$(project_dir)
  mkdir -p "$d/releases" || die "cannot create $d: check the deploy root and the SSH user's rights"
  deadline=$(($(now) + ${LADING_LOCK_WAIT:?set by the runner}))
  announced=
  while :; do
    expires=$(($(now) + ${LADING_LOCK_TTL:?set by the runner}))
    # written whole under a temp name, then hard-linked to .lock (link fails when .lock exists): a waiter never reads
    # a .lock that exists but is still empty, which it would judge stale (expiry 0) and break under its new holder
    t="$d/.lock.new.$$"
    printf '%s %s %s\n' "$expires" "$LADING_OWNER" "$(hostname)" >"$t"
    taken=""
    if ln "$t" "$d/.lock" 2>/dev/null; then
      taken=1
    elif [ ! -e "$d/.lock" ]; then
      # released in between, or a filesystem without hard links: one more try tells which
      if ln "$t" "$d/.lock" 2>/dev/null; then
        taken=1
      elif [ ! -e "$d/.lock" ]; then
        rm -f "$t"
        die "cannot create the lock file $d/.lock on $(hostname): the deploy root's filesystem must allow hard links (ln)"
      fi
    fi
    rm -f "$t"
    if [ -n "$taken" ]; then
      echo "lock taken by $LADING_OWNER until $expires"
      lock_heartbeat
      return 0
    fi
    lock_fields "$d"
    [ -n "$held" ] || [ -e "$d/.lock" ] || continue # released since: try again at once
    # an empty .lock is one being written by a lading from before the hard link: it is held, unless a minute old
    # (its writer died between creating and writing it)
    if [ -z "$held" ] && [ -z "$(find "$d" -maxdepth 1 -name .lock -mmin +1 2>/dev/null)" ]; then
      lexp=$(($(now) + 1))
      rest="a deploy taking the lock now"
    fi
    if [ "$(now)" -gt "$lexp" ] && lock_mutex "$d"; then
      # Break a stale lock under the mutex, and only if it is still the one we judged stale.
      if [ "$(head -n 1 "$d/.lock" 2>/dev/null || true)" = "$held" ]; then
        rm -f "$d/.lock"
        echo "broke a stale lock held by $rest (expired at $lexp)" >&2
      fi
      rmdir "$d/.lock.break"
      continue
    fi
    [ "$(now)" -lt "$deadline" ] || die "another deploy holds the lock: $rest, until $lexp (epoch); waited ${LADING_LOCK_WAIT:?set by the runner}s"
    [ -n "$announced" ] || echo "waiting for the lock held by $rest" >&2
    announced=1
    sleep 1
  done
}

# Releases the lock only if it is ours (an exact owner match, under the mutex).
step_unlock() {
  d=$(project_dir)
  [ -f "$d/.lock" ] || return 0
  lock_mutex_wait "$d" || return 0
  lock_fields "$d"
  if [ "$lowner" = "$LADING_OWNER" ]; then rm -f "$d/.lock"; fi
  rmdir "$d/.lock.break"
}

# --- facts: compose flavour, current release, releases on disk.
step_facts() {
  d=$(project_dir)
  detect_compose
  printf 'compose=%s\n' "$COMPOSE"
  # the engine's API version, asked only for a release with a healthcheck (start_interval needs API 1.44)
  if [ "${LADING_WANT_API:-0}" = 1 ]; then printf 'api=%s\n' "$(docker version --format '{{.Server.APIVersion}}' 2>/dev/null || true)"; fi
  cur=$(readlink "$d/current" 2>/dev/null || true)
  printf 'current=%s\n' "${cur##*/}"
  if [ -d "$d/releases" ]; then
    for r in "$d"/releases/*; do [ -d "$r" ] && printf 'release=%s\n' "${r##*/}"; done
  fi
  return 0
}

step_mkrelease() {
  d=$(project_dir)
  [ ! -e "$d/releases/$LADING_RELEASE" ] || die "release $LADING_RELEASE already exists on this host"
  mkdir -p "$d/releases/$LADING_RELEASE"
}

# One file of the new release, its content as base64 on stdin (a here-document in the step, so a whole release
# travels in the one step that creates it). Name and mode come in LADING_FILE_NAME and LADING_FILE_MODE (octal);
# written under a temp name, then renamed. A name may be a path inside the release (the project's own files, laid
# out as in the project: no absolute path, no `..`); LADING_FILE_SHA256, when set, is checked before the rename;
# LADING_FILE_DIR=1 makes a folder instead.
lading_write_file() {
  rel="$(project_dir)/releases/$LADING_RELEASE"
  case "/$LADING_FILE_NAME/" in
    // | /./ | */../* | */./* | *//*) die "bad release file name '$LADING_FILE_NAME'" ;;
  esac
  if [ "${LADING_FILE_DIR:-0}" = 1 ]; then
    cat >/dev/null
    { mkdir -p "$rel/$LADING_FILE_NAME" && chmod "$LADING_FILE_MODE" "$rel/$LADING_FILE_NAME"; } ||
      die "cannot create $rel/$LADING_FILE_NAME on $(hostname)"
    return 0
  fi
  case "$LADING_FILE_NAME" in */*) mkdir -p "$rel/${LADING_FILE_NAME%/*}" || die "cannot create the folder of $LADING_FILE_NAME" ;; esac
  t="$rel/.tmp-$$-$(printf '%s' "$LADING_FILE_NAME" | tr '/' '_')"
  (umask 077 && base64 -d >"$t") || die "cannot write $rel/$LADING_FILE_NAME on $(hostname) (is base64 installed?)"
  if [ -n "${LADING_FILE_SHA256:-}" ]; then
    got=$(sha256sum "$t" 2>/dev/null | cut -d' ' -f1) || got=$(openssl dgst -sha256 -r "$t" | cut -d' ' -f1)
    [ "$got" = "$LADING_FILE_SHA256" ] || {
      rm -f "$t"
      die "$LADING_FILE_NAME arrived with sha256 $got, the manifest says $LADING_FILE_SHA256"
    }
  fi
  chmod "$LADING_FILE_MODE" "$t"
  mv -f "$t" "$rel/$LADING_FILE_NAME"
}

# Mount sources outside the project (LADING_PATHS, one per line) must exist on the host: checked before the deploy
# changes anything.
step_check_paths() {
  missing=""
  while IFS= read -r p; do
    [ -n "$p" ] || continue
    # shellcheck disable=SC2088 # a literal ~/ from the compose file: the SSH user's home
    case "$p" in "~/"*) p="$HOME/${p#??}" ;; esac
    [ -e "$p" ] || missing="$missing $p"
  done <<LADING_PATHS_EOF
${LADING_PATHS:-}
LADING_PATHS_EOF
  [ -z "$missing" ] || die "the compose files mount$missing, which does not exist on $(hostname): create it there (lading ships only the files inside the project)"
  return 0
}

# --- images: log in with short-lived tokens into a throwaway docker config, pull by digest, remove the config.
# docker login into the throwaway config $1 for each LADING_LOGIN_<i>_{HOST,USER,PASS} (passwords on stdin only)
registry_logins() {
  i=1
  while [ "$i" -le "${LADING_LOGIN_COUNT:-0}" ]; do
    h="" u="" p=""
    eval "h=\${LADING_LOGIN_${i}_HOST} u=\${LADING_LOGIN_${i}_USER} p=\${LADING_LOGIN_${i}_PASS}"
    if ! said=$(printf '%s' "$p" | docker --config "$1" login -u "$u" --password-stdin "$h" 2>&1); then
      die "docker login to $h failed on $(hostname): $said"
    fi
    i=$((i + 1))
  done
}

# docker logout of every registry registry_logins logged into (the swarm keeps what it was handed)
registry_logouts() {
  i=1
  while [ "$i" -le "${LADING_LOGIN_COUNT:-0}" ]; do
    h=""
    eval "h=\${LADING_LOGIN_${i}_HOST}"
    docker --config "$1" logout "$h" >/dev/null 2>&1 || true
    i=$((i + 1))
  done
}

# A throwaway docker config (0700) for registry logins, in the project dir: removed when the step ends, and any
# left by a step that was killed (no trap runs on SIGKILL) is removed by the next step of a deploy holding the lock.
login_config() {
  cfg=$(mktemp -d "$(project_dir)/.docker-config.XXXXXX") || die "cannot create a temporary docker config in $(project_dir)"
  trap 'rm -rf "$cfg"' EXIT
}

step_pull() {
  login_config
  registry_logins "$cfg"
  printf '%s\n' "${LADING_IMAGES:-}" | while IFS= read -r ref; do
    [ -n "$ref" ] || continue
    if docker image inspect "$ref" >/dev/null 2>&1; then
      echo "present: $ref"
    else
      docker --config "$cfg" pull -q "$ref" >/dev/null || die "pulling $ref failed on $(hostname)"
      echo "pulled: $ref"
    fi
  done
}

# compose with the files of release $1 (file names are lading's own: no spaces; root and project are validated)
compose_release() {
  rel="$(project_dir)/releases/$1"
  shift
  [ -d "$rel" ] || die "release $rel does not exist on $(hostname)"
  detect_compose
  files=""
  while IFS= read -r f; do [ -z "$f" ] || files="$files -f $rel/$f"; done <"$rel/.lading-files"
  # shellcheck disable=SC2086
  $COMPOSE -p "$LADING_PROJECT" --project-directory "$rel" --env-file "$rel/.env" $files "$@"
}

step_up() {
  compose_release "$LADING_RELEASE" up -d --remove-orphans --no-build
}

# --- health gate: containers with a healthcheck healthy, the others running and not restarting, within a timeout.
step_health() {
  deadline=$(($(now) + ${LADING_HEALTH_TIMEOUT:?set by the runner}))
  stable=${LADING_HEALTH_STABLE:?set by the runner}
  first=""
  while :; do
    ids=$(docker ps -aq --no-trunc --filter "label=com.docker.compose.project=$LADING_PROJECT")
    [ -n "$ids" ] || die "no containers of project $LADING_PROJECT are running"
    # shellcheck disable=SC2086 # $ids is a list of container ids
    states=$(health_states $ids)
    if [ -z "$states" ]; then
      echo "no recreated services to check (rolling services passed their own gate)"
      return 0
    fi
    bad=$(printf '%s\n' "$states" | awk '$2 != "running" && $2 != "created" && $2 != "completed" || $3 == "unhealthy" { print }')
    if [ -n "$bad" ]; then
      printf '%s\n' "$states" >&2
      for id in $ids; do
        name=$(docker inspect --format '{{index .Config.Labels "com.docker.compose.service"}}' "$id")
        echo "--- last log lines of $name:" >&2
        docker logs --tail 15 "$id" 2>&1 | sed 's/^/    /' >&2 || true
      done
      die "unhealthy after deploy: $(printf '%s\n' "$bad" | awk '{ print $1 " (" $2 ", health " $3 ")" }' | tr '\n' ' ')"
    fi
    waiting=$(printf '%s\n' "$states" | awk '$2 != "running" && $2 != "completed" || $3 == "starting" { print $1 }')
    restarts=$(printf '%s\n' "$states" | awk '{ print $1 ":" $4 }' | sort | tr '\n' ' ')
    if [ -z "$waiting" ]; then
      if [ -z "$first" ]; then
        first=$(now)
        base=$restarts
        [ "$stable" -gt 0 ] || break
      elif [ "$restarts" != "$base" ]; then
        die "containers restarted during the health window: $restarts"
      elif [ $(($(now) - first)) -ge "$stable" ]; then
        break
      fi
    fi
    if [ "$(now)" -ge "$deadline" ]; then
      printf '%s\n' "$states" >&2
      die "not healthy within ${LADING_HEALTH_TIMEOUT:?set by the runner}s: waiting for $(printf '%s' "$waiting" | tr '\n' ' ')"
    fi
    # poll (and run a starting container's own healthcheck) every 0.2 s until the timeout: the gate passes as soon
    # as the app is ready, not at docker's next check
    sleep 0.2 2>/dev/null || sleep 1
  done
  if [ -n "${LADING_PROBE_URL:-}" ]; then
    while :; do
      if command -v curl >/dev/null 2>&1; then
        curl -fsS -o /dev/null --max-time 5 "$LADING_PROBE_URL" 2>/dev/null && break
      elif command -v wget >/dev/null 2>&1; then
        wget -q -O /dev/null -T 5 "$LADING_PROBE_URL" 2>/dev/null && break
      else
        die "neither curl nor wget is on $(hostname) for the HTTP probe"
      fi
      [ "$(now)" -lt "$deadline" ] || die "the probe $LADING_PROBE_URL did not answer with success within ${LADING_HEALTH_TIMEOUT:?set by the runner}s"
      sleep 1
    done
    echo "probe ok: $LADING_PROBE_URL"
  fi
  echo "healthy: $(printf '%s\n' "$states" | awk '{ print $1 "=" $2 "/" $3 }' | sort | tr '\n' ' ')"
}

# "service status health restarts" per container, without draining containers and rolling services (they have
# their own gate); a container whose health is still "starting" runs its own healthcheck command now (docker 20.10
# runs the first check one interval after start): passing it counts as healthy, failing it just means "not yet".
health_states() {
  hd=$(project_dir)
  roll=" $(rolling_names | tr '\n' ' ') "
  docker inspect --format '{{.Id}} {{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{if index .State "Health"}}{{(index .State "Health").Status}}{{else}}none{{end}} {{.RestartCount}} {{.State.ExitCode}}' "$@" |
    while read -r id svc st hs rc ec; do
      [ ! -f "$hd/.draining/$id" ] || continue
      case "$roll" in *" $svc "*) continue ;; esac
      # a one-off service (a migration others wait for with service_completed_successfully) is done when it exited 0
      if [ "$st" = exited ] && [ "$ec" = 0 ]; then st=completed; fi
      if [ "$st" = running ] && [ "$hs" = starting ] && early_check "$id"; then hs=healthy; fi
      echo "$svc $st $hs $rc"
    done
}

# runs container $1's own healthcheck command once (exit 0 = healthy); no healthcheck = not ready by this test
early_check() {
  t=$(docker inspect --format '{{range .Config.Healthcheck.Test}}{{println .}}{{end}}' "$1" 2>/dev/null) || return 1
  kind=$(printf '%s\n' "$t" | sed -n 1p)
  args=$(printf '%s\n' "$t" | sed 1d)
  case "$kind" in
    CMD-SHELL) with_timeout 3 docker exec "$1" /bin/sh -c "$args" >/dev/null 2>&1 </dev/null ;;
    CMD) (
      cid=$1
      set --
      while IFS= read -r a; do set -- "$@" "$a"; done <<EOF
$args
EOF
      with_timeout 3 docker exec "$cid" "$@" >/dev/null 2>&1 </dev/null
    ) ;;
    *) return 1 ;;
  esac
}

with_timeout() {
  if command -v timeout >/dev/null 2>&1; then timeout "$@"; else
    shift
    "$@"
  fi
}

# --- switch current atomically, record history, prune old releases.
step_switch() {
  d=$(project_dir)
  ln -sfn "releases/$LADING_RELEASE" "$d/.current.tmp"
  mv -Tf "$d/.current.tmp" "$d/current" 2>/dev/null || {
    rm -f "$d/current"
    mv -f "$d/.current.tmp" "$d/current"
  }
}

step_history() {
  printf '%s\n' "$LADING_HISTORY_LINE" >>"$(project_dir)/history.jsonl"
}

step_prune() {
  d=$(project_dir)
  keep=${LADING_KEEP:?set by the runner}
  cur=$(readlink "$d/current" 2>/dev/null || true)
  cur=${cur##*/}
  n=0
  # release ids are lading's own (timestamp-tag): no spaces, and they sort in time order
  gone=""
  # shellcheck disable=SC2012
  for r in $(ls -1 "$d/releases" | sort -r); do
    n=$((n + 1))
    if [ "$n" -gt "$keep" ] && [ "$r" != "$cur" ] && [ "$r" != "${LADING_RELEASE:-}" ]; then
      gone="$gone$(pinned_images "$d/releases/$r")
"
      rm -rf "${d:?}/releases/$r" && echo "pruned release $r"
    fi
  done
  if [ "${LADING_PRUNE_IMAGES:-0}" = 1 ] && [ -n "$gone" ]; then
    kept=$(for r in "$d"/releases/*; do pinned_images "$r"; done)
    printf '%s\n' "$gone" | sort -u | while IFS= read -r img; do
      [ -n "$img" ] || continue
      if printf '%s\n' "$kept" | grep -qxF "$img"; then continue; fi
      # an image still used by a container (or another tag) stays: docker refuses, and that is fine
      if docker rmi "$img" >/dev/null 2>&1; then echo "pruned image $img"; fi
    done
  fi
  return 0
}

# the images a release pins (lading.pins.yml: `image: <ref>` lines written by lading)
pinned_images() {
  [ -f "$1/lading.pins.yml" ] || return 0
  sed -n "s/^ *image: *//p" "$1/lading.pins.yml" | tr -d "\"'"
}

step_release_manifest() {
  cat "$(project_dir)/releases/$LADING_RELEASE/manifest.json" || die "release $LADING_RELEASE has no manifest.json on $(hostname)"
}

step_history_read() {
  cat "$(project_dir)/history.jsonl" 2>/dev/null || true
}

# --- registry-less images: which are present (and what this host can read), then load a verified upload.
step_image_facts() {
  mkdir -p "$(project_dir)/.incoming" || die "cannot create $(project_dir)/.incoming on $(hostname)"
  printf '%s\n' "${LADING_IMAGE_IDS:-}" | while IFS= read -r id; do
    [ -n "$id" ] || continue
    if docker image inspect "$id" >/dev/null 2>&1; then echo "present $id"; fi
  done
  if command -v zstd >/dev/null 2>&1; then echo "zstd yes"; else echo "zstd no"; fi
  if docker info --format '{{json .DriverStatus}}' 2>/dev/null | grep -q 'io.containerd.snapshotter'; then
    echo "containerd yes"
  else
    echo "containerd no"
  fi
  if [ "${LADING_WANT_CHAINS:-0}" = 1 ]; then
    ids=$(docker image ls -aq --no-trunc | sort -u)
    # shellcheck disable=SC2086 # image IDs are sha256:<hex>, no spaces
    [ -z "$ids" ] || docker image inspect --format 'chain {{json .RootFS.Layers}}' $ids
  fi
}

# Hosts that fetch images themselves: a short-lived presigned/signed URL (from env, never argv) into the upload path.
step_fetch() {
  f=$LADING_LOAD_FILE
  mkdir -p "$(dirname "$f")"
  if command -v curl >/dev/null 2>&1; then
    printf 'url = "%s"\n' "$LADING_FETCH_URL" | curl -fsS --retry 3 -K - -o "$f.part" ||
      die "fetching the image archive on $(hostname) failed (curl): check that the host reaches the bucket"
  elif command -v wget >/dev/null 2>&1; then
    printf '%s\n' "$LADING_FETCH_URL" | wget -q -i - -O "$f.part" ||
      die "fetching the image archive on $(hostname) failed (wget): check that the host reaches the bucket"
  else
    die "neither curl nor wget on $(hostname): install one, or use image-fetch: ssh"
  fi
  mv -f "$f.part" "$f"
}

step_load() {
  f=$LADING_LOAD_FILE
  [ -f "$f" ] || die "the image upload $f is missing on $(hostname)"
  got=$(sha256sum "$f" | cut -d' ' -f1)
  if [ "$got" != "$LADING_LOAD_SHA256" ]; then
    rm -f "$f"
    die "the image upload has sha256 $got on $(hostname), expected $LADING_LOAD_SHA256: not loaded"
  fi
  case "$LADING_LOAD_FORMAT" in
    zstd) out=$(zstd -dc "$f" | docker load 2>&1) || { rm -f "$f"; die "docker load failed on $(hostname): $out"; } ;;
    *) out=$(docker load -i "$f" 2>&1) || { rm -f "$f"; die "docker load failed on $(hostname): $out"; } ;;
  esac
  rm -f "$f"
  printf '%s\n' "$out"
  docker image inspect "$LADING_LOAD_ID" >/dev/null 2>&1 || die "after docker load, $LADING_LOAD_ID is still missing on $(hostname)"
}

# --- zero-downtime: a shared Caddy 2 proxy per host and `rolling` services behind it.
# The proxy is one container ($LADING_PROXY_CONTAINER) on a docker network ($LADING_PROXY_NETWORK) it shares with the
# rolling services' containers. Its admin API listens on localhost:2019 *inside* the container: nothing on the
# network reaches it; the host reaches it from inside the container's network namespace (nsenter, as root) or through
# `docker exec` (the deploy user's access to the engine). lading keeps each
# app's routes in the proxy's state dir (the container's dev.lading.proxy.dir label): apps/<project>.<server>.routes
# and .maint (JSON route lists), <project>.tls (a TLS automation policy). Every change renders the whole config
# from those files and loads it with POST /load (see proxy_load: atomic; in-flight requests finish on the old one;
# a config change through /config/ paths is the same full reload in Caddy, so it would not spare the listener).
# LADING_ROLLING: one "service port health-path replicas drain" line per rolling service.

rolling_names() { printf '%s\n' "${LADING_ROLLING:-}" | awk 'NF { print $1 }'; }

proxy_dir() {
  pd=$(docker inspect --format '{{index .Config.Labels "dev.lading.proxy.dir"}}' "$LADING_PROXY_CONTAINER" 2>/dev/null || true)
  [ -n "$pd" ] || pd="$LADING_ROOT/.proxy"
  printf '%s' "$pd"
}

# a mutex for the proxy's state dir (several projects, each with its own deploy lock, share one proxy)
proxy_lock() {
  mkdir -p "$1/apps"
  waited=0
  until mkdir "$1/.lock.d" 2>/dev/null; do
    waited=$((waited + 1))
    if [ "$waited" -gt 300 ]; then
      echo "breaking a proxy lock held for over 60s ($1/.lock.d)" >&2
      rmdir "$1/.lock.d" 2>/dev/null || true
      waited=0
    fi
    sleep 0.2 2>/dev/null || sleep 1
  done
}
proxy_unlock() { rmdir "$1/.lock.d" 2>/dev/null || true; }

# reloads the proxy whose lock this step holds, then releases the lock; a refused config releases it too and dies
# with $2
proxy_reload_unlock() { # PROXY_DIR MESSAGE
  proxy_reload "$1" || {
    proxy_unlock "$1"
    die "$2"
  }
  proxy_unlock "$1"
}

# the opening of a step that changes the app's proxy files: pd (the proxy's state dir), server (http, or https with
# TLS), a (the app's files, $pd/apps/<project>.*), with the proxy's lock taken
proxy_app_lock() {
  pd=$(proxy_dir)
  server=http
  [ "${LADING_PROXY_TLS:-off}" = off ] || server=https
  proxy_lock "$pd"
  a="$pd/apps/$LADING_PROJECT"
}

# the files $2.. joined with commas (each holds a comma-separated list of JSON objects)
join_json() {
  sep=""
  for f in "$@"; do
    [ -s "$f" ] || continue
    printf '%s' "$sep"
    cat "$f"
    sep=","
  done
}

# renders the proxy's whole config from the app files in $1 and loads it through the admin API
proxy_reload() {
  http=$(join_json "$1"/apps/*.http.maint "$1"/apps/*.http.routes)
  https=$(join_json "$1"/apps/*.https.maint "$1"/apps/*.https.routes)
  tls=$(join_json "$1"/apps/*.tls)
  # a host name no app claims gets a 404 (Caddy answers an empty 200 otherwise); on :80 only while no app uses TLS,
  # so Caddy's own HTTP->HTTPS redirects (added after these routes) still answer for TLS apps
  none='{"handle":[{"handler":"static_response","status_code":404,"body":"no app here\n"}]}'
  servers=""
  if [ -n "$https" ]; then
    servers="\"lading_https\":{\"listen\":[\":443\"],\"routes\":[$https,$none]}"
    [ -z "$http" ] || servers="$servers,\"lading_http\":{\"listen\":[\":80\"],\"routes\":[$http]}"
  elif [ -n "$http" ]; then
    servers="\"lading_http\":{\"listen\":[\":80\"],\"routes\":[$http,$none]}"
  fi
  {
    printf '{"admin":{"listen":"localhost:2019"},"apps":{'
    printf '"pki":{"certificate_authorities":{"local":{"install_trust":false}}}'
    [ -z "$servers" ] || printf ',"http":{"servers":{%s}}' "$servers"
    [ -z "$tls" ] || printf ',"tls":{"automation":{"policies":[%s]}}' "$tls"
    printf '}}\n'
  } >"$1/caddy.json.tmp"
  mv -f "$1/caddy.json.tmp" "$1/caddy.json"
  proxy_netns=""
  if [ "${LADING_PROXY_ADMIN_VIA:-auto}" != exec ] && [ "$(id -u)" = 0 ] && command -v nsenter >/dev/null 2>&1 &&
    command -v curl >/dev/null 2>&1; then
    proxy_netns=$(docker inspect --format '{{.State.Pid}}' "$LADING_PROXY_CONTAINER" 2>/dev/null || true)
    case "$proxy_netns" in '' | 0 | *[!0-9]*) proxy_netns="" ;; *) nsenter -t "$proxy_netns" -n true 2>/dev/null || proxy_netns="" ;; esac
  fi
  tries=0
  until proxy_load "$1"; do
    tries=$((tries + 1))
    # a proxy that just started needs a moment before its admin API listens; a refused config is final
    if [ "$tries" -ge 25 ] || [ -n "$refused_config" ]; then
      printf '%s\n' "$out" | grep -v '"level":"info"' >&2
      return 1
    fi
    sleep 0.2 2>/dev/null || sleep 1
  done
}

# POST /load of $1/caddy.json to the proxy's admin API (localhost:2019 inside its container). As root with nsenter and
# curl on the host: from inside the proxy's network namespace, which costs the host a curl. Otherwise through
# `docker exec caddy reload`, whose exec (runc) competes with the proxy for CPU: requests meeting it on a small host
# waited up to ~20 ms (2 cores, bench/README.md). Sets out (what the proxy said) and refused_config (1: a 4xx).
proxy_load() {
  refused_config=""
  if [ -n "$proxy_netns" ]; then
    out=$(nsenter -t "$proxy_netns" -n curl -sS --max-time 60 -H 'Content-Type: application/json' \
      --data-binary @"$1/caddy.json" -w '\nHTTP %{http_code}' http://127.0.0.1:2019/load 2>&1) || true
    case "$out" in
      *"HTTP 200") return 0 ;;
      *"HTTP 4"[0-9][0-9]) refused_config=1 ;;
    esac
    return 1
  fi
  out=$(docker exec -i "$LADING_PROXY_CONTAINER" /usr/bin/caddy reload --config /dev/stdin <"$1/caddy.json" 2>&1)
}

# Caddy 2.6 binds a new SO_REUSEPORT socket at every config load and closes the old one when the old server stops:
# a connection the kernel had queued on the old socket was reset (~1 per reload at ~1000 req/s on loopback). With
# net.ipv4.tcp_migrate_req=1 (Linux >= 5.14, per network namespace) the kernel hands those connections to the new
# socket instead: 0 resets in the same loop. Set on the proxy's own namespace where the kernel has it.
# An engine or runtime that refuses the sysctl (some sandboxed runtimes) gets a proxy without it, labelled
# dev.lading.proxy.migrate=refused so that later deploys neither warn about it nor offer a replacement.
migrate_supported() { [ -e "${LADING_SYSCTL_DIR:-/proc/sys}/net/ipv4/tcp_migrate_req" ]; }

# "missing" when the kernel has tcp_migrate_req and proxy container $1 was started without it
proxy_migrate_missing() {
  migrate_supported || return 1
  case "$(docker inspect --format '{{index .HostConfig.Sysctls "net.ipv4.tcp_migrate_req"}} {{index .Config.Labels "dev.lading.proxy.migrate"}}' "$1" 2>/dev/null || true)" in
    '1 '* | *' refused') return 1 ;;
  esac
  return 0
}

proxy_run() { # PROXY_DIR DOCKER_RUN_OPTIONS...
  pd=$1
  shift
  docker run -d --name "$LADING_PROXY_CONTAINER" --restart unless-stopped --network "$LADING_PROXY_NETWORK" "$@" \
    --label dev.lading.proxy=1 --label "dev.lading.proxy.dir=$pd" \
    -v "$LADING_PROXY_CONTAINER-data:/data" -v "$LADING_PROXY_CONTAINER-config:/config" \
    -e XDG_DATA_HOME=/data -e XDG_CONFIG_HOME=/config \
    --entrypoint /usr/bin/caddy "$LADING_PROXY_IMAGE" run --resume >/dev/null
}

proxy_start() {
  pd=$1
  refused=""
  set --
  for p in ${LADING_PROXY_PORTS:-}; do set -- "$@" -p "$p"; done
  if migrate_supported; then
    if refused=$(proxy_run "$pd" "$@" --sysctl net.ipv4.tcp_migrate_req=1 2>&1); then return 0; fi
    # the container may exist (created, not started): it goes before the second try
    docker rm -f "$LADING_PROXY_CONTAINER" >/dev/null 2>&1 || true
    set -- "$@" --label dev.lading.proxy.migrate=refused
  fi
  proxy_run "$pd" "$@" ||
    die "starting the proxy $LADING_PROXY_CONTAINER ($LADING_PROXY_IMAGE) failed on $(hostname): are ports ${LADING_PROXY_PORTS:-} free?"
  if [ -n "$refused" ]; then
    echo "proxy: the engine on $(hostname) refused net.ipv4.tcp_migrate_req=1 ($(printf '%s' "$refused" | tr '\n' ' ' | cut -c1-300)); the proxy runs without it, so a connection may be reset at a route change" >&2
  fi
}

# the proxy: started if missing (and its routes loaded), started if stopped, replaced only with proxy-upgrade
step_proxy_ensure() {
  net=$LADING_PROXY_NETWORK
  docker network inspect "$net" >/dev/null 2>&1 || docker network create "$net" >/dev/null ||
    die "cannot create the docker network $net on $(hostname)"
  pd=$(proxy_dir)
  mkdir -p "$pd/apps"
  seen=$(docker inspect --format '{{.Config.Image}} {{.State.Running}}' "$LADING_PROXY_CONTAINER" 2>/dev/null || true)
  if [ -z "$seen" ]; then
    proxy_start "$pd"
    proxy_lock "$pd"
    proxy_reload_unlock "$pd" "the new proxy $LADING_PROXY_CONTAINER did not take its config"
    echo "proxy: started $LADING_PROXY_CONTAINER ($LADING_PROXY_IMAGE) on network $net"
    return 0
  fi
  img=${seen% *}
  why=""
  [ "$img" = "$LADING_PROXY_IMAGE" ] || why="runs $img, not $LADING_PROXY_IMAGE"
  if proxy_migrate_missing "$LADING_PROXY_CONTAINER"; then
    why="${why:+$why; }was started without net.ipv4.tcp_migrate_req=1 (a connection may be reset at each route change)"
  fi
  if [ -n "$why" ]; then
    if [ "${LADING_PROXY_UPGRADE:-0}" = 1 ]; then
      docker rm -f "$LADING_PROXY_CONTAINER" >/dev/null
      proxy_start "$pd"
      proxy_lock "$pd"
      proxy_reload_unlock "$pd" "the upgraded proxy did not take its config"
      echo "proxy: replaced $LADING_PROXY_CONTAINER ($why) with $LADING_PROXY_IMAGE"
      return 0
    fi
    echo "proxy: $LADING_PROXY_CONTAINER $why: kept (proxy-upgrade: true replaces it)" >&2
  fi
  if [ "${seen##* }" != true ]; then
    docker start "$LADING_PROXY_CONTAINER" >/dev/null || die "cannot start the proxy $LADING_PROXY_CONTAINER"
    proxy_lock "$pd"
    proxy_reload_unlock "$pd" "the restarted proxy did not take its config"
    echo "proxy: restarted $LADING_PROXY_CONTAINER"
  fi
}

# the recreate services of a project with rolling services (LADING_OTHERS), as `up` would run them
step_up_others() {
  [ -n "${LADING_OTHERS:-}" ] || return 0
  # shellcheck disable=SC2086 # service names are validated by lading
  compose_release "$LADING_RELEASE" up -d --no-deps --remove-orphans --no-build $LADING_OTHERS </dev/null
}

# containers of service $1 (all states, full ids)
service_ids() {
  docker ps -aq --no-trunc --filter "label=com.docker.compose.project=$LADING_PROJECT" \
    --filter "label=com.docker.compose.service=$1" --filter "label=com.docker.compose.oneoff=False"
}

rolling_lines() { printf '%s\n' "${LADING_ROLLING:-}" | awk 'NF >= 5'; }

# new containers of each rolling service beside the old ones (compose --no-recreate --scale old+replicas), their
# ids in releases/<id>/.rolling/<service>.ids, each connected to the proxy network. A release whose containers are
# still running (a rollback within the drain window) keeps them: no new container, an instant switch back.
# drains of a rolling service still under way finish first (at their deadline; stopped and removed here, the drain
# job then skips them), so compose's scale never meets a container that a drain job stops or removes under it.
# The wait is bounded by $drains_until (half the step timeout from the step's start): a drain that would outlast it is
# cut short, so the step never sleeps into its own timeout.
finish_drains() { # SERVICE
  fd=$(project_dir)
  [ -d "$fd/.draining" ] || return 0
  for id in $(service_ids "$1"); do
    [ -f "$fd/.draining/$id" ] || continue
    until=$(cat "$fd/.draining/$id" 2>/dev/null || true)
    case "$until" in '' | *[!0-9]*) until=0 ;; esac
    left=$((until - $(now)))
    may=$((drains_until - $(now)))
    [ "$may" -gt 0 ] || may=0
    if [ "$left" -gt "$may" ]; then
      echo "rolling $1: $(printf '%s' "$id" | cut -c1-12) still drains (${left}s left): cut short after ${may}s (half of step-timeout ${LADING_STEP_TIMEOUT:-900}s)" >&2
      left=$may
    fi
    if [ "$left" -gt 0 ]; then
      echo "rolling $1: $(printf '%s' "$id" | cut -c1-12) still drains (${left}s left): waiting for it first"
      sleep "$left"
    fi
    rm -f "$fd/.draining/$id"
    docker stop "$id" >/dev/null 2>&1 || true
    docker rm -f "$id" >/dev/null 2>&1 || true
    i=0
    while docker inspect "$id" >/dev/null 2>&1 && [ "$i" -lt 100 ]; do
      sleep 0.1 2>/dev/null || sleep 1
      i=$((i + 1))
    done
  done
}

# every container listed in file $1 runs
all_running() {
  while IFS= read -r id; do
    [ "$(docker inspect --format '{{.State.Running}}' "$id" 2>/dev/null || true)" = true ] || return 1
  done <"$1"
}

# the containers of service $1 listed in file $2 join the proxy network (those already on it stay)
proxy_connect() { # SERVICE IDS_FILE
  while IFS= read -r id; do
    docker network connect "$LADING_PROXY_NETWORK" "$id" 2>/dev/null ||
      docker inspect --format '{{json .NetworkSettings.Networks}}' "$id" | grep -q "\"$LADING_PROXY_NETWORK\"" ||
      die "cannot connect $1 ($id) to the proxy network $LADING_PROXY_NETWORK"
  done <"$2"
}

step_rolling_start() {
  drains_until=$(($(now) + ${LADING_STEP_TIMEOUT:-900} / 2))
  rel="$(project_dir)/releases/$LADING_RELEASE"
  [ -d "$rel" ] || die "release $LADING_RELEASE does not exist on $(hostname)"
  mkdir -p "$rel/.rolling"
  scale=""
  names=""
  before=$(mktemp)
  rolling_lines >"$before.lines"
  while read -r svc _port _health replicas _drain; do
    if [ "${LADING_REUSE:-0}" = 1 ] && [ -s "$rel/.rolling/$svc.ids" ] && all_running "$rel/.rolling/$svc.ids"; then
      echo "rolling $svc: the containers of $LADING_RELEASE still run (drain window): switching back to them"
      continue
    fi
    finish_drains "$svc"
    old=$(service_ids "$svc")
    printf '%s\n' "$old" | awk -v s="$svc" 'NF { print s, $1 }' >>"$before"
    n=$(printf '%s\n' "$old" | awk 'NF' | wc -l)
    scale="$scale --scale $svc=$((n + replicas))"
    names="$names $svc"
  done <"$before.lines"
  # the recreate services (LADING_WITH_OTHERS): first, as recreate would run them, when a rolling service needs one of
  # them (LADING_OTHERS_AT_ONCE=0) or the project is not running yet; otherwise in a second compose run at the same
  # time as the rolling services' (each compose run is mostly its own start-up). Two runs at once may both create a
  # network or volume the release adds: the one that lost is run again, alone (compose up converges).
  others_pid=""
  if [ "${LADING_WITH_OTHERS:-0}" = 1 ] && [ -n "${LADING_OTHERS:-}" ]; then
    if [ -n "$names" ] && [ "${LADING_OTHERS_AT_ONCE:-0}" = 1 ] && [ -s "$before" ]; then
      step_up_others >"$before.others" 2>&1 &
      others_pid=$!
    else
      step_up_others
    fi
  fi
  # shellcheck disable=SC2086 # service names are validated by lading
  if [ -n "$names" ] && ! compose_release "$LADING_RELEASE" up -d --no-deps --no-recreate --no-build $scale $names </dev/null; then
    [ -n "$others_pid" ] || die "compose could not start the new containers of$names"
    wait "$others_pid" || true
    others_pid=""
    echo "compose ran at the same time as the recreate services' run failed: both once more, one after the other" >&2
    step_up_others
    # shellcheck disable=SC2086 # service names are validated by lading
    compose_release "$LADING_RELEASE" up -d --no-deps --no-recreate --no-build $scale $names </dev/null
  fi
  if [ -n "$others_pid" ] && ! wait "$others_pid"; then
    sed 's/^/    /' "$before.others" >&2
    echo "the recreate services' compose run at the same time failed (above): once more, alone" >&2
    step_up_others
  elif [ -n "$others_pid" ]; then
    cat "$before.others" >&2
  fi
  rm -f "$before.others"
  for svc in $names; do
    service_ids "$svc" | while IFS= read -r id; do
      grep -qxF "$svc $id" "$before" || printf '%s\n' "$id"
    done >"$rel/.rolling/$svc.ids"
    [ -s "$rel/.rolling/$svc.ids" ] || die "compose started no new container for $svc"
    # a draining container removed while compose scaled makes it start one more than asked: never served, it goes
    want=$(awk -v s="$svc" '$1 == s { print $4 }' "$before.lines")
    extra=$(sed "1,${want}d" "$rel/.rolling/$svc.ids")
    if [ -n "$extra" ]; then
      # shellcheck disable=SC2086 # container ids
      docker rm -f $extra >/dev/null 2>&1 || true
      head -n "$want" "$rel/.rolling/$svc.ids" >"$rel/.rolling/$svc.ids.tmp"
      mv -f "$rel/.rolling/$svc.ids.tmp" "$rel/.rolling/$svc.ids"
    fi
    proxy_connect "$svc" "$rel/.rolling/$svc.ids"
    echo "rolling $svc: started $(cut -c1-12 "$rel/.rolling/$svc.ids" | tr '\n' ' ')beside $(awk -v s="$svc" '$1 == s { print substr($2, 1, 12) }' "$before" | tr '\n' ' ')"
  done
  rm -f "$before" "$before.lines"
}

http_ok() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O /dev/null -T 1 "$1" 2>/dev/null
  else
    die "neither curl nor wget is on $(hostname) for the rolling health probe"
  fi
}

# the gate of rolling services: each new container running, not unhealthy, passing its own healthcheck if it has one
# (run early with docker exec while docker still says "starting"), and answering its health path with a 2xx/3xx
# directly (container address on the proxy network), polled every 150 ms.
step_rolling_gate() {
  rel="$(project_dir)/releases/$LADING_RELEASE"
  deadline=$(($(now) + ${LADING_HEALTH_TIMEOUT:?set by the runner}))
  rolling_lines >"$rel/.rolling/.lines"
  while read -r svc port health _replicas _drain; do
    while IFS= read -r id; do
      while :; do
        st=$(docker inspect --format "{{.State.Status}} {{if index .State \"Health\"}}{{(index .State \"Health\").Status}}{{else}}none{{end}} {{.RestartCount}} {{with index .NetworkSettings.Networks \"$LADING_PROXY_NETWORK\"}}{{.IPAddress}}{{end}}" "$id" 2>/dev/null) ||
          die "rolling $svc: container $id is gone"
        # shellcheck disable=SC2086 # four words by the format above
        set -- $st
        if [ "$1" = exited ] || [ "$1" = dead ] || [ "$2" = unhealthy ] || [ "$3" != 0 ]; then
          echo "--- last log lines of $svc ($id):" >&2
          docker logs --tail 15 "$id" 2>&1 | sed 's/^/    /' >&2 || true
          die "rolling $svc: the new container is $1 (health $2, restarts $3): traffic stays on the old containers"
        fi
        # a healthchecked container also passes its own check: docker's verdict once known, else the check run now
        checked=yes
        if [ "$2" = starting ]; then early_check "$id" || checked=""; fi
        if [ "$1" = running ] && [ -n "$checked" ] && [ -n "${4:-}" ] && http_ok "http://$4:$port$health"; then
          echo "ready: $svc $(printf '%s' "$id" | cut -c1-12) answers http://$4:$port$health$([ "$2" = none ] || printf ', its healthcheck passes')"
          break
        fi
        [ "$(now)" -lt "$deadline" ] ||
          die "rolling $svc: $([ -n "$checked" ] || printf 'its healthcheck did not pass and ')http://${4:-?}:$port$health did not answer within ${LADING_HEALTH_TIMEOUT:?set by the runner}s: traffic stays on the old containers"
        sleep 0.15 2>/dev/null || sleep 1
      done
    done <"$rel/.rolling/$svc.ids"
  done <"$rel/.rolling/.lines"
  rm -f "$rel/.rolling/.lines"
}

# a failed gate: the new containers go, the old ones never stopped serving
step_rolling_abort() {
  rel="$(project_dir)/releases/$LADING_RELEASE"
  for f in "$rel"/.rolling/*.ids; do
    [ -f "$f" ] || continue
    # shellcheck disable=SC2046 # container ids
    docker rm -f $(cat "$f") >/dev/null 2>&1 || true
    echo "removed the new containers of ${f##*/} (never served)"
    rm -f "$f"
  done
}

# the app's routes (LADING_ROUTES, with @@up:<service>:<port>@@ tokens) filled with the current release's
# containers and loaded into the proxy; the previous app files come back if the proxy refuses the new ones.
step_proxy_switch() {
  rel="$(project_dir)/releases/$LADING_RELEASE"
  routes=$LADING_ROUTES
  for f in "$rel"/.rolling/*.ids; do
    [ -f "$f" ] || continue
    svc=${f##*/}
    svc=${svc%.ids}
    ups=""
    while IFS= read -r id; do
      ip=$(docker inspect --format "{{with index .NetworkSettings.Networks \"$LADING_PROXY_NETWORK\"}}{{.IPAddress}}{{end}}" "$id")
      [ -n "$ip" ] || die "rolling $svc: $id has no address on $LADING_PROXY_NETWORK"
      ups="$ups${ups:+,}{\"dial\":\"$ip:PORT\"}"
    done <"$f"
    # one token per port the service is routed on
    for tok in $(printf '%s' "$routes" | grep -o "@@up:$svc:[0-9]*@@" | sort -u); do
      p=${tok#@@up:"$svc":}
      p=${p%@@}
      routes=$(printf '%s' "$routes" | sed "s|$tok|$(printf '%s' "$ups" | sed "s/PORT/$p/g")|g")
    done
  done
  case "$routes" in *@@up:*) die "no containers for $(printf '%s' "$routes" | grep -o '@@up:[^@]*@@' | head -n 1)" ;; esac
  proxy_app_lock
  mkdir -p "$pd/apps/.prev"
  for f in "$a".*; do [ ! -f "$f" ] || cp -p "$f" "$pd/apps/.prev/"; done
  printf '%s' "$routes" >"$a.$server.routes.tmp" && mv -f "$a.$server.routes.tmp" "$a.$server.routes"
  other=https
  [ "$server" = http ] || other=http
  rm -f "$a.$other.routes"
  if [ -f "$a.$other.maint" ]; then mv -f "$a.$other.maint" "$a.$server.maint"; fi
  printf '%s' "${LADING_TLS_POLICY:-}" >"$a.tls"
  if ! proxy_reload "$pd"; then
    rm -f "$a".*
    for f in "$pd/apps/.prev/$LADING_PROJECT".*; do [ ! -f "$f" ] || cp -p "$f" "$pd/apps/"; done
    proxy_reload "$pd" || true
    proxy_unlock "$pd"
    die "the proxy refused the new routes of $LADING_PROJECT: the old ones stay"
  fi
  rm -f "$pd/apps/.prev/$LADING_PROJECT".*
  proxy_unlock "$pd"
  echo "switched: $LADING_PROJECT → $(printf '%s' "$routes" | grep -o '"dial":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ')"
}

# every other container of a rolling service drains: removed after its drain seconds by a detached job (stop, then
# rm), unless a rollback takes it back first (it deletes the container's .draining marker).
step_rolling_retire() {
  d=$(project_dir)
  rel="$d/releases/$LADING_RELEASE"
  mkdir -p "$d/.draining"
  rolling_lines >"$rel/.rolling/.lines"
  while read -r svc _port _health _replicas drain; do
    [ -f "$rel/.rolling/$svc.ids" ] || continue
    gone=""
    while IFS= read -r id; do rm -f "$d/.draining/$id"; done <"$rel/.rolling/$svc.ids"
    for id in $(service_ids "$svc"); do
      grep -qxF "$id" "$rel/.rolling/$svc.ids" && continue
      [ ! -f "$d/.draining/$id" ] || continue
      printf '%s\n' "$(($(now) + drain))" >"$d/.draining/$id"
      gone="$gone $id"
    done
    [ -n "$gone" ] || continue
    grace=$(docker inspect --format '{{.Config.StopTimeout}}' "${gone# }" 2>/dev/null || true)
    case "$grace" in '' | *[!0-9]*) grace=10 ;; esac
    if command -v setsid >/dev/null 2>&1; then detach='setsid'; else detach='nohup'; fi
    # shellcheck disable=SC2016,SC2086 # the job's own script; ids are hex
    $detach sh -c 'sleep "$1"; d=$2; g=$3; shift 3; for id; do
        if [ -f "$d/.draining/$id" ]; then docker stop -t "$g" "$id"; docker rm "$id"; rm -f "$d/.draining/$id"; fi
      done' lading-drain "$drain" "$d" "$grace" $gone </dev/null >/dev/null 2>&1 &
    echo "draining $svc:$(printf '%s' "$gone" | awk '{ for (i = 1; i <= NF; i++) printf " %s", substr($i, 1, 12) }') (removed in ${drain}s)"
  done <"$rel/.rolling/.lines"
  rm -f "$rel/.rolling/.lines"
}

# maintenance on (LADING_MAINTENANCE_ROUTE: a 503 route for the app's host names) or off (empty)
step_proxy_maintenance() {
  proxy_app_lock
  rm -f "$a.http.maint" "$a.https.maint"
  if [ -n "${LADING_MAINTENANCE_ROUTE:-}" ]; then printf '%s' "$LADING_MAINTENANCE_ROUTE" >"$a.$server.maint"; fi
  proxy_reload_unlock "$pd" "the proxy refused the maintenance route"
  if [ -n "${LADING_MAINTENANCE_ROUTE:-}" ]; then echo "maintenance on: $LADING_PROJECT answers 503"; else echo "maintenance off: $LADING_PROJECT"; fi
}

# a release without rolling services (recreate) takes the project's draining containers back: their drain jobs
# leave them alone (no marker), so `up` recreates or removes them without racing a job that removes them under it
step_rolling_undrain() {
  d=$(project_dir)
  [ -d "$d/.draining" ] || return 0
  rm -f "$d/.draining/"*
}

# the app's routes leave the proxy (its containers are its own business). A release without rolling services
# (recreate: a rollback to before rolling, or rolling turned off) runs it after `up`, which removed the rolling
# containers: no route is left pointing at them. Nothing to do for an app the proxy never routed.
step_proxy_forget() {
  [ -n "${LADING_PROXY_CONTAINER:-}" ] || return 0
  pd=$(proxy_dir)
  for f in "$pd/apps/$LADING_PROJECT".*; do [ -f "$f" ] && break; done
  [ -f "$f" ] || return 0
  proxy_lock "$pd"
  rm -f "$pd/apps/$LADING_PROJECT".*
  proxy_reload "$pd" || true
  proxy_unlock "$pd"
  echo "proxy: the routes of $LADING_PROJECT are removed (no rolling service in ${LADING_RELEASE:-this release})"
}

lading_step() {
  for s in "$@"; do lading_one "$s"; done
}

lading_one() {
  case "$1" in
    lock | unlock | facts | health | history_read | release_manifest | image_facts | check_paths) "step_$1" ;;
    mkrelease | pull | up | switch | history | prune | fetch | load)
      lock_check
      "step_$1"
      ;;
    proxy_ensure | up_others | rolling_start | rolling_gate | rolling_abort | proxy_switch | rolling_retire | rolling_undrain | proxy_maintenance | proxy_forget)
      lock_check
      "step_$1"
      ;;
    *) die "unknown step $1" ;;
  esac
}
