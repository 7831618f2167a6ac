#!/usr/bin/env bash
# deploy/load-demo.sh - loads the whole Thuận An demo into running services, in the order the
# campaign itself runs:
#   1. the roster's units, volunteers, campaign and waves (px-roster-import);
#   2. the activation service's targets (px-activation-demo --targets-only), so that
#   3. the first wave's plan (PlanWave) spreads volunteers by each ward's distance to target;
#   4. a first weekend of activation events (deploy/load-activation-demo.sh), naming the
#      volunteers that plan put on duty.
# deploy/quickstart.sh runs it after starting the services. Running it again changes nothing:
# the upserts answer "unchanged", PlanWave only tops the wave up, every event is a duplicate.
#
# Environment: PX_ROSTER_ENDPOINTS (default tcp://127.0.0.1:7101), PX_ACTIVATION_ENDPOINTS
# (default tcp://127.0.0.1:7102; empty: the roster alone, planned evenly), PX_DEMO_DATA
# (default ../shared/data/thuan-an beside this checkout), PX_IMPORT_BIN (default
# build/services/roster/px-roster-import); load-activation-demo.sh reads the rest.
set -euo pipefail

ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
DATA="${PX_DEMO_DATA:-$ROOT/../shared/data/thuan-an}"
ENDPOINT="${PX_ROSTER_ENDPOINTS:-tcp://127.0.0.1:7101}"
ENDPOINT="${ENDPOINT%%,*}" # the importer talks to one roster
ACTIVATION="${PX_ACTIVATION_ENDPOINTS-tcp://127.0.0.1:7102}"
IMPORT="${PX_IMPORT_BIN:-$ROOT/build/services/roster/px-roster-import}"

if [ ! -x "$IMPORT" ]; then
    echo "load-demo: $IMPORT is not built (cmake --build build --target px-roster-import)" >&2
    exit 1
fi
if [ ! -d "$DATA" ]; then
    echo "load-demo: no demo data at $DATA (set PX_DEMO_DATA)" >&2
    exit 1
fi

# CURVE: with PX_CURVE_KEYS_DIR (and PX_CURVE_ALLOW) each loader calls with its own key pair
# from that directory, under the name it calls as (px-roster-import, px-activation-demo), as
# the services take a caller to be the name its key is listed under.
curve_key() {
    if [ -n "${PX_CURVE_KEYS_DIR:-}" ]; then
        echo "$PX_CURVE_KEYS_DIR/$1_secret"
    else
        echo "${PX_CURVE_SECRET_KEY:-}"
    fi
}
IMPORT_KEY="$(curve_key px-roster-import)"
DEMO_KEY="$(curve_key px-activation-demo)"

# The services may have been started a moment ago: the first calls wait for them to connect
# (and are retried, the upserts being idempotent).
echo "load-demo: roster data" >&2
PX_CURVE_SECRET_KEY="$IMPORT_KEY" "$IMPORT" --endpoint "$ENDPOINT" --dir "$DATA"
if [ -n "$ACTIVATION" ]; then
    echo "load-demo: activation targets" >&2
    PX_ACTIVATION_ENDPOINTS="$ACTIVATION" PX_ROSTER_ENDPOINTS="$ENDPOINT" \
        PX_CURVE_SECRET_KEY="$DEMO_KEY" "$ROOT/deploy/load-activation-demo.sh" --targets-only
fi
echo "load-demo: planning the first wave" >&2
PX_CURVE_SECRET_KEY="$IMPORT_KEY" "$IMPORT" --endpoint "$ENDPOINT" --dir "$DATA" --plan-first-wave
if [ -n "$ACTIVATION" ]; then
    echo "load-demo: a first weekend of activation events" >&2
    PX_ACTIVATION_ENDPOINTS="$ACTIVATION" PX_ROSTER_ENDPOINTS="$ENDPOINT" \
        PX_CURVE_SECRET_KEY="$DEMO_KEY" "$ROOT/deploy/load-activation-demo.sh"
fi
