"""Data shipped with the package: the Meta-World sample and the embedded default model.

* :data:`SAMPLE_DIR` — scripted Meta-World ``drawer-open-v3`` episodes, two views
  (made by ``datasets/metaworld_sample/make_sample.py``).
* :data:`DEFAULT_MODEL` — the embedded default reward model checkpoint (see
  ``docs/models.md`` for the command that made it).
"""

from pathlib import Path

ASSETS = Path(__file__).parent
SAMPLE_DIR = ASSETS / "metaworld_sample"
DEFAULT_MODEL = ASSETS / "perceptual_drawer_open.pt"
