"""Tables in the docs are generated from committed results files: each generated block
equals what its script makes from the file now, so a table cannot drift from its data."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from robo_reward.atomic import marked_block

ROOT = Path(__file__).resolve().parents[1]


def script(name: str):
    path = ROOT / "sim" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"sim_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_progress_evaluation_table_is_its_results_file():
    evaluation = script("eval_progress")
    results = json.loads((ROOT / "sim" / "results" / "progress_ml45_eval.json").read_text())
    assert marked_block(ROOT / "docs" / "progress_model.md", evaluation.DOCS_BLOCK) == evaluation.markdown(results)


COMPARED_WITH = {"rl_sweep_init_temperature": "rl_sweep",
                 "rl_sweep_dense_30k_init_temperature": "rl_sweep_dense_30k"}
"""Results files of one changed setting, and the sweep docs/sim.md compares them with."""


@pytest.mark.parametrize("name", ["rl_sweep", "rl_sweep_dense_30k", "rl_sweep_init_temperature",
                                  "rl_sweep_dense_30k_init_temperature"])
def test_the_rl_sweep_tables_are_their_results_files(name):
    pytest.importorskip("scipy")
    experiments = script("experiments")
    results_file = ROOT / "sim" / "results" / f"{name}.json"
    if not results_file.is_file():
        pytest.fail(f"{results_file} is missing: docs/sim.md's table has no data")
    results = json.loads(results_file.read_text())
    block = experiments.docs_block(results_file)
    assert marked_block(ROOT / "docs" / "sim.md", block) == experiments.report(results, figure=None)
    learner = experiments.learner_report(results)
    if learner is not None:
        assert marked_block(ROOT / "docs" / "sim.md", f"{block}-learner") == learner
    if name in COMPARED_WITH:
        base = ROOT / "sim" / "results" / f"{COMPARED_WITH[name]}.json"
        comparison = experiments.comparison_report(json.loads(base.read_text()), results)
        assert marked_block(ROOT / "docs" / "sim.md", f"{block}-vs-{experiments.docs_block(base)}") == comparison
