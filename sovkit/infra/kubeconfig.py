"""Print the kubeconfig RKE2 wrote on the site's first control-plane node, pointed at the API address the stack names.

Run by HostConfiguration after the site play (`python -m sovkit.infra.kubeconfig INVENTORY`); its output
becomes a Pulumi secret and is never logged. It reads the file with Ansible, over the same connection and
account the play used, so it needs nothing the play did not.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

RKE2_KUBECONFIG = "/etc/rancher/rke2/rke2.yaml"
LOCAL_SERVER = "https://127.0.0.1:6443"


def first_control_plane(inventory: dict) -> tuple[str, str]:
    """(inventory name, API address) of the first control-plane host: the API address the stack names
    (rke2ApiAddress, rendered as rke2_api_address; by default the first server's own), else the host's address."""
    hosts = inventory["all"]["children"].get("control_plane", {}).get("hosts", {})
    if not hosts:
        raise SystemExit("sovkit: the inventory has no control_plane host; kubernetes mode needs one")
    name = sorted(hosts)[0]
    return name, str(hosts[name].get("rke2_api_address") or hosts[name]["ansible_host"])


def decode_slurp(ansible_json: str, host: str) -> str:
    """The file content from `ansible -m slurp` run with the json stdout callback."""
    result = json.loads(ansible_json)
    for play in result.get("plays", []):
        for task in play.get("tasks", []):
            outcome = task.get("hosts", {}).get(host)
            if outcome and outcome.get("content"):
                return base64.b64decode(outcome["content"]).decode()
            if outcome:
                raise SystemExit(f"sovkit: could not read {RKE2_KUBECONFIG} on {host}: {outcome.get('msg', outcome)}")
    raise SystemExit(f"sovkit: ansible returned nothing for {host}")


def point_at(kubeconfig: str, address: str) -> str:
    """RKE2's kubeconfig names 127.0.0.1; Pulumi and the operator reach the API server at the API address (in the
    API certificate's names: the rke2 role's tls-san)."""
    server = f"https://[{address}]:6443" if ":" in address else f"https://{address}:6443"
    return kubeconfig.replace(LOCAL_SERVER, server)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m sovkit.infra.kubeconfig INVENTORY")
    inventory = yaml.safe_load(Path(args[0]).read_text())
    name, address = first_control_plane(inventory)
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}
    run = subprocess.run(["ansible", name, "-i", args[0], "-b", "-m", "ansible.builtin.slurp",
                          "-a", f"src={RKE2_KUBECONFIG}"], capture_output=True, text=True, env=env, check=False)
    if run.returncode != 0 and not run.stdout.strip():
        raise SystemExit(f"sovkit: ansible failed reading the kubeconfig: {run.stderr.strip()}")
    sys.stdout.write(point_at(decode_slurp(run.stdout, name), address))
    return 0


if __name__ == "__main__":
    sys.exit(main())
