"""Configuring a provisioned server so the agent runtime runs on it."""
