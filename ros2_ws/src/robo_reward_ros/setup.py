"""ament_python package robo_reward_ros: launch files, parameters and console entry points."""

from glob import glob

from setuptools import setup

PACKAGE = "robo_reward_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        # launch/ links to the repository's launch/ folder: launch files and their parameters
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py") + glob("launch/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="robo_reward maintainers",
    maintainer_email="maintainers@robo-reward.dev",
    description="ROS 2 nodes of robo_reward: the reward node and a simulated panda-gym robot.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            f"reward_node = {PACKAGE}.reward_node:main",
            f"sim_robot = {PACKAGE}.sim_robot:main",
        ],
    },
)
