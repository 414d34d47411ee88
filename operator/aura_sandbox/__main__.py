"""`python -m aura_sandbox`: the same command as `aura sandbox`."""

from aura_sandbox.cli import command

command()
