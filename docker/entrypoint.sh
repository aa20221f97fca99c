#!/bin/sh
# The container's entrypoint (README, "Running in a container"):
#
#  1. REGISTRY_<KEY>_FILE=PATH sets REGISTRY_<KEY> to the file's content, without its trailing
#     newlines (Docker and compose secrets), e.g. REGISTRY_ADMIN_PASSWORD_FILE=/run/secrets/x.
#     The file is read before privileges are dropped, so it may be root's with mode 0600.
#  2. Started as root (the image's default): whatever under the storage root is not node's
#     (uid 1000) yet is made node's (a fresh root-owned bind mount, files a root `docker exec`
#     left), then the command runs as node with no capabilities and no way to gain any.
#     Started as another user (`--user`): only checks that the storage root is writable.
#  3. `serve`, `user`, `gc`, `fsck`, `config`, `migrate`: the registry command line, e.g.
#     `docker compose run --rm registry user list`.
# It also writes the address the server listens on for the HEALTHCHECK (healthcheck.sh).
set -eu

case "${1:-}" in
  serve|user|gc|fsck|config|migrate) set -- node /app/dist/src/cli/main.js "$@" ;;
esac

# 1. REGISTRY_*_FILE. The loader refuses unknown REGISTRY_* variables, so each is unset once read.
for var in $(env | sed -n 's/^\(REGISTRY_[A-Z0-9_]*_FILE\)=.*/\1/p'); do
  key=${var%_FILE}
  file=$(printenv "$var")
  if printenv "$key" >/dev/null; then
    echo "registry: both $key and $var are set: keep one" >&2
    exit 2
  fi
  if [ ! -f "$file" ] || [ ! -r "$file" ]; then
    echo "registry: $var: cannot read $file" >&2
    exit 2
  fi
  value=$(cat "$file")
  export "$key=$value"
  unset "$var"
done

# The effective settings (file < environment, as the server reads them): storage root and
# listen address. A bad configuration stops here with the loader's message (exit 2).
settings=$(node --input-type=module -e '
  import { loadConfig, ConfigError } from "/app/dist/src/config/load.js";
  try {
    const c = loadConfig();
    process.stdout.write(`${c.host} ${c.port}\n${c.storage_root}\n`);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`registry: ${err.message}\n`);
    process.exit(2);
  }
') || exit $?
listen=$(printf '%s\n' "$settings" | sed -n 1p)
storage=$(printf '%s\n' "$settings" | sed -n 2p)
printf '%s\n' "$listen" >/tmp/registry-listen 2>/dev/null || true

# 2. Storage ownership, then node.
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$storage"
  find "$storage" -xdev \( ! -user node -o ! -group node \) -exec chown -h node:node {} +
  exec setpriv --reuid=node --regid=node --init-groups --inh-caps=-all --no-new-privs -- "$@"
fi
if ! mkdir -p "$storage" 2>/dev/null || [ ! -w "$storage" ]; then
  echo "registry: the storage root $storage is not writable by uid $(id -u)." >&2
  echo "  Make it that user's (chown -R $(id -u):$(id -g) on the host directory or volume)," >&2
  echo "  or start the container as root (the image's default): it then makes the storage root" >&2
  echo "  node's (uid 1000) and runs the registry as node." >&2
  exit 1
fi
exec "$@"
