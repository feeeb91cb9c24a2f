# The connection to the `local` stack's hosts: podman containers with systemd on this machine.
#
# It is containers.podman.podman with pipelining. That plugin runs every module in eight podman
# commands (mount, home, mkdir, cp, chown, chmod, python, rm), about 1.4 s a task on two cores;
# here a module is one exec with the module on standard input, and a file is one exec of `cat`.
# (The upstream plugin turns pipelining off because it runs exec without -i, so the command never
# sees its standard input.)
#
# Where podman runs the container with runc, as sovkit's hosts do, the exec is `runc exec` on the
# container podman made (sovkit/compliance/runc.py says why that is the same and faster). Anything
# else (another runtime, a user other than root) goes through `podman exec -i`.

from __future__ import annotations

import os
import shlex
import subprocess

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.module_utils.common.process import get_bin_path
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible.utils.display import Display

from sovkit.compliance import runc

DOCUMENTATION = """
name: sovkit_podman
short_description: Run tasks in a running podman container, one exec per module
description:
  - containers.podman.podman with pipelining and files streamed through exec; runs C(runc exec) on the
    container where podman runs it with runc and the user is root, C(podman exec -i) otherwise.
extends_documentation_fragment:
  - connection_pipelining
options:
  remote_addr:
    description: The name or ID of the container.
    default: inventory_hostname
    vars:
      - name: ansible_host
      - name: inventory_hostname
  remote_user:
    description: The user commands run as inside the container.
    vars:
      - name: ansible_user
  podman_extra_args:
    description: Extra arguments for every podman command (before the subcommand's own).
    default: ''
    vars:
      - name: ansible_podman_extra_args
    env:
      - name: ANSIBLE_PODMAN_EXTRA_ARGS
  podman_executable:
    description: The podman executable.
    default: podman
    vars:
      - name: ansible_podman_executable
    env:
      - name: ANSIBLE_PODMAN_EXECUTABLE
"""

display = Display()

class Connection(ConnectionBase):
    transport = "sovkit_podman"
    has_pipelining = True

    def _connect(self):
        super()._connect()
        self._connected = True
        return self

    def _podman(self, *args: str) -> list[str]:
        podman = get_bin_path(self.get_option("podman_executable"))
        return [podman, *shlex.split(self.get_option("podman_extra_args") or ""), *args]

    def _runc_container(self) -> str | None:
        """The container's id where runc runs it (None: use podman exec), looked up once per play run.

        The answer is kept in Ansible's local temporary folder, which lives exactly as long as the run,
        because each task opens a new connection in a new process.
        """
        name = self.get_option("remote_addr")
        cache = os.path.join(C.DEFAULT_LOCAL_TMP, f"sovkit_podman-{name}")
        try:
            with open(cache, encoding="utf-8") as f:
                found = f.read()
        except FileNotFoundError:
            found = runc.runc_container(self._podman(), name) or ""
            partial = f"{cache}.{os.getpid()}"  # written whole, then renamed: a reader never sees half an id
            with open(partial, "w", encoding="utf-8") as f:
                f.write(found)
            os.replace(partial, cache)
        return found or None

    def _exec_argv(self, command: list[str], stdin: bool) -> list[bytes]:
        user = self.get_option("remote_user") or "root"
        container = self._runc_container() if user in ("root", "0") else None
        if container:
            argv = runc.exec_argv(container, command)
        else:
            argv = self._podman("exec", *(["-i"] if stdin else []), "--user", user,
                                self.get_option("remote_addr"), *command)
        display.vvv(f"RUN {argv}", host=self.get_option("remote_addr"))
        return [to_bytes(a, errors="surrogate_or_strict") for a in argv]

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=True):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        argv = self._exec_argv(shlex.split(to_native(cmd, errors="surrogate_or_strict")), in_data is not None)
        proc = subprocess.run(argv, input=in_data, stdin=None if in_data is not None else subprocess.DEVNULL,
                              capture_output=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    @ensure_connect
    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        argv = self._exec_argv(["/bin/sh", "-c", f"cat > {shlex.quote(out_path)}"], stdin=True)
        with open(to_bytes(in_path, errors="surrogate_or_strict"), "rb") as source:
            proc = subprocess.run(argv, stdin=source, capture_output=True, check=False)
        if proc.returncode != 0:
            raise AnsibleError(f"could not write {out_path} in container {self.get_option('remote_addr')}: "
                               f"{to_native(proc.stderr).strip()}")

    @ensure_connect
    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        argv = self._exec_argv(["cat", in_path], stdin=False)
        with open(to_bytes(out_path, errors="surrogate_or_strict"), "wb") as target:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=target, stderr=subprocess.PIPE, check=False)
        if proc.returncode != 0:
            raise AnsibleError(f"could not read {in_path} in container {self.get_option('remote_addr')}: "
                               f"{to_native(proc.stderr).strip()}")

    def close(self):
        super().close()
        self._connected = False
