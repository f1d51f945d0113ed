#!/usr/bin/env bash
# Install robo_reward with every integration on a fresh Debian machine (Python >= 3.10).
#   bash scripts/install.sh          the package and all extras (main job)
#   bash scripts/install.sh --dev    the same plus the test tools
# Debian packages: libosmesa6 lets MuJoCo render without a GPU (MUJOCO_GL=osmesa).
set -euo pipefail
cd "$(dirname "$0")/.."

extras="all"
[ "${1:-}" = "--dev" ] && extras="all,dev"

if ! ldconfig -p 2>/dev/null | grep -q libOSMesa; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq libosmesa6 >/dev/null
fi

# One resolve for every extra: lerobot 0.4.4 pins huggingface-hub<0.36 and torch<2.11.
python3 -m pip install -q --disable-pip-version-check -e ".[${extras}]"
