"""Filters of the serve play, run on the controller: the gateway's view of each tenant's API key.

The key itself never reaches a host or a log: the gateway holds only its SHA-256.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ansible.errors import AnsibleFilterError


def tenant_key_hashes(tenants: dict, pulumi_keys_json: str = "") -> dict:
    """{tenant: grant} -> {tenant: grant + key_sha256}. A tenant's key comes from Pulumi (the JSON of
    SOVKIT_TENANT_KEYS, {tenant: key}) or from its key_file on the controller."""
    from_pulumi = json.loads(pulumi_keys_json) if pulumi_keys_json else {}
    out = {}
    for name, grant in tenants.items():
        grant = dict(grant)
        key_file = grant.pop("key_file", None)
        if name in from_pulumi:
            key = from_pulumi[name]
        elif key_file:
            try:
                key = Path(key_file).read_text(encoding="utf-8").strip()
            except OSError as err:
                raise AnsibleFilterError(
                    f"tenant {name}: cannot read its API key file {key_file} on the controller ({err.strerror}). "
                    "Create it (one line, 32 or more characters, mode 0600) or run `sovkit up`, which makes the "
                    "local stack's keys. Nothing was changed on the hosts.") from None
        else:
            raise AnsibleFilterError(f"tenant {name}: its API key is a Pulumi secret, and SOVKIT_TENANT_KEYS does not "
                                     "hold it; run the play through `pulumi up`. Nothing was changed on the hosts.")
        if len(key) < 32:
            raise AnsibleFilterError(f"tenant {name}: its API key has {len(key)} characters; 32 or more are needed")
        out[name] = {**grant, "key_sha256": hashlib.sha256(key.encode()).hexdigest()}
    return out


class FilterModule:
    def filters(self) -> dict:
        return {"tenant_key_hashes": tenant_key_hashes}
