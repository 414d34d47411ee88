"""The `aura` command. Subcommands are imported only when invoked, so `aura --help` stays fast
and a broken optional dependency of one component never breaks the others.

Commands that are not part of the product (the simulator's `aura sandbox`, `aura demo`) come
from other installed distributions through the `aura.commands` entry-point group; the product
never imports them, so an image without them simply lists fewer commands.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import click

from aura import __version__

# name -> (module, click command attribute, one-line help); `aura --help` lists them all.
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "crd": ("aura.cli", "crd_command", "Print or check a generated CRD (Agent, checkpoints)."),
    "operator": ("aura.controller.cli", "command", "Run the operator that reconciles Agents."),
    "bridge": (
        "aura.bridge.cli",
        "command",
        "Run the Stripe webhook bridge and the agent status API.",
    ),
    "status": ("aura.status_cli", "command", "Show Agents, their phase and last event."),
}


PLUGIN_GROUP = "aura.commands"


def _plugins() -> dict[str, EntryPoint]:
    """Commands other installed distributions add; a product command of the same name wins."""
    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP) if ep.name not in SUBCOMMANDS}


class LazyGroup(click.Group):
    """A click group that imports each subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*SUBCOMMANDS, *_plugins()])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in SUBCOMMANDS:
            module, attr, _ = SUBCOMMANDS[cmd_name]
            command = getattr(importlib.import_module(module), attr)
        elif cmd_name in (plugins := _plugins()):
            command = plugins[cmd_name].load()
        else:
            return None
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _summary(ctx, self, name)) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aura")
def main() -> None:
    """Aura runs always-on AI agents: Agent resources become Hetzner servers in your tailnet."""


@click.command("crd")
@click.option(
    "--kind",
    type=click.Choice(
        ["agent", "agentcheckpoint", "agentrestore", "agentbudget", "agentimage", "agentpool"]
    ),
    default="agent",
    show_default=True,
    help="Which CRD to print or check.",
)
@click.option(
    "--check",
    "check_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Compare with this file instead of printing; exit 1 if it differs.",
)
def crd_command(kind: str, check_file: Path | None) -> None:
    """Print a CustomResourceDefinition generated from the models."""
    from aura.crd import render

    text = render(kind)
    if check_file is None:
        click.echo(text, nl=False)
        return
    if not check_file.exists() or check_file.read_text() != text:
        click.echo(f"{check_file} is stale: run `make crds` to regenerate it", err=True)
        sys.exit(1)


def _summary(ctx: click.Context, group: click.Group, name: str) -> str:
    if name in SUBCOMMANDS:
        return SUBCOMMANDS[name][2]
    command = group.get_command(ctx, name)
    return command.get_short_help_str(limit=70) if command else ""
