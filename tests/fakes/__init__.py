"""Stateful in-memory fakes of the operator's external APIs, for unit tests only.

They copy the rules the operator depends on (name uniqueness, NotFound on missing IDs,
single-use keys) and record calls so tests can assert "created exactly one server".
"""
