"""testinfra's podman backend for the `local` site's hosts, each command a `runc exec` where podman runs the
container with runc (sovkit/hosts/runc.py): a compliance run on `local` spends most of its time starting commands."""

from __future__ import annotations

import shlex
from typing import Any

from testinfra.backend import base
from testinfra.backend.podman import PodmanBackend

from sovkit.hosts import runc


class RuncPodmanBackend(PodmanBackend):
    """podman:// as testinfra has it, with the command started by runc itself where it can be (root, runc)."""

    def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(name, *args, **kwargs)
        as_root = self.user in (None, "root", "0")
        self.container = runc.runc_container(["podman"], self.name) if as_root else None

    def run(self, command: str, *args: str, **kwargs: Any) -> base.CommandResult:
        if not self.container:
            return super().run(command, *args, **kwargs)
        cmd = self.get_command(command, *args)
        out = self.run_local(shlex.join(runc.exec_argv(self.container, ["/bin/sh", "-c"])) + " %s", cmd)
        out.command = self.encode(cmd)
        return out
