#!/usr/bin/env bash
# A throw-away OCI registry: Debian's docker-registry (CNCF distribution 2.8.2) on 127.0.0.1, on a
# free port, storing into a directory of its own. The one place that starts and stops it: the
# tests (test/helpers/registry.ts), the benchmarks, the demo and the Slurm lab all call this.
#
#   scripts/registry.sh up DIR     start; prints HOST:PORT on stdout (e.g. 127.0.0.1:40123) once
#                                  /v2/ answers. DIR (created if missing) receives config.yml,
#                                  storage/, registry.log, registry.pid and address.
#   scripts/registry.sh down DIR   stop the registry whose PID is in DIR/registry.pid (SIGTERM,
#                                  then SIGKILL after 5 s); DIR itself is left for the caller.
#   scripts/registry.sh addr DIR   print the HOST:PORT of a running registry.
#
# Environment: REGISTRY_BIN (default /usr/bin/docker-registry), REGISTRY_HOST (default
# 127.0.0.1; another address only for a lab whose nodes reach it over a private network),
# REGISTRY_OWNER_PID (optional: a watcher stops the registry, by its PID, once that process is
# gone, so a test run killed before its clean-up leaves nothing running), REGISTRY_TLS_CERT and
# REGISTRY_TLS_KEY (optional, both: serve HTTPS with this certificate and key, PEM; the
# readiness check trusts the certificate itself), REGISTRY_HTPASSWD (optional: an htpasswd file
# of bcrypt entries, `htpasswd -nbB USER PASS`; the registry then wants basic authentication),
# REGISTRY_TOKEN_REALM, REGISTRY_TOKEN_SERVICE, REGISTRY_TOKEN_ISSUER, REGISTRY_TOKEN_ROOTCERTS
# (optional, all four: the registry wants bearer tokens from that realm, JWTs it verifies against
# the certificates in REGISTRY_TOKEN_ROOTCERTS, PEM).
# The storage is plain files: blobs under storage/docker/registry/v2/blobs/sha256/<2>/<hex>/data,
# which is where a test corrupts one. Loopback only.
set -euo pipefail

BIN=${REGISTRY_BIN:-/usr/bin/docker-registry}
HOST=${REGISTRY_HOST:-127.0.0.1}

die() {
  echo "registry.sh: $*" >&2
  exit 1
}

free_port() {
  # The kernel picks a free port; a race with another process is caught by the retry below.
  node -e 'const s=require("net").createServer().listen(0,process.argv[1],()=>{process.stdout.write(String(s.address().port));s.close();})' "$HOST"
}

up() {
  local dir=$1
  [[ -x $BIN ]] || die "$BIN not found (Debian package docker-registry; scripts/install-deps.sh installs it)"
  mkdir -p "$dir/storage"
  dir=$(cd "$dir" && pwd)
  if [[ -f $dir/registry.pid ]] && kill -0 "$(cat "$dir/registry.pid")" 2>/dev/null; then
    die "a registry is already running from $dir (pid $(cat "$dir/registry.pid")); run: $0 down $dir"
  fi
  local attempt port pid scheme=http check=()
  if [[ -n ${REGISTRY_TLS_CERT:-} || -n ${REGISTRY_TLS_KEY:-} ]]; then
    [[ -f ${REGISTRY_TLS_CERT:-} && -f ${REGISTRY_TLS_KEY:-} ]] || die "REGISTRY_TLS_CERT and REGISTRY_TLS_KEY must both name files"
    scheme=https
    check=(--cacert "$REGISTRY_TLS_CERT")
  fi
  [[ -z ${REGISTRY_HTPASSWD:-} || -f $REGISTRY_HTPASSWD ]] || die "REGISTRY_HTPASSWD=$REGISTRY_HTPASSWD is not a file"
  if [[ -n ${REGISTRY_TOKEN_REALM:-} ]]; then
    [[ -n ${REGISTRY_TOKEN_SERVICE:-} && -n ${REGISTRY_TOKEN_ISSUER:-} && -f ${REGISTRY_TOKEN_ROOTCERTS:-} ]] ||
      die "REGISTRY_TOKEN_REALM needs REGISTRY_TOKEN_SERVICE, REGISTRY_TOKEN_ISSUER and REGISTRY_TOKEN_ROOTCERTS (a file)"
    [[ -z ${REGISTRY_HTPASSWD:-} ]] || die "REGISTRY_HTPASSWD and REGISTRY_TOKEN_REALM exclude each other"
  fi
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $HOST:$port
  secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
EOF
    if [[ $scheme == https ]]; then
      printf '  tls:\n    certificate: %s\n    key: %s\n' "$REGISTRY_TLS_CERT" "$REGISTRY_TLS_KEY" >>"$dir/config.yml"
    fi
    if [[ -n ${REGISTRY_HTPASSWD:-} ]]; then
      printf 'auth:\n  htpasswd:\n    realm: intoto-test\n    path: %s\n' "$REGISTRY_HTPASSWD" >>"$dir/config.yml"
    fi
    if [[ -n ${REGISTRY_TOKEN_REALM:-} ]]; then
      printf 'auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n' \
        "$REGISTRY_TOKEN_REALM" "$REGISTRY_TOKEN_SERVICE" "$REGISTRY_TOKEN_ISSUER" "$REGISTRY_TOKEN_ROOTCERTS" >>"$dir/config.yml"
    fi
    # setsid: its own session, so a terminal's signals do not reach it; stopped by PID only.
    setsid "$BIN" serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/registry.pid"
    local i code
    for i in $(seq 1 100); do
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      # Up once /v2/ answers: 200, or 401 when it wants credentials.
      code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 1 "${check[@]}" "$scheme://$HOST:$port/v2/" 2>/dev/null || true)
      if [[ $code == 200 || $code == 401 ]]; then
        echo "$HOST:$port" >"$dir/address"
        if [[ -n ${REGISTRY_OWNER_PID:-} ]]; then
          setsid bash -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done; kill -TERM "$2" 2>/dev/null' \
            watch "$REGISTRY_OWNER_PID" "$pid" >/dev/null 2>&1 </dev/null &
        fi
        echo "$HOST:$port"
        return 0
      fi
      sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$dir/registry.pid"
    echo "registry.sh: attempt $attempt on port $port failed: $(tail -n 3 "$dir/registry.log" | tr '\n' ' ')" >&2
  done
  die "docker-registry did not start (see $dir/registry.log)"
}

down() {
  local dir=$1 pid i
  [[ -f $dir/registry.pid ]] || return 0
  pid=$(cat "$dir/registry.pid")
  if kill -TERM "$pid" 2>/dev/null; then
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/registry.pid" "$dir/address"
}

case "${1:-}" in
  up) [[ $# -eq 2 ]] || die "usage: $0 up DIR"; up "$2" ;;
  down) [[ $# -eq 2 ]] || die "usage: $0 down DIR"; down "$2" ;;
  addr) [[ $# -eq 2 ]] || die "usage: $0 addr DIR"; cat "$2/address" ;;
  *) die "usage: $0 up|down|addr DIR" ;;
esac
