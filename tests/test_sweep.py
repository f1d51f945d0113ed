"""The RL sweep's bookkeeping (sim/experiments.py): finished runs are kept and skipped,
a results file made with other settings is refused, and the report's figures come from
the runs (steps to 80 %, intervals over seeds)."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_generated_docs import script

experiments = script("experiments")


def run(success: list[float], wall: float = 60.0) -> dict:
    return {"steps": [1000 * (i + 1) for i in range(len(success))], "success_rate": success, "wall_clock_s": wall}


def test_finished_runs_are_skipped_and_other_settings_refused(tmp_path, capsys):
    args = experiments.SweepArgs(results=tmp_path / "results.json", out=tmp_path / "work", tasks=("drawer-open-v3",),
                                 rows=("dense",), seeds=2)
    results = experiments.load_results(args.results, args)
    for seed in range(2):
        results["runs"][f"drawer-open-v3/dense/seed{seed}"] = run([0.0, 0.5])
    experiments.save_results(args.results, results)
    experiments.sweep(args)  # nothing to do: no demos recorded, no run started
    assert "0 runs to do, 2 already" in capsys.readouterr().out
    assert not (tmp_path / "work").exists()
    with pytest.raises(SystemExit, match="other --results file or the same settings"):
        experiments.load_results(args.results, experiments.SweepArgs(steps=999))


def test_the_plan_lists_the_missing_runs_seed_by_seed_with_their_recorded_cost(tmp_path):
    args = experiments.SweepArgs(results=tmp_path / "results.json", out=tmp_path / "work",
                                 tasks=("drawer-open-v3", "door-open-v3"), rows=("dense", "sparse+demos"), seeds=2)
    results = experiments.load_results(args.results, args)
    results["runs"]["drawer-open-v3/dense/seed0"] = run([0.0], wall=600.0)
    results["runs"]["door-open-v3/sparse+demos/seed0"] = run([0.0], wall=120.0)
    experiments.save_results(args.results, results)
    header, *lines = experiments.plan(args, experiments.load_results(args.results, args)).splitlines()
    assert header.startswith("6 runs to do, 2 already") and header.endswith("2 of them about 12 min of runs in all")
    assert [line.split(":")[0].strip() for line in lines] == [
        "drawer-open-v3/sparse+demos/seed0", "door-open-v3/dense/seed0",
        "drawer-open-v3/dense/seed1", "drawer-open-v3/sparse+demos/seed1",
        "door-open-v3/dense/seed1", "door-open-v3/sparse+demos/seed1"]
    assert lines[2].endswith("about 10 min, as its 1 recorded run(s)") and lines[0].endswith("not run before")
    assert not (tmp_path / "work").exists()


def add_runs(results: str, first: int, start: Any) -> None:
    """Fifty finished runs added one by one, as a sweep in another process would, once every
    such process is ready (module-level: multiprocessing unpickles it)."""
    args = experiments.SweepArgs(results=Path(results))
    start.wait()
    for seed in range(first, first + 50):
        experiments.add_run(args.results, args, f"drawer-open-v3/dense/seed{seed}", run([0.0]))


def test_sweeps_side_by_side_on_one_results_file_keep_each_others_runs(tmp_path):
    args = experiments.SweepArgs(results=tmp_path / "results.json")
    experiments.add_run(args.results, args, "door-open-v3/dense/seed0", run([1.0]))
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    processes = [context.Process(target=add_runs, args=(str(args.results), first, start)) for first in (100, 200)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    runs = experiments.load_results(args.results, args)["runs"]
    assert len(runs) == 101 and "door-open-v3/dense/seed0" in runs


def fail_on_seed1(config) -> dict:
    """A run that breaks on seed 1 (module-level: the sweep's worker processes unpickle it)."""
    if config.seed == 1:
        raise RuntimeError("simulated crash")
    return run([0.0, 1.0])


def test_a_failed_run_is_reported_and_the_others_are_still_recorded(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(experiments, "run_one", fail_on_seed1)
    args = experiments.SweepArgs(results=tmp_path / "results.json", out=tmp_path / "work", tasks=("drawer-open-v3",),
                                 rows=("dense",), seeds=3, workers=2)
    with pytest.raises(SystemExit, match="1 run\\(s\\) failed and were not recorded: drawer-open-v3/dense/seed1"):
        experiments.sweep(args)
    assert "seed1: FAILED (RuntimeError: simulated crash)" in capsys.readouterr().out
    recorded = experiments.load_results(args.results, args)["runs"]
    assert sorted(recorded) == ["drawer-open-v3/dense/seed0", "drawer-open-v3/dense/seed2"]


def test_the_report_reads_steps_to_80_percent_and_intervals_from_the_runs():
    results = {"settings": experiments.SweepArgs().fingerprint(), "runs": {
        "drawer-open-v3/shaped-progress/seed0": run([0.2, 0.9, 1.0], wall=120.0),
        "drawer-open-v3/shaped-progress/seed1": run([0.0, 0.7, 1.0], wall=180.0),
        "drawer-open-v3/dense/seed0": run([0.0, 0.0, 0.1]),
    }}
    table = experiments.report(results, figure=None)
    shaped = next(line for line in table.splitlines() if "shaped (progress model)" in line)
    # mean over seeds: 0.1, 0.8, 1.0 → 80 % first reached at the second evaluation
    assert "| 2 k |" in shaped and "1.00 [1.00, 1.00] at 3 k" in shaped and "2.5 min" in shaped
    dense = next(line for line in table.splitlines() if "dense, no demos" in line)
    assert "not within 3 k" in dense and "| 1 |" in dense
    low, high = experiments.interval(np.array([0.6, 0.8, 1.0]))
    assert low == pytest.approx(0.8 - 4.303 * 0.2 / np.sqrt(3), abs=1e-3) and high == 1.0


def test_the_learner_table_averages_the_logged_scalars_over_seeds_at_fixed_steps():
    logs = [{"ent_coef": [[800, 0.9], [4800, 0.3], [9600, 0.06], [14400, 0.02]], "q_abs_mean": [[800, 0.4], [9600, 0.2]],
             "bc_mse": [[800, 0.4], [14400, 0.04]]},
            {"ent_coef": [[800, 0.7], [4800, 0.1], [9600, 0.02], [14400, 0.0]], "q_abs_mean": [[800, 0.2], [9600, 0.4]],
             "bc_mse": [[800, 0.2], [14400, 0.02]]}]
    results = {"settings": experiments.SweepArgs().fingerprint(), "runs": {
        "drawer-open-v3/sparse+demos/seed0": {**run([0.0]), "learner": logs[0]},
        "drawer-open-v3/sparse+demos/seed1": {**run([0.0]), "learner": logs[1]},
        "drawer-open-v3/dense/seed0": {**run([0.0]), "learner": {"ent_coef": [[800, 0.5]], "q_abs_mean": [[800, 3.0]]}},
        "drawer-open-v3/dense+demos/seed0": run([1.0]),  # recorded before runs kept their learner's log
    }}
    table = experiments.learner_report(results).splitlines()
    assert table[0].startswith("| task | reward | seeds | temperature α at 1 / 5 / 10 / 15 k |")
    sparse = next(line for line in table if "sparse, demos" in line)
    # at 1 k the values logged at 800, at 5 k those at 4800, at 10 k those at 9600, at 15 k at 14400
    assert "| 2 | 0.8 / 0.2 / 0.04 / 0.01 | 0.3 / 0.3 / 0.3 / 0.3 | 0.3 / 0.3 / 0.3 / 0.03 |" in sparse
    dense = next(line for line in table if "dense, no demos" in line)
    assert dense.endswith("| 1 | 0.5 / 0.5 / 0.5 / 0.5 | 3 / 3 / 3 / 3 | – |")
    assert not any("dense, demos" in line for line in table)
    assert experiments.learner_report({**results, "runs": {"drawer-open-v3/dense+demos/seed0": run([1.0])}}) is None


def test_recorded_runs_get_the_learner_log_of_their_own_run_folder_only(tmp_path, capsys):
    from torch.utils.tensorboard import SummaryWriter  # the writer SB3's tensorboard logger uses

    args = experiments.SweepArgs(results=tmp_path / "results.json", out=tmp_path / "work")
    results = experiments.load_results(args.results, args)
    for seed, config in enumerate(({"seed": 0, "algo": "rlpd"}, {"seed": 1, "algo": "rlpd"})):
        key = f"drawer-open-v3/sparse+demos/seed{seed}"
        results["runs"][key] = {**run([0.0, 1.0]), "config": config}
        folder = args.out / "runs" / key
        writer = SummaryWriter(str(folder / "tb" / "rlpd_1"))
        for step, temperature in ((800, 0.9), (1600, 0.7)):
            writer.add_scalar("train/ent_coef", temperature, step)
        writer.close()
        on_disk = {**config, "out": str(folder), "progress_bar": False}
        if seed == 1:
            on_disk["seed"] = 7  # another run wrote this folder
        (folder / "config.json").write_text(json.dumps(on_disk))
    experiments.save_results(args.results, results)
    experiments.add_learner_records(args)
    runs = experiments.load_results(args.results, args)["runs"]
    assert runs["drawer-open-v3/sparse+demos/seed0"]["learner"]["ent_coef"] == [[800, 0.9], [1600, 0.7]]
    assert "learner" not in runs["drawer-open-v3/sparse+demos/seed1"]
    assert runs["drawer-open-v3/sparse+demos/seed0"]["success_rate"] == [0.0, 1.0]
    assert "seed1: its config.json is not the recorded run's" in capsys.readouterr().out


def test_the_comparison_takes_the_seeds_both_files_hold_and_names_the_changed_setting():
    base = {"settings": experiments.SweepArgs().fingerprint(), "runs": {
        "drawer-open-v3/sparse+demos/seed0": run([0.0, 0.5, 0.9]),
        "drawer-open-v3/sparse+demos/seed1": run([0.0, 0.0, 0.0]),  # only in the base: not compared
        "door-open-v3/sparse+demos/seed0": run([0.0, 0.0, 0.0]),
    }}
    other = {"settings": experiments.SweepArgs(extra={"init_temperature": 0.01}).fingerprint(), "runs": {
        "drawer-open-v3/sparse+demos/seed0": run([0.8, 1.0, 1.0]),
        "door-open-v3/sparse+demos/seed0": run([0.0, 0.9, 1.0]),
        "button-press-topdown-v3/sparse+demos/seed0": run([1.0, 1.0, 1.0]),  # not in the base
    }}
    table = experiments.comparison_report(base, other).splitlines()
    assert table[0] == "Settings changed: extra {} → {'init_temperature': 0.01}."
    assert "| drawer-open-v3 | sparse, demos | 0 | 3 k → 1 k | 0.90 → 1.00 |" in table
    assert "| door-open-v3 | sparse, demos | 0 | not within 3 k → 2 k | 0.00 → 1.00 |" in table
    assert not any("button-press" in line for line in table)
    assert experiments.comparison_report(base, {**other, "runs": {}}) is None
