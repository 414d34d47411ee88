"""Snapshots for real: the disk a snapshot copies, the time it takes, images as a resource, and
servers created or rebuilt from them. Driven by the official `hcloud` client; every response is
checked against the Hetzner OpenAPI spec (`validator`)."""

from __future__ import annotations

import time
from pathlib import Path

import hcloud
import pytest
from hcloud import APIException
from hcloud.images import Image
from hcloud.server_types import ServerType

from aura_sandbox.harness import Sandbox
from aura_sandbox.world import World
from tests.sandbox.conftest import FAST, Http, admin, validated_client
from tests.sandbox.hetzner_support import create, running
from tests.sandbox.openapi import OpenApiValidator


def write(sb: Sandbox, server_id: int, path: str, data: bytes) -> None:
    response = admin(sb, "PUT", f"/servers/{server_id}/disk{path}", data=data)
    assert response.status_code in (201, 204), response.text


def read(sb: Sandbox, server_id: int, path: str) -> bytes | None:
    response = admin(sb, "GET", f"/servers/{server_id}/disk{path}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return response.content


def _snapshot(client: hcloud.Client, server_id: int, **kwargs: object) -> Image:
    result = client.servers.get_by_id(server_id).create_image(**kwargs)  # type: ignore[arg-type]
    result.action.wait_until_finished(max_retries=10_000)
    return client.images.get_by_id(result.image.id)


def test_snapshot_copies_the_disk_and_reports_used_size(
    fclient: hcloud.Client, fast: Sandbox
) -> None:
    server = running(fclient, "marker")
    write(fast, server.id, "/srv/agent/marker", b"A" * 1000)
    image = _snapshot(fclient, server.id, description="cp", labels={"aura.dev/agent": "marker"})
    write(fast, server.id, "/srv/agent/marker", b"B")  # after the copy: not in the image

    assert image.type == "snapshot" and image.status == "available"
    assert image.disk_size == 40  # cx22's disk
    # 1.4 GB of a fresh system plus 1000 bytes, rounded up to the hundredth.
    assert image.image_size == pytest.approx(1.41)
    assert image.created_from.id == server.id

    clone = create(fclient, "clone", image=image).server
    assert read(fast, clone.id, "/srv/agent/marker") == b"A" * 1000
    assert read(fast, server.id, "/srv/agent/marker") == b"B"
    assert clone.image.id == image.id


def test_snapshot_time_grows_with_used_data(fclient: hcloud.Client, fast: Sandbox) -> None:
    small = running(fclient, "small")
    big = running(fclient, "big")
    response = admin(fast, "PUT", f"/servers/{big.id}/disk", json={"base_gb": 30})
    assert response.json()["used_gb"] == 30

    def timed(server_id: int) -> float:
        started = time.monotonic()
        _snapshot(fclient, server_id)
        return time.monotonic() - started

    # 46 s + 10 s/GB: 1.4 GB -> 60 s, 30 GB -> 346 s (x FAST: 0.24 s and 1.38 s).
    small_s, big_s = timed(small.id), timed(big.id)
    assert big_s > 3 * small_s, (small_s, big_s)
    assert big_s >= 345 * FAST * 0.95
    assert fclient.images.get_all(type=["snapshot"], sort=["id"])[-1].image_size == 30


def test_locked_while_snapshotting(fclient: hcloud.Client, fast: Sandbox) -> None:
    server = running(fclient, "busy")
    admin(fast, "PUT", f"/servers/{server.id}/disk", json={"base_gb": 20})
    result = server.create_image(description="slow")
    assert result.image.status == "creating"
    for attempt in (
        lambda: server.rebuild(Image(name="ubuntu-24.04")),
        lambda: server.create_image(),
        lambda: fclient.images.delete(result.image),
        lambda: fclient.images.change_protection(result.image, delete=True),
    ):
        with pytest.raises(APIException) as exc:
            attempt()
        assert exc.value.code == "locked"
    assert fclient.servers.get_by_id(server.id).locked is True
    # A server cannot be created from an image that is not available yet.
    with pytest.raises(APIException) as exc:
        create(fclient, "early", image=Image(id=result.image.id))
    assert exc.value.code == "invalid_input"
    result.action.wait_until_finished(max_retries=10_000)
    assert fclient.servers.get_by_id(server.id).locked is False
    assert fclient.images.get_by_id(result.image.id).status == "available"


def test_image_bigger_than_the_server_type_disk(fclient: hcloud.Client) -> None:
    server = running(fclient, "large", server_type=ServerType(name="cx32"))  # 80 GB
    image = _snapshot(fclient, server.id)
    assert image.disk_size == 80
    with pytest.raises(APIException) as exc:
        create(fclient, "small-disk", image=image)  # cx22: 40 GB
    assert exc.value.code == "invalid_input"
    assert "image disk is bigger than server type disk" in exc.value.message
    assert create(fclient, "same", image=image, server_type=ServerType(name="cx42")).server.id


def test_rebuild_restores_a_snapshot_in_place(fclient: hcloud.Client, fast: Sandbox) -> None:
    server = running(fclient, "restore")
    write(fast, server.id, "/srv/marker", b"old")
    image = _snapshot(fclient, server.id)
    write(fast, server.id, "/srv/marker", b"new")
    write(fast, server.id, "/srv/later", b"x")

    response = fclient.servers.rebuild(server, Image(id=image.id))
    assert response.action.command == "rebuild_server"
    assert response.root_password  # no SSH keys on this server
    assert fclient.servers.get_by_id(server.id).status == "rebuilding"
    response.action.wait_until_finished(max_retries=10_000)
    rebuilt = fclient.servers.get_by_id(server.id)
    assert rebuilt.status == "running" and rebuilt.image.id == image.id
    assert read(fast, server.id, "/srv/marker") == b"old"
    assert read(fast, server.id, "/srv/later") is None

    # From a system image the disk starts empty.
    fclient.servers.rebuild(rebuilt, Image(name="ubuntu-24.04")).action.wait_until_finished(
        max_retries=10_000
    )
    assert read(fast, server.id, "/srv/marker") is None

    fclient.servers.change_protection(rebuilt, delete=True, rebuild=True).wait_until_finished()
    with pytest.raises(APIException) as exc:
        fclient.servers.rebuild(rebuilt, Image(id=image.id))
    assert exc.value.code == "protected"


def test_list_filters_and_orphan_labels(
    fclient: hcloud.Client, fast: Sandbox, validator: OpenApiValidator
) -> None:
    http = Http(fast, validator)
    a = running(fclient, "agent-a")
    b = running(fclient, "agent-b")
    owned = {"aura.dev/managed-by": "aura"}
    img_a = _snapshot(fclient, a.id, labels={**owned, "aura.dev/agent-uid": "uid-a"})
    img_b = _snapshot(fclient, b.id, labels={**owned, "aura.dev/agent-uid": "uid-b"})
    backup = _snapshot(fclient, b.id, type="backup", labels=owned)
    assert backup.type == "backup" and backup.bound_to.id == b.id

    # Images of Agents that no longer exist: owned, with an agent uid not among the live ones.
    live = "aura.dev/agent-uid notin (uid-b)"
    orphans = fclient.images.get_all(
        label_selector=f"aura.dev/managed-by=aura,aura.dev/agent-uid,{live}"
    )
    assert [i.id for i in orphans] == [img_a.id]
    no_uid = fclient.images.get_all(type=["backup"], label_selector="!aura.dev/agent-uid")
    assert [i.id for i in no_uid] == [backup.id]
    snapshots = fclient.images.get_all(type=["snapshot"], sort=["id:desc"])
    assert [i.id for i in snapshots] == [img_b.id, img_a.id]
    assert [i.id for i in fclient.images.get_all(bound_to=[b.id])] == [backup.id]
    x86 = fclient.images.get_all(type=["system"], architecture=["x86"])
    assert x86 and {i.architecture for i in x86} == {"x86"}
    assert fclient.images.get_by_name_and_architecture("debian-12", "arm").architecture == "arm"
    # hcloud-python 2.27 sends `status=50` for any status list: tolerated, not an empty list.
    assert len(fclient.images.get_all(type=["snapshot"], status=["available"])) == 2

    # The status filter itself, on the wire.
    admin(fast, "PUT", f"/servers/{a.id}/disk", json={"base_gb": 20})
    creating = a.create_image(description="in flight").image
    listed = http.get("/images", params=[("type", "snapshot"), ("status", "creating")]).json()
    assert [i["id"] for i in listed["images"]] == [creating.id]
    listed = http.get("/images", params=[("type", "snapshot"), ("status", "available")]).json()
    assert {i["id"] for i in listed["images"]} == {img_a.id, img_b.id}
    assert http.get("/images", params={"type": "floppy"}).status_code == 422


def test_update_convert_and_delete(fclient: hcloud.Client) -> None:
    server = running(fclient, "owner")
    backup = _snapshot(fclient, server.id, type="backup", description="nightly")
    updated = fclient.images.update(backup, description="kept", labels={"keep": "yes"})
    assert (updated.description, updated.labels) == ("kept", {"keep": "yes"})
    with pytest.raises(APIException) as exc:
        fclient.images.update(backup, type="backup")
    assert exc.value.code == "invalid_input"
    converted = fclient.images.update(backup, type="snapshot")
    assert converted.type == "snapshot" and converted.bound_to is None
    other = _snapshot(fclient, server.id, type="backup")

    # Backups go with their server, snapshots stay.
    server.delete().wait_until_finished()
    assert fclient.images.get_by_id(converted.id).status == "available"
    with pytest.raises(APIException) as exc:
        fclient.images.get_by_id(other.id)
    assert exc.value.code == "not_found"

    fclient.images.change_protection(converted, delete=True).wait_until_finished()
    with pytest.raises(APIException) as exc:
        fclient.images.delete(converted)
    assert exc.value.code == "protected"
    fclient.images.change_protection(converted, delete=False).wait_until_finished()
    assert fclient.images.delete(converted) is True
    with pytest.raises(APIException) as exc:
        fclient.images.update(converted, description="gone")
    assert exc.value.code == "not_found"


def test_snapshot_outlives_its_server(fclient: hcloud.Client, fast: Sandbox) -> None:
    server = running(fclient, "short-lived")
    write(fast, server.id, "/srv/marker", b"kept")
    result = server.create_image()
    server.delete().wait_until_finished()
    result.action.wait_until_finished(max_retries=10_000)
    image = fclient.images.get_by_id(result.image.id)
    assert image.status == "available" and image.created_from.name == "short-lived"
    clone = create(fclient, "heir", image=image).server
    assert read(fast, clone.id, "/srv/marker") == b"kept"


def test_disk_and_images_survive_a_restart(fast: Sandbox) -> None:
    def build(world: World) -> dict[str, object]:
        state = world.hetzner
        other = World(world.config)
        other.hetzner.load_dict(state.to_dict())
        return {
            "servers": {s.id: s.disk for s in other.hetzner.servers.values()},
            "images": {i.id: i.disk for i in other.hetzner.images.values()},
        }

    client = fast.ready.hcloud(poll_interval=0.01)
    server = running(client, "kept")
    write(fast, server.id, "/srv/bin", bytes(range(256)))
    image = _snapshot(client, server.id)
    loaded = fast.call(build)
    assert loaded["servers"] == {server.id: {"/srv/bin": bytes(range(256))}}
    assert loaded["images"] == {image.id: {"/srv/bin": bytes(range(256))}}


def test_in_flight_snapshot_settles_across_a_restart(
    tmp_path: Path, validator: OpenApiValidator
) -> None:
    """The state file keeps disks, images and prices; a snapshot that was still `creating`
    when the sandbox stopped comes back `available`, with its size."""
    state = tmp_path / "world.json"
    with Sandbox(time_scale=FAST, state_file=state) as sb:
        client = validated_client(sb, validator, poll_interval=0.01)
        server = running(client, "persist")
        write(sb, server.id, "/srv/marker", b"kept")
        admin(sb, "PUT", f"/servers/{server.id}/disk", json={"base_gb": 30})
        image_id = server.create_image().image.id
        assert admin(sb, "PUT", "/pricing", json={"image_per_gb_month": 0.02}).ok
    with Sandbox(time_scale=FAST, state_file=state) as sb:
        client = validated_client(sb, validator, poll_interval=0.01)
        image = client.images.get_by_id(image_id)
        assert (image.status, image.image_size) == ("available", 30.01)  # 30 GB + 4 bytes
        assert read(sb, server.id, "/srv/marker") == b"kept"
        assert admin(sb, "GET", "/pricing").json()["image_per_gb_month"] == 0.02
        clone = create(client, "persist-clone", image=image).server
        assert read(sb, clone.id, "/srv/marker") == b"kept"
