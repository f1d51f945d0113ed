"""Episode-level evaluation of labeled runs: VOC, reversed VOC, success AUROC, completion accuracy."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robo_reward.atomic import atomic_path
from robo_reward.errors import InputError
from robo_reward.metrics import auroc, completion_accuracy, voc

METRICS_FILE = "metrics.json"
FINAL_WINDOW = 3  # scored samples averaged for an episode's final success probability


def _mean_or_none(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def reversed_progress(group: pd.DataFrame) -> np.ndarray | None:
    """Progress along the episode played backwards, as scored on the reversed episode
    (``progress_reversed``, written by ``label --score-reversed``), in reversed frame
    order; None when the run did not score it. Never derived from the forward scores."""
    column = "progress_reversed"
    if column in group and group[column].notna().all():
        return group[column].to_numpy()[::-1]
    return None


def episode_summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per episode: outcome, length, VOC, reversed VOC, final progress and success."""
    rows = []
    for name, group in table.groupby("episode", sort=False):
        group = group.sort_values("frame_index")
        progress = group["progress"].to_numpy()
        rows.append(
            {
                "episode": name,
                "outcome": group["outcome"].iloc[0],
                "frames": len(group),
                "voc": voc(progress),
                "voc_reversed": None if (backwards := reversed_progress(group)) is None else voc(backwards),
                "final_progress": float(progress[-FINAL_WINDOW:].mean()),
                "final_success": float(group["success"].to_numpy()[-FINAL_WINDOW:].mean()),
            }
        )
    return pd.DataFrame(rows)


def compute_metrics(table: pd.DataFrame) -> dict[str, Any]:
    """Metrics of a labeled run (a scores.parquet table); null where labels are absent.

    * voc / voc_reversed: mean Spearman ρ of progress vs frame index over successful
      episodes, forward and reversed (reversed: only where the reversed episodes were
      scored, else null);
    * success_auroc: AUROC of the final success probability, success vs partial + failure;
    * completion_accuracy: final success probability > ½ agrees with outcome == success.

    ``provenance`` says how each metric was obtained, or why it is null.
    """
    summary = episode_summary(table)
    known = summary[summary["outcome"].notna()]
    successes = known[known["outcome"] == "success"]
    completed = (known["outcome"] == "success").to_numpy()
    both_classes = completed.any() and (~completed).any()
    counts = {o: int((known["outcome"] == o).sum()) for o in ("success", "partial", "failure")}
    reversed_scored = bool(len(successes)) and successes["voc_reversed"].notna().all()
    provenance = {
        "voc": "Spearman ρ of the forward-scored progress vs frame index, mean over success episodes",
        "voc_reversed": "the same on the reversed episodes, scored for real (last set as the first)"
        if reversed_scored else "not measured: label with --score-reversed to score the reversed episodes",
        "success_auroc": f"final success probability (mean of the last {FINAL_WINDOW} scored frames), "
        "success vs partial + failure" if both_classes else "not measured: needs success and non-success episodes",
        "completion_accuracy": f"final success probability > 0.5 vs outcome == success, over {len(known)} "
        "episodes with a known outcome" if len(known) else "not measured: no episode has a known outcome",
    }
    return {
        "voc": _mean_or_none(successes["voc"].tolist()),
        "voc_reversed": _mean_or_none(successes["voc_reversed"].tolist()) if reversed_scored else None,
        "success_auroc": auroc(known["final_success"], completed) if both_classes else None,
        "completion_accuracy": completion_accuracy(known["final_success"], completed) if len(known) else None,
        "episodes": counts | {"unlabeled": int(summary["outcome"].isna().sum())},
        "provenance": provenance,
        "per_episode": json.loads(summary.to_json(orient="records")),
    }


def write_metrics(metrics: dict[str, Any], folder: Path) -> Path:
    path = Path(folder) / METRICS_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))
    return path


def read_metrics(folder: str | Path) -> dict[str, Any]:
    """The metrics a labeled run wrote (``metrics.json``)."""
    return json.loads((Path(folder) / METRICS_FILE).read_text())


def load_scores(run: str | Path) -> pd.DataFrame:
    path = Path(run)
    path = path / "scores.parquet" if path.is_dir() else path
    if not path.is_file():
        raise InputError(f"no labeled run at {run}: {path} not found (run `robo-reward label` first)")
    return pd.read_parquet(path)


def format_metrics(metrics: dict[str, Any]) -> str:
    """A plain-text table of the headline metrics and the per-episode rows."""

    def fmt(value: Any) -> str:
        return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.3f}"

    provenance = metrics.get("provenance", {})
    lines = [f"{'metric':<22}{'value':>10}   how it was obtained"]
    for name in ("voc", "voc_reversed", "success_auroc", "completion_accuracy"):
        lines.append(f"{name:<22}{fmt(metrics[name]):>10}   {provenance.get(name, '')}".rstrip())
    lines += [
        "",
        f"{'episode':<36}{'outcome':>9}{'frames':>8}{'voc':>8}{'final Φ':>9}{'final p(succ)':>15}",
    ]
    for row in metrics["per_episode"]:
        lines.append(
            f"{row['episode'][:35]:<36}{row['outcome'] or '-'!s:>9}{row['frames']:>8}"
            f"{fmt(row['voc']):>8}{fmt(row['final_progress']):>9}{fmt(row['final_success']):>15}"
        )
    return "\n".join(lines)
