#!/usr/bin/env bash
# Runs the whole test suite of pingora-go on a fresh Debian machine: installs the packages the
# tests use (idempotent; needs root or sudo for apt-get), vets, runs every test with the race
# detector, fuzzes every fuzz target for a few seconds, and tests the benchmark modules.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-4s}
packages=(nginx-light haproxy wrk curl nghttp2-client ca-certificates redis-server)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "== installing: ${missing[*]}"
  # Keep the packages' scripts from starting system services (redis-server, nginx): tests
  # start their own servers on free loopback ports.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    trap '$sudo rm -f "$policy"' EXIT
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

export PATH="$PATH:/usr/local/go/bin:/usr/sbin"
go version

# h2spec checks HTTP/2 conformance in e2e/h2 (which skips without it); installed once.
if ! command -v h2spec >/dev/null && [ ! -x "$(go env GOPATH)/bin/h2spec" ]; then
  echo "== installing h2spec"
  go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 -timeout 20m ./...

echo "== fuzzing each target for $FUZZTIME"
grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./bench/' | sort | while read -r f; do
  dir=$(dirname "$f")
  for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "-- $dir $name"
    go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$dir" >/dev/null
  done
done

echo "== benchmark modules (tests and a short run of each benchmark)"
for m in bench bench/cache; do
  if [ -f "$m/go.mod" ]; then
    (cd "$m" && go vet ./... && go test -count=1 -run . -bench . -benchtime 1x ./...) >/dev/null
    echo "-- $m ok"
  fi
done
echo "== all tests passed"
