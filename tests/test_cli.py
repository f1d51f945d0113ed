"""`robo-reward` end to end on real encoded video: fit, label, eval, and bad input."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import moving_square_frames

from robo_reward.cli import main
from robo_reward.data.video import write_video


@pytest.fixture(scope="module")
def square_model(square_episodes, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "squares.pt"
    assert main(["fit", "perceptual", "--demos", str(square_episodes), "--split", "fit", "--out", str(path),
                 "--option", "num_steps=3", "--option", "features=pixels:12"]) == 0
    return path


def test_fit_label_eval_end_to_end(square_episodes, square_model, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["label", "--episodes", str(square_episodes), "--split", "eval", "--model", str(square_model),
                 "--out", str(out), "--stride", "2"]) == 0
    table = pd.read_parquet(out / "scores.parquet")
    assert set(table["episode"]) == {"ok0", "ok1", "half0", "half1", "fail0", "fail1"}
    assert {"progress.front", "progress.side", "reward", "success", "timestamp_ns"} <= set(table.columns)
    ok0 = table[table.episode == "ok0"]
    np.testing.assert_array_equal(ok0["frame_index"], np.arange(0, 32, 2))
    # shaped reward of each row = γ²Φ(next) − Φ(this): with --stride 2 a row spans two frames
    progress = ok0["progress"].to_numpy()
    np.testing.assert_allclose(ok0["reward"].to_numpy()[:-1], 0.99**2 * progress[1:] - progress[:-1])
    html = (out / "report.html").read_text()
    assert "voc" in html and "data:image/jpeg;base64" in html and (out / "plots" / "overview.png").is_file()
    capsys.readouterr()
    assert main(["eval", str(out)]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["voc"] > 0.8
    assert metrics["voc_reversed"] is None and "--score-reversed" in metrics["provenance"]["voc_reversed"]
    assert "not measured" in printed
    assert metrics["success_auroc"] == 1.0 and metrics["completion_accuracy"] == 1.0
    assert f"{metrics['voc']:.3f}" in printed


def test_label_views_with_clip_random_weights(square_episodes, tiny_clip_arch, tmp_path):
    out = tmp_path / "clip"
    views = json.loads((square_episodes / "episodes.json").read_text())["episodes"][0]["views"]
    args = ["label", "--task", "slide the square", "--model", "clip", "--arch", tiny_clip_arch,
            "--pretrained", "none", "--device", "cpu", "--reward", "progress", "--out", str(out)]
    for view, rel in views.items():
        args += ["--view", f"{view}={square_episodes / rel}"]
    assert main(args) == 0
    table = pd.read_parquet(out / "scores.parquet")
    # --reward progress: row t rewards the transition into frame t+1 with Φ(s_{t+1}) (VLM-RM);
    # the last row is a truncation, s_T = s_{T-1}
    progress = table["progress"].to_numpy()
    np.testing.assert_allclose(table["reward"], np.append(progress[1:], progress[-1]))
    assert "RANDOM WEIGHTS" in json.loads((out / "run.json").read_text())["model"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robo_reward.cli", *args], capture_output=True, text=True,
                          timeout=120)


def assert_refused(result: subprocess.CompletedProcess, out, *needles: str, code: int = 1) -> None:
    """Refused with exit code ``code`` (1: bad input or a failure, 2: a wrong command line), a message
    holding every needle, and nothing written."""
    assert result.returncode == code, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert not out.exists(), "nothing may be written on error"
    assert not any(p.name.startswith(f".{out.name}.") for p in out.parent.iterdir()), "temporary left behind"


@pytest.fixture()
def good_video(tmp_path):
    return write_video(tmp_path / "good.mp4", moving_square_frames(10), fps=10)


def test_bad_inputs_exit_nonzero_and_write_nothing(tmp_path, good_video, square_model):
    out = tmp_path / "out"
    base = ["label", "--model", str(square_model), "--out", str(out)]
    assert_refused(run_cli(*base, "--view", f"front={tmp_path / 'missing.mp4'}", "--view", f"side={good_video}",
                           "--task", "t"), out, "missing.mp4", "not found")
    truncated = tmp_path / "cut.mp4"
    data = write_video(tmp_path / "long.mp4", moving_square_frames(40, 64), fps=10).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    assert_refused(run_cli(*base, "--view", f"front={truncated}", "--view", f"side={good_video}", "--task", "t"),
                   out, "cut.mp4", "frame")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    assert_refused(run_cli(*base, "--view", f"front={empty}", "--view", f"side={good_video}", "--task", "t"),
                   out, "empty.mp4")
    late = write_video(tmp_path / "late.mp4", moving_square_frames(10), fps=10, start_s=30)
    assert_refused(run_cli(*base, "--view", f"front={good_video}", "--view", f"side={late}", "--task", "t"),
                   out, "view 'side'", "late.mp4", "no frames in the time range")
    assert_refused(run_cli(*base, "--view", f"front={good_video}", "--view", f"side={good_video}", "--task", " "),
                   out, "empty task")


def test_nan_from_model_exits_nonzero_and_writes_nothing(tmp_path, square_episodes, square_model):
    bad = tmp_path / "nan.pt"
    payload = torch.load(square_model, weights_only=False)
    payload["state"]["views"]["side"]["sigma"][:] = np.nan
    torch.save(payload, bad)
    out = tmp_path / "out"
    result = run_cli("label", "--episodes", str(square_episodes), "--split", "eval", "--model", str(bad),
                     "--out", str(out))
    assert_refused(result, out, "non-finite progress", "episode 'ok0'", "frame(s) [0,", "view 'side'")


def test_existing_output_is_refused_unless_overwrite(tmp_path, square_episodes, square_model):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["label", "--episodes", str(square_episodes), "--split", "eval", "--model", str(square_model),
            "--out", str(out)]
    assert main(args) == 1
    assert (out / "keep.txt").read_text() == "mine"
    assert main([*args, "--overwrite"]) == 0
    assert (out / "scores.parquet").is_file() and not (out / "keep.txt").exists()


@pytest.mark.parametrize("command", ["label", "fit", "eval", "demo"])
def test_help_has_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "examples:" in capsys.readouterr().out



@pytest.mark.parametrize("arguments, message", [
    ([], "choose exactly one input"),
    (["--view", "front"], "--view needs NAME=PATH"),
    (["--view", "front=a.mp4"], "give --task with --view"),
    (["--view", "front=a.mp4", "--task", "t", "--episodes", "EPISODES"], "choose exactly one input"),
    (["--episodes", "EPISODES", "--score-reversed", "--engine", "ray"], "--score-reversed runs on the local engine"),
    (["--episodes", "EPISODES", "--model", "perceptual", "--option", "num_steps"], "needs KEY=VALUE"),
    (["--episodes", "EPISODES", "--model", "perceptual", "--option", "nope=1"], "unknown option 'nope'"),
    (["--episodes", "EPISODES", "--model", "perceptual", "--option", "num_steps=many"], "expected int"),
    (["--episodes", "EPISODES", "--model", "perceptual", "--arch", "ViT-B-32"], "does not apply"),
    (["--episodes", "EPISODES", "--option", "epochs=2"], "cannot be applied to the checkpoint"),
])
def test_wrong_command_lines_exit_2(arguments, message, square_episodes, tmp_path, capsys):
    out = tmp_path / "out"
    arguments = [str(square_episodes) if a == "EPISODES" else a for a in arguments]
    assert main(["label", *arguments, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("robo-reward label: error:") and message in err, err
    assert not out.exists()


def test_argparse_errors_exit_2_and_bad_input_or_failures_exit_1(square_episodes, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["label", "--episodes", str(square_episodes), "--stride", "two", "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    capsys.readouterr()
    for arguments, message in [
        (["label", "--episodes", str(tmp_path / "none"), "--out", str(tmp_path / "o")], "episode manifest not found"),
        (["label", "--episodes", str(square_episodes), "--model", "no-such-model", "--out", str(tmp_path / "o")],
         "neither a registered model"),
        (["label", "--episodes", str(square_episodes), "--gamma", "2", "--out", str(tmp_path / "o")], "gamma"),
        (["fit", "clip", "--episodes", str(square_episodes), "--out", str(tmp_path / "m.pt")],
         "does not learn from demonstrations"),
    ]:
        assert main(arguments) == 1, arguments
        assert message in capsys.readouterr().err
    assert main(["fit", "perceptual", "--out", str(tmp_path / "m.pt")]) == 2
    assert "choose exactly one input" in capsys.readouterr().err


def test_fit_takes_the_inputs_of_label(square_episodes, tmp_path, capsys):
    """fit reads --view … --task (one demo) and --episodes (its successful entries; --demos is the same flag)."""
    manifest = json.loads((square_episodes / "episodes.json").read_text())
    ok0 = next(e for e in manifest["episodes"] if e["name"] == "ok0")
    views = [a for view, rel in ok0["views"].items() for a in ("--view", f"{view}={square_episodes / rel}")]
    options = ["--option", "num_steps=2", "--option", "features=pixels:8"]
    one = tmp_path / "one.pt"
    assert main(["fit", "perceptual", *views, "--task", "slide the square", "--out", str(one), *options]) == 0
    assert "on 1 demos" in capsys.readouterr().out
    assert main(["fit", "perceptual", "--episodes", str(square_episodes), "--out", str(tmp_path / "all.pt"),
                 *options]) == 0
    successes = sum(e["outcome"] == "success" for e in manifest["episodes"])
    assert f"on {successes} demos" in capsys.readouterr().out and successes < len(manifest["episodes"])
    out = tmp_path / "run"
    assert main(["label", *views, "--task", "slide the square", "--model", str(one), "--out", str(out),
                 "--no-report"]) == 0
    assert len(pd.read_parquet(out / "scores.parquet")) == 32


def test_train_set_is_checked_like_option(capsys):
    """--set KEY=VALUE sets a key of the run (a TrainArgs field); unknown keys and values that do not
    parse are wrong command lines, refused before any training."""
    assert main(["train", "--set", "nope=1"]) == 2
    assert "KEY one of" in capsys.readouterr().err
    assert main(["train", "--set", "seed=abc"]) == 2
    assert "expected int" in capsys.readouterr().err


def test_prefetch_decodes_in_a_child_process_with_the_same_labels(square_episodes, square_model, tmp_path):
    outs = {}
    for name, extra in (("serial", []), ("prefetch", ["--prefetch"])):
        outs[name] = tmp_path / name
        assert main(["label", "--episodes", str(square_episodes), "--model", str(square_model), "--no-report",
                     "--score-reversed", "--batch-size", "5", "--out", str(outs[name]), *extra]) == 0
    serial, prefetched = (pd.read_parquet(outs[n] / "scores.parquet") for n in ("serial", "prefetch"))
    pd.testing.assert_frame_equal(serial, prefetched)


def test_prefetch_reports_bad_input_from_the_child_and_writes_nothing(tmp_path, good_video, square_model):
    truncated = tmp_path / "cut.mp4"
    data = write_video(tmp_path / "long.mp4", moving_square_frames(40, 64), fps=10).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    assert_refused(run_cli("label", "--model", str(square_model), "--out", str(out), "--prefetch",
                           "--view", f"front={truncated}", "--view", f"side={good_video}", "--task", "t"),
                   out, "cut.mp4", "frame")


def test_boolean_and_typed_options_refuse_what_does_not_parse():
    from dataclasses import dataclass

    from robo_reward.errors import UsageError
    from robo_reward.models.options import parse_options

    @dataclass
    class Config:
        flag: bool = False
        size: int = 1
        names: tuple[str, ...] = ()

    assert parse_options(Config, ["flag=yes", "size=3", "names=a,b"]) == {"flag": True, "size": 3, "names": ("a", "b")}
    assert parse_options(Config, ["flag=off"]) == {"flag": False}
    for bad in ("flag=flase", "size=three", "colour=red", "flag"):
        with pytest.raises(UsageError):
            parse_options(Config, [bad])
