#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 for the tests of the PostgreSQL
# store (each test creates and drops a database of its own): starts the local cluster if it
# is installed but stopped, and installs Debian's PostgreSQL if there is none. Trust
# authentication for local connections is what the tests expect (user `postgres`).
set -euo pipefail

ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
if ! command -v pg_isready >/dev/null || ! command -v pg_ctlcluster >/dev/null; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi
if ! ready; then
  cluster=$(pg_lsclusters -h | awk 'NR == 1 {print $1 " " $2}')
  if [ -z "$cluster" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -1)
    $sudo pg_createcluster "$version" main -- --auth=trust >/dev/null
    cluster="$version main"
  fi
  # shellcheck disable=SC2086
  $sudo pg_ctlcluster $cluster start
  for _ in $(seq 1 30); do ready && break; sleep 1; done
fi
ready || { echo "PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
psql -h 127.0.0.1 -U postgres -d postgres -tAc 'SELECT 1' >/dev/null \
  || { echo "PostgreSQL refuses user postgres without a password (trust auth expected)" >&2; exit 1; }
