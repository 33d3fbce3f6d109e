#!/usr/bin/env bash
# Installs Debian's chromium for the web explorer's end-to-end test (test/web-e2e.test.ts), when it is missing.
# Idempotent: does nothing when /usr/bin/chromium exists. The test drives it with playwright-core and never
# downloads a browser of its own.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo installed)"
