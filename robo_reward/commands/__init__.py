"""Subcommands of ``robo-reward``, one module each (see robo_reward.cli)."""
