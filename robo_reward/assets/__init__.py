"""Data shipped with the package: the Meta-World sample and the embedded default model.

* :data:`SAMPLE_DIR` — scripted Meta-World ``drawer-open-v3`` episodes, two views
  (made by ``datasets/metaworld_sample/make_sample.py``).
* :data:`DEFAULT_MODEL` — the embedded default: a ``progress`` model trained on
  scripted demos of the 45 ML45 training tasks (``docs/progress_model.md``).
* :data:`PERCEPTUAL_DRAWER_OPEN` — a few-shot ``perceptual`` model of the sample task
  (``docs/models.md``).
"""

from pathlib import Path

ASSETS = Path(__file__).parent
SAMPLE_DIR = ASSETS / "metaworld_sample"
DEFAULT_MODEL = ASSETS / "progress_ml45.pt"
PERCEPTUAL_DRAWER_OPEN = ASSETS / "perceptual_drawer_open.pt"
