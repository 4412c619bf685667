# lading's swarm steps (POSIX sh), sent after host.sh (whose lock, mkrelease, switch, history, prune, history_read
# and release_manifest steps they share) and run on a swarm manager as `lading_swarm <step>...`. Data comes in env
# only. LADING_DOCKER_HOST, when set, is the manager's docker endpoint (a rootless socket, say).

# --- facts: this docker is a reachable swarm manager; current release and releases on disk.
step_swarm_facts() {
  command -v docker >/dev/null 2>&1 || die "docker is not installed on $(hostname)"
  # docker info prints its template even when the daemon is unreachable (" false"): ask the server first, and
  # report its own error line.
  err=$(docker version --format '{{.Server.Version}}' 2>&1 >/dev/null) ||
    die "docker does not answer on $(hostname): $(printf '%s' "${err:-no answer}" | head -n 1) (DOCKER_HOST=${DOCKER_HOST:-the default socket})"
  st=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null)
  case "$st" in
    "active true") ;;
    "active false") die "$(hostname) is a swarm worker: deploy through a manager (docker node ls on one lists them)" ;;
    inactive*) die "$(hostname) is not part of a swarm (docker info: Swarm: inactive): run docker swarm init there, or point at a manager" ;;
    *) die "$(hostname) is not a usable swarm manager (docker info: Swarm: ${st%% *}): check docker info there, or point at a manager" ;;
  esac
  d=$(project_dir)
  printf 'compose=swarm\n'
  cur=$(readlink "$d/current" 2>/dev/null || true)
  printf 'current=%s\n' "${cur##*/}"
  if [ -d "$d/releases" ]; then
    for r in "$d"/releases/*; do [ -d "$r" ] && printf 'release=%s\n' "${r##*/}"; done
  fi
  return 0
}

stack_services() {
  docker service ls -q --filter "label=com.docker.stack.namespace=$LADING_PROJECT"
}

# --- each service's name and version index, before a deploy changes them.
step_swarm_index() {
  ids=$(stack_services)
  [ -n "$ids" ] || return 0
  # shellcheck disable=SC2086 # a list of service ids
  docker service inspect --format '{{.Spec.Name}} {{.Version.Index}}' $ids
}

# --- deploy release $LADING_RELEASE: short-lived logins in a throwaway docker config, passed to the swarm with
# --with-registry-auth, logged out and removed after.
step_swarm_deploy() {
  rel="$(project_dir)/releases/$LADING_RELEASE"
  [ -f "$rel/.lading-files" ] || die "release $LADING_RELEASE has no stack files on $(hostname)"
  login_config
  # shellcheck disable=SC2154 # cfg is set by login_config (host.sh)
  registry_logins "$cfg"
  files=""
  while IFS= read -r f; do [ -z "$f" ] || files="$files -c $rel/$f"; done <"$rel/.lading-files"
  cd "$rel" || die "cannot enter $rel on $(hostname)"
  # shellcheck disable=SC2086 # lading's own file names: no spaces
  # registry-less images were loaded on the nodes and are pinned by image ID: nothing to resolve in a registry
  if ! said=$(docker --config "$cfg" stack deploy --with-registry-auth --resolve-image "${LADING_RESOLVE_IMAGE:-always}" --prune $files "$LADING_PROJECT" 2>&1); then
    die "docker stack deploy failed on $(hostname): $said"
  fi
  printf '%s\n' "$said" | grep -v -e '^Since --detach' -e '^In a future release' || true
  registry_logouts "$cfg"
}

# --- the stack as the manager sees it: `docker service inspect` JSON, a `---` line, one JSON line per task.
step_swarm_state() {
  ids=$(stack_services)
  if [ -z "$ids" ]; then
    printf '[]\n---\n'
    return 0
  fi
  # shellcheck disable=SC2086 # a list of service ids
  docker service inspect $ids
  printf -- '---\n'
  # shellcheck disable=SC2086
  docker service ps --no-trunc --format '{{json .}}' $ids
}

# --- the nodes that can run tasks: hostname, one per line (registry-less images must be loaded on each).
step_swarm_nodes() {
  docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}}' | awk '$2 == "Ready" && $3 == "Active" { print $1 }'
}

# --- the last lines each failed task logged: LADING_TASKS (task ids, space separated), LADING_LOG_LINES.
step_swarm_task_logs() {
  n=${LADING_LOG_LINES:-5}
  for t in $LADING_TASKS; do
    case "$t" in *[!a-z0-9]*) continue ;; esac
    printf -- '--- %s\n' "$t"
    docker service logs --raw --no-trunc --tail "$n" "$t" 2>&1 | tail -n "$n" || true
  done
}

lading_swarm() {
  if [ -n "${LADING_DOCKER_HOST:-}" ]; then export DOCKER_HOST="$LADING_DOCKER_HOST"; fi
  for s in "$@"; do
    case "$s" in
      swarm_facts | swarm_index | swarm_deploy | swarm_state | swarm_nodes | swarm_task_logs) "step_$s" ;;
      *) lading_one "$s" ;;
    esac
  done
}
