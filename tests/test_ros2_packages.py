"""Static checks of the ROS 2 packages, launch and parameter files (no ROS install here),
and of the import boundary: ``import robo_reward`` loads no DDS, rosbags or rclpy."""

from __future__ import annotations

import ast
import runpy
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from robo_reward.ros2.entry_points import REWARD_PARAMETERS, SIM_ROBOT_PARAMETERS

ROOT = Path(__file__).resolve().parents[1]
MSGS = ROOT / "ros2_ws/src/robo_reward_msgs"
ROS = ROOT / "ros2_ws/src/robo_reward_ros"
LAUNCH = ROOT / "launch/reward.launch.py"
PARAMS = ROOT / "launch/reward_params.yaml"


def manifest(path: Path) -> ET.Element:
    root = ET.parse(path / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    for tag in ("name", "version", "description", "maintainer", "license"):
        assert (root.findtext(tag) or "").strip(), f"{path.name}/package.xml: <{tag}> missing"
    assert root.findtext("name") == path.name
    return root


def texts(root: ET.Element, tag: str) -> set[str]:
    return {e.text.strip() for e in root.iter(tag)}


def test_msgs_package_manifest_and_cmake():
    root = manifest(MSGS)
    assert texts(root, "buildtool_depend") == {"ament_cmake", "rosidl_default_generators"}
    assert {"builtin_interfaces", "std_msgs"} <= texts(root, "depend")
    assert "rosidl_default_runtime" in texts(root, "exec_depend")
    assert texts(root, "member_of_group") == {"rosidl_interface_packages"}
    assert root.findtext("export/build_type") == "ament_cmake"
    cmake = (MSGS / "CMakeLists.txt").read_text()
    for needed in ("find_package(rosidl_default_generators REQUIRED)", '"msg/Reward.msg"',
                   "DEPENDENCIES builtin_interfaces std_msgs", "ament_package()"):
        assert needed in cmake


def test_ros_package_manifest():
    root = manifest(ROS)
    assert root.findtext("export/build_type") == "ament_python"
    assert {"rclpy", "rcl_interfaces", "std_msgs", "sensor_msgs", "builtin_interfaces", "robo_reward_msgs",
            "launch", "launch_ros"} <= texts(root, "exec_depend")
    assert (ROS / "resource/robo_reward_ros").is_file()


@pytest.mark.parametrize("package", [MSGS, ROS], ids=lambda p: p.name)
def test_manifests_validate_with_catkin_pkg(package):
    catkin_package = pytest.importorskip("catkin_pkg.package")
    parsed = catkin_package.parse_package(package / "package.xml")
    parsed.validate()
    assert parsed.package_format == 3 and parsed.name == package.name


@pytest.fixture(scope="module")
def setup_kwargs():
    """Run setup.py with setuptools.setup replaced by a recorder, in the package folder."""
    import os

    import setuptools

    recorded = {}
    original, cwd = setuptools.setup, os.getcwd()
    setuptools.setup = lambda **kwargs: recorded.update(kwargs)
    try:
        os.chdir(ROS)
        runpy.run_path(str(ROS / "setup.py"), run_name="__main__")
    finally:
        setuptools.setup = original
        os.chdir(cwd)
    return recorded


def test_setup_py_installs_launch_files_resource_and_entry_points(setup_kwargs):
    assert setup_kwargs["name"] == "robo_reward_ros" and setup_kwargs["packages"] == ["robo_reward_ros"]
    data = dict(setup_kwargs["data_files"])
    assert data["share/ament_index/resource_index/packages"] == ["resource/robo_reward_ros"]
    assert data["share/robo_reward_ros"] == ["package.xml"]
    assert sorted(data["share/robo_reward_ros/launch"]) == ["launch/reward.launch.py", "launch/reward_params.yaml"]
    assert (ROS / "launch").resolve() == (ROOT / "launch").resolve()
    scripts = dict(s.replace(" ", "").split("=") for s in setup_kwargs["entry_points"]["console_scripts"])
    assert scripts == {"reward_node": "robo_reward_ros.reward_node:main", "sim_robot": "robo_reward_ros.sim_robot:main"}
    sys.path.insert(0, str(ROS))
    try:
        for target in scripts.values():
            module, function = target.split(":")
            assert callable(getattr(__import__(module, fromlist=[function]), function))
    finally:
        sys.path.remove(str(ROS))
    assert "install_scripts=$base/lib/robo_reward_ros" in (ROS / "setup.cfg").read_text()


def test_setup_py_name_runs():
    result = subprocess.run([sys.executable, "setup.py", "--name"], cwd=ROS, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "robo_reward_ros"


class Recorder:
    """Stands in for a launch class: keeps its arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class FakeLaunchConfiguration(Recorder):
    """``LaunchConfiguration(name).perform(context)``: the value of ``name`` in a dict context."""

    def perform(self, context):
        return context[self.args[0]]


def fake_launch_modules() -> dict[str, types.ModuleType]:
    modules = {}
    names = {
        "launch": ["LaunchDescription"],
        "launch.actions": ["DeclareLaunchArgument", "LogInfo", "OpaqueFunction", "SetEnvironmentVariable"],
        "launch.substitutions": ["EnvironmentVariable", "LaunchConfiguration", "PathJoinSubstitution"],
        "launch_ros": [],
        "launch_ros.actions": ["Node"],
        "launch_ros.parameter_descriptions": ["ParameterValue"],
        "launch_ros.substitutions": ["FindPackageShare"],
    }
    for module, classes in names.items():
        modules[module] = types.ModuleType(module)
        for name in classes:
            setattr(modules[module], name, type(name, (Recorder,), {}))
    modules["launch.substitutions"].LaunchConfiguration = FakeLaunchConfiguration
    return modules


def launch_node(entities: list, given: dict[str, str]) -> tuple[list, Recorder]:
    """Run the launch file's OpaqueFunction with the declared defaults overridden by ``given``:
    (its log messages, its Node)."""
    declared = {e.args[0]: e.kwargs["default_value"] for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
    (opaque,) = [e for e in entities if type(e).__name__ == "OpaqueFunction"]
    actions = opaque.kwargs["function"]({**declared, **given})
    (node,) = [a for a in actions if type(a).__name__ == "Node"]
    return [a.kwargs["msg"] for a in actions if type(a).__name__ == "LogInfo"], node


def test_launch_file_structurally_builds_its_description_with_defaults(monkeypatch):
    ast.parse(LAUNCH.read_text())
    for name, module in fake_launch_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    description = runpy.run_path(str(LAUNCH))["generate_launch_description"]()
    (entities,) = description.args
    declared = {e.args[0]: e.kwargs for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
    assert set(declared) == {"views", "task", "model", "max_rate", "domain", "params_file", "cameras", "rate"}
    assert all(kwargs.get("description") for kwargs in declared.values())
    assert declared["views"]["default_value"] == "front=/camera/front/image_raw"
    assert float(declared["max_rate"]["default_value"]) == 0.0
    logs, node = launch_node(entities, {})
    assert not logs
    assert node.kwargs["package"] == "robo_reward_ros" and node.kwargs["executable"] == "reward_node"
    _params_file, overrides = node.kwargs["parameters"]
    assert set(overrides) == {"views", "task", "model", "max_rate"} and set(overrides) <= set(REWARD_PARAMETERS)
    assert overrides["views"] == ["front=/camera/front/image_raw"]  # the node's string-array parameter
    assert overrides["max_rate"].args == ("0.0",) and overrides["max_rate"].kwargs == {"value_type": float}
    (domain,) = [e for e in entities if type(e).__name__ == "SetEnvironmentVariable"]
    assert domain.args[0] == "ROS_DOMAIN_ID"


def test_launch_file_structurally_keeps_its_former_argument_names_with_a_warning(monkeypatch):
    for name, module in fake_launch_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    (entities,) = runpy.run_path(str(LAUNCH))["generate_launch_description"]().args
    logs, node = launch_node(entities, {"views": "w=/new, v=/other", "max_rate": "5.0"})
    overrides = node.kwargs["parameters"][1]
    assert not logs and overrides["views"] == ["w=/new", "v=/other"] and overrides["max_rate"].args == ("5.0",)
    logs, node = launch_node(entities, {"cameras": "front=/cam/front/image_raw", "rate": "10.0"})
    overrides = node.kwargs["parameters"][1]
    assert overrides["views"] == ["front=/cam/front/image_raw"] and overrides["max_rate"].args == ("10.0",)
    assert any("'cameras' is deprecated, use 'views" in m for m in logs)
    assert any("'rate' is deprecated, use 'max_rate" in m for m in logs)


def test_params_file_matches_the_node_parameters():
    document = yaml.safe_load(PARAMS.read_text())
    (params,) = [v["ros__parameters"] for v in document.values()]
    assert set(params) <= set(REWARD_PARAMETERS)
    for name, value in params.items():
        assert type(value) is type(REWARD_PARAMETERS[name]), f"{name}: ROS 2 refuses a parameter of another type"
    assert not {"views", "cameras", "task", "model", "max_rate"} & set(params), "the launch arguments set these"
    assert all(type(v) in (str, int, float, bool) or isinstance(v, list) and all(type(i) is str for i in v)
               for v in SIM_ROBOT_PARAMETERS.values())


def test_rclpy_transport_explains_a_missing_ros_install():
    # A None entry in sys.modules makes ``import rclpy`` fail as it does without a ROS 2
    # install, so this runs (in its own process) where rclpy is installed too.
    code = ("import sys; sys.modules['rclpy'] = None\n"
            "from robo_reward.errors import DependencyNotInstalled\n"
            "from robo_reward.ros2.rclpy_transport import RclpyTransport\n"
            "try:\n    RclpyTransport.create('robo_reward')\n"
            "except DependencyNotInstalled as exc:\n    print(exc)\n")
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert "rclpy is needed" in result.stdout and "--transport dds" in result.stdout, result.stdout


def _run_python(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter: what it imports stays out of this process."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)


def test_importing_robo_reward_and_its_cli_loads_no_transport():
    code = ("import sys, robo_reward, robo_reward.cli; robo_reward.cli.build_parser(); "
            "print(sorted(m for m in ('cyclonedds', 'rosbags', 'rclpy') if m in sys.modules))")
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
