#!/usr/bin/env bash
# deploy/load-demo.sh - loads the whole Thuận An demo into running services with pxctl, in the
# order the campaign itself runs:
#   1. the roster's units, volunteers, campaign and waves, and the activation service's targets
#      (pxctl import: the roster's files in one all-or-nothing import, then the targets), so that
#   2. the first wave's plan (pxctl call roster PlanWave) spreads volunteers by each ward's
#      distance to its target;
#   3. a first weekend of activation events (pxctl demo events), naming the volunteers that plan
#      put on duty.
# deploy/quickstart.sh runs it after starting the services. Running it again changes nothing:
# the import answers "unchanged", PlanWave only tops the wave up, every event is a duplicate.
#
# Environment: PX_ROSTER_ENDPOINTS (default tcp://127.0.0.1:7101), PX_ACTIVATION_ENDPOINTS
# (default tcp://127.0.0.1:7102; empty: the roster alone, planned evenly), PX_DEMO_DATA
# (default ../shared/data/thuan-an beside this checkout), PX_DEMO_SEED (default 20230729),
# PX_DEMO_CITIZENS (default 3000), PX_PXCTL_BIN (default build/services/pxctl/pxctl).
set -euo pipefail

ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
DATA="${PX_DEMO_DATA:-$ROOT/../shared/data/thuan-an}"
ROSTER="${PX_ROSTER_ENDPOINTS:-tcp://127.0.0.1:7101}"
ACTIVATION="${PX_ACTIVATION_ENDPOINTS-tcp://127.0.0.1:7102}"
PXCTL="${PX_PXCTL_BIN:-$ROOT/build/services/pxctl/pxctl}"

if [ ! -x "$PXCTL" ]; then
    echo "load-demo: $PXCTL is not built (cmake --build build --target pxctl)" >&2
    exit 1
fi
if [ ! -d "$DATA" ]; then
    echo "load-demo: no demo data at $DATA (set PX_DEMO_DATA)" >&2
    exit 1
fi
export PX_ROSTER_ENDPOINTS="$ROSTER" PX_ACTIVATION_ENDPOINTS="$ACTIVATION"
export PX_AS="${PX_AS:-load-demo}"

# The services may have been started a moment ago (and be migrating): wait until they answer.
wait_for() { # service
    local _
    for _ in $(seq 1 60); do
        if "$PXCTL" call "$1" Check >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    echo "load-demo: the $1 service does not answer at its endpoints" >&2
    return 1
}
wait_for roster
files=(units "$DATA/units.csv" volunteers "$DATA/volunteers.csv"
    campaigns "$DATA/campaign.csv" waves "$DATA/waves.csv")
if [ -n "$ACTIVATION" ]; then
    wait_for activation
    files+=(targets "$DATA/targets.csv")
fi

echo "load-demo: the roster's data and the targets (pxctl import)" >&2
"$PXCTL" import "${files[@]}"

# The earliest wave of the file (campaign,day,capacity; the demo's fields are never quoted).
first="$(tail -n +2 "$DATA/waves.csv" | tr -d '\r' | sort -t, -k2,2 -k1,1 | head -n 1)"
campaign="${first%%,*}"
day="$(cut -d, -f2 <<<"$first")"
echo "load-demo: planning the first wave ($campaign $day)" >&2
"$PXCTL" call roster PlanWave "{\"campaign_id\": \"$campaign\", \"day\": \"$day\"}" >/dev/null

if [ -n "$ACTIVATION" ]; then
    echo "load-demo: a first weekend of activation events (pxctl demo events)" >&2
    "$PXCTL" demo events --data "$DATA" --seed "${PX_DEMO_SEED:-20230729}" \
        --citizens "${PX_DEMO_CITIZENS:-3000}" --timeout-ms 60000
fi
