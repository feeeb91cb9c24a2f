"""Commands in a podman host through `runc exec`, where podman runs the container with runc (as sovkit's hosts).

`podman exec` is conmon around that same `runc exec` on the container podman made: the same namespaces, cgroup,
capabilities, seccomp and AppArmor profile. Calling runc directly takes 0.06 s a command instead of 0.15 s, which
is most of a play's or a compliance run's time on the `local` site (a verify runs about 400 commands a host).
Here, beside the compliance suite, because the suite stands alone (pytest and testinfra, nothing else of sovkit);
the play's connection to the same hosts uses it too (playbooks/connection_plugins/sovkit_podman.py), which
loads it in every task's process: it imports the standard library only."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

RUNC_STATE_ROOT = "/run/runc"  # where runc keeps the state of rootful podman's containers


def runc_container(podman: Sequence[str], name: str) -> str | None:
    """The id of container `name` where runc runs it and its state is where `exec_argv` looks; else None (use
    podman exec). `podman` is the podman command line (executable and global options)."""
    proc = subprocess.run([*podman, "inspect", "--format", "{{.Id}} {{.OCIRuntime}}", name],
                          capture_output=True, text=True, check=False)
    container, _, runtime = proc.stdout.strip().partition(" ")
    state = os.path.join(RUNC_STATE_ROOT, container, "state.json")
    return container if proc.returncode == 0 and runtime == "runc" and os.path.exists(state) else None


def exec_argv(container: str, command: Sequence[str]) -> list[str]:
    """The command line that runs `command` as root in the container."""
    return ["runc", "--root", RUNC_STATE_ROOT, "exec", "--user", "0:0", container, *command]
