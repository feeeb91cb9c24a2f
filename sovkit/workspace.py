"""Every path of a site, on the machine running sovkit and on its hosts: one place spells them.

On this machine a site's state lives under `.sovkit/<site>/` in the project root (git-ignored): the rendered
inventory, the offline bundle, the site CA, the secrets sovkit makes, logs, compliance reports and the rehearsal.
On every host, the bundle is read from HOST_BUNDLE_DIR.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sovkit.stacks import project_root

STATE_ROOT = ".sovkit"
HOST_BUNDLE_DIR = "/srv/sovkit/bundle"  # where the offline bundle is on every host (read-only)
# Where data lives on every host: the roles place it there and data_at_rest inspects these volumes.
HOST_DATA_PATHS = {"model_store": "/srv/sovkit/models", "logs": "/var/log/sovkit", "kubernetes": "/var/lib/rancher"}


@dataclass(frozen=True)
class SiteWorkspace:
    """The files of one site under the project root `root`."""

    site_name: str
    root: Path

    @classmethod
    def of(cls, site_name: str, root: Path | None = None) -> SiteWorkspace:
        return cls(site_name, (root or project_root()).resolve())

    @property
    def relative(self) -> str:
        """The state folder relative to the project root (commands that run in the root, such as Pulumi's)."""
        return f"{STATE_ROOT}/{self.site_name}"

    @property
    def state_dir(self) -> Path:
        return self.root / self.relative

    @property
    def inventory(self) -> Path:
        return self.state_dir / "inventory.yml"

    @property
    def bundle(self) -> Path:
        return self.state_dir / "bundle"

    @property
    def pki(self) -> Path:
        """The site CA and the certificates it signs (gateways, rehearsal stand-ins)."""
        return self.state_dir / "pki"

    @property
    def secrets(self) -> Path:
        """Secrets sovkit makes for the site (mode 0700): the gateway's key to its model servers."""
        return self.state_dir / "secrets"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def compliance(self) -> Path:
        """Where `sovkit verify` writes its reports by default."""
        return self.state_dir / "compliance"

    @property
    def evidence(self) -> Path:
        """Where `sovkit evidence` writes the signed evidence packs of the site's verify runs."""
        return self.state_dir / "evidence"

    @property
    def evidence_key(self) -> Path:
        """The site's offline key that signs its evidence packs (mode 0700; the auditors hold its public half)."""
        return self.state_dir / "evidence-key"

    @property
    def evidence_watch(self) -> Path:
        """The scheduled watcher's baseline pack (the last run that got no worse) and its state."""
        return self.state_dir / "evidence-watch"

    @property
    def gate(self) -> Path:
        """Where `sovkit gate` writes each model's gate report (<model>.json) and the harness's files (<model>/)."""
        return self.state_dir / "gate"

    @property
    def rehearsal(self) -> Path:
        """What `sovkit rehearse` keeps: its SSH key, the stand-in services' files, its record."""
        return self.state_dir / "rehearsal"

    @property
    def machine_snapshot(self) -> Path:
        """This machine's settings before the site's first podman network: what `down` puts back."""
        return self.state_dir / "machine-snapshot.json"


def secret_file(path: Path, nbytes: int = 32) -> str:
    """The secret kept in `path`: made once (`nbytes` random bytes, URL-safe text, mode 0600 in a 0700 folder),
    read back on every later call."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as stream:
            stream.write(secrets.token_urlsafe(nbytes) + "\n")
    return path.read_text(encoding="utf-8").strip()
