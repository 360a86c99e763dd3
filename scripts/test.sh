#!/usr/bin/env bash
# Every test, on a fresh machine with only the Rust toolchain: installs what the tests
# need (the wasm32-wasip2 target; Debian's Chromium and ChromeDriver for the browser
# tests), builds the example plugins, runs the plugin SDK's unit tests (natively, apart from
# the host's build) and `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi
rustup target add wasm32-wasip2
cargo plugins
cargo test -p orchestra-plugin
cargo test "$@"
