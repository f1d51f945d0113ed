"""HTML + PNG report of a labeled run: metrics, and per episode the fused and per-view
progress (with the uncertainty band), success probability and reward, with frame
thumbnails along the curve."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from robo_reward.labels import EpisodeLabels

OUTCOME_COLORS = {"success": "#2a9d8f", "partial": "#e9c46a", "failure": "#e76f51", None: "#6c757d"}


def plot_episode(labels: EpisodeLabels, path: Path) -> Path:
    """Progress (fused, per view, ± uncertainty), success and reward against time; PNG."""
    t = labels.timestamps_ns / 1e9
    scores = labels.scores
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.8), sharex=True, height_ratios=[2, 1])
    for view, values in scores.per_view.items():
        top.plot(t, values, lw=1, alpha=0.7, label=f"progress · {view}")
    top.plot(t, scores.progress, color="black", lw=2, label="progress · fused")
    top.fill_between(t, scores.progress - scores.uncertainty, scores.progress + scores.uncertainty,
                     color="black", alpha=0.12, label="± uncertainty")
    top.plot(t, scores.success, color="#2a9d8f", ls="--", lw=1.5, label="p(success)")
    top.set_ylim(-0.05, 1.05)
    top.set_ylabel("progress Φ / p")
    top.legend(loc="upper left", fontsize=7, ncol=2)
    top.set_title(f"{labels.episode} — {labels.task} ({labels.outcome or 'outcome unknown'})", fontsize=9)
    bottom.plot(t, labels.reward, color="#264653", lw=1)
    bottom.axhline(0, color="grey", lw=0.5)
    bottom.set_ylabel("reward")
    bottom.set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_overview(results: Sequence[EpisodeLabels], path: Path) -> Path:
    """Fused progress of every episode against normalised time, coloured by outcome; PNG."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    seen = set()
    for labels in results:
        x = np.linspace(0, 1, len(labels.scores.progress))
        label = labels.outcome or "unknown"
        ax.plot(x, labels.scores.progress, color=OUTCOME_COLORS.get(labels.outcome, "#6c757d"), lw=1.3,
                alpha=0.85, label=None if label in seen else label)
        seen.add(label)
    ax.set_xlabel("normalised time")
    ax.set_ylabel("fused progress Φ")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _thumbnail(image: np.ndarray, height: int = 96) -> str:
    pil = Image.fromarray(image)
    pil.thumbnail((height * 4, height))
    buffer = io.BytesIO()
    pil.save(buffer, format="JPEG", quality=80)
    return base64.b64encode(buffer.getvalue()).decode()


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def write_report(folder: Path, results: Sequence[EpisodeLabels], metrics: dict[str, Any], title: str) -> Path:
    """Write ``report.html`` and ``plots/*.png`` into ``folder``; returns the HTML path."""
    plots = folder / "plots"
    plots.mkdir(exist_ok=True)
    plot_overview(results, plots / "overview.png")
    provenance = metrics.get("provenance", {})
    headline = "".join(
        f"<tr><th>{name}</th><td>{_fmt(metrics.get(name))}</td><td>{html.escape(provenance.get(name, ''))}</td></tr>"
        for name in ("voc", "voc_reversed", "success_auroc", "completion_accuracy")
    )
    per_episode = {row["episode"]: row for row in metrics["per_episode"]}
    sections = []
    for index, labels in enumerate(results):
        png = plot_episode(labels, plots / f"episode_{index:04d}.png")
        row = per_episode[labels.episode]
        thumbs = "".join(
            f'<figure><img src="data:image/jpeg;base64,{_thumbnail(image)}"><figcaption>frame {frame}</figcaption></figure>'
            for frame, image in labels.thumbnails
        )
        sections.append(
            f"<section><h2>{html.escape(labels.episode)}</h2>"
            f"<p>task: <b>{html.escape(labels.task)}</b> · outcome: {_fmt(labels.outcome)} · "
            f"frames scored: {row['frames']} · VOC {_fmt(row['voc'])} · final Φ {_fmt(row['final_progress'])} · "
            f"final p(success) {_fmt(row['final_success'])}</p>"
            f'<img class="plot" src="plots/{png.name}"><div class="thumbs">{thumbs}</div></section>'
        )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1000px; }}
table {{ border-collapse: collapse; }} th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: left; }}
.thumbs {{ display: flex; gap: 6px; flex-wrap: wrap; }} figure {{ margin: 0; text-align: center; font-size: 11px; }}
img.plot {{ max-width: 100%; }} section {{ border-top: 1px solid #ddd; margin-top: 1.5em; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<table>{headline}</table>
<p>Episodes: {html.escape(str(metrics['episodes']))}</p>
<img class="plot" src="plots/overview.png">
{''.join(sections)}
</body></html>"""
    path = folder / "report.html"
    path.write_text(page)
    return path
