"""The alert rules in manifests/monitoring: valid for Prometheus, their unit tests pass with
series that fire and series that do not, the unit tests can fail, and the PrometheusRule
carries exactly the plain rules file's groups. promtool is built from the Go module proxy and
cached (hack/promtool.sh)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "manifests" / "monitoring"


@pytest.fixture(scope="module")
def promtool() -> str:
    built = subprocess.run(
        [str(REPO / "hack" / "promtool.sh")], capture_output=True, text=True, check=True
    )
    return built.stdout.strip()


def run(promtool: str, *args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_rules_pass_promtool_check(promtool: str) -> None:
    result = run(promtool, "check", "rules", "rules.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout + result.stderr


def test_rule_unit_tests_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", "rules-test.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_has_a_firing_case(promtool: str) -> None:
    """Each alert appears in some `exp_alerts` list that is not empty."""
    alerts = {
        rule["alert"]
        for group in yaml.safe_load((MONITORING / "rules.yaml").read_text())["groups"]
        for rule in group["rules"]
    }
    tests = yaml.safe_load((MONITORING / "rules-test.yaml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    quiet = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if not case["exp_alerts"]
    }
    assert alerts == fired
    assert alerts == quiet


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("> 1800", "> 7200"),  # stuck in a phase: a threshold that would never fire here
        ("< 360", "< 50"),  # rate limit low
        ("> 0.05", "> 5"),  # signature failures
    ],
)
def test_the_unit_tests_fail_when_a_rule_is_broken(
    promtool: str, tmp_path: Path, before: str, after: str
) -> None:
    for name in ("rules.yaml", "rules-test.yaml"):
        shutil.copy(MONITORING / name, tmp_path / name)
    rules = tmp_path / "rules.yaml"
    text = rules.read_text()
    assert before in text
    rules.write_text(text.replace(before, after, 1))
    result = run(promtool, "test", "rules", "rules-test.yaml", cwd=tmp_path)
    assert result.returncode != 0, result.stdout


def test_the_prometheusrule_carries_the_same_groups() -> None:
    plain = yaml.safe_load((MONITORING / "rules.yaml").read_text())
    operator = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert operator["kind"] == "PrometheusRule"
    assert operator["apiVersion"] == "monitoring.coreos.com/v1"
    assert operator["spec"] == plain
