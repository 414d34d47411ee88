"""What the rendered objects promise (hardening, probes, replicas, Secrets consumed as the
env of their names) and the contract with the code: the args and env the Deployments pass are
what the components read."""

from __future__ import annotations

import os
from pathlib import Path

import kopf
import pytest
import yaml

from tests.kube import REPO
from tests.manifests.support import (
    CRDS,
    IMAGE,
    MANIFESTS,
    SYSTEM_NS,
    Obj,
    by_kind,
    containers,
    kustomize,
)

pytestmark = pytest.mark.integration


# -- what the rendered objects promise ----------------------------------------------------


def test_kustomization_holds_exactly_the_deployment(rendered: list[Obj]) -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in rendered}
    assert names == {
        ("Namespace", SYSTEM_NS),
        ("CustomResourceDefinition", "agents.aura.dev"),
        ("CustomResourceDefinition", "agentbudgets.aura.dev"),
        ("CustomResourceDefinition", "agentcheckpoints.aura.dev"),
        ("CustomResourceDefinition", "agentimages.aura.dev"),
        ("CustomResourceDefinition", "agentpools.aura.dev"),
        ("CustomResourceDefinition", "agentrestores.aura.dev"),
        ("CustomResourceDefinition", "clusterkopfpeerings.kopf.dev"),
        ("CustomResourceDefinition", "kopfpeerings.kopf.dev"),
        ("ClusterKopfPeering", "aura"),
        ("ValidatingAdmissionPolicy", "aura-agent-source-disk"),
        ("ValidatingAdmissionPolicyBinding", "aura-agent-source-disk"),
        ("ValidatingAdmissionPolicy", "aura-shard-immutable"),
        ("ValidatingAdmissionPolicyBinding", "aura-shard-immutable"),
        ("ServiceAccount", "aura-operator"),
        ("ServiceAccount", "aura-bridge"),
        ("ClusterRole", "aura-operator"),
        ("ClusterRole", "aura-operator-cluster"),
        ("ClusterRole", "aura-bridge"),
        ("ClusterRoleBinding", "aura-operator"),
        ("ClusterRoleBinding", "aura-operator-cluster"),
        ("ClusterRoleBinding", "aura-bridge"),
        ("Secret", "aura-operator-credentials"),
        ("Secret", "aura-bridge-secrets"),
        ("Deployment", "aura-operator"),
        ("Deployment", "aura-bridge"),
        ("Service", "aura-bridge"),
        ("PodDisruptionBudget", "aura-operator"),
        ("PodDisruptionBudget", "aura-bridge"),
    }
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterKopfPeering"}
    cluster_scoped |= {"ClusterRole", "ClusterRoleBinding"}
    cluster_scoped |= {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    for obj in rendered:
        expected_ns = None if obj["kind"] in cluster_scoped else SYSTEM_NS
        assert obj["metadata"].get("namespace") == expected_ns, obj["metadata"]
    assert not [o for o in rendered if o["kind"] == "Agent"], "examples/ are not deployed"


def test_crds_come_from_the_one_source(rendered: list[Obj]) -> None:
    """manifests/ includes ../crds; no copy of a CRD drifts away from crds/."""
    files = {p.name for p in CRDS.glob("*.yaml")}
    listed = yaml.safe_load((CRDS / "Kustomization").read_text())["resources"]
    assert set(listed) == files, "every CRD file in crds/ is listed in crds/Kustomization"
    assert not (CRDS / "kustomization.yaml").exists(), "it would break `kubectl apply -f crds/`"
    on_disk = {
        d["metadata"]["name"]: d["spec"]
        for f in files
        for d in yaml.safe_load_all((CRDS / f).read_text())
        if d
    }
    assert {n: c["spec"] for n, c in by_kind(rendered, "CustomResourceDefinition").items()} == (
        on_disk
    )


@pytest.mark.parametrize("name", ["aura-operator", "aura-bridge"])
def test_deployment_is_hardened_probed_and_sized(rendered: list[Obj], name: str) -> None:
    deployment = by_kind(rendered, "Deployment")[name]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] in by_kind(rendered, "ServiceAccount")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (container,) = containers(deployment)
    assert container["image"] == IMAGE
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ports, probe
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert "memory" in container["resources"]["limits"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert tmp and "emptyDir" in volumes[tmp[0]["name"]], "a writable /tmp"
    (pdb,) = [
        p
        for p in by_kind(rendered, "PodDisruptionBudget").values()
        if p["metadata"]["name"] == name
    ]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_operator_runs_two_peered_replicas_with_distinct_priorities(rendered: list[Obj]) -> None:
    deployment = by_kind(rendered, "Deployment")["aura-operator"]
    assert deployment["spec"]["replicas"] == 2
    (container,) = containers(deployment)
    assert container["args"][0] == "operator"
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    # The peering the replicas meet in exists under exactly that name.
    assert env["AURA_PEERING"]["value"] in by_kind(rendered, "ClusterKopfPeering")
    # The pod name, unique per replica, is what the operator derives its priority from.
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # kopf names each peer by POD_ID, so the peering records say which pod is which.
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    requests = container["resources"]["requests"]
    assert (requests["cpu"], requests["memory"]) == ("100m", "256Mi")
    assert container["resources"]["limits"]["memory"] == "512Mi"


def test_bridge_listens_where_its_service_and_probes_point(rendered: list[Obj]) -> None:
    deployment = by_kind(rendered, "Deployment")["aura-bridge"]
    (container,) = containers(deployment)
    assert container["args"] == ["bridge", "--host", "0.0.0.0", "--port", "8080"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 8080}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    service = by_kind(rendered, "Service")["aura-bridge"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    requests = container["resources"]["requests"]
    assert (requests["cpu"], requests["memory"]) == ("50m", "128Mi")


SECRET_KEYS = {
    "aura-operator": (
        "aura-operator-credentials",
        {
            "HCLOUD_TOKEN",
            "HCLOUD_ENDPOINT",
            "TAILSCALE_OAUTH_CLIENT_ID",
            "TAILSCALE_OAUTH_CLIENT_SECRET",
            "TAILSCALE_TAILNET",
            "TAILSCALE_BASE_URL",
        },
    ),
    "aura-bridge": (
        "aura-bridge-secrets",
        {"STRIPE_WEBHOOK_SECRET", "STRIPE_API_KEY", "AURA_API_TOKENS"},
    ),
}


@pytest.mark.parametrize("name", sorted(SECRET_KEYS))
def test_every_secret_key_is_consumed_as_the_env_of_its_name(
    rendered: list[Obj], name: str
) -> None:
    secret_name, keys = SECRET_KEYS[name]
    secret = by_kind(rendered, "Secret")[secret_name]
    assert set(secret["stringData"]) == keys
    (container,) = containers(by_kind(rendered, "Deployment")[name])
    from_secrets = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert set(from_secrets) == keys
    for env_name, ref in from_secrets.items():
        assert (ref["name"], ref["key"]) == (secret_name, env_name)


def test_example_secrets_hold_only_placeholders(rendered: list[Obj]) -> None:
    for secret in by_kind(rendered, "Secret").values():
        for key, value in secret["stringData"].items():
            secretish = any(word in key for word in ("TOKEN", "SECRET", "KEY", "CLIENT_ID"))
            assert not secretish or "replace-me" in value, (key, value)


def test_an_overlay_replaces_the_placeholder_secrets(tmp_path: Path) -> None:
    """The README's overlay recipe: real values from untracked env files, base untouched."""
    (tmp_path / "operator.env").write_text("HCLOUD_TOKEN=real-token\nTAILSCALE_TAILNET=-\n")
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                # kustomize refuses absolute paths; a relative one may leave the overlay's root
                "resources": [os.path.relpath(MANIFESTS, tmp_path)],
                "secretGenerator": [
                    {
                        "name": "aura-operator-credentials",
                        "namespace": SYSTEM_NS,
                        "behavior": "replace",
                        "envs": ["operator.env"],
                    }
                ],
                "generatorOptions": {"disableNameSuffixHash": True},
            }
        )
    )
    secret = by_kind(kustomize(tmp_path), "Secret")["aura-operator-credentials"]
    assert "stringData" not in secret
    assert set(secret["data"]) == {"HCLOUD_TOKEN", "TAILSCALE_TAILNET"}


# -- the contract with the code: what the Deployments pass is what the components read ----

COMPONENT_SOURCES = {
    "aura-operator": REPO / "operator" / "aura" / "controller",
    "aura-bridge": REPO / "operator" / "aura" / "bridge",
}


@pytest.mark.parametrize("name", sorted(COMPONENT_SOURCES))
def test_deployment_args_are_accepted_by_the_cli(rendered: list[Obj], name: str) -> None:
    import click

    from aura.cli import main

    (container,) = containers(by_kind(rendered, "Deployment")[name])
    subcommand, *args = container["args"]
    parent = click.Context(main)
    command = main.get_command(parent, subcommand)
    assert command is not None, f"`aura {subcommand}` does not exist"
    try:
        command.make_context(subcommand, list(args), parent=parent)  # parses, never runs
    except click.ClickException as exc:
        pytest.fail(f"`aura {' '.join(container['args'])}`: {exc.format_message()}")


@pytest.mark.parametrize("name", sorted(COMPONENT_SOURCES))
def test_deployment_env_is_read_by_the_component(rendered: list[Obj], name: str) -> None:
    """Every variable a Deployment sets is named in that component's code (POD_ID in kopf's)."""
    (container,) = containers(by_kind(rendered, "Deployment")[name])
    sources = "\n".join(p.read_text() for p in COMPONENT_SOURCES[name].rglob("*.py"))
    kopf_sources = "\n".join(p.read_text() for p in Path(kopf.__file__).parent.rglob("*.py"))
    unread = [
        env["name"]
        for env in container["env"]
        if f'"{env["name"]}"' not in sources
        and not (env["name"] == "POD_ID" and "'POD_ID'" in kopf_sources)
    ]
    assert not unread, f"{name} sets {unread}, which its code never reads"
