"""Real mp4 files encoded and decoded with PyAV; alignment by timestamp; broken files."""

import numpy as np
import pytest

from robo_reward.data.episodes import VideoEpisode
from robo_reward.data.video import probe_video, read_frames, write_video
from robo_reward.errors import InputError
from robo_reward.sync import ApproximateTimeSync
from robo_reward.types import Sampling, Task


def colour_frames(length: int, size: int = 32) -> np.ndarray:
    frames = np.zeros((length, size, size, 3), dtype=np.uint8)
    for t in range(length):
        frames[t, :, :, 0] = (t * 20) % 256
        frames[t, :, :, 1] = 200
        frames[t, :, :, 2] = 255 - (t * 20) % 256
    return frames


def test_encode_decode_roundtrip_count_stamps_colours(tmp_path):
    frames = colour_frames(12)
    path = write_video(tmp_path / "c.mp4", frames, fps=10)
    info = probe_video(path)
    assert info.num_frames == 12 and (info.width, info.height) == (32, 32)
    assert info.fps == pytest.approx(10)
    np.testing.assert_array_equal(info.timestamps_ns, np.arange(12) * 100_000_000)
    decoded = np.stack(list(read_frames(path, np.arange(12))))
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 6  # lossy yuv420p
    again = list(read_frames(path, np.array([3, 3, 7])))
    np.testing.assert_array_equal(again[0], again[1])
    np.testing.assert_array_equal(again[0], decoded[3])


@pytest.mark.parametrize("suffix,codec,pix_fmt", [(".mkv", "libvpx-vp9", "yuv420p"), (".webm", "libvpx-vp9", "yuv420p"),
                                                   (".mp4", "libx264", "yuv444p")])
def test_other_codecs_and_containers(tmp_path, suffix, codec, pix_fmt):
    path = write_video(tmp_path / f"v{suffix}", colour_frames(6), fps=5, codec=codec, pix_fmt=pix_fmt)
    assert probe_video(path).num_frames == 6
    assert len(list(read_frames(path, np.arange(6)))) == 6


def test_views_with_different_rates_are_cut_into_sets_like_a_live_node(tmp_path):
    fast = write_video(tmp_path / "fast.mp4", colour_frames(20), fps=20)  # 0 … 0.95 s
    slow = write_video(tmp_path / "slow.mp4", colour_frames(5), fps=5)  # 0 … 0.8 s
    episode = VideoEpisode("e", Task("t"), {"front": fast, "wrist": slow})
    stamps = episode.timestamps(Sampling())
    # approximate-time sync uses each message once: one set per 5 Hz frame, with the 20 Hz
    # frame of the same time (slop: half the fastest period)
    np.testing.assert_array_equal(stamps, np.arange(5) * 200_000_000)
    batches = list(episode.iter_batches(2, Sampling()))
    assert [len(b) for b in batches] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([b.frame_index for b in batches]), np.arange(0, 20, 4))
    front = np.concatenate([b.views["front"] for b in batches])
    truth = np.stack(list(read_frames(fast, np.arange(0, 20, 4))))
    np.testing.assert_array_equal(front, truth)
    np.testing.assert_array_equal(episode.timestamps(Sampling(stride=2)), stamps[::2])
    # the sets are the ones robo_reward.sync.ApproximateTimeSync forms when fed live
    live = ApproximateTimeSync(("front", "wrist"), 20, 25_000_000, 1 << 62)
    arrivals = sorted([(t, 0, "front") for t in range(0, 1_000_000_000, 50_000_000)]
                      + [(t, 1, "wrist") for t in range(0, 1_000_000_000, 200_000_000)])
    live_stamps = [s.stamp_ns for t, _, view in arrivals for s in live.add(view, t, t)]
    np.testing.assert_array_equal(stamps, live_stamps)


def test_view_without_frames_in_range(tmp_path):
    early = write_video(tmp_path / "early.mp4", colour_frames(10), fps=10)  # 0 … 0.9 s
    late = write_video(tmp_path / "late.mp4", colour_frames(10), fps=10, start_s=5.0)  # 5 … 5.9 s
    assert probe_video(late).timestamps_ns[0] == 5_000_000_000
    episode = VideoEpisode("e", Task("t"), {"front": early, "wrist": late})
    with pytest.raises(InputError, match=r"view 'wrist' \(.*late\.mp4\) has no frames in the time range"):
        list(episode.iter_batches(4, Sampling()))
    overlapping = write_video(tmp_path / "mid.mp4", colour_frames(10), fps=10, start_s=0.5)  # 0.5 … 1.4 s
    stamps = VideoEpisode("e", Task("t"), {"front": early, "wrist": overlapping}).timestamps(Sampling())
    np.testing.assert_array_equal(stamps, np.arange(5, 10) * 100_000_000)


def test_missing_zero_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        probe_video(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty.mp4"):
        probe_video(empty)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x01not a video at all" * 100)
    with pytest.raises(InputError, match="garbage.mp4"):
        probe_video(garbage)


def test_truncated_video_names_file_and_frame(tmp_path):
    path = write_video(tmp_path / "t.mp4", colour_frames(30, 64), fps=10)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])  # index first (faststart): frames are missing at the end
    with pytest.raises(InputError, match=r"cut\.mp4: truncated video.*frame \d+"):
        probe_video(cut)
    with pytest.raises(InputError, match=r"cut\.mp4: .*frame \d+"):
        list(read_frames(cut, np.arange(30)))
    header = tmp_path / "header_only.mp4"
    header.write_bytes(data[:200])
    with pytest.raises(InputError, match=r"header_only\.mp4: .*(corrupt|truncated)"):
        probe_video(header)
