"""Keypoint tracking speed per view against decoding alone, on the shipped sample's real video.

For each view of the shipped Meta-World sample (128×128 H.264, every eval episode):
decode the episode's frames alone (the baseline), then track ``--points`` points through the
decoded frames with the ``keypoint`` model's tracker (pyramidal Lucas–Kanade, forward–backward
check, appearance check, re-detection of failed points), starting from the first frame's
most trackable points. Prints frames/s of each and their ratio, all measured in one run
(best of ``--repeats``).

    python bench/keypoint_track.py
    python bench/keypoint_track.py --points 8
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from robo_reward.assets import SAMPLE_DIR
from robo_reward.data.episodes import load_manifest
from robo_reward.data.video import read_frames
from robo_reward.models.keypoints.propose import find_candidates
from robo_reward.models.keypoints.track import PointTracker, TrackerConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=3, help="points tracked per view")
    parser.add_argument("--repeats", type=int, default=3, help="best of N timings")
    args = parser.parse_args()
    episodes = load_manifest(SAMPLE_DIR, split="eval")
    views = episodes[0].view_names
    config = TrackerConfig()

    def decode(view: str) -> tuple[float, list[np.ndarray]]:
        best, clips = float("inf"), []
        for _ in range(args.repeats):
            start = time.perf_counter()
            clips = [np.stack(list(read_frames(e.views[view], np.arange(e.infos[view].num_frames)))) for e in episodes]
            best = min(best, time.perf_counter() - start)
        return best, clips

    def track(clips: list[np.ndarray]) -> float:
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            for frames in clips:
                tracker = PointTracker(frames[0], find_candidates(frames[0], args.points), config)
                for image in frames[1:]:
                    tracker.update(image)
            best = min(best, time.perf_counter() - start)
        return best

    print(f"keypoint tracking on the shipped sample ({SAMPLE_DIR.name}): {len(episodes)} eval episodes, "
          f"{args.points} points per view, tracker {config}")
    for view in views:
        decode_s, clips = decode(view)
        frames = sum(len(c) for c in clips)
        size = clips[0].shape[1:3]
        track_s = track(clips)
        print(f"  {view:<10} {size[0]}×{size[1]}: decode {frames / decode_s:8.1f} frames/s, track "
              f"{frames / track_s:8.1f} frames/s = {decode_s / track_s:.1f}× decoding; decode + track "
              f"{frames / (decode_s + track_s):8.1f} frames/s ({frames} frames)")


if __name__ == "__main__":
    main()
