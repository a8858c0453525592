# shellcheck shell=bash
# Helpers shared by test/scripts/run.sh (make run) and test/scripts/test.sh
# (make test).  Source it; it does not run anything by itself except setting
# a few variables and PATH.
#
#   TEGO_TOP      the repository top (the checkout these scripts live in)
#   TEGO_PGBIN    PostgreSQL 15 binaries, first on PATH
#   PG_CONFIG     $TEGO_PGBIN/pg_config (exported, make uses it)
#   TEGO_PGXS     the pgxs folder (pg_regress, pg_isolation_regress, perl libs)
#
#   tego_deps            install missing Debian packages (root only)
#   tego_build_install   make, make install, make tools
#   as_pg CMD...         run CMD as the postgres system user when root
#   tego_is_root         true when running as root
#   tego_pg_can_reach D  true when the postgres user can traverse to folder D
#   tego_bench_cluster D P [SETTING...]  a started benchmark cluster (make bench)

TEGO_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
# TEGO_PGBIN may name a relocated copy of the same installation (a private
# place to install tego into, beside the system's).
TEGO_PGBIN=${TEGO_PGBIN:-/usr/lib/postgresql/15/bin}
PG_CONFIG=$TEGO_PGBIN/pg_config
TEGO_PGXS=$(dirname "$TEGO_PGBIN")/lib/pgxs
PATH=$TEGO_PGBIN:$PATH
export TEGO_TOP TEGO_PGBIN PG_CONFIG TEGO_PGXS PATH

# Everything we need from Debian (bookworm).  pg_prove comes from
# libtap-parser-sourcehandler-pgtap-perl, IPC::Run (PostgreSQL::Test::Cluster)
# from libipc-run-perl; hyperfine is for `make bench`; pgbouncer for the
# pooler test; libkrb5-dev because the server's libpq/libpq-be.h includes
# gssapi/gssapi.h.
TEGO_PACKAGES=(
	postgresql-15
	postgresql-server-dev-15
	postgresql-15-cron
	postgresql-15-pgtap
	libtap-parser-sourcehandler-pgtap-perl
	libipc-run-perl
	hyperfine
	pgbouncer
	libkrb5-dev
)

tego_log() { printf '%s\n' "$*"; }
tego_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

tego_is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a command as the postgres system user when we are root (PostgreSQL
# refuses to run as root); as ourselves otherwise.  The environment is kept
# (runuser without --login keeps it, except HOME/SHELL/USER/LOGNAME), and so
# is the current directory: callers cd somewhere postgres can read first.
as_pg() {
	if tego_is_root; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# Can the user who runs the server (postgres when root, else us) reach
# folder $1?  access(2) checks search permission on every parent folder.
tego_pg_can_reach() {
	as_pg test -x "$1" 2>/dev/null
}

# Install the Debian packages that are missing.  Checked with dpkg-query so
# that a machine which has everything never touches apt.
tego_deps() {
	local missing=() p status
	for p in "${TEGO_PACKAGES[@]}"; do
		status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		case $status in
			*" installed") ;;
			*) missing+=("$p") ;;
		esac
	done
	if [ ${#missing[@]} -gt 0 ]; then
		if ! tego_is_root; then
			tego_die "missing Debian packages: ${missing[*]}
Install them as root:  apt-get install -y ${missing[*]}"
		fi
		tego_log "== installing missing packages: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q || tego_die "apt-get update failed"
		apt-get install -y -q "${missing[@]}" || tego_die "apt-get install failed"
	fi
	if tego_is_root && ! getent passwd postgres >/dev/null; then
		tego_die "running as root but there is no 'postgres' system user (postgresql-15 creates it)"
	fi
	[ -x "$PG_CONFIG" ] || tego_die "$PG_CONFIG not found (is postgresql-server-dev-15 installed?)"
}

# Node.js and npm for the node-postgres and Sequelize tests (test/node).
# The machine's own Node.js (20) is used when there is one; else Debian's.
tego_node_deps() {
	if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
		return 0
	fi
	tego_is_root || tego_die "node and npm are missing; as root: apt-get install -y nodejs npm"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q || tego_die "apt-get update failed"
	apt-get install -y -q nodejs npm || tego_die "apt-get install nodejs npm failed"
}

# Build and install the extension, then the libpq helper programs under
# test/tools (tego_listen, ...).  `make tools` builds the list the Makefile
# names; while a tool's source is not written yet we build those that exist
# instead of failing the whole run.
tego_build_install() {
	local jobs
	jobs=$(nproc 2>/dev/null || echo 2)
	tego_log "== build and install (PG_CONFIG=$PG_CONFIG)"
	make -C "$TEGO_TOP" -s -j"$jobs" PG_CONFIG="$PG_CONFIG" || tego_die "make failed"
	make -C "$TEGO_TOP" -s PG_CONFIG="$PG_CONFIG" install >/dev/null || tego_die "make install failed"
	if ! make -C "$TEGO_TOP" -s PG_CONFIG="$PG_CONFIG" tools 2>/dev/null; then
		local src targets=()
		for src in "$TEGO_TOP"/test/tools/*.c; do
			[ -e "$src" ] && targets+=("test/tools/$(basename "$src" .c)")
		done
		if [ ${#targets[@]} -gt 0 ]; then
			make -C "$TEGO_TOP" -s PG_CONFIG="$PG_CONFIG" "${targets[@]}" ||
				tego_die "building test/tools failed"
		fi
		tego_log "note: 'make tools' did not complete (a tool's source may be missing); built: ${targets[*]:-nothing}"
	fi
}

# Make a postgres-owned private folder (mktemp -d) and print its path.
tego_pg_tempdir() {
	local d
	d=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || tego_die "mktemp failed"
	if tego_is_root; then
		chown postgres:postgres "$d"
	fi
	printf '%s\n' "$d"
}

# Stop every server whose data folder lies under $1 (a postmaster.pid is
# there).  Used by cleanup traps, so it never fails.
tego_stop_servers_under() {
	local pidfile
	[ -d "$1" ] || return 0
	while IFS= read -r pidfile; do
		as_pg "$TEGO_PGBIN/pg_ctl" -D "$(dirname "$pidfile")" -m immediate -w stop >/dev/null 2>&1 || true
	done < <(find "$1" -name postmaster.pid -type f 2>/dev/null)
}

# --- benchmarks ----------------------------------------------------------------
# tego_bench_start NAME: a postgres-owned work folder in $WORK (servers in
# it stopped and the folder removed on exit; kept with TEGO_KEEP_TMP=1),
# BG_PIDS (background processes killed on exit), and an empty results file
# $RESULTS in $RESULTS_DIR (both set by the caller).
tego_bench_start() {
	WORK=$(tego_pg_tempdir "$1")
	BG_PIDS=()
	trap tego_bench_cleanup EXIT
	trap 'exit 130' INT TERM
	mkdir -p "$RESULTS_DIR" || tego_die "cannot create $RESULTS_DIR"
	: >"$RESULTS" || tego_die "cannot write $RESULTS"
}

tego_bench_cleanup() {
	local p
	trap - EXIT
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	tego_stop_servers_under "$WORK"
	if [ -z "${TEGO_KEEP_TMP:-}" ]; then
		rm -rf "$WORK"
	else
		echo "(bench folder kept in $WORK)"
	fi
}

# tego_bench_cluster DATADIR PORT [SETTING...]: initdb a benchmark cluster
# in DATADIR and start it: unix socket in $WORK only, on PORT, tego
# preloaded, default durability (fsync, synchronous_commit on), then each
# SETTING line (a later line wins); log in $WORK/server.log.
tego_bench_cluster() {
	local dir=$1 port=$2 line
	shift 2
	as_pg initdb -D "$dir" -U postgres -A trust -E UTF8 --locale=C >"$WORK/initdb.log" 2>&1 ||
		{ cat "$WORK/initdb.log"; tego_die "initdb failed"; }
	{
		echo "# $(basename "$0")"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$WORK'"
		echo "port = $port"
		echo "shared_preload_libraries = 'tego'"
		echo "fsync = on"
		echo "synchronous_commit = on"
		for line in "$@"; do
			echo "$line"
		done
	} >>"$dir/postgresql.conf"
	as_pg pg_ctl -D "$dir" -l "$WORK/server.log" -w -t 60 start >/dev/null ||
		{ tail -n 30 "$WORK/server.log"; tego_die "the server did not start"; }
}

# out LINE...: print, and append to the results file $RESULTS
out() {
	printf '%s\n' "$*"
	printf '%s\n' "$*" >>"$RESULTS"
}
