"""``robo-reward serve`` and ``robo-reward sim-robot``: help with examples, clear errors, exit codes."""

from __future__ import annotations

import pytest

from robo_reward.cli import main


@pytest.mark.parametrize("command, example", [("serve", "--camera front=/cam/front/image_raw"),
                                              ("sim-robot", "--task PandaReach-v3")])
def test_help_shows_examples(command, example, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and example in out


@pytest.mark.parametrize("arguments, message", [
    (["--camera", "front"], "expected VIEW=TOPIC"),
    (["--camera", "front=/cam//image"], "invalid ROS 2 topic name"),
    (["--camera", "front=/a", "--camera", "front=/b"], "given twice"),
    (["--camera", "front=/a", "--gamma", "2"], "gamma"),
    (["--camera", "front=/a", "--model", "no-such-model"], "neither a registered model"),
    (["--camera", "front=/a", "--domain", "300", "--model", "perceptual"], "domain id"),
])
def test_serve_refuses_bad_arguments_with_one_line(arguments, message, capsys):
    assert main(["serve", "--task", "open the drawer", *arguments]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("robo-reward serve: error:")
