#!/bin/bash
# The image's HEALTHCHECK: GET /_status (metadata readable, storage writable) on the address
# the server listens on, as the entrypoint resolved it from the configuration file and
# REGISTRY_* (so REGISTRY_PORT=5001 is followed); healthy only on 200. Bash's /dev/tcp: no
# curl in the slim image, and no Node.js process started every interval.
read -r host port </tmp/registry-listen 2>/dev/null || { host=0.0.0.0; port=${REGISTRY_PORT:-5000}; }
case "$host" in 0.0.0.0|::|'[::]') host=127.0.0.1 ;; esac
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET /_status HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$host" "$port" >&3
IFS= read -r -t 5 status <&3 || { echo "no answer on $host:$port"; exit 1; }
case "$status" in
  HTTP/1.?\ 200\ *) exit 0 ;;
  *) echo "$status"; tail -n 1 <&3; exit 1 ;;
esac
