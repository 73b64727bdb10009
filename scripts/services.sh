#!/usr/bin/env bash
# Installs the real services the integration tests start (PostgreSQL, MariaDB from Debian
# packages; a MongoDB wire-protocol server). Tests start and stop their own instances on loopback
# in temporary folders; this script only makes the binaries present. Idempotent and quick when
# everything is installed. Usage: scripts/services.sh install
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(postgresql mariadb-server)

need_apt=()
dpkg -s postgresql >/dev/null 2>&1 || need_apt+=(postgresql)
dpkg -s mariadb-server >/dev/null 2>&1 || need_apt+=(mariadb-server)

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != "0" ] && ! command -v sudo >/dev/null; then
    echo "services: need root to install ${need_apt[*]}; integration tests needing them will skip" >&2
    exit 0
  fi
  SUDO=""; [ "$(id -u)" = "0" ] || SUDO=sudo
  echo "services: installing ${need_apt[*]} from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # policy-rc.d keeps the package scripts from starting system-wide daemons; tests start their own
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  $SUDO rm -f /usr/sbin/policy-rc.d
fi
: "${APT_PACKAGES[@]}"
