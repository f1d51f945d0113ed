#!/usr/bin/env bash
# Install robo_reward with every integration on a fresh Debian machine (Python >= 3.10).
#   bash scripts/install.sh          the package and all extras (main job)
#   bash scripts/install.sh --dev    the same plus the test tools and real ROS 2 from PyPI wheels
#                                    (scripts/install_ros2.sh: Kilted and Jazzy venvs in .ros/)
# Debian packages: libosmesa6 lets MuJoCo render without a GPU (MUJOCO_GL=osmesa); FFmpeg's shared
# libraries (libavdeviceNN pulls libavcodec, libavformat, libavfilter, libavutil, libswscale,
# libswresample) let torchcodec, LeRobot's default video decoder, load: torchcodec 0.10 loads
# FFmpeg 4-8 (libavdevice.so.58-62); Debian 12 ships FFmpeg 5.1 (libavdevice59).
set -euo pipefail
cd "$(dirname "$0")/.."

extras="all"
[ "${1:-}" = "--dev" ] && extras="all,dev"

libs="$(ldconfig -p 2>/dev/null || true)"
need_osmesa=1; grep -q libOSMesa <<<"$libs" && need_osmesa=0
need_ffmpeg=1; grep -Eq 'libavdevice\.so\.(58|59|60|61|62) ' <<<"$libs" && need_ffmpeg=0
if [ "$need_osmesa" = 1 ] || [ "$need_ffmpeg" = 1 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  packages=()
  [ "$need_osmesa" = 1 ] && packages+=(libosmesa6)
  if [ "$need_ffmpeg" = 1 ]; then
    for version in 62 61 60 59 58; do  # the newest FFmpeg this Debian has that torchcodec loads
      # read the policy first: `apt-cache … | grep -q` fails under pipefail when grep's early exit
      # kills apt-cache with SIGPIPE, and a package that is there looked missing
      policy="$(apt-cache policy "libavdevice$version" 2>/dev/null || true)"
      if grep -q 'Candidate: [0-9]' <<<"$policy"; then
        packages+=("libavdevice$version"); break
      fi
    done
    [ "${#packages[@]}" -gt "$need_osmesa" ] ||
      echo "install.sh: no FFmpeg 4-8 package found; read LeRobot videos with video_backend=\"pyav\"" >&2
  fi
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# One resolve for every extra: lerobot 0.4.4 pins huggingface-hub<0.36 and torch<2.11.
python3 -m pip install -q --disable-pip-version-check -e ".[${extras}]"
[ "${1:-}" = "--dev" ] && bash scripts/install_ros2.sh
exit 0
