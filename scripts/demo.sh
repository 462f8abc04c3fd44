#!/usr/bin/env bash
# make demo: two DR drills on local parts, no cluster or cloud.
#
# In a temporary directory, on free ports: a PostgreSQL primary (initdb) with
# a streaming replica (pg_basebackup -R), an in-memory S3-compatible store and
# a webhook receiver (scripts/demoservices), and drguard serving
# deploy/examples/demo.yaml. drguard takes a backup, restore-tests it and
# writes the heartbeat; then `drguard drill --execute` runs the Q1 drill (the
# primary is killed and restarted) and the Q2 drill (the primary's region is
# lost and the replica promoted), prints their reports and each drill
# incident's post-mortem. Everything started is stopped on exit.
#
# CI=true prints less (no post-mortems, no notices) and fails when a drill
# does not pass. DRGUARD_PG_BINDIR picks the PostgreSQL binaries (default: the
# newest /usr/lib/postgresql/*/bin). DRGUARD=path uses that drguard binary.
#
# `demo.sh node DIR start|kill primary|replica` is what the drills' steps call:
# pg_ctl on the demo's servers, as the postgres user when run as root.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

# as_pg runs a command as the postgres OS user when we are root (PostgreSQL
# refuses to run as root), as ourselves otherwise.
as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		setpriv --reuid=postgres --regid=postgres --init-groups -- env HOME=/tmp LC_ALL=C "$@"
	else
		env LC_ALL=C "$@"
	fi
}

# node DIR start|kill NAME: the drills' steps. A start refuses while the
# region's health endpoint is down: the primary cannot be reached.
node() {
	local dir=$1 verb=$2 name=$3 bin
	bin=$(cat "$dir/pgbin")
	case $verb in
	kill) as_pg "$bin/pg_ctl" -D "$dir/$name" -m immediate -w stop ;;
	start)
		# shellcheck disable=SC1091
		. "$dir/addrs"
		if ! curl -fsS -m 2 "$REGION" >/dev/null; then
			echo "cannot reach $name: its region is down" >&2
			exit 1
		fi
		as_pg "$bin/pg_ctl" -D "$dir/$name" -l "$dir/$name.log" -w -t 30 start
		;;
	*) echo "usage: demo.sh node DIR start|kill primary|replica" >&2; exit 2 ;;
	esac
}

if [[ ${1:-} == node ]]; then
	shift
	node "$@"
	exit
fi

: "${DRGUARD_WEBHOOK_TOKEN:=local-webhook-token}" "${DRGUARD_ADMIN_TOKEN:=local-admin-token}"
export DRGUARD_WEBHOOK_TOKEN DRGUARD_ADMIN_TOKEN
ci=${CI:-false}
drguard=${DRGUARD:-$repo/bin/drguard}
say() { printf '\n== %s\n' "$*"; }

bin=${DRGUARD_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
if [[ ! -x $bin/initdb || ! -x $bin/pg_basebackup ]]; then
	echo "demo: no PostgreSQL server binaries (run make deps, or set DRGUARD_PG_BINDIR)" >&2
	exit 1
fi

dir=$(mktemp -d /tmp/drguard-demo.XXXXXX)
chmod 711 "$dir"
pids=()
cleanup() {
	local code=$?
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for n in replica primary; do
		[[ -f $dir/$n/postmaster.pid ]] && as_pg "$bin/pg_ctl" -D "$dir/$n" -m immediate -w stop >/dev/null 2>&1
	done
	wait 2>/dev/null
	if [[ $code -ne 0 ]]; then
		for f in "$dir"/*.log; do echo "--- $f"; tail -n 30 "$f"; done >&2 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# freeport prints a TCP port of 127.0.0.1 that nothing listens on.
freeport() {
	local p
	while :; do
		p=$((20000 + RANDOM % 20000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

say "PostgreSQL primary and streaming replica ($bin) in $dir"
echo "$bin" >"$dir/pgbin"
pport=$(freeport)
rport=$(freeport)
while [[ $rport == "$pport" ]]; do rport=$(freeport); done
mkdir -m 700 "$dir/primary" "$dir/replica"
mkdir -m 755 "$dir/sock"
touch "$dir/primary.log" "$dir/replica.log"
[[ $(id -u) -eq 0 ]] && chown postgres: "$dir/primary" "$dir/replica" "$dir/sock" "$dir/primary.log" "$dir/replica.log"
as_pg "$bin/initdb" -D "$dir/primary" --auth=trust --no-sync --locale=C --encoding=UTF8 --username=postgres >/dev/null
cat >>"$dir/primary/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $pport
unix_socket_directories = '$dir/sock'
max_connections = 40
shared_buffers = '32MB'
fsync = off
wal_level = replica
max_wal_senders = 5
wal_keep_size = '256MB'
hot_standby = on
wal_receiver_status_interval = '1s'
wal_retrieve_retry_interval = '1s'
log_min_messages = warning
EOF
as_pg "$bin/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w start >/dev/null
psql=("$bin/psql" -h 127.0.0.1 -p "$pport" -U postgres -v ON_ERROR_STOP=1 -qAt)
"${psql[@]}" -d postgres -c "CREATE DATABASE shop"
"${psql[@]}" -d shop -c "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL)" \
	-c "INSERT INTO orders (item) SELECT 'item ' || i FROM generate_series(1, 1000) i"
as_pg "$bin/pg_basebackup" -h 127.0.0.1 -p "$pport" -U postgres -D "$dir/replica" -R -X stream -c fast
echo "port = $rport" >>"$dir/replica/postgresql.auto.conf"
as_pg "$bin/pg_ctl" -D "$dir/replica" -l "$dir/replica.log" -w start >/dev/null
echo "primary 127.0.0.1:$pport, replica 127.0.0.1:$rport (streaming)"

say "S3-compatible store, team channel and region health (scripts/demoservices)"
(cd "$repo" && go build -o "$dir/demoservices" ./scripts/demoservices)
"$dir/demoservices" -addr-file="$dir/addrs" -notices="$dir/notices" 2>"$dir/demoservices.log" &
pids+=($!)
for _ in $(seq 100); do [[ -s $dir/addrs ]] && break; sleep 0.1; done
# shellcheck disable=SC1091
. "$dir/addrs"
echo "S3 $S3, webhook $WEBHOOK, region $REGION"

# The configuration: ${DEMO_*} replaced by this run's ports and paths; the
# DSNs and tokens stay ${...}: drguard expands them itself.
export DEMO_PRIMARY_DSN="postgres://postgres@127.0.0.1:$pport/shop?sslmode=disable"
export DEMO_REPLICA_DSN="postgres://postgres@127.0.0.1:$rport/shop?sslmode=disable"
export DEMO_WEBHOOK_URL=$WEBHOOK
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo-secret AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent
sed -e "s|\${DEMO_DIR}|$dir|g" -e "s|\${DEMO_PG_BIN}|$bin|g" -e "s|\${DEMO_S3_URL}|$S3|g" \
	-e "s|\${DEMO_REGION_URL}|$REGION|g" -e "s|\${DEMO_SCRIPT}|$repo/scripts/demo.sh|g" \
	"$repo/deploy/examples/demo.yaml" >"$dir/demo.yaml"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/backup.key"
printf '%s\n' "$DRGUARD_ADMIN_TOKEN" >"$dir/admin.token"
chmod 600 "$dir/backup.key" "$dir/admin.token"
# Its warnings are about the demo's shortcuts (plain HTTP, a restore test
# on the primary); an error stops the demo.
"$drguard" check --config.file="$dir/demo.yaml" >"$dir/check.txt" 2>&1 || { cat "$dir/check.txt" >&2; exit 1; }

say "drguard backup (the Q1 drill's recovery source)"
"$drguard" backup --config.file="$dir/demo.yaml" --target=primary 2>>"$dir/drguard.log" | tail -n 3

say "drguard serve"
port=$(freeport)
url=http://127.0.0.1:$port
"$drguard" serve --config.file="$dir/demo.yaml" --storage.path="$dir/data" --web.listen-address="127.0.0.1:$port" 2>>"$dir/drguard.log" &
pids+=($!)
ready=false
for _ in $(seq 600); do
	# Ready once the restore test of the backup has passed: the checklist's
	# backup evidence.
	if curl -fsS "$url/metrics" 2>/dev/null | grep -Eq '^drguard_restore_test_last_success_timestamp_seconds\{[^}]*\} [1-9]'; then
		ready=true
		break
	fi
	sleep 0.2
done
$ready || { echo "demo: drguard did not pass its first restore test" >&2; exit 1; }
echo "drguard at $url; the backup's restore test passed"
sleep 2 # a few heartbeats

failed=0
for d in q1-database-failure q2-region-failover; do
	say "drguard drill --execute --drill=$d"
	"$drguard" drill --drill="$d" --execute --server="$url" --token-file="$dir/admin.token" --poll=500ms || failed=1
	run=$(curl -fsS -H "Authorization: Bearer $DRGUARD_ADMIN_TOKEN" "$url/api/v1/drills" |
		tr ',' '\n' | grep -A30 "\"drill\": *\"$d\"" | sed -n 's/.*"id": *"\(drl-[^"]*\)".*/\1/p' | head -1)
	incidents=$(curl -fsS -H "Authorization: Bearer $DRGUARD_ADMIN_TOKEN" "$url/api/v1/drills/runs/$run" |
		grep -o '"id": *"inc-[^"]*"' | sed 's/.*"\(inc-[^"]*\)"/\1/' | sort -u)
	if [[ $ci != true ]]; then
		for inc in $incidents; do
			say "drguard postmortem $inc"
			"$drguard" postmortem --server="$url" --token-file="$dir/admin.token" "$inc" 2>&1 || true
		done
	fi
done

if [[ $ci != true ]]; then
	say "what the team's channel heard"
	sed -n 's/.*"subject": *"\([^"]*\)".*/\1/p' "$dir/notices" 2>/dev/null || true
fi
say "drills: $([[ $failed -eq 0 ]] && echo all passed || echo some failed)"
exit $failed
