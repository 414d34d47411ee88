"""Find the `tailscale up` a server's `user_data` would run, the way the VM would run it.

`find_tailscale_up(user_data)` returns a `TailscaleUp` (auth key, hostname, advertised tags) for
the first `tailscale up` command that cloud-init would execute, or None when there is none or it
has no auth key. It understands:

- a `#cloud-config` YAML document: the commands in `bootcmd` and `runcmd` (strings, which run
  under `sh -c`, or argument lists), and the scripts of `write_files` that those commands run;
- a shell script (`#!...`) or any other text: every line, with `\\` line continuations joined.

Flags follow tailscale/tailscale `cmd/tailscale/cli/up.go`: `--auth-key` (also spelled
`--authkey`, `-authkey`, `-auth-key`), `--hostname`, `--advertise-tags` (comma separated, the
`tag:` prefix optional), each as `--flag=value` or `--flag value`. A key given as `file:PATH`
is read from the `write_files` entry for PATH when there is one. `sudo`, `env`, `sh -c '...'`
and command separators (`;`, `&&`, `||`, `|`) are looked through. Shell variables are *not*
expanded: a key passed as `$TS_KEY` is not found, so inline the key (as the official
Terraform example does).

`forgets_node_state(user_data)` says whether the same commands remove tailscaled's state file
(`NODE_STATE`): `rm` of the file (or a glob matching it), `rm -r` of its directory, or
`shred -u` of the file. The sandbox applies the removal before tailscaled logs in, wherever it
sits in `bootcmd` or `runcmd` (a simplification: on a real host tailscaled.service may start
with the old state for the seconds before a `bootcmd` stops it, minutes before a `runcmd` does;
Aura's document uses `bootcmd`).

Hand-written because it is the only piece of the simulated VM that Tailscale cares about; the
parsing is deliberately that of a shell, not a regular expression over the whole text.
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from aura_sandbox.tailnet_model import NODE_STATE

_KEY_FLAGS = frozenset({"auth-key", "authkey"})
_SEPARATORS = frozenset({";", "&&", "||", "|", "&", "\n"})
_STATE_DIR = NODE_STATE.rsplit("/", 1)[0]


@dataclass(frozen=True)
class TailscaleUp:
    """The parts of one `tailscale up` command line the control plane sees."""

    auth_key: str
    hostname: str | None = None
    advertise_tags: tuple[str, ...] = field(default_factory=tuple)


def find_tailscale_up(user_data: str | None) -> TailscaleUp | None:
    """Return the first `tailscale up` with an auth key that `user_data` runs, else None."""
    if not user_data:
        return None
    files: dict[str, str] = {}
    if user_data.lstrip().startswith("#cloud-config"):
        commands, files = _cloud_config_commands(user_data)
    else:
        commands = [user_data]
    for script in commands:
        found = _scan_script(script, files, depth=0)
        if found is not None:
            return found
    return None


def forgets_node_state(user_data: str | None) -> bool:
    """Whether a command `user_data` runs removes tailscaled's state file (`NODE_STATE`)."""
    if not user_data:
        return False
    files: dict[str, str] = {}
    if user_data.lstrip().startswith("#cloud-config"):
        scripts, files = _cloud_config_commands(user_data)
    else:
        scripts = [user_data]
    return any(_removes_node_state(words) for s in scripts for words in _commands(s, files, 0))


def _commands(script: str, files: dict[str, str], depth: int) -> Iterator[list[str]]:
    """Every simple command of `script` as words, then those of the `sh -c '...'` strings and
    `write_files` scripts it runs (to a depth of 3)."""
    if depth > 3:
        return
    command: list[str] = []
    for token in _tokens(script):
        if token not in _SEPARATORS:
            command.append(token)
            continue
        if command:
            yield command
            for word in command:
                if " " in word or "\n" in word:
                    yield from _commands(word, files, depth + 1)
            for path, content in files.items():
                if any(path in word for word in command):
                    yield from _commands(content, files, depth + 1)
        command = []


def _removes_node_state(words: list[str]) -> bool:
    """`rm [-f] STATE` (or a glob matching it), `rm -r DIR`, `shred -u STATE`."""
    for i, word in enumerate(words):
        program = word.rsplit("/", 1)[-1]
        if program not in ("rm", "shred"):
            continue
        args = words[i + 1 :]
        targets = [a for a in args if not a.startswith("-")]
        short = "".join(a[1:] for a in args if a.startswith("-") and not a.startswith("--"))
        long = {a for a in args if a.startswith("--")}
        if program == "shred" and "u" not in short and "--remove" not in long:
            continue
        if any(fnmatch.fnmatchcase(NODE_STATE, t) for t in targets):
            return True
        recursive = "r" in short or "R" in short or "--recursive" in long
        if program == "rm" and recursive and any(t.rstrip("/") == _STATE_DIR for t in targets):
            return True
    return False


def _cloud_config_commands(user_data: str) -> tuple[list[str], dict[str, str]]:
    """Shell snippets cloud-init would run, in order, plus the text of `write_files`."""
    try:
        doc: Any = yaml.safe_load(user_data)
    except yaml.YAMLError:
        return [], {}
    if not isinstance(doc, dict):
        return [], {}
    files: dict[str, str] = {}
    for entry in doc.get("write_files") or []:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            content = entry.get("content")
            files[entry["path"]] = content if isinstance(content, str) else ""
    commands: list[str] = []
    for section in ("bootcmd", "runcmd"):
        for item in doc.get(section) or []:
            if isinstance(item, str):
                commands.append(item)
            elif isinstance(item, list):
                commands.append(shlex.join(str(arg) for arg in item))
    return commands, files


def _tokens(script: str) -> list[str]:
    """Shell words of `script`, with separators and line ends as tokens of their own."""
    out: list[str] = []
    pending = ""
    for line in script.replace("\\\n", " ").split("\n"):
        pending = f"{pending}\n{line}" if pending else line
        try:
            lexer = shlex.shlex(pending, posix=True, punctuation_chars=";&|")
            lexer.whitespace_split = True
            words = list(lexer)
        except ValueError:  # an open quote: the command goes on on the next line
            continue
        out.extend(words)
        out.append("\n")
        pending = ""
    return out


def _scan_script(script: str, files: dict[str, str], depth: int) -> TailscaleUp | None:
    if depth > 3 or "tailscale" not in script:
        return _scan_called_files(script, files, depth)
    command: list[str] = []
    for token in _tokens(script):
        if token not in _SEPARATORS:
            command.append(token)
            continue
        found = _scan_command(command, files, depth)
        if found is not None:
            return found
        command = []
    return None


def _scan_called_files(script: str, files: dict[str, str], depth: int) -> TailscaleUp | None:
    """Look inside `write_files` scripts that `script` mentions (e.g. `bash /opt/join.sh`)."""
    if depth > 3:
        return None
    for path, content in files.items():
        if path in script:
            found = _scan_script(content, files, depth + 1)
            if found is not None:
                return found
    return None


def _scan_command(words: list[str], files: dict[str, str], depth: int) -> TailscaleUp | None:
    for i, word in enumerate(words):
        if (" " in word or "\n" in word) and "tailscale" in word:  # sh -c '...'
            found = _scan_script(word, files, depth + 1)
            if found is not None:
                return found
        if word.rsplit("/", 1)[-1] == "tailscale" and words[i + 1 : i + 2] == ["up"]:
            return _parse_up_flags(words[i + 2 :], files)
    return _scan_called_files(" ".join(words), files, depth)


def _parse_up_flags(args: list[str], files: dict[str, str]) -> TailscaleUp | None:
    values: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-"):
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        if name not in _KEY_FLAGS | {"hostname", "advertise-tags"}:
            continue
        if not eq:
            if i >= len(args):
                break
            value = args[i]
            i += 1
        values["auth-key" if name in _KEY_FLAGS else name] = value
    key = values.get("auth-key", "")
    if key.startswith("file:"):
        key = files.get(key.removeprefix("file:"), "").strip()
    if not key:
        return None
    tags = tuple(
        t if t.startswith("tag:") else f"tag:{t}"
        for t in (part.strip() for part in values.get("advertise-tags", "").split(","))
        if t
    )
    return TailscaleUp(auth_key=key, hostname=values.get("hostname") or None, advertise_tags=tags)
