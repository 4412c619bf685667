# lading's day-2 steps (POSIX sh): status, logs, exec, lock control and prune. Sent after host.sh (and swarm.sh for a
# swarm target), whose helpers they use, and run as `lading_ops <step>...`. Data comes in env only; the steps print
# `key=value` lines that src/lib/ops.ts reads (values are JSON, base64 or lading's own names: never a newline).

# The project as this host keeps it: host time, current release, releases, lock, the current release's manifest
# (base64) and the recent history.
ops_header() {
  d=$(project_dir)
  printf 'now=%s\n' "$(now)"
  printf 'hostname=%s\n' "$(hostname)"
  cur=$(readlink "$d/current" 2>/dev/null || true)
  cur=${cur##*/}
  printf 'current=%s\n' "$cur"
  if [ -d "$d/releases" ]; then
    for r in "$d"/releases/*; do [ -d "$r" ] && printf 'release=%s\n' "${r##*/}"; done
  fi
  if [ -f "$d/.lock" ]; then printf 'lock=%s\n' "$(head -n 1 "$d/.lock" 2>/dev/null)"; fi
  if [ -n "$cur" ] && [ -f "$d/releases/$cur/manifest.json" ]; then
    printf 'manifest=%s\n' "$(base64 <"$d/releases/$cur/manifest.json" | tr -d '\n')"
  fi
  if [ -f "$d/history.jsonl" ]; then tail -n 50 "$d/history.jsonl" | sed 's/^/history=/'; fi
  return 0
}

# One JSON line per container of the project: labels, state (with health) and image. Whole objects only: docker's
# templates fail on a missing key (.State.Health of a container without a healthcheck) with some clients.
OPS_CONTAINER='container={"id":{{json .Id}},"name":{{json .Name}},"labels":{{json .Config.Labels}},"state":{{json .State}},"restarts":{{json .RestartCount}},"image":{{json .Config.Image}},"imageId":{{json .Image}}}'

project_containers() {
  docker ps -aq --filter "label=com.docker.compose.project=$LADING_PROJECT"
}

step_ops_status() {
  ops_header
  said=$(docker version --format '{{.Server.Version}}' 2>&1) || die "docker does not answer on $(hostname): $said"
  ids=$(project_containers)
  [ -n "$ids" ] || return 0
  # shellcheck disable=SC2086 # container ids
  docker inspect --format "$OPS_CONTAINER" $ids 2>/dev/null || true
  # shellcheck disable=SC2086
  images=$(docker inspect --format '{{.Image}}' $ids 2>/dev/null | sort -u)
  # shellcheck disable=SC2086 # image ids
  [ -z "$images" ] || docker image inspect --format 'image={{json .Id}} {{json .RepoDigests}}' $images 2>/dev/null || true
}

# A swarm stack: the header, then the stack as the manager sees it (swarm.sh's swarm_state), after a `state=` line.
step_ops_swarm_status() {
  ops_header
  printf 'state=\n'
  step_swarm_state
}

step_ops_lock_read() {
  d=$(project_dir)
  printf 'now=%s\n' "$(now)"
  if [ -f "$d/.lock" ]; then printf 'lock=%s\n' "$(head -n 1 "$d/.lock" 2>/dev/null)"; fi
  return 0
}

# Removes the lock only if it is still the one read (LADING_LOCK_SEEN), under host.sh's lock mutex (the one stale
# locks are broken under), and records the release in the history (LADING_HISTORY_LINE).
step_ops_lock_release() {
  d=$(project_dir)
  [ -f "$d/.lock" ] || die "there is no lock on $(hostname) any more"
  lock_mutex "$d" || die "someone is breaking the lock on $(hostname) right now: look again"
  lock_fields "$d"
  # shellcheck disable=SC2154 # held and rest are set by lock_fields (host.sh)
  if [ "$held" != "$LADING_LOCK_SEEN" ]; then
    rmdir "$d/.lock.break"
    die "the lock on $(hostname) changed since it was read (now: $held): look again with lading lock status"
  fi
  rm -f "$d/.lock"
  rmdir "$d/.lock.break"
  step_history
  echo "released the lock held by $rest"
}

# What prune decides on: releases (size in KiB), each release's pins and the image each resolves to, every image
# (id, size, repository digests and tags), and the images containers use (any project: those never go).
step_ops_prune_facts() {
  d=$(project_dir)
  cur=$(readlink "$d/current" 2>/dev/null || true)
  printf 'current=%s\n' "${cur##*/}"
  [ -d "$d/releases" ] || return 0
  for r in "$d"/releases/*; do
    [ -d "$r" ] || continue
    printf 'release=%s %s\n' "${r##*/}" "$(du -sk "$r" | cut -f1)"
    pinned_images "$r" | while IFS= read -r ref; do
      [ -n "$ref" ] || continue
      printf 'pin=%s %s %s\n' "${r##*/}" "$ref" "$(docker image inspect --format '{{.Id}}' "$ref" 2>/dev/null || echo -)"
    done
  done
  images=$(docker image ls -q --no-trunc | sort -u)
  # shellcheck disable=SC2086 # image ids
  [ -z "$images" ] || docker image inspect --format 'image={{json .Id}} {{.Size}} {{json .RepoDigests}} {{json .RepoTags}}' $images
  ids=$(docker ps -aq)
  # shellcheck disable=SC2086 # container ids
  [ -z "$ids" ] || docker inspect --format 'used={{.Image}}' $ids 2>/dev/null || true
}

# Removes the releases in LADING_PRUNE_RELEASES and the images in LADING_PRUNE_IMAGES (one per line); never the
# current release, and an image docker refuses to remove (a container started meanwhile) stays.
step_ops_prune_apply() {
  d=$(project_dir)
  cur=$(readlink "$d/current" 2>/dev/null || true)
  cur=${cur##*/}
  printf '%s\n' "${LADING_PRUNE_RELEASES:-}" | while IFS= read -r r; do
    [ -n "$r" ] || continue
    case "$r" in */* | . | ..) die "bad release name '$r'" ;; esac
    if [ "$r" = "$cur" ]; then
      echo "kept release $r: it is current"
      continue
    fi
    rm -rf "${d:?}/releases/$r" && echo "removed release $r"
  done
  printf '%s\n' "${LADING_PRUNE_IMAGES:-}" | while IFS= read -r img; do
    [ -n "$img" ] || continue
    if said=$(docker rmi "$img" 2>&1); then
      echo "removed image $img"
    else
      echo "kept image $img: $(printf '%s' "$said" | head -n 1)"
    fi
  done
}

# --- streamed steps: run from a script file (src/stages/ops/stream.ts uploads it), so stdin is the caller's, not the script.

# The project's containers (a service's with LADING_SERVICE), one-off containers left out; running ones, all with -a.
service_containers() {
  set -- "$@" -q --filter "label=com.docker.compose.project=$LADING_PROJECT" --filter "label=com.docker.compose.oneoff=False"
  if [ -n "${LADING_SERVICE:-}" ]; then set -- "$@" --filter "label=com.docker.compose.service=$LADING_SERVICE"; fi
  docker ps "$@"
}

# "$@" of the caller is rebuilt from LADING_ARGC and LADING_ARG_<i> (eval sees variable names, never values):
#   eval "$OPS_ARGS"
# shellcheck disable=SC2016 # expanded by that eval
OPS_ARGS='set --; i=1; while [ "$i" -le "${LADING_ARGC:-0}" ]; do eval "a=\${LADING_ARG_$i}"; set -- "$@" "$a"; i=$((i + 1)); done'

# docker's log flags from LADING_TAIL, LADING_SINCE, LADING_TIMESTAMPS and LADING_FOLLOW (lading validated the
# values: no spaces), in LOG_FLAGS
log_flags() {
  LOG_FLAGS=""
  [ -z "${LADING_TAIL:-}" ] || LOG_FLAGS="$LOG_FLAGS --tail $LADING_TAIL"
  [ -z "${LADING_SINCE:-}" ] || LOG_FLAGS="$LOG_FLAGS --since $LADING_SINCE"
  [ "${LADING_TIMESTAMPS:-0}" != 1 ] || LOG_FLAGS="$LOG_FLAGS --timestamps"
  [ "${LADING_FOLLOW:-0}" != 1 ] || LOG_FLAGS="$LOG_FLAGS --follow"
}

# Waits for the log readers (pids $1). With LADING_FOLLOW=1 they run until the containers end or the caller closes
# stdin (Ctrl-C on the CLI): then every reader is ended too (this shell's process group).
wait_readers() {
  if [ "${LADING_FOLLOW:-0}" = 1 ]; then
    # (an asynchronous list's stdin is /dev/null: the caller's stdin reaches it as fd 3)
    exec 3<&0
    (
      cat <&3 >/dev/null
      kill 0 2>/dev/null
    ) &
    watcher=$!
    # shellcheck disable=SC2086 # pids
    wait $1
    kill "$watcher" 2>/dev/null || true
  else
    # shellcheck disable=SC2086
    wait $1
  fi
}

# Logs of every container (or a service's), each line prefixed `<service>-<n> | `.
step_ops_logs() {
  log_flags
  ids=$(service_containers -a)
  [ -n "$ids" ] || die "no containers of ${LADING_SERVICE:+service $LADING_SERVICE of }project $LADING_PROJECT on $(hostname)"
  pids=""
  for id in $ids; do
    name=$(docker inspect --format '{{index .Config.Labels "com.docker.compose.service"}}-{{index .Config.Labels "com.docker.compose.container-number"}}' "$id")
    # a read loop, not awk or sed: those buffer a pipe's input (mawk) or output, and a follow must stream
    # shellcheck disable=SC2086 # validated flags
    docker logs $LOG_FLAGS "$id" 2>&1 | while IFS= read -r line || [ -n "$line" ]; do printf '%s | %s\n' "$name" "$line"; done &
    pids="$pids $!"
  done
  wait_readers "$pids"
}

# Runs the command in a new one-off container of the current release (compose run --rm: its config, env files and
# networks; dependencies are not started), or with LADING_RUNNING=1 in the service's first running container.
# LADING_TTY=1: the caller gave us a terminal. The command's exit status is this step's.
step_ops_exec() {
  d=$(project_dir)
  cur=$(readlink "$d/current" 2>/dev/null || true)
  cur=${cur##*/}
  [ -n "$cur" ] || die "project $LADING_PROJECT has no current release on $(hostname): deploy first"
  t=-T
  [ "${LADING_TTY:-0}" != 1 ] || t=""
  eval "$OPS_ARGS"
  if [ "${LADING_RUNNING:-0}" = 1 ]; then
    id=$(service_containers | head -n 1)
    [ -n "$id" ] || die "no running container of service $LADING_SERVICE on $(hostname)"
    if [ -n "$t" ]; then exec docker exec -i "$id" "$@"; else exec docker exec -it "$id" "$@"; fi
  fi
  rel="$d/releases/$cur"
  detect_compose
  files=""
  while IFS= read -r f; do [ -z "$f" ] || files="$files -f $rel/$f"; done <"$rel/.lading-files"
  # shellcheck disable=SC2086 # lading's own file names, and -T or nothing
  exec $COMPOSE -p "$LADING_PROJECT" --project-directory "$rel" --env-file "$rel/.env" $files run --rm --no-deps $t "$LADING_SERVICE" "$@"
}

# A deploy hook: the command (LADING_ARGC/LADING_ARG_<i>) in a one-off container of release LADING_RELEASE (the new
# one: its compose files, env and networks; dependencies not started), stopped after LADING_HOOK_TIMEOUT seconds.
step_ops_hook() {
  rel="$(project_dir)/releases/$LADING_RELEASE"
  [ -f "$rel/.lading-files" ] || die "release $LADING_RELEASE is not on $(hostname)"
  eval "$OPS_ARGS"
  detect_compose
  files=""
  while IFS= read -r f; do [ -z "$f" ] || files="$files -f $rel/$f"; done <"$rel/.lading-files"
  name="$LADING_PROJECT-$LADING_HOOK-$$"
  t=""
  if command -v timeout >/dev/null 2>&1; then t="timeout $LADING_HOOK_TIMEOUT"; fi
  rc=0
  # shellcheck disable=SC2086 # lading's own file names; timeout and its seconds
  $t $COMPOSE -p "$LADING_PROJECT" --project-directory "$rel" --env-file "$rel/.env" $files run --rm --no-deps -T --name "$name" "$LADING_SERVICE" "$@" </dev/null || rc=$?
  if [ "$rc" = 124 ]; then
    docker rm -f "$name" >/dev/null 2>&1 || true
    die "hook $LADING_HOOK timed out after ${LADING_HOOK_TIMEOUT}s (its container was removed)"
  fi
  [ "$rc" = 0 ] || die "hook $LADING_HOOK exited with status $rc"
}

# A deploy hook on a swarm manager: the command (LADING_ARGC/LADING_ARG_<i>) in a one-off container of the new
# release's image for the hook's service (LADING_HOOK_IMAGE), with the service's environment (the release's
# hook-<service>.env, 0600), user and working dir, on the first of its networks (LADING_HOOK_NETWORKS) that exists
# and is attachable (host networking as is), else on docker's default one, said; stopped after LADING_HOOK_TIMEOUT seconds.
step_ops_swarm_hook() {
  rel="$(project_dir)/releases/$LADING_RELEASE"
  [ -f "$rel/.lading-files" ] || die "release $LADING_RELEASE is not on $(hostname)"
  envf="$rel/hook-$LADING_SERVICE.env"
  [ -f "$envf" ] || die "release $LADING_RELEASE has no environment for a $LADING_SERVICE hook on $(hostname)"
  eval "$OPS_ARGS"
  net=""
  for n in ${LADING_HOOK_NETWORKS:-}; do
    if [ "$n" = host ]; then
      net="--network host"
      break
    fi
    a=$(docker network inspect --format '{{.Attachable}}' "$n" 2>/dev/null) || a=missing
    case "$a" in
      true)
        net="--network $n"
        break
        ;;
      missing) echo "network $n does not exist yet (the stack's first deploy creates it): the hook runs on docker's default network" ;;
      *) echo "network $n is not attachable (attachable: true on it in the compose file lets a one-off container join): the hook runs on docker's default network" ;;
    esac
  done
  name="$LADING_PROJECT-$LADING_HOOK-$$"
  t=""
  if command -v timeout >/dev/null 2>&1; then t="timeout $LADING_HOOK_TIMEOUT"; fi
  rc=0
  # shellcheck disable=SC2086 # timeout and its seconds; --network <name> (a docker network name: no spaces)
  $t docker run --rm --name "$name" --label "io.lading.hook=$LADING_PROJECT" --env-file "$envf" $net \
    ${LADING_HOOK_USER:+--user "$LADING_HOOK_USER"} ${LADING_HOOK_WORKDIR:+--workdir "$LADING_HOOK_WORKDIR"} \
    "$LADING_HOOK_IMAGE" "$@" </dev/null || rc=$?
  if [ "$rc" = 124 ]; then
    docker rm -f "$name" >/dev/null 2>&1 || true
    die "hook $LADING_HOOK timed out after ${LADING_HOOK_TIMEOUT}s (its container was removed)"
  fi
  [ "$rc" = 0 ] || die "hook $LADING_HOOK exited with status $rc"
}

# Swarm: the service's logs (all its tasks; docker prefixes each line with the task and node).
step_ops_swarm_logs() {
  log_flags
  if [ -n "${LADING_SERVICE:-}" ]; then
    svcs="${LADING_PROJECT}_$LADING_SERVICE"
  else
    svcs=$(docker service ls --format '{{.Name}}' --filter "label=com.docker.stack.namespace=$LADING_PROJECT")
  fi
  [ -n "$svcs" ] || die "stack $LADING_PROJECT has no services on $(hostname)"
  pids=""
  for s in $svcs; do
    # shellcheck disable=SC2086 # validated flags
    docker service logs --no-trunc $LOG_FLAGS "$s" 2>&1 &
    pids="$pids $!"
  done
  wait_readers "$pids"
}

# Swarm: the command in a running task container of the service on this node (--running), or in a new container of
# the service's image with its environment (read from the service spec here: it never leaves the host) on the
# stack's attachable networks.
step_ops_swarm_exec() {
  eval "$OPS_ARGS"
  t=-i
  [ "${LADING_TTY:-0}" != 1 ] || t=-it
  svc="${LADING_PROJECT}_$LADING_SERVICE"
  if [ "${LADING_RUNNING:-0}" = 1 ]; then
    id=$(docker ps -q --filter "label=com.docker.swarm.service.name=$svc" | head -n 1)
    [ -n "$id" ] || die "no running task of $svc on $(hostname) (the manager): exec --running reaches tasks on the node lading connects to"
    # shellcheck disable=SC2086 # -i or -it
    exec docker exec $t "$id" "$@"
  fi
  image=$(docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "$svc" 2>/dev/null) ||
    die "stack $LADING_PROJECT has no service $LADING_SERVICE on $(hostname)"
  envf=$(mktemp)
  docker service inspect --format '{{range .Spec.TaskTemplate.ContainerSpec.Env}}{{println .}}{{end}}' "$svc" >"$envf" || {
    rm -f "$envf"
    die "cannot read the environment of service $svc on $(hostname)"
  }
  net=""
  for n in $(docker service inspect --format '{{range .Spec.TaskTemplate.Networks}}{{.Target}} {{end}}' "$svc"); do
    if [ "$(docker network inspect --format '{{.Attachable}}' "$n" 2>/dev/null)" = true ]; then net="--network $n"; fi
  done
  rc=0
  # shellcheck disable=SC2086 # -i/-it and --network <id>
  docker run --rm $t --env-file "$envf" $net --label "io.lading.exec=$LADING_PROJECT" "$image" "$@" || rc=$?
  rm -f "$envf"
  exit "$rc"
}

lading_ops() {
  if [ -n "${LADING_DOCKER_HOST:-}" ]; then export DOCKER_HOST="$LADING_DOCKER_HOST"; fi
  for s in "$@"; do
    case "$s" in
      ops_status | ops_swarm_status | ops_lock_read | ops_lock_release | ops_prune_facts | ops_prune_apply | ops_logs | ops_exec | ops_hook | ops_swarm_hook | ops_swarm_logs | ops_swarm_exec) "step_$s" ;;
      *) lading_one "$s" ;;
    esac
  done
}
