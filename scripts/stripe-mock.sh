#!/usr/bin/env bash
# Starts, stops or checks stripe-mock (Stripe's request-shape checker) on loopback.
# Usage: scripts/stripe-mock.sh start|stop|status
# Installs stripe-mock v0.185.0 into .tools/bin when missing (its embedded API spec covers both
# legacy usage records and Billing Meters next to stripe-go v76). Both -http-addr and
# -https-addr are given, so nothing listens beyond 127.0.0.1.
# STRIPE_MOCK_PORT (default 12111) and STRIPE_MOCK_HTTPS_PORT (default 12112) choose the ports.
set -euo pipefail

VERSION=v0.185.0
TOOLS=${TOOLS:-$PWD/.tools}
BIN=$TOOLS/bin/stripe-mock
PIDFILE=$TOOLS/stripe-mock.pid
LOG=$TOOLS/stripe-mock.log
PORT=${STRIPE_MOCK_PORT:-12111}
HTTPS_PORT=${STRIPE_MOCK_HTTPS_PORT:-12112}

ping() {
	if command -v curl >/dev/null; then
		curl -fsS -o /dev/null -H 'Authorization: Bearer sk_test_ping' "http://127.0.0.1:$PORT/v1/customers?limit=1" 2>/dev/null
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
	fi
}

install() {
	[ -x "$BIN" ] && return 0
	echo "stripe-mock: installing $VERSION into $TOOLS/bin"
	mkdir -p "$TOOLS/bin"
	GOBIN="$TOOLS/bin" go install "github.com/stripe/stripe-mock@$VERSION"
}

start() {
	if ping; then
		echo "stripe-mock: already answering on 127.0.0.1:$PORT"
		return 0
	fi
	install
	"$BIN" -http-addr "127.0.0.1:$PORT" -https-addr "127.0.0.1:$HTTPS_PORT" >"$LOG" 2>&1 </dev/null &
	echo $! >"$PIDFILE"
	for _ in $(seq 60); do
		if ping; then
			echo "stripe-mock: $VERSION on http://127.0.0.1:$PORT (log $LOG)"
			return 0
		fi
		sleep 0.5
	done
	echo "stripe-mock: did not start; see $LOG" >&2
	tail -n 20 "$LOG" >&2 || true
	return 1
}

stop() {
	if [ -f "$PIDFILE" ]; then
		kill "$(cat "$PIDFILE")" 2>/dev/null || true
		rm -f "$PIDFILE"
	fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) ping && echo "stripe-mock: up on 127.0.0.1:$PORT" || { echo "stripe-mock: down"; exit 1; } ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
