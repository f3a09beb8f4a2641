#!/usr/bin/env bash
# The operator console's browser tests (Tests/Browser/console_test.py): Debian's Chromium driven by
# Selenium through Debian's chromedriver (the two come in matching versions), against the gateway
# binary (GATEWAY, default: the debug build's). Selenium (PyPI) goes into its own virtualenv
# (BROWSER_VENV, default /tmp/wg-browser-venv). Screenshots go to SCREENSHOTS (default: a temporary
# directory; SCREENSHOTS=docs/images remakes the README's).
#
#   apt-get install chromium chromium-driver    # once
#   swift build && scripts/browser-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

command -v chromium >/dev/null || { echo "browser-test: chromium is not installed (apt-get install chromium chromium-driver)" >&2; exit 1; }
command -v chromedriver >/dev/null || { echo "browser-test: chromedriver is not installed (apt-get install chromium-driver)" >&2; exit 1; }

venv=${BROWSER_VENV:-/tmp/wg-browser-venv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import selenium' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "selenium==${SELENIUM_VERSION:-4.51.0}"
fi

gateway=${GATEWAY:-$(swift build --show-bin-path)/webhook-gateway}
[ -x "$gateway" ] || { echo "browser-test: no gateway binary at $gateway (run swift build, or set GATEWAY)" >&2; exit 1; }
screenshots=${SCREENSHOTS:-$(mktemp -d /tmp/wg-console-shots.XXXXXX)}
echo "browser-test: $(chromium --version 2>/dev/null | head -1), screenshots in $screenshots"
# Selenium must not look for a driver on the network: the path is given.
export SE_OFFLINE=true
exec timeout 600 "$venv/bin/python" Tests/Browser/console_test.py --gateway "$gateway" --screenshots "$screenshots"
