#!/usr/bin/env bash
# Starts, stops or checks a private ClickHouse 18.16 cluster on loopback: one ZooKeeper and
# CLUSTER_SHARDS × CLUSTER_REPLICAS ClickHouse servers (default 2 × 2), each with its own data
# directory under CLUSTER_HOME (default ./.cluster) and its own ports. Installs nothing: run
# scripts/deps.sh first (Debian's clickhouse-server, clickhouse-client and zookeeper).
#
# Usage: scripts/cluster.sh start|stop|status|addrs
#        scripts/cluster.sh kill N     kill -9 server N (1-based, in the order of `addrs`)
#        scripts/cluster.sh stop N     stop server N gracefully
#        scripts/cluster.sh kill zk    kill -9 ZooKeeper (stop zk: gracefully)
#        scripts/cluster.sh addrs [N]  the native addresses of the first N servers (default all)
# `start` is idempotent: it starts whatever does not answer (ZooKeeper, any server) and waits
# until all answer, so after `kill N` it brings server N back with its data. To start afresh:
# `stop`, then remove CLUSTER_HOME (ZooKeeper's data and the servers' must go together).
#
# The servers form two clusters, so the tests of both shapes share one ZooKeeper and four
# servers: CLUSTER_NAME (neonmeter_test) is the first shard's replicas alone (one shard: every
# table whole on each replica), CLUSTER_SHARDED_NAME (neonmeter_sharded) is every shard.
#
# Ports: ZooKeeper ZK_PORT (12181); server N native CLUSTER_PORT_BASE+N (19101, 19102, …),
# HTTP CLUSTER_PORT_BASE+100+N (19201, …), interserver (replication) CLUSTER_PORT_BASE+200+N
# (19301, …). Both clusters are in every server's <remote_servers> (rewritten by every `start`, so
# running servers pick up a change); macros {shard} and {replica} (s<shard>r<replica>, unique
# in the whole cluster) are set per server. A system ClickHouse or ZooKeeper on their usual
# ports is left alone.
set -euo pipefail

CLUSTER_HOME=${CLUSTER_HOME:-$PWD/.cluster}
CLUSTER_NAME=${CLUSTER_NAME:-neonmeter_test}
CLUSTER_SHARDED_NAME=${CLUSTER_SHARDED_NAME:-neonmeter_sharded}
CLUSTER_SHARDS=${CLUSTER_SHARDS:-2}
CLUSTER_REPLICAS=${CLUSTER_REPLICAS:-2}
CLUSTER_PORT_BASE=${CLUSTER_PORT_BASE:-19100}
ZK_PORT=${ZK_PORT:-12181}
ZK_JAR=${ZK_JAR:-/usr/share/java/zookeeper.jar}
# A killed server's ZooKeeper session lingers this long before its restart can replicate again
# (ClickHouse's default is 30 s); ZooKeeper's tickTime below allows up to 20 ticks.
CH_ZK_SESSION_MS=${CH_ZK_SESSION_MS:-4000}

nodes=$((CLUSTER_SHARDS * CLUSTER_REPLICAS))

die() {
	echo "cluster: $*" >&2
	exit 1
}

port() { echo $((CLUSTER_PORT_BASE + $1)); }
node_home() { echo "$CLUSTER_HOME/node$1"; }

ping_node() { clickhouse-client --port "$(port "$1")" -q 'SELECT 1' >/dev/null 2>&1; }

ping_zk() {
	local reply
	reply=$( (exec 3<>"/dev/tcp/127.0.0.1/$ZK_PORT" && printf ruok >&3 && read -r -t 2 r <&3; echo "${r:-}") 2>/dev/null) || true
	[ "$reply" = imok ]
}

# run_as prints the command prefix that drops root to nobody, as scripts/clickhouse.sh does,
# unless CLUSTER_HOME is closed to nobody (e.g. under /root).
run_as=()
unprivileged() {
	run_as=()
	[ "$(id -u)" = 0 ] || return 0
	chown -R nobody:nogroup "$CLUSTER_HOME"
	run_as=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
	"${run_as[@]}" test -w "$CLUSTER_HOME" || run_as=()
}

check_installed() {
	command -v clickhouse-server >/dev/null || die "clickhouse-server is not installed (run scripts/deps.sh)"
	command -v clickhouse-client >/dev/null || die "clickhouse-client is not installed (run scripts/deps.sh)"
	command -v java >/dev/null || die "java is not installed (run scripts/deps.sh: Debian's zookeeper brings it)"
	[ -f "$ZK_JAR" ] || die "$ZK_JAR is missing (run scripts/deps.sh: Debian's zookeeper package)"
	[ "$nodes" -ge 1 ] || die "CLUSTER_SHARDS × CLUSTER_REPLICAS must be at least 1"
}

write_zk_config() {
	mkdir -p "$CLUSTER_HOME/zk/data"
	cat >"$CLUSTER_HOME/zk/zoo.cfg" <<CFG
tickTime=500
initLimit=10
syncLimit=5
dataDir=$CLUSTER_HOME/zk/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,mntr
autopurge.purgeInterval=1
CFG
}

start_zk() {
	if ping_zk; then
		return 0
	fi
	write_zk_config
	unprivileged
	# The Debian jar's manifest names its dependencies; ZooKeeperServerMain is the standalone
	# server (no quorum), without the system service.
	"${run_as[@]}" java -Xmx256m -XX:-UsePerfData -Dzookeeper.admin.enableServer=false \
		-cp "$ZK_JAR" org.apache.zookeeper.server.ZooKeeperServerMain "$CLUSTER_HOME/zk/zoo.cfg" \
		>"$CLUSTER_HOME/zk/stdout.log" 2>&1 </dev/null &
	echo $! >"$CLUSTER_HOME/zk/server.pid"
}

# cluster_def prints cluster $1 of the first $2 shards, every server by shard. Replicated
# tables replicate themselves (internal_replication): a Distributed table writes one replica.
cluster_def() {
	local name=$1 shards=$2 s r n
	echo "    <$name>"
	for s in $(seq "$shards"); do
		echo "      <shard><internal_replication>true</internal_replication>"
		for r in $(seq "$CLUSTER_REPLICAS"); do
			n=$(((s - 1) * CLUSTER_REPLICAS + r))
			echo "        <replica><host>127.0.0.1</host><port>$(port "$n")</port></replica>"
		done
		echo "      </shard>"
	done
	echo "    </$name>"
}

# remote_servers defines the one-shard cluster and, with several shards, the sharded one.
remote_servers() {
	echo "  <remote_servers>"
	cluster_def "$CLUSTER_NAME" 1
	[ "$CLUSTER_SHARDS" -gt 1 ] && cluster_def "$CLUSTER_SHARDED_NAME" "$CLUSTER_SHARDS"
	echo "  </remote_servers>"
}

write_node_config() {
	local n=$1 home shard replica
	home=$(node_home "$n")
	shard=$(((n - 1) / CLUSTER_REPLICAS + 1))
	replica=$(((n - 1) % CLUSTER_REPLICAS + 1))
	mkdir -p "$home/data" "$home/log" "$home/scratch"
	cat >"$home/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$home/log/server.log</log>
    <errorlog>$home/log/server.err.log</errorlog><size>10M</size><count>2</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>$(port "$n")</tcp_port>
  <http_port>$((CLUSTER_PORT_BASE + 100 + n))</http_port>
  <interserver_http_port>$((CLUSTER_PORT_BASE + 200 + n))</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <path>$home/data/</path>
  <tmp_path>$home/scratch/</tmp_path>
  <user_files_path>$home/data/user_files/</user_files_path>
  <format_schema_path>$home/data/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>134217728</mark_cache_size>
  <max_concurrent_queries>200</max_concurrent_queries>
$(remote_servers)
  <zookeeper>
    <node><host>127.0.0.1</host><port>$ZK_PORT</port></node>
    <session_timeout_ms>$CH_ZK_SESSION_MS</session_timeout_ms>
  </zookeeper>
  <macros><cluster>$CLUSTER_NAME</cluster><shard>$shard</shard><replica>s${shard}r${replica}</replica></macros>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
</yandex>
XML
	# load_balancing in_order: neonmeter on the sharded cluster needs it (schema.Open checks).
	cat >"$home/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage>
    <load_balancing>in_order</load_balancing></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
XML
}

start_node() {
	local n=$1 home
	home=$(node_home "$n")
	write_node_config "$n"
	ping_node "$n" && return 0
	unprivileged
	"${run_as[@]}" clickhouse-server --config-file="$home/config.xml" \
		>"$home/log/stdout.log" 2>&1 </dev/null &
	echo $! >"$home/server.pid"
}

# node_up reports whether server N answers, and starts it again (three times at most) when its
# process died: 18.16 can abort at start-up when its first ZooKeeper session fails (glibc's
# robust-mutex assertion), e.g. right after ZooKeeper itself restarted.
restarts=0
node_up() {
	local n=$1 pid
	ping_node "$n" && return 0
	pid=$(cat "$(node_home "$n")/server.pid" 2>/dev/null || true)
	if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null && [ "$restarts" -lt 3 ]; then
		restarts=$((restarts + 1))
		echo "cluster: ClickHouse server $n exited during start-up; starting it again" >&2
		sleep 1
		start_node "$n"
	fi
	return 1
}

# wait_for polls check (a function and its arguments) for up to 60 s.
wait_for() {
	local what=$1 logs=$2
	shift 2
	for _ in $(seq 240); do
		"$@" && return 0
		sleep 0.25
	done
	echo "cluster: $what did not answer within 60 s; see $logs" >&2
	tail -n 20 "$logs"/*.log >&2 2>/dev/null || true
	return 1
}

# addrs prints the native addresses of the first $1 servers (all by default), in server order.
addrs() {
	local n out=""
	for n in $(seq "${1:-$nodes}"); do
		out+="${out:+,}127.0.0.1:$(port "$n")"
	done
	echo "$out"
}

start() {
	check_installed
	mkdir -p "$CLUSTER_HOME/zk"
	start_zk
	wait_for "ZooKeeper on 127.0.0.1:$ZK_PORT" "$CLUSTER_HOME/zk" ping_zk
	local n
	for n in $(seq "$nodes"); do
		start_node "$n"
	done
	for n in $(seq "$nodes"); do
		wait_for "ClickHouse server $n on 127.0.0.1:$(port "$n")" "$(node_home "$n")/log" node_up "$n"
	done
	echo "cluster: $CLUSTER_SHARDED_NAME (shards × replicas: $CLUSTER_SHARDS × $CLUSTER_REPLICAS) on $(addrs), $CLUSTER_NAME (its first shard) on $(addrs "$CLUSTER_REPLICAS"), ZooKeeper on 127.0.0.1:$ZK_PORT (data in $CLUSTER_HOME)"
}

# stop_pid signals the process in pidfile and waits up to 30 s for it to go.
stop_pid() {
	local pidfile=$1 signal=$2 pid
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	kill "-$signal" "$pid" 2>/dev/null || true
	for _ in $(seq 120); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.25
	done
	kill -0 "$pid" 2>/dev/null && die "process $pid ($pidfile) did not stop"
	rm -f "$pidfile"
}

# pidfile_of names the pid file of server N or of ZooKeeper (zk).
pidfile_of() {
	local n=${1:-}
	if [ "$n" = zk ]; then
		echo "$CLUSTER_HOME/zk/server.pid"
		return
	fi
	[[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le "$nodes" ] || die "server must be 1..$nodes or zk, got '${n}'"
	echo "$(node_home "$n")/server.pid"
}

stop() {
	local n
	for n in $(seq "$nodes"); do
		stop_pid "$(node_home "$n")/server.pid" TERM
	done
	stop_pid "$CLUSTER_HOME/zk/server.pid" TERM
}

status() {
	local n down=0
	if ping_zk; then echo "zookeeper: up on 127.0.0.1:$ZK_PORT"; else echo "zookeeper: down"; down=1; fi
	for n in $(seq "$nodes"); do
		if ping_node "$n"; then
			echo "server $n: up on 127.0.0.1:$(port "$n")"
		else
			echo "server $n: down (127.0.0.1:$(port "$n"))"
			down=1
		fi
	done
	return "$down"
}

case "${1:-}" in
start) start ;;
stop)
	if [ -n "${2:-}" ]; then
		pidfile=$(pidfile_of "$2") || exit 1
		stop_pid "$pidfile" TERM
	else
		stop
	fi
	;;
kill)
	pidfile=$(pidfile_of "${2:-}") || exit 1
	stop_pid "$pidfile" KILL
	;;
status) status ;;
addrs) addrs "${2:-}" ;;
*)
	echo "usage: $0 start|stop [N|zk]|kill N|zk|status|addrs" >&2
	exit 2
	;;
esac
