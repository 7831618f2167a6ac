#!/usr/bin/env bash
# tests/bench/run.sh NAME [ARGS...] - builds and runs benchmark NAME (tests/bench/NAME/run.sh).
#
# Configures the whole project into build-bench/ (Release, PX_BENCH=ON; PX_BENCH_BUILD_DIR
# overrides the place) and hands over to the benchmark's own runner, which builds the targets
# it needs and prints its figures. ARGS go to that runner (`run.sh rpc --help`).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

usage() {
    echo "usage: $0 NAME [ARGS...]" >&2
    echo "benchmarks:" >&2
    for f in "$root"/tests/bench/*/run.sh; do
        [[ -e $f ]] && echo "  $(basename "$(dirname "$f")")" >&2
    done
    exit 2
}

[[ $# -ge 1 ]] || usage
name=$1
shift
[[ $name =~ ^[a-z0-9_-]+$ && -x $root/tests/bench/$name/run.sh ]] || usage

# What the benchmarks need beyond the project's own packages: gRPC C++ (the rpc baseline) and
# wrk (the gateway's load generator).
# shellcheck source=../../deploy/lib/packages.sh
source "$root/deploy/lib/packages.sh"
px_install_packages "${PX_DEBIAN_PACKAGES[@]}" libgrpc++-dev protobuf-compiler-grpc wrk

build=${PX_BENCH_BUILD_DIR:-$root/build-bench}
mkdir -p "$build"
echo "bench: configuring $build (Release, PX_BENCH=ON)" >&2
if ! cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPX_BENCH=ON \
        >"$build/configure.log" 2>&1; then
    tail -n 30 "$build/configure.log" >&2
    echo "bench: configuring failed (whole log: $build/configure.log)" >&2
    exit 1
fi

export PX_BENCH_BUILD_DIR=$build
exec "$root/tests/bench/$name/run.sh" "$@"
