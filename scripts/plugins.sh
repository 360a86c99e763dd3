#!/usr/bin/env bash
# Builds every example plugin into target/wasm32-wasip2/plugin/NAME.wasm: the Rust ones
# with `cargo plugins`, `plugins/hello-python` with componentize-py and `plugins/hello-js`
# with componentize-js. Needs Rust, Python 3 with venv and Node with npm; the Python and
# JavaScript toolchains come from PyPI and npm at pinned versions (componentize-py below,
# componentize-js in plugins/hello-js/package-lock.json) and are installed under target/
# when missing. A module newer than all its inputs is not built again.
set -euo pipefail
cd "$(dirname "$0")/.."

readonly COMPONENTIZE_PY="componentize-py==0.25.1"
readonly out=target/wasm32-wasip2/plugin
# Shared with the projects `orchestra plugin new --lang python|js` writes (see its tests).
readonly venv=target/venv
readonly node=target/node

rustup target add wasm32-wasip2
cargo plugins

# True when the file $1 is missing or older than any file under the paths after it.
stale() {
  local file=$1
  shift
  [ ! -e "$file" ] ||
    [ -n "$(find "$@" -newer "$file" -not -path '*/__pycache__*' -print -quit)" ]
}

# componentize-py, in a virtual environment that records the version it holds.
if [ "$(cat "$venv/pinned" 2>/dev/null)" != "$COMPONENTIZE_PY" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "$COMPONENTIZE_PY"
  echo "$COMPONENTIZE_PY" >"$venv/pinned"
fi

# componentize-js, as plugins/hello-js/package-lock.json pins it.
if ! cmp -s plugins/hello-js/package-lock.json "$node/installed.json"; then
  mkdir -p "$node"
  cp plugins/hello-js/package.json plugins/hello-js/package-lock.json "$node/"
  npm ci --prefix "$node" --no-audit --no-fund --loglevel=error
  cp plugins/hello-js/package-lock.json "$node/installed.json"
fi

# Both tools pre-initialise the module at build time, and write it at the end: a build
# that fails leaves no module that looks newer than its inputs.
module=$out/hello_python.wasm
if stale "$module" plugins/hello-python sdk/python wit "$venv/pinned"; then
  "$venv/bin/componentize-py" -d wit -w task-handler componentize \
    -p plugins/hello-python -p sdk/python hello -o "$module.partial"
  mv "$module.partial" "$module"
fi

# Run from the workspace root: componentize-js resolves the entry's imports (here
# ../../sdk/js) only inside the directory it is run from.
module=$out/hello_js.wasm
if stale "$module" plugins/hello-js sdk/js wit "$node/installed.json"; then
  "$node/node_modules/.bin/componentize-js" --wit wit --world-name task-handler \
    --out "$module.partial" plugins/hello-js/index.js
  mv "$module.partial" "$module"
fi
