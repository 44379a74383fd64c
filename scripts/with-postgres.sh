#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server: creates a fresh cluster in
# a temporary directory, starts it on 127.0.0.1 at a free TCP port with trust
# authentication and settings tuned for speed over durability, exports
# MOSAIC_TEST_POSTGRES=postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable,
# runs the command, then always stops the server and deletes the directory.
# Exits with the command's status.
#
#   scripts/with-postgres.sh go test ./...
#
# It uses the newest server found under /usr/lib/postgresql/*/bin (Debian's
# layout; scripts/test-deps.sh installs it), not the Debian cluster tools or
# the system service. PostgreSQL refuses to run as root, so when run as root
# the server runs as the postgres system user.
set -euo pipefail

if [ $# -eq 0 ]; then
	echo "usage: $0 COMMAND [ARGS...]" >&2
	exit 2
fi

die() {
	echo "with-postgres: $*" >&2
	exit 1
}

bindir=""
for dir in $(compgen -G '/usr/lib/postgresql/*/bin' | sort -V); do
	if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
		bindir="$dir"
	fi
done
[ -n "$bindir" ] || die "no PostgreSQL server found under /usr/lib/postgresql/*/bin; run scripts/test-deps.sh (or apt-get install postgresql)"

pguser="$(id -un)"
if [ "$(id -u)" -eq 0 ]; then
	pguser=postgres
	id -u "$pguser" >/dev/null 2>&1 || die "running as root, but there is no '$pguser' user to run the server as"
fi

# as_pg runs a command as the user that owns the cluster, from inside the
# cluster's directory so that the server tools never start in a working
# directory they cannot read.
as_pg() {
	if [ "$(id -u)" -ne 0 ]; then
		(cd "$tmp" && "$@")
	elif command -v runuser >/dev/null 2>&1; then
		(cd "$tmp" && runuser -u "$pguser" -- "$@")
	else
		(cd "$tmp" && su -s /bin/sh -c '"$0" "$@"' -- "$pguser" "$@")
	fi
}

# The directory lives in /tmp rather than $TMPDIR so that the postgres user
# can always reach it.
tmp="$(mktemp -d "${TMPDIR:-/tmp}/mosaic-pg.XXXXXX")"
data="$tmp/data"
log="$tmp/server.log"
started=""

cleanup() {
	local rc=$?
	if [ -n "$started" ]; then
		as_pg "$bindir/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp" || true
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

chmod 700 "$tmp"
[ "$pguser" = "$(id -un)" ] || chown "$pguser:" "$tmp"

start_us=${EPOCHREALTIME//[!0-9]/}
if ! as_pg "$bindir/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=trust \
	--no-locale -E UTF8 --no-sync >"$tmp/initdb.log" 2>&1; then
	cat "$tmp/initdb.log" >&2
	die "initdb failed (log above)"
fi

# Durability does not matter for a cluster that is deleted afterwards.
cat >>"$data/postgresql.conf" <<EOF

# Added by scripts/with-postgres.sh.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$tmp'
max_connections = 200
shared_buffers = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
EOF

# port_in_use reports whether something already listens on 127.0.0.1:$1.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Pick a random port below Linux's ephemeral range, skip ones already taken,
# and try again when another process takes the port between the probe and
# the server's bind.
port=""
for _ in 1 2 3 4 5 6 7 8; do
	candidate=$((20000 + RANDOM % 12000))
	if port_in_use "$candidate"; then
		continue
	fi
	: >"$log"
	[ "$pguser" = "$(id -un)" ] || chown "$pguser:" "$log"
	if as_pg "$bindir/pg_ctl" -D "$data" -l "$log" -o "-p $candidate" -w -t 60 start >/dev/null 2>&1; then
		started=1
		port="$candidate"
		break
	fi
	# pg_ctl may give up while a slow server is still starting; make sure
	# nothing is left running before deciding what to do.
	as_pg "$bindir/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
	if grep -qE 'could not bind|Address already in use' "$log"; then
		continue
	fi
	cat "$log" >&2
	die "PostgreSQL failed to start (server log above)"
done
if [ -z "$port" ]; then
	[ ! -s "$log" ] || cat "$log" >&2
	die "PostgreSQL failed to start: no free port found after several tries"
fi

# pg_ctl -w waits until the server accepts connections; check the TCP
# listener that the tests use as well.
ready=""
for _ in $(seq 1 100); do
	if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
		ready=1
		break
	fi
	sleep 0.1
done
if [ -z "$ready" ]; then
	cat "$log" >&2
	die "PostgreSQL started but does not accept connections on 127.0.0.1:$port"
fi
elapsed_ms=$(((${EPOCHREALTIME//[!0-9]/} - start_us) / 1000))
echo "with-postgres: PostgreSQL $(basename "$(dirname "$bindir")") ready on 127.0.0.1:$port after ${elapsed_ms} ms" >&2

export MOSAIC_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"

# The command runs in the foreground so that it gets the terminal's Ctrl-C
# directly; the traps above still stop the server once it has exited.
set +e
"$@"
status=$?
set -e
exit "$status"
