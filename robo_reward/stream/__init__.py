"""The live path, free of any transport: time synchronisation of camera streams
(:mod:`~robo_reward.sync`), bounded drop-oldest queues and micro-batching
(:mod:`~robo_reward.stream.queues`), rolling statistics (:mod:`~robo_reward.stream.stats`)
the options and records (:mod:`~robo_reward.stream.records`), decoding and stacking sets
into batches (:mod:`~robo_reward.stream.batching`), the counters and their snapshot
(:mod:`~robo_reward.stream.diagnostics`) and the runner loop that scores, shapes and
publishes (:mod:`~robo_reward.stream.runner`).
"""

from robo_reward.stream.records import Frame, RewardRecord, StreamConfig
from robo_reward.stream.runner import LiveRewardStream
from robo_reward.sync import ApproximateTimeSync, SyncedSet

__all__ = ["ApproximateTimeSync", "Frame", "LiveRewardStream", "RewardRecord", "StreamConfig", "SyncedSet"]
