#!/bin/sh
# A throwaway PostgreSQL server for the tests.
#
#   sh tests/support/pg.sh start DIR    initdb + start in DIR; prints the conninfo
#   sh tests/support/pg.sh stop DIR     stop it and remove DIR
#   sh tests/support/pg.sh halt DIR     stop it at once (-m immediate), keep DIR:
#                                       "the database went away" for a test
#   sh tests/support/pg.sh resume DIR   start a halted server again, same port
#
# The server listens on 127.0.0.1 only, on a free port, with its socket in
# DIR.  The socket trusts local users (this script creates the role through
# it); TCP asks for a password (scram-sha-256), so the conninfo it prints
# carries a real password and a wrong one is refused, as in production.
# It uses Debian's /usr/lib/postgresql/*/bin (package postgresql, which
# `make deps` installs).  PostgreSQL refuses to run as root, so as root it
# runs the server as the `postgres` user the package creates.
#
# Every failure ends with one line on stderr, "pg.sh: <reason>", and exit
# status 1; tests/run.sh quotes that line when it cannot start a server.
set -u

die() { echo "pg.sh: $*" >&2; exit 1; }

usage() { die "usage: sh $0 start|stop|halt|resume DIR"; }

[ $# -eq 2 ] || usage
cmd=$1
case $2 in
/*) dir=$2 ;;
*) dir=$(pwd)/$2 ;;
esac
dir=${dir%/}
marker=$dir/.flaghook-pg        # only a directory this script made is removed
# The server's own files (data, socket, log) live in $srv: DIR itself, or,
# when the server's user cannot reach DIR (a checkout under /root) or its
# path is too long for a socket, a private directory in /tmp named in
# DIR/server-dir.
srv=$dir
[ -f "$dir/server-dir" ] && srv=$(cat "$dir/server-dir")
data=$srv/data

# The newest installed server (by version number: the glob sorts 10
# before 9), unless PG_BINDIR says which.
bindir=${PG_BINDIR:-}
if [ -z "$bindir" ]; then
  v=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sed -n 's|^/usr/lib/postgresql/\([0-9][0-9]*\)/bin$|\1|p' \
      | sort -n | tail -n 1)
  [ -n "$v" ] && bindir=/usr/lib/postgresql/$v/bin
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/pg_ctl" ] || [ ! -x "$bindir/initdb" ]; then
  die "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql, or make deps)"
fi

# Run a command as the server's user: ourselves, or `postgres` when root.
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || die "running as root and there is no 'postgres' user to run the server as"
  command -v runuser >/dev/null 2>&1 || die "running as root and runuser (util-linux) is missing"
  as_pg() { (cd / && runuser -u postgres -- "$@"); }
else
  as_pg() { (cd / && "$@"); }
fi

pg_ctl_stop() { # mode
  [ -f "$data/postmaster.pid" ] || return 0
  as_pg "$bindir/pg_ctl" -D "$data" stop -m "$1" -w -t 30 >/dev/null 2>&1
}

# Starts the server on port $1; fails when the port is taken or it does not
# come up within 30 s.
pg_ctl_start() {
  as_pg "$bindir/pg_ctl" -D "$data" -l "$srv/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $1 -k $srv -c max_connections=200" start >/dev/null 2>&1
}

remove() {
  [ "$srv" != "$dir" ] && rm -rf "$srv"
  rm -rf "$dir"
}

# A port nobody listens on now: the kernel's pick when python3 is there,
# else one from the ephemeral range.  Start retries when it loses a race.
free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' && return
  fi
  echo $((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 30000))
}

start() {
  if [ -f "$marker" ]; then
    # A server left by an interrupted run: clear it away first.
    pg_ctl_stop immediate
    remove
    srv=$dir; data=$srv/data
  elif [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    die "$dir exists and was not made by pg.sh; not touching it"
  fi
  mkdir -p "$dir" || die "cannot create $dir"
  : >"$marker" || die "cannot write in $dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir" || die "cannot chown $dir to postgres"
  fi
  # The socket path must fit a sockaddr_un (107 bytes), and the server's
  # user must reach the directory.
  if [ ${#dir} -gt 80 ] || ! as_pg test -w "$dir" -a -x "$dir"; then
    srv=$(mktemp -d /tmp/flaghook-pg.XXXXXX) || die "cannot create a directory in /tmp"
    echo "$srv" >"$dir/server-dir"
    data=$srv/data
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres: "$srv" || die "cannot chown $srv to postgres"
    fi
    as_pg test -w "$srv" -a -x "$srv" || { rm -rf "$srv"; die "the server's user cannot write in $srv"; }
  fi

  password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  [ ${#password} -eq 32 ] || die "cannot read /dev/urandom for a password"
  pwfile=$srv/superuser.pw
  (umask 077; echo "$password" >"$pwfile") || die "cannot write in $dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$pwfile"

  # --no-sync: only initdb's own final flush is skipped (the cluster is
  # thrown away); the running server keeps fsync on.
  out=$(as_pg "$bindir/initdb" -D "$data" -U postgres --pwfile="$pwfile" -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync 2>&1) \
    || die "initdb failed: $(printf '%s\n' "$out" | grep -v '^$' | tail -n 1)"
  rm -f "$pwfile"

  tries=0
  while :; do
    port=$(free_port)
    pg_ctl_start "$port" && break
    tries=$((tries + 1))
    if [ $tries -ge 5 ] || ! grep -q -i 'could not bind\|address already in use' "$srv/server.log" 2>/dev/null; then
      reason=$(grep -E 'FATAL|ERROR|PANIC' "$srv/server.log" 2>/dev/null | tail -n 1)
      die "the server did not start: ${reason:-see $srv/server.log}"
    fi
  done
  echo "$port" >"$dir/port"

  # The role the tests use, with a password, owning its database.
  psql() { as_pg "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$srv" -p "$port" -U postgres "$@"; }
  out=$( { psql -d postgres -c "CREATE ROLE flaghook LOGIN PASSWORD '$password'" &&
           psql -d postgres -c "CREATE DATABASE flaghook OWNER flaghook"; } 2>&1) \
    || { pg_ctl_stop immediate; die "cannot create the test role and database: $(printf '%s\n' "$out" | tail -n 1)"; }

  conninfo="host=127.0.0.1 port=$port dbname=flaghook user=flaghook password=$password"
  (umask 077; echo "$conninfo" >"$dir/conninfo")
  echo "$conninfo"
}

case $cmd in
start) start ;;
stop)
  [ -f "$marker" ] || { [ -e "$dir" ] && die "$dir was not made by pg.sh; not touching it"; exit 0; }
  pg_ctl_stop fast || pg_ctl_stop immediate || die "the server in $dir does not stop"
  remove
  ;;
halt)
  [ -f "$marker" ] || die "$dir was not made by pg.sh"
  pg_ctl_stop immediate || die "the server in $dir does not stop"
  ;;
resume)
  [ -f "$marker" ] && [ -f "$dir/port" ] || die "$dir holds no pg.sh server"
  pg_ctl_start "$(cat "$dir/port")" || die "the server in $dir did not start again (see $srv/server.log)"
  ;;
*) usage ;;
esac
