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


def test_serve_reads_the_launch_files_parameters_and_later_flags_win(tmp_path):
    from pathlib import Path

    from robo_reward.cli import build_parser

    launch = Path(__file__).resolve().parents[1] / "launch" / "reward_params.yaml"
    parse = build_parser().parse_args
    args = parse(["serve", "--params-file", str(launch), "--view", "front=/x", "--task", "t", "--slop", "0.2"])
    assert args.slop == 0.2 and args.max_batch == 8 and args.stale_timeout == 0.5 and args.view == ["front=/x"]
    mine = tmp_path / "params.yaml"
    mine.write_text("/**:\n  ros__parameters:\n    views: [front=/cam/a, wrist=/cam/b]\n    task: open the drawer\n"
                    "    slop: 0.02\n    model_options: 'batch_size=4,seed=1'\n")
    args = parse(["serve", "--slop", "0.3", "--params-file", str(mine)])
    assert args.slop == 0.02 and args.view == ["front=/cam/a", "wrist=/cam/b"] and args.task == "open the drawer"
    assert args.option == ["batch_size=4", "seed=1"]
    mine.write_text("/**:\n  ros__parameters:\n    slopp: 0.02\n")
    with pytest.raises(SystemExit) as unknown:
        parse(["serve", "--params-file", str(mine), "--task", "t", "--view", "a=/x"])
    with pytest.raises(SystemExit) as missing:
        parse(["serve", "--params-file", str(tmp_path / "missing.yaml"), "--task", "t"])
    assert (unknown.value.code, missing.value.code) == (2, 1)
    assert main(["serve", "--view", "a=/x"]) == 2  # no task, neither flag nor file
