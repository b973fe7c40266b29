#!/usr/bin/env bash
# Installs Debian's headless Chromium and its WebDriver for the browser tests
# (audit/tests/test_admin_browser.py) when they are missing. Needs root for apt-get;
# without root it only reports what is missing.
set -euo pipefail

CHROMIUM="${CHROMIUM_BINARY:-/usr/bin/chromium}"
DRIVER="${CHROMEDRIVER_BINARY:-/usr/bin/chromedriver}"

if [[ -x "$CHROMIUM" && -x "$DRIVER" ]]; then
    echo "chromium: $("$CHROMIUM" --version 2>/dev/null || echo present)"
    exit 0
fi

if [[ "$(id -u)" != "0" ]]; then
    echo "chromium or chromedriver missing ($CHROMIUM, $DRIVER) and not root: install Debian's" \
        "'chromium' and 'chromium-driver' packages." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
echo "chromium: $("$CHROMIUM" --version)"
