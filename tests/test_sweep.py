"""The RL sweep's bookkeeping (sim/experiments.py): finished runs are kept and skipped,
a results file made with other settings is refused, and the report's figures come from
the runs (steps to 80 %, intervals over seeds)."""

from __future__ import annotations

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
