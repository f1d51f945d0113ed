"""Reward models in the RL loop with stable-baselines3 (imports SB3 lazily).

* :class:`robo_reward.rl.views.ViewsToInfo` — a gymnasium wrapper that moves camera
  views from the observation into ``info`` so the learner sees only the state.
* :class:`robo_reward.rl.vec_reward.VecRewardModel` — scores every env's views in one
  batch per step and shapes rewards (or defers scoring to replay-buffer relabeling).
* :class:`robo_reward.rl.relabel.RelabelCallback` — rewrites the replay buffer's rewards
  after each rollout (the VLM-RM pattern).
"""
