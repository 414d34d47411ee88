"""Static checks of the agent playbook: ansible-lint (production profile), syntax, structure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ANSIBLE_DIR = Path(__file__).resolve().parents[2] / "ansible"
BIN = Path(sys.executable).parent
ROLES = ("base", "network", "runtime")  # tailnet first: the gateway binds to it


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=ANSIBLE_DIR,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_ansible_lint_production_profile_passes() -> None:
    result = run("ansible-lint", "--profile", "production", "--strict", "--offline", ".")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr


def test_syntax_check_passes() -> None:
    result = run("ansible-playbook", "--syntax-check", "-i", "inventory.example.yml", "site.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_play_targets_remote_hosts_and_runs_the_roles_in_order() -> None:
    [play] = yaml.safe_load((ANSIBLE_DIR / "site.yml").read_text())
    assert play["hosts"] == "aura_agents"
    assert "connection" not in play
    assert [r["role"] for r in play["roles"]] == list(ROLES)
    # The firewall closes public SSH, so it must be the very last thing.
    assert play["post_tasks"][-1]["ansible.builtin.include_role"]["tasks_from"] == "firewall.yml"


def test_every_role_documents_its_variables_with_its_prefix() -> None:
    for role in ROLES:
        text = (ANSIBLE_DIR / "roles" / role / "defaults" / "main.yml").read_text()
        defaults = yaml.safe_load(text)
        assert defaults, role
        for name in defaults:
            assert name.startswith(f"{role}_"), name
            # Documented: a comment in the paragraph (lines up to a blank line) it belongs to.
            paragraph = text.split(f"\n{name}:", 1)[0].rsplit("\n\n", 1)[-1]
            assert any(line.startswith("#") for line in paragraph.splitlines()), (
                f"{role}: {name} is not documented"
            )


def test_secret_tasks_have_no_log() -> None:
    secret_vars = ("runtime_env", "network_tailscale_authkey")
    for path in (ANSIBLE_DIR / "roles").rglob("tasks/*.yml"):
        for task in _tasks(yaml.safe_load(path.read_text()) or []):
            if "block" in task:  # its tasks are checked one by one
                continue
            body = yaml.safe_dump({k: v for k, v in task.items() if k not in ("name", "when")})
            touches = any(v in body for v in secret_vars) or "env.j2" in body
            if touches:
                assert task.get("no_log") is True, f"{path.name}: {task.get('name')}"


def test_inventory_lists_one_host_in_the_group() -> None:
    result = run("ansible-inventory", "-i", "inventory.example.yml", "--list")
    assert result.returncode == 0, result.stderr
    assert '"aura_agents"' in result.stdout


def _tasks(tasks: list[dict[str, object]]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for task in tasks:
        out.append(task)
        for key in ("block", "rescue", "always"):
            nested = task.get(key)
            if isinstance(nested, list):
                out.extend(_tasks(nested))
    return out
