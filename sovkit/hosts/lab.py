"""A lab: internal networks plus systemd hosts, torn down and the machine restored on exit.

This is the API `sovkit up --stack local` and the role tests share::

    with Lab("demo", networks=[NetworkSpec("demo-in", "198.51.100.0/24")]) as lab:
        lab.start(HostSpec(...))
        ...
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sovkit.hosts._run import HostsError, log
from sovkit.hosts.aptrepo import AptRepo, build_apt_repo
from sovkit.hosts.image import BuiltImage, ImageSpec, build_rootfs, default_cache_dir
from sovkit.hosts.machine import MachineSnapshot
from sovkit.hosts.podman import HostSpec, NetworkSpec, Podman
from sovkit.render.packages import host_packages
from sovkit.stacks import project_root

# Everything the sovkit roles install on a host (read from their apt tasks), so an air-gapped host can
# converge from the local repository alone.
ROLE_PACKAGES = host_packages(project_root() / "roles")


def ensure_image(podman: Podman, spec: ImageSpec | None = None, cache_dir: Path | None = None) -> BuiltImage:
    """Build the rootfs if it is not cached and import it into podman; returns the image."""
    built = build_rootfs(spec, cache_dir)
    podman.import_image(built.tarball, built.tag)
    return built


def ensure_apt_repo(image: BuiltImage, packages: Iterable[str] = ROLE_PACKAGES,
                    cache_dir: Path | None = None) -> AptRepo:
    """The local repository of ``packages`` and their dependencies the image lacks."""
    return build_apt_repo(packages, image.installed_packages(), cache_dir or default_cache_dir())


def default_lock_path() -> Path:
    """The machine-wide lab lock: $SOVKIT_LAB_LOCK, else ~/.cache/sovkit/lab.lock."""
    env = os.environ.get("SOVKIT_LAB_LOCK")
    return Path(env) if env else Path.home() / ".cache" / "sovkit" / "lab.lock"


class LabLock:
    """An exclusive ``flock`` on a file, held across processes for as long as a lab lives.

    Two test sessions on one machine share the test networks' names and addresses and restore the
    machine's settings when they end; run at the same time, one would delete the other's networks
    and hosts. The lock makes the second wait (and says so) instead. The kernel drops the lock when
    the holder dies, so a killed session never leaves it held.
    """

    def __init__(self, path: Path | None = None, timeout_s: float = 3600) -> None:
        self.path = path or default_lock_path()
        self.timeout_s = timeout_s
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        started = time.monotonic()
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not announced:
                    holder = self.path.read_text().strip() or "another process"
                    log.warning("lab lock %s is held by %s; waiting for it", self.path, holder)
                    announced = True
                if time.monotonic() - started > self.timeout_s:
                    os.close(fd)
                    raise HostsError(
                        f"lab lock {self.path} still held after {self.timeout_s:.0f} s "
                        f"by {self.path.read_text().strip() or 'another process'}") from None
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> LabLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Lab:
    """Networks and hosts under one name prefix; a context manager that always cleans up.

    For its whole lifetime the lab holds the machine-wide :class:`LabLock`, so a second lab (another
    test session, another scenario) waits instead of tearing down this one's networks, and the
    machine snapshot it restores is the one taken before either touched the machine.
    """

    def __init__(self, name: str, networks: Iterable[NetworkSpec] = (), podman: Podman | None = None,
                 cache_dir: Path | None = None, lock: LabLock | None = None) -> None:
        self.name = name
        self.cache_dir = cache_dir or default_cache_dir()
        self.podman = podman or Podman(self.cache_dir / "podman")
        self.networks = list(networks)
        self.hosts: list[str] = []
        self.snapshot: MachineSnapshot | None = None
        self.lock = lock or LabLock()

    def __enter__(self) -> Lab:
        self.lock.acquire()
        try:
            self.snapshot = MachineSnapshot.capture()
            for net in self.networks:
                self.podman.create_network(net)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_network(self, spec: NetworkSpec) -> None:
        """Create one more network; it is removed with the lab."""
        if spec not in self.networks:
            self.networks.append(spec)
        self.podman.create_network(spec)

    def start(self, *specs: HostSpec) -> None:
        """Start hosts in parallel and wait for each to finish booting."""
        self.hosts += [s.name for s in specs if s.name not in self.hosts]
        with ThreadPoolExecutor(max_workers=max(1, len(specs))) as pool:
            list(pool.map(self.podman.start_host, specs))

    def stop(self, *names: str) -> None:
        """Remove hosts now (the lab would remove them on exit anyway)."""
        for name in names:
            self.podman.stop_host(name)
            if name in self.hosts:
                self.hosts.remove(name)

    def close(self) -> list[str]:
        """Remove the hosts and networks, restore the machine's settings, release the lock; returns
        what was restored."""
        try:
            for host in reversed(self.hosts):
                with contextlib.suppress(Exception):
                    self.podman.stop_host(host)
            self.hosts.clear()
            for net in reversed(self.networks):
                with contextlib.suppress(Exception):
                    self.podman.remove_network(net.name)
            return self.snapshot.restore() if self.snapshot else []
        finally:
            self.lock.release()


def use_local_mirror(podman: Podman, host: str, mount_point: str = "/srv/sovkit-apt") -> None:
    """Point a host's apt at the bind-mounted local repository (its only package source) and refresh."""
    podman.exec(host, ["sh", "-c", f"echo 'deb [trusted=yes] file:{mount_point} ./' > "
                                   "/etc/apt/sources.list.d/sovkit-local.list && apt-get update -qq"])
