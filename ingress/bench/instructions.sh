#!/usr/bin/env bash
# Instructions ingress executes per delivery, counted by callgrind: repeatable to about 0.1%
# whatever else the machine is doing, so two builds can be compared on a noisy host where CPU
# seconds per delivery vary by 10% from run to run.
#
# Usage: ingress/bench/instructions.sh [INGRESS_BIN] [DELIVERIES]
# Needs valgrind, python3 (to pick a free port), a built ingress-bench (it sends the
# deliveries: the bodies and signatures of its own benchmark), a RabbitMQ at AMQP_URL (default:
# local guest), and rabbitmqctl to remove the run's queues afterwards.
#
# Under valgrind the CPU's SHA extensions are hidden, so the sha2 crate runs its portable code:
# SHA-256 (signature check, partition and channel choice, pseudonyms) counts several times what
# it costs natively. The script reports the total and the total without SHA-256's block function.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${1:-$here/../../target/release/ingress}")
sender=$(realpath "$here/../../target/release/ingress-bench")
[[ -x "$sender" ]] || { echo "$sender not found: cargo build --release -p ingress" >&2; exit 1; }
deliveries=${2:-2000}
warmup=300
amqp_url=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
namespace="bench.instructions.$$."
work=$(mktemp -d)

cleanup() {
    if [[ -n "${vg_pid:-}" ]] && kill -0 "$vg_pid" 2>/dev/null; then kill -TERM "$vg_pid"; wait "$vg_pid" || true; fi
    rabbitmqctl -q list_queues name 2>/dev/null | grep "^${namespace}" | while read -r queue; do
        rabbitmqctl -q delete_queue "$queue" >/dev/null </dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT

WHATSAPP_APP_SECRET=bench-secret WHATSAPP_VERIFY_TOKEN=bench INGRESS_ADDR="127.0.0.1:$port" \
    FLEET_NAMESPACE="$namespace" PARTITIONS=16 AMQP_URL="$amqp_url" RUST_LOG=error \
    valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.%p" "$bin" >/dev/null 2>"$work/valgrind.log" &
vg_pid=$!
for _ in $(seq 120); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    kill -0 "$vg_pid" 2>/dev/null || { cat "$work/valgrind.log" >&2; exit 1; }
    sleep 0.5
done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "ingress did not become ready" >&2; exit 1; }

# Warm up (connections, pools, lazily built state), then count only the measured deliveries.
"$sender" --send-to "127.0.0.1:$port" --deliveries "$warmup" >/dev/null
callgrind_control -z "$vg_pid" >/dev/null 2>&1
"$sender" --send-to "127.0.0.1:$port" --first "$warmup" --deliveries "$deliveries"
callgrind_control -d "$vg_pid" >/dev/null 2>&1
kill -TERM "$vg_pid"; wait "$vg_pid" || true
vg_pid=

dump=$(ls "$work"/callgrind.*.1)
total=$(awk '/^summary:/ {print $2}' "$dump")
sha=$(callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$dump" 2>/dev/null |
    awk '/sha256\.rs:sha2::sha256::compress256 / && !found {gsub(",", "", $1); print $1; found = 1}')
sha=${sha:-0}
echo "binary: $bin"
echo "instructions per delivery: $((total / deliveries)) ($((sha / deliveries)) in SHA-256 blocks, $(((total - sha) / deliveries)) without them)"
