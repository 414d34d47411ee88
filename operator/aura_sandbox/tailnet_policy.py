"""Tag ownership of the simulated tailnet, like the `tagOwners` of a policy file.

Default: the policy README.md documents, `{"tag:aura": [], "tag:aura-agent": ["tag:aura"],
"tag:aura-operator": ["tag:aura"], "tag:aura-pool": ["tag:aura"]}` (the operator's tailnet
sidecar; warm-pool servers, which carry no customer), plus every tag of the OAuth client.
A key (or device tag change) made with an OAuth token must carry tags (spec `KeyCapabilities`). A
tag owned by one of the token's tags is always allowed; one of the token's own tags only when all
of them are asked for (a strict subset is rejected: terraform-provider-tailscale#437). So with the
default client, `["tag:aura-agent"]` and `["tag:aura", "tag:aura-agent"]` work and `["tag:aura"]`
alone gives 400 "requested tags [tag:aura] are invalid or not permitted". A user (admin) token
may apply any tag the policy knows.
"""

from __future__ import annotations

from collections.abc import Iterable

from aura_sandbox.tailnet_model import Principal, tags_error

DEFAULT_TAG_OWNERS: dict[str, list[str]] = {
    "tag:aura": [],
    "tag:aura-agent": ["tag:aura"],
    "tag:aura-operator": ["tag:aura"],
    "tag:aura-pool": ["tag:aura"],
}


class TagPolicy:
    def __init__(self, owners: dict[str, list[str]] | None, client_tags: Iterable[str]) -> None:
        merged = dict(DEFAULT_TAG_OWNERS if owners is None else owners)
        for tag in client_tags:
            merged.setdefault(tag, [])
        self.owners = merged

    def check_tags(self, asked: list[str], owner_tags: list[str]) -> None:
        """400 unless a tailnet-owned caller carrying `owner_tags` may apply `asked`: each tag
        is owned by one of `owner_tags`, or is one of them and all of them are asked for."""
        full_set = set(owner_tags) <= set(asked)
        for tag in asked:
            if tag not in self.owners:
                raise tags_error(asked)
            owned = any(o in owner_tags for o in self.owners[tag])
            if not owned and not (tag in owner_tags and full_set):
                raise tags_error(asked)
        if not asked:
            raise tags_error(asked)

    def check_caller(self, principal: Principal, tags: list[str]) -> None:
        """400 unless `principal` may put `tags` on a key or device."""
        if principal.kind == "oauth":
            self.check_tags(tags, principal.tags)
        elif any(t not in self.owners for t in tags):
            raise tags_error(tags)

    def device_tags(self, advertised: list[str], key_tags: list[str]) -> list[str]:
        """The tags a node registering with a key tagged `key_tags` gets when it runs
        `--advertise-tags=advertised`: each must be a key tag or owned by one; 400 otherwise."""
        tags = advertised or key_tags
        if advertised and key_tags:
            owned = {t for t in advertised if t in key_tags} | {
                t for t in advertised if any(o in key_tags for o in self.owners.get(t, []))
            }
            if owned != set(advertised):
                raise tags_error(advertised)
        elif any(t not in self.owners for t in tags):
            raise tags_error(tags)
        return list(dict.fromkeys(tags))
