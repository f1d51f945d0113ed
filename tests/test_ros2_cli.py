"""``robo-reward serve`` and ``robo-reward sim-robot``: help with examples, clear errors, exit codes."""

from __future__ import annotations

import pytest

from robo_reward.cli import main


@pytest.mark.parametrize("command, example", [("serve", "--view front=/cam/front/image_raw"),
                                              ("sim-robot", "--task PandaReach-v3")])
def test_help_shows_examples(command, example, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and example in out


@pytest.mark.parametrize("arguments, message, code", [
    # 2: the command line itself is wrong
    ([], "no views", 2),
    (["--view", "front"], "expected NAME=TOPIC", 2),
    (["--view", "front=/cam//image"], "invalid ROS 2 topic name", 2),
    (["--view", "front=/a", "--view", "front=/b"], "given twice", 2),
    (["--view", "front=/a", "--model", "perceptual", "--option", "num_steps"], "KEY=VALUE", 2),
    # 1: the arguments parse, but the node cannot start with them
    (["--view", "front=/a", "--gamma", "2"], "gamma", 1),
    (["--view", "front=/a", "--model", "no-such-model"], "neither a registered model", 1),
    (["--view", "front=/a", "--domain", "300", "--model", "perceptual"], "domain id", 1),
])
def test_serve_refuses_bad_arguments_with_one_line(arguments, message, code, capsys):
    assert main(["serve", "--task", "open the drawer", *arguments]) == code
    err = capsys.readouterr().err
    assert message in err and err.startswith("robo-reward serve: error:"), err


def test_serve_camera_is_a_deprecated_alias_of_view(capsys):
    assert main(["serve", "--task", "t", "--camera", "front=/a", "--view", "front=/b"]) == 2
    err = capsys.readouterr().err
    assert "--camera is deprecated; use --view front=/a instead" in err
    assert "view 'front' is given twice" in err  # both flags fill the same list
