"""The Agent operator: kopf handlers over an ordered, idempotent reconcile of cloud objects.

Layers point one way only: `handlers` -> `reconcile` -> `clients`. `errors` and `conditions`
are shared vocabulary; nothing below `handlers` imports kopf except `errors.to_kopf`.
"""
