#!/usr/bin/env bash
# Install headless Chromium and a CJK font (Debian's chromium and fonts-noto-cjk) where missing,
# for the sharing service's browser test: the stewards' page is in Chinese, and without a CJK
# font Chromium draws every character as an empty box. Playwright drives this Chromium
# (executable /usr/bin/chromium); it never downloads a browser of its own. Without root or
# apt-get it only says what to do.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
if ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
  need+=(fonts-noto-cjk)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${need[*]} (Debian) for the browser test"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" fontconfig >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" fontconfig >/dev/null; }
  exit 0
fi
echo "WARNING: ${need[*]} not installed and cannot be installed here (needs root and apt-get):" >&2
echo "         the browser test will be skipped (under CI=true it fails)" >&2
