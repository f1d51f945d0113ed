"""The live path, free of any transport: time synchronisation of camera streams
(:mod:`~robo_reward.sync`), bounded drop-oldest queues and micro-batching
(:mod:`~robo_reward.stream.queues`), rolling statistics (:mod:`~robo_reward.stream.stats`)
and the runner loop that scores, shapes and publishes (:mod:`~robo_reward.stream.runner`).
"""

from robo_reward.stream.runner import Frame, LiveRewardStream, RewardRecord, StreamConfig
from robo_reward.sync import ApproximateTimeSync, SyncedSet

__all__ = ["ApproximateTimeSync", "Frame", "LiveRewardStream", "RewardRecord", "StreamConfig", "SyncedSet"]
