"""The reconcile of one Agent, split into one module per concern (see `agent.py`)."""
