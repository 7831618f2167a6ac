#!/usr/bin/env bash
# deploy/load-activation-demo.sh - loads the Thuận An demo targets into a running activation
# service and records a plausible first weekend of demo events (px-activation-demo: generated
# from a fixed seed, so running it again records nothing new - every event is a duplicate).
# deploy/load-demo.sh runs it twice: with --targets-only before the roster plans the first
# wave, and in full after, so that the volunteers of that wave's assignments can be named.
# Arguments are passed on to px-activation-demo.
#
# Environment: PX_ACTIVATION_ENDPOINTS (default tcp://127.0.0.1:7102), PX_ROSTER_ENDPOINTS
# (default tcp://127.0.0.1:7101; empty: no volunteers), PX_DEMO_DATA (default
# ../shared/data/thuan-an beside this checkout), PX_DEMO_SEED (default 20230729),
# PX_DEMO_CITIZENS (default 3000), PX_ACTIVATION_DEMO_BIN (default
# build/services/activation/px-activation-demo).
set -euo pipefail

ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
DATA="${PX_DEMO_DATA:-$ROOT/../shared/data/thuan-an}"
ENDPOINT="${PX_ACTIVATION_ENDPOINTS:-tcp://127.0.0.1:7102}"
ROSTER="${PX_ROSTER_ENDPOINTS-tcp://127.0.0.1:7101}"
DEMO="${PX_ACTIVATION_DEMO_BIN:-$ROOT/build/services/activation/px-activation-demo}"

if [ ! -x "$DEMO" ]; then
    echo "load-activation-demo: $DEMO is not built" \
        "(cmake --build build --target px-activation-demo)" >&2
    exit 1
fi
if [ ! -d "$DATA" ]; then
    echo "load-activation-demo: no demo data at $DATA (set PX_DEMO_DATA)" >&2
    exit 1
fi

# The service may have been started a moment ago: the demo's calls wait for it to connect and
# are retried (SetTargets and RecordEvents are idempotent).
"$DEMO" --endpoint "$ENDPOINT" --roster-endpoint "$ROSTER" --data "$DATA" \
    --seed "${PX_DEMO_SEED:-20230729}" --citizens "${PX_DEMO_CITIZENS:-3000}" "$@"
