#!/usr/bin/env bash
# CI: what the WebGPU tests need on a bare Debian bookworm machine: Mesa's software Vulkan driver (lavapipe)
# from bookworm-backports (25.x; Dawn rejects bookworm's 22.x) and a writable XDG_RUNTIME_DIR.
# Idempotent: does nothing when a backports Mesa (≥ 23) is already installed. Source it, or run it and
# export XDG_RUNTIME_DIR yourself (the tests default it to the temp folder when unset).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

mesa_major() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | sed -E 's/^([0-9]+:)?([0-9]+)\..*/\2/'; }

if [ "$(mesa_major || true)" -ge 23 ] 2>/dev/null; then
  echo "install-webgpu: mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) already installed"
else
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  list=/etc/apt/sources.list.d/debian-backports.sources
  if ! grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # Same mirror and component as the machine's Debian entry.
    uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/debian.sources | head -1 | awk '{print $2}')
    uri=${uri:-http://deb.debian.org/debian}
    printf 'Types: deb\nURIs: %s\nSuites: %s-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$uri" "$codename" | $SUDO tee "$list" >/dev/null
  fi
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends -t "${codename}-backports" mesa-vulkan-drivers
fi

export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-${TMPDIR:-/tmp}/xdg-runtime-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
echo "install-webgpu: XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR"
