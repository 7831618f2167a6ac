#!/usr/bin/env bash
# deploy/load-demo.sh - loads the Thuận An demo campaign into a running roster service and plans
# its first wave. deploy/quickstart.sh runs it after starting the services; running it again
# changes nothing (the upserts answer "unchanged", PlanWave only tops the wave up).
#
# Environment: PX_ROSTER_ENDPOINTS (default tcp://127.0.0.1:7101), PX_DEMO_DATA (default
# ../shared/data/thuan-an beside this checkout), PX_IMPORT_BIN (default build/services/roster/
# px-roster-import).
set -euo pipefail

ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
DATA="${PX_DEMO_DATA:-$ROOT/../shared/data/thuan-an}"
ENDPOINT="${PX_ROSTER_ENDPOINTS:-tcp://127.0.0.1:7101}"
ENDPOINT="${ENDPOINT%%,*}" # the importer talks to one roster
IMPORT="${PX_IMPORT_BIN:-$ROOT/build/services/roster/px-roster-import}"

if [ ! -x "$IMPORT" ]; then
    echo "load-demo: $IMPORT is not built (cmake --build build --target px-roster-import)" >&2
    exit 1
fi
if [ ! -d "$DATA" ]; then
    echo "load-demo: no demo data at $DATA (set PX_DEMO_DATA)" >&2
    exit 1
fi

# The roster may have been started a moment ago: the importer's first call waits for it to
# connect (and retries, the upserts being idempotent).
"$IMPORT" --endpoint "$ENDPOINT" --dir "$DATA" --plan-first-wave
