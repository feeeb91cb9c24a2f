#!/usr/bin/python3
"""Print, as JSON, whether each given path and each swap device sits on dm-crypt (sovkit data_at_rest).

For a path: the mount holding it (findmnt), its source device, and the device chain below it
(lsblk --inverse); encrypted when any device in the chain has TYPE crypt. Swap from /proc/swaps.
In a container the mounts are overlay/bind mounts and /proc/swaps is the machine's: both are reported
as such, and the swap is marked not inspectable.
"""

import json
import os
import subprocess
import sys


def run(*argv):
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def chain(source):
    """Device types from source downwards (lsblk --inverse): e.g. ['lvm', 'crypt', 'part', 'disk']."""
    if not source.startswith("/dev/"):
        return []
    out = run("lsblk", "--inverse", "--noheadings", "--list", "--output", "TYPE", source)
    return [line.strip() for line in out.splitlines() if line.strip()]


def in_container():
    if os.path.exists("/run/.containerenv") or os.path.exists("/.dockerenv"):
        return True
    # systemd sets this lower-case name in containers
    return os.environ.get("container", "") != "" or run("systemd-detect-virt", "--container") not in ("", "none")  # noqa: SIM112


def volume(path):
    probe = path
    while not os.path.exists(probe):
        probe = os.path.dirname(probe) or "/"
    # --nofsroot: a bind mount's source is its device, not "device[/folder]", which lsblk does not know
    out = run("findmnt", "--noheadings", "--nofsroot", "--output", "TARGET,SOURCE,FSTYPE", "--target", probe)
    target, source, fstype = [*out.split(), "?", "?", "?"][:3]
    types = chain(source)
    return {"path": path, "mount": target, "source": source, "fstype": fstype, "chain": types,
            "encrypted": "crypt" in types}


def swaps():
    result = []
    with open("/proc/swaps") as fh:
        for line in fh.read().splitlines()[1:]:
            source = line.split()[0]
            types = chain(source)
            result.append({"source": source, "chain": types, "encrypted": "crypt" in types})
    return result


print(json.dumps({"container": in_container(), "volumes": [volume(p) for p in sys.argv[1:]], "swap": swaps()}))
