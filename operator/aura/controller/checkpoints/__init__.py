"""Checkpoints of Agents: AgentCheckpoint, AgentRestore, clones and schedules.

store.py       reads and writes of the Aura kinds (Agents, checkpoints, restores)
labels.py      the labels on every snapshot image, and their selectors
hold.py        an Agent held by a checkpoint or restore: its power and delete wait
checkpoint.py  the AgentCheckpoint steps: Pending -> InProgress -> Succeeded | Failed
restore.py     the AgentRestore steps: readiness, hold, rebuild, release
clone.py       the image an Agent with spec.source is created from
schedule.py    spec.checkpoints: checkpoints on a cron schedule, and retention
sweeper.py     images whose AgentCheckpoint is gone (and not Retain)
"""
