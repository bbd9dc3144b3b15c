#!/usr/bin/env bash
# Runs the whole test suite of pingora-go on a fresh Debian machine: installs the packages the
# tests use (idempotent; needs root or sudo for apt-get), vets, runs every test with the race
# detector, fuzzes every fuzz target for a few seconds, and tests the benchmark modules.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-4s}
packages=(nginx-light haproxy wrk curl nghttp2-client ca-certificates redis-server chromium)
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

# Socket reads and writes take raw system calls in normal builds and package syscall's in race
# builds (internal/rawio): the packages on that path run once more without the detector.
echo "== go test, without the race detector, of the raw socket I/O path"
go test -count=1 -timeout 10m ./internal/rawio ./protocols/h1 ./connector ./proxy ./e2e/h2 ./e2e/ws

echo "== fuzzing each target for $FUZZTIME"
# fuzz DIR NAME runs one target; on failure it prints the fuzzer's output and the failing
# input it wrote under testdata/fuzz, and returns 1 (2 when the fuzzer failed without an
# input: its coordinator or a worker died, which an overloaded machine can cause).
fuzz() {
  local log rc=0 inputs
  log=$(mktemp)
  go test -run='^$' -fuzz="^$2\$" -fuzztime="$FUZZTIME" "$1" >"$log" 2>&1 || rc=1
  if [ $rc -ne 0 ]; then
    tail -n 60 "$log"
    inputs=$(git ls-files --others "$1/testdata/fuzz/$2" 2>/dev/null || true)
    for input in $inputs; do
      echo "== $input"; head -c 4000 "$input"; echo
    done
    [ -z "$inputs" ] && rc=2
  fi
  rm -f "$log"
  return $rc
}
grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./bench/' | sort | while read -r f; do
  dir=$(dirname "$f")
  for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$f" | sed 's/^func //'); do
    echo "-- $dir $name"
    rc=0
    fuzz "$dir" "$name" || rc=$?
    if [ $rc -eq 2 ]; then
      echo "-- the fuzzer failed without a failing input; once more"
      rc=0
      fuzz "$dir" "$name" || rc=$?
    fi
    [ $rc -eq 0 ] || exit 1
  done
done

echo "== benchmark modules (tests and a short run of each benchmark)"
for m in bench bench/cache; do
  if [ -f "$m/go.mod" ]; then
    log=$(mktemp)
    if ! (cd "$m" && go vet ./... && go test -count=1 -run . -bench . -benchtime 1x ./...) >"$log" 2>&1; then
      tail -n 80 "$log"
      exit 1
    fi
    rm -f "$log"
    echo "-- $m ok"
  fi
done
echo "== all tests passed"
