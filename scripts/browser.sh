#!/bin/sh
# Debian's Chromium and its driver, for the web console's tests (a real browser, driven by
# Selenium). `make test` runs this; the demo does not need a browser.
set -eu
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "browser: installing chromium and chromium-driver with apt-get" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            chromium chromium-driver >/dev/null
    else
        echo "browser: chromium/chromedriver are missing: the console's browser tests need them" >&2
    fi
fi
