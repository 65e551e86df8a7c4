#!/usr/bin/env bash
# Installs what the browser tests need when it is missing: Debian's chromium (and a CJK font so screenshots show
# Chinese, and NSS's certutil to install a CA certificate in its store), Node.js, the pinned playwright-core in
# tests/browser (with cborg, to tamper with sync messages; axe-core, to check pages against WCAG 2; jsqr, to read
# printed QR codes), and the field app's pinned build tools in web/field (npm ci), with which scripts/test checks
# that the committed build matches its sources.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -d /usr/share/fonts/truetype/wqy ] || missing+=(fonts-wqy-zenhei)
# certutil: the field app's HTTPS test installs the Doorstep CA in Chromium's certificate store, as on a phone.
command -v certutil >/dev/null 2>&1 || missing+=(libnss3-tools)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "the browser test needs: ${missing[*]} (apt-get install them, or set DOORSTEP_SKIP_BROWSER_TESTS=1)" >&2
    exit 1
  fi
  echo "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/cborg ] \
  || [ ! -d tests/browser/node_modules/axe-core ] || [ ! -d tests/browser/node_modules/jsqr ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -d web/field/node_modules/esbuild ]; then
  (cd web/field && npm ci --no-audit --no-fund --loglevel=error)
fi
