#!/usr/bin/env bash
# Installs what lading's tests and examples need on a fresh Debian machine: the Debian packages for the real
# services (dockerd, registry, sshd, docker-compose, busybox, skopeo, compressors) and the npm dependencies.
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have dockerd || need+=(docker.io)
have docker-compose || need+=(docker-compose)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
have ssh || need+=(openssh-client)
have ssh-keygen || need+=(openssh-client)
case "$(ldd /bin/busybox 2>&1 || true)" in *"not a dynamic"*) ;; *) need+=(busybox-static) ;; esac
have skopeo || need+=(skopeo)
have zstd || need+=(zstd)
have xz || need+=(xz-utils)
have curl || need+=(curl)
have htpasswd || need+=(apache2-utils)
have git || need+=(git)
have shellcheck || need+=(shellcheck)
[ -x /usr/bin/caddy ] || need+=(caddy) # the zero-downtime tests build a FROM scratch proxy image from it
have jq || need+=(jq) # the reusable workflows' steps use jq (as GitHub's runners have it)
[ -x /usr/bin/aws ] || need+=(awscli) # the seed's host flow: a host with only the aws CLI and docker
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# npm ci when node_modules is missing or was installed from another lock file.
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.lading-lock 2>/dev/null)" != "$lock_hash" ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" >node_modules/.lading-lock
fi
