# Sourced by the other scripts: where things live and which ports the local stand-ins use.
# Every value can be overridden from the environment.
ORDERLY_ROOT=${ORDERLY_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
ORDERLY_STATE=${ORDERLY_STATE:-$ORDERLY_ROOT/.orderly}
ORDERLY_PG_PORT=${ORDERLY_PG_PORT:-55432}
ORDERLY_KAFKA_PORT=${ORDERLY_KAFKA_PORT:-19092}
ORDERLY_MONGO_PORT=${ORDERLY_MONGO_PORT:-37017}
ORDERLY_HTTP_PORT=${ORDERLY_HTTP_PORT:-8080}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
VENV=$ORDERLY_STATE/venv

export ORDERLY_DATABASE_URL=${ORDERLY_DATABASE_URL:-postgres://orderly@127.0.0.1:$ORDERLY_PG_PORT/orderly}
export ORDERLY_KAFKA_BROKERS=${ORDERLY_KAFKA_BROKERS:-127.0.0.1:$ORDERLY_KAFKA_PORT}
export ORDERLY_MONGO_URI=${ORDERLY_MONGO_URI:-mongodb://127.0.0.1:$ORDERLY_MONGO_PORT}
# Short group timings: Tansu otherwise waits out a long join before a new group's first message.
export ORDERLY_KAFKA_SESSION_TIMEOUT_MS=${ORDERLY_KAFKA_SESSION_TIMEOUT_MS:-6000}
export ORDERLY_KAFKA_HEARTBEAT_INTERVAL_MS=${ORDERLY_KAFKA_HEARTBEAT_INTERVAL_MS:-500}
# Tansu holds a fetch for the whole fetch.wait.max.ms (librdkafka's default: 500) even when messages
# are waiting, which puts up to half a second on every hop of the saga; real Kafka answers at once.
export ORDERLY_KAFKA_FETCH_WAIT_MS=${ORDERLY_KAFKA_FETCH_WAIT_MS:-50}
# libmongoc's shared-memory counters (read only by its mongoc-stat tool) leave a /dev/shm/mongoc-<pid>
# segment behind every killed process; a later process given the same pid then warns "Falling back
# to malloc for counters" on stderr (860 such segments on the build machine, 2026-12-04). Off.
export MONGOC_DISABLE_SHM=${MONGOC_DISABLE_SHM:-1}
# Tansu's storage lists every batch a partition holds on each fetch of it, so a fetch costs more
# with every batch stored, and a relay's produce makes one batch (and, idempotent, one request in
# flight) per partition it touches: fewer partitions, fewer and fuller batches. One partition (the
# processes' default is 10, as for a real Kafka, and docker-compose keeps 10) means one active member
# per consumer group here; the others stand by. Alternated 2026-12-04 (10 → 3) and 2026-12-05 (3 → 1:
# the saga at 100 orders/s p50 237 → 166–174 ms, the broker 55 → 41% of a core): README, "Benchmarks".
export ORDERLY_TOPIC_PARTITIONS=${ORDERLY_TOPIC_PARTITIONS:-1}
# librdkafka 2.16 from the confluent-kafka wheel must come first: Debian's 2.0.2 cannot talk to Tansu.
export LD_LIBRARY_PATH=$ORDERLY_STATE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

say() { printf '[orderly] %s\n' "$*" >&2; }
die() { printf '[orderly] error: %s\n' "$*" >&2; exit 1; }

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits up to $2 seconds for port $1; $3 names the service for the message.
wait_for_port() {
    local port=$1 limit=$2 name=$3 i
    for ((i = 0; i < limit * 10; i++)); do
        port_open "$port" && return 0
        sleep 0.1
    done
    die "$name did not start listening on port $port within ${limit}s (log: $ORDERLY_STATE/logs)"
}

# Waits up to 60 s for the api on port $1 to answer /ready; on failure (or when process $3, if
# given, exits first) shows the end of log $2.
wait_ready() {
    local port=$1 log=$2 pid=${3:-} i
    for ((i = 0; i < 300; i++)); do
        curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.2
    done
    tail -n 30 "$log" >&2
    die "the api on port $port did not become ready (log: $log)"
}
