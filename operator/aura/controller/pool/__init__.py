"""Warm pools (`AgentPool`, pool_models.py): keep servers warm, hand one to a new Agent.

- `pool.py`: one pass over an AgentPool (retire served or broken members, refill to the
  budget-capped target, status with the cost per month);
- `bind.py`: a new Agent takes a warm server (the server step's hook);
- `handover.py`: its first configuration is a push of the customer's config (the configure
  step's hook);
- `members.py`: what a member Agent does once claimed (nothing) and deletes when released;
- `labels.py`: the annotations and labels of the hand-over;
- `drive.py`: the kopf pass.
"""
