#!/usr/bin/env bash
# Install the headless browser the dashboard's browser test drives: Debian's `chromium`
# (Playwright for Python drives it through executable_path; no browser download).
# Idempotent: does nothing when chromium is already installed. Needs root or password-less sudo.
# Usage: bash scripts/install_browser.sh   (prints the browser's path and version)
set -euo pipefail

find_browser() {
  local c
  for c in "${ODIA_CHROMIUM:-}" chromium chromium-browser; do
    [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 && { command -v "$c"; return 0; }
  done
  return 1
}

if ! browser=$(find_browser); then
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "install_browser.sh: chromium is missing and installing it needs root or password-less sudo" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser.sh: chromium is missing and there is no apt-get here; install chromium and set ODIA_CHROMIUM" >&2
    exit 1
  fi
  echo "==> installing chromium (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
  browser=$(find_browser) || { echo "install_browser.sh: chromium still not found after apt-get install" >&2; exit 1; }
fi
echo "$browser: $("$browser" --version 2>/dev/null | head -n1)"
