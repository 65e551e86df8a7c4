# Starts a throwaway PostgreSQL server for tests: installs it if missing (Debian, as root), runs initdb and
# pg_ctl as the `postgres` user (initdb refuses root) in a temporary directory on a free port, and stops it and
# removes the directory when the calling shell exits. Sets PG_ADMIN_URL. Meant to be sourced.

start_throwaway_postgres() {
  local bindir
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$bindir" ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "PostgreSQL is not installed and this is not root: install the 'postgresql' package" >&2
      return 1
    fi
    echo "installing PostgreSQL"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  local port dir as_pg=()
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  dir=$(mktemp -d /tmp/doorstep-pg.XXXXXX)
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$dir"
    as_pg=(runuser -u postgres --)
  fi
  "${as_pg[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log"
  "${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400" start >/dev/null
  PG_STOP="${as_pg[*]} $bindir/pg_ctl -D $dir/data -m immediate stop"
  trap 'eval "$PG_STOP" >/dev/null 2>&1 || true; rm -rf "'"$dir"'"' EXIT
  export PG_ADMIN_URL="postgres://postgres@127.0.0.1:$port/postgres"
  export PG_BINDIR="$bindir"
  echo "PostgreSQL running at $PG_ADMIN_URL"
}
