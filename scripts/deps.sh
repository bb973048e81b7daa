#!/usr/bin/env bash
# Installs what the tests and the demo need when it is missing: Debian's ClickHouse server,
# ZooKeeper (its jars, for the test cluster of scripts/cluster.sh; the system service is not
# used) and Prometheus tools, docker-compose (a client only: it validates the compose stack),
# and chDB (current ClickHouse in a library, from npm) for SQL portability tests.
set -euo pipefail

CHDB_VERSION=26.7.3-stable.1
TOOLS=${TOOLS:-$PWD/.tools}

pkgs=()
command -v clickhouse-server >/dev/null || pkgs+=(clickhouse-server)
command -v clickhouse-client >/dev/null || pkgs+=(clickhouse-client)
[ -f /usr/share/java/zookeeper.jar ] || pkgs+=(zookeeper)
command -v promtool >/dev/null || pkgs+=(prometheus)
command -v amtool >/dev/null || pkgs+=(prometheus-alertmanager)
# deploy/compose_test.go validates the compose stack with `docker-compose config` (no engine needed).
command -v docker-compose >/dev/null || pkgs+=(docker-compose)
if [ ${#pkgs[@]} -gt 0 ]; then
	echo "deps: installing ${pkgs[*]} from Debian"
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

if [ "${SKIP_CHDB:-}" != 1 ] && [ ! -f "$TOOLS/chdb/node_modules/@chdb/lib-linux-x64-gnu/libchdb.so" ]; then
	echo "deps: installing chDB $CHDB_VERSION from npm (about 540 MB)"
	mkdir -p "$TOOLS/chdb"
	(cd "$TOOLS/chdb" && npm install --no-save --no-audit --no-fund --loglevel=error \
		"@chdb/lib-linux-x64-gnu@$CHDB_VERSION" >/dev/null)
fi
