"""What a plain `pip install` of Aura puts on a machine, and the layering contracts.

The product wheel must hold the product only: the simulator and the demo are a distribution
of their own (operator/pyproject.toml). The import contracts in pyproject.toml are checked by
`lint-imports` in `make lint`; here they are shown to fail when an import breaks them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_the_product_wheel_holds_no_simulator_and_no_demo(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("aura-*.whl")
    top_level = {name.split("/", 1)[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert "aura" in top_level
    assert not {"aura_sandbox", "aura_demo"} & top_level, top_level


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(tree / "pyproject.toml")],
        cwd=tree,
        env={"PYTHONPATH": str(tree / "operator"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the sources and the contracts, to break on purpose."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(
        ROOT / "operator", tmp_path / "operator", ignore=shutil.ignore_patterns("*.egg-info")
    )
    return tmp_path


def test_the_contracts_hold_on_the_tree(tree: Path) -> None:
    result = _lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        ("aura/controller/clients/hetzner.py", "import aura_sandbox.world", "never imports"),
        ("aura_sandbox/world.py", "import aura.models", "only over HTTP"),
        ("aura/controller/clients/kube.py", "import aura.controller.driver", "Operator layers"),
    ],
)
def test_a_violation_fails(tree: Path, module: str, bad_import: str, contract: str) -> None:
    path = tree / "operator" / module
    path.write_text(path.read_text() + f"\n{bad_import}  # noqa\n")
    result = _lint_imports(tree)
    assert result.returncode != 0, result.stdout
    assert "1 broken" in result.stdout
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert len(broken) == 1 and contract in broken[0], result.stdout
