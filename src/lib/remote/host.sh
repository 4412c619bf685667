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
step_lock() {
  d=$(project_dir)
  mkdir -p "$d/releases" || die "cannot create $d: check the deploy root and the SSH user's rights"
  deadline=$(($(now) + ${LADING_LOCK_WAIT:-300}))
  announced=
  while :; do
    expires=$(($(now) + ${LADING_LOCK_TTL:-900}))
    if (set -C && printf '%s %s %s\n' "$expires" "$LADING_OWNER" "$(hostname)" >"$d/.lock") 2>/dev/null; then
      echo "lock taken by $LADING_OWNER until $expires"
      return 0
    fi
    held=$(cat "$d/.lock" 2>/dev/null || true)
    lexp=${held%% *}
    case "$lexp" in '' | *[!0-9]*) lexp=0 ;; esac
    rest=${held#* }
    if [ "$(now)" -gt "$lexp" ]; then
      # Break a stale lock under a mutex, and only if it is still the one we judged stale.
      if mkdir "$d/.lock.break" 2>/dev/null; then
        if [ "$(cat "$d/.lock" 2>/dev/null || true)" = "$held" ]; then
          rm -f "$d/.lock"
          echo "broke a stale lock held by $rest (expired at $lexp)" >&2
        fi
        rmdir "$d/.lock.break"
      fi
      continue
    fi
    [ "$(now)" -lt "$deadline" ] || die "another deploy holds the lock: $rest, until $lexp (epoch); waited ${LADING_LOCK_WAIT:-300}s"
    [ -n "$announced" ] || echo "waiting for the lock held by $rest" >&2
    announced=1
    sleep 2
  done
}

step_unlock() {
  d=$(project_dir)
  held=$(cat "$d/.lock" 2>/dev/null || true)
  case "$held" in
    *" $LADING_OWNER "*) rm -f "$d/.lock" ;;
  esac
}

# --- facts: compose flavour, current release, releases on disk.
step_facts() {
  d=$(project_dir)
  detect_compose
  printf 'compose=%s\n' "$COMPOSE"
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
# travels in the one step that creates it). Name and mode come in LADING_FILE_NAME (lading's own file names: no
# slash) and LADING_FILE_MODE (octal); written under a temp name, then renamed.
lading_write_file() {
  rel="$(project_dir)/releases/$LADING_RELEASE"
  case "$LADING_FILE_NAME" in '' | */* | . | ..) die "bad release file name '$LADING_FILE_NAME'" ;; esac
  t="$rel/.tmp-$$-$LADING_FILE_NAME"
  (umask 077 && base64 -d >"$t") || die "cannot write $rel/$LADING_FILE_NAME on $(hostname) (is base64 installed?)"
  chmod "$LADING_FILE_MODE" "$t"
  mv -f "$t" "$rel/$LADING_FILE_NAME"
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

step_pull() {
  cfg=$(mktemp -d)
  trap 'rm -rf "$cfg"' EXIT
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
  deadline=$(($(now) + ${LADING_HEALTH_TIMEOUT:-60}))
  stable=${LADING_HEALTH_STABLE:-3}
  first=""
  polls=0
  while :; do
    ids=$(docker ps -aq --filter "label=com.docker.compose.project=$LADING_PROJECT")
    [ -n "$ids" ] || die "no containers of project $LADING_PROJECT are running"
    # shellcheck disable=SC2086 # $ids is a list of container ids
    states=$(docker inspect --format '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.RestartCount}}' $ids)
    bad=$(printf '%s\n' "$states" | awk '$2 != "running" && $2 != "created" || $3 == "unhealthy" { print }')
    if [ -n "$bad" ]; then
      printf '%s\n' "$states" >&2
      for id in $ids; do
        name=$(docker inspect --format '{{index .Config.Labels "com.docker.compose.service"}}' "$id")
        echo "--- last log lines of $name:" >&2
        docker logs --tail 15 "$id" 2>&1 | sed 's/^/    /' >&2 || true
      done
      die "unhealthy after deploy: $(printf '%s\n' "$bad" | awk '{ print $1 " (" $2 ", health " $3 ")" }' | tr '\n' ' ')"
    fi
    waiting=$(printf '%s\n' "$states" | awk '$2 != "running" || $3 == "starting" { print $1 }')
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
      die "not healthy within ${LADING_HEALTH_TIMEOUT:-60}s: waiting for $(printf '%s' "$waiting" | tr '\n' ' ')"
    fi
    # poll every 0.2 s for the first 2 s (most services are up by then), then every second
    polls=$((polls + 1))
    if [ "$polls" -le 10 ]; then sleep 0.2 2>/dev/null || sleep 1; else sleep 1; fi
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
      [ "$(now)" -lt "$deadline" ] || die "the probe $LADING_PROBE_URL did not answer with success within ${LADING_HEALTH_TIMEOUT:-60}s"
      sleep 1
    done
    echo "probe ok: $LADING_PROBE_URL"
  fi
  echo "healthy: $(printf '%s\n' "$states" | awk '{ print $1 "=" $2 "/" $3 }' | sort | tr '\n' ' ')"
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
  keep=${LADING_KEEP:-5}
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

lading_step() {
  for s in "$@"; do lading_one "$s"; done
}

lading_one() {
  case "$1" in
    lock | unlock | facts | mkrelease | pull | up | health | switch | history | prune | history_read | release_manifest | image_facts | fetch | load) "step_$1" ;;
    *) die "unknown step $1" ;;
  esac
}
