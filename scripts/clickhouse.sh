#!/usr/bin/env bash
# Starts, stops or checks a private ClickHouse server on loopback with its own data directory.
# Usage: scripts/clickhouse.sh start|stop|status
# CH_HOME (default ./.ch), CH_PORT (native, default 19000) and CH_HTTP_PORT (default 18123)
# choose where; a system instance on 9000/8123 is left alone.
set -euo pipefail

CH_HOME=${CH_HOME:-$PWD/.ch}
CH_PORT=${CH_PORT:-19000}
CH_HTTP_PORT=${CH_HTTP_PORT:-18123}

ping() { clickhouse-client --port "$CH_PORT" -q 'SELECT 1' >/dev/null 2>&1; }

start() {
	if ping; then
		echo "clickhouse: already answering on 127.0.0.1:$CH_PORT"
		return 0
	fi
	if ! command -v clickhouse-server >/dev/null; then
		echo "clickhouse: clickhouse-server is not installed (run scripts/deps.sh)" >&2
		return 1
	fi
	mkdir -p "$CH_HOME/data" "$CH_HOME/log" "$CH_HOME/scratch"
	cat >"$CH_HOME/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$CH_HOME/log/server.log</log>
    <errorlog>$CH_HOME/log/server.err.log</errorlog><size>10M</size><count>2</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>$CH_PORT</tcp_port>
  <http_port>$CH_HTTP_PORT</http_port>
  <path>$CH_HOME/data/</path>
  <tmp_path>$CH_HOME/scratch/</tmp_path>
  <user_files_path>$CH_HOME/data/user_files/</user_files_path>
  <format_schema_path>$CH_HOME/data/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>200</max_concurrent_queries>
</yandex>
XML
	cat >"$CH_HOME/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
XML
	local run=()
	if [ "$(id -u)" = 0 ]; then
		# Keep the server unprivileged when started as root.
		chown -R nobody:nogroup "$CH_HOME"
		run=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
		if ! "${run[@]}" test -w "$CH_HOME/data"; then
			# A parent directory is closed to nobody (e.g. under /root): run as root instead.
			run=()
		fi
	fi
	"${run[@]}" clickhouse-server --config-file="$CH_HOME/config.xml" \
		>"$CH_HOME/log/stdout.log" 2>&1 </dev/null &
	echo $! >"$CH_HOME/server.pid"
	for _ in $(seq 120); do
		if ping; then
			echo "clickhouse: $(clickhouse-client --port "$CH_PORT" -q 'SELECT version()') on 127.0.0.1:$CH_PORT (data in $CH_HOME)"
			return 0
		fi
		sleep 0.5
	done
	echo "clickhouse: did not start; see $CH_HOME/log/" >&2
	tail -n 20 "$CH_HOME/log/stdout.log" "$CH_HOME/log/server.err.log" >&2 || true
	return 1
}

stop() {
	if [ -f "$CH_HOME/server.pid" ]; then
		kill "$(cat "$CH_HOME/server.pid")" 2>/dev/null || true
		rm -f "$CH_HOME/server.pid"
	fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) ping && echo "clickhouse: up on 127.0.0.1:$CH_PORT" || { echo "clickhouse: down"; exit 1; } ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
