#!/usr/bin/env bash
# End-to-end collection benchmark with separate processes, as in production: neonsim serves a
# fleet over HTTP, `neonmeter collect --last 72h` runs once per org (cold: empty database, then
# warm: the same window again), each under /usr/bin/time for wall time and peak RSS.
#
# Usage: scripts/bench-collect.sh [PROJECTS] [RATE_PER_MIN]
#   PROJECTS      fleet size (default 10000)
#   RATE_PER_MIN  consumption rate limit of both the simulator and the client (default 0:
#                 unthrottled); with a rate, only the launch org is collected and its wall time
#                 is compared with the floor ⌈N/100⌉ ÷ rate minutes.
# Needs the ClickHouse of `make clickhouse` (CH_PORT, default 19000) and `make build`.
set -euo pipefail
N=${1:-10000}
RATE=${2:-0}
CH_PORT=${CH_PORT:-19000}
SIM_ADDR=${SIM_ADDR:-127.0.0.1:18091}
DB=neonmeter_bench
KEY=bench-key

clickhouse-client --port "$CH_PORT" -q "DROP DATABASE IF EXISTS $DB"
bin/neonsim --projects "$N" --seed 7 --addr "$SIM_ADDR" --api-key "$KEY" \
	--consumption-rate "$RATE" --consumption-burst 1 >/tmp/neonmeter-bench-sim.log 2>&1 &
SIM_PID=$!
trap 'kill $SIM_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "base URL" /tmp/neonmeter-bench-sim.log && break; sleep 0.1; done
if ! kill -0 $SIM_PID 2>/dev/null || ! grep -q "base URL" /tmp/neonmeter-bench-sim.log; then
	echo "neonsim did not start:" >&2
	cat /tmp/neonmeter-bench-sim.log >&2
	exit 1
fi

export NEONMETER_NEON_API_URL="http://$SIM_ADDR/api/v2" NEONMETER_NEON_API_KEY=$KEY
export NEONMETER_CLICKHOUSE_ADDR="127.0.0.1:$CH_PORT" NEONMETER_CLICKHOUSE_DATABASE=$DB
export NEONMETER_LOG_LEVEL=warn
if [ "$RATE" != 0 ]; then
	export NEONMETER_NEON_CONSUMPTION_RATE=$RATE NEONMETER_NEON_CONSUMPTION_BURST=1
else
	export NEONMETER_NEON_CONSUMPTION_RATE=1000000 NEONMETER_NEON_CONSUMPTION_BURST=100
fi
bin/neonmeter migrate >/dev/null

field() { awk -v k="$1" 'index($0, k) == 1 { print $NF }' "$2"; }

collect() { # org endpoint pass
	local out=/tmp/neonmeter-bench-$1-$3.txt
	NEONMETER_NEON_ORG_ID=$1 NEONMETER_NEON_CONSUMPTION_API=$2 \
		/usr/bin/time -f "maxrss_kb %M" bin/neonmeter collect --last 72h >"$out" 2>&1
	printf "%-16s %-6s %-5s %9s values %9s rows %7s requests %9s  %s MB peak RSS\n" "$1" "$2" "$3" \
		"$(field "values fetched" "$out")" "$(field "rows written" "$out")" "$(field "api requests" "$out")" \
		"$(field duration "$out")" "$(($(field maxrss_kb "$out") / 1024))"
}

echo "fleet: $N projects, consumption rate ${RATE:-0}/min (0 = unthrottled)"
if [ "$RATE" != 0 ]; then
	collect org-sim-launch v2 cold
	projects=$(field projects /tmp/neonmeter-bench-org-sim-launch-cold.txt)
	echo "floor: ceil($projects/100) / $RATE min = $(awk -v p="$projects" -v r="$RATE" 'BEGIN { printf "%.1f s", int((p + 99) / 100) / r * 60 }')"
	exit 0
fi
for pass in cold warm; do
	collect org-sim-launch v2 $pass
	collect org-sim-scale v2 $pass
	collect org-sim-legacy legacy $pass
done
