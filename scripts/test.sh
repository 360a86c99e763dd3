#!/usr/bin/env bash
# Every test, on a fresh machine with Rust, Python 3 (with venv) and Node (with npm):
# installs what the tests need (Debian's Chromium and ChromeDriver for the browser tests,
# a running PostgreSQL for the PostgreSQL store's tests: scripts/postgres.sh),
# builds the example plugins (scripts/plugins.sh, which installs their toolchains), runs
# the plugin SDKs' unit tests (natively, apart from the host's build) and `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi
bash scripts/postgres.sh
bash scripts/plugins.sh
cargo test -p orchestra-plugin
(cd sdk/python && python3 -m unittest --quiet)
(cd sdk/js && node --test)
cargo test "$@"
