"""``keypoint``: keypoint affordance guidance (KAGI; Lee, Xie, Fang, Pertsch, Finn 2024,
arXiv 2407.10341) behind the common reward-model interface.

* :mod:`.track` — pyramidal Lucas–Kanade point tracking with a forward–backward check,
  an appearance check and template re-detection, a confidence per point;
* :mod:`.progress` — the waypoint index reached (with hysteresis) and progress Φ;
* :mod:`.propose` — a VLM picks keypoints among numbered candidates on the first frame;
* :mod:`.model` — the reward model (registered as ``keypoint``): tracked pixels lifted to
  3D with depth and calibration (:mod:`robo_reward.geometry`), fused across views.

``docs/keypoints.md`` describes the spec, the protocol, the settings and the measurements.
"""
