"""Aura: a Kubernetes operator that runs always-on AI agents on Hetzner Cloud servers."""

__version__ = "0.1.0"
