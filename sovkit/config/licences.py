"""Licence policy: the uses each catalogue licence allows (package data `licences.yaml`), the stack rule that refuses a
model whose licence does not allow a use the site serves unless its entry carries a waiver, and the waivers a site
relies on, for its evidence."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from sovkit.config.catalogue import catalogue
from sovkit.config.schema import PROJECT
from sovkit.config.site import SiteConfig
from sovkit.data import load_yaml
from sovkit.errors import Problem


@dataclass(frozen=True)
class Licence:
    id: str  # SPDX identifier, or a LicenseRef- id for a licence SPDX does not list
    name: str
    url: str
    uses: tuple[str, ...]  # the uses (of licences.yaml's `uses`) it allows without a waiver
    note: str = ""

    @property
    def spdx(self) -> bool:
        return not self.id.startswith("LicenseRef-")


@cache
def licences() -> dict[str, Licence]:
    raw: dict[str, dict] = load_yaml("licences.yaml")["licences"]  # type: ignore[index]
    return {lid: Licence(lid, e["name"], e["url"], tuple(e["uses"]), e.get("note", "")) for lid, e in raw.items()}


def unallowed_uses(site: SiteConfig, served: str) -> list[str]:
    """The uses the site serves that the licence of its model `served` does not allow."""
    entry = catalogue()[site.serving.models[served].catalogue]
    allowed = licences()[entry.licence].uses
    return [use for use in site.serving.served_uses if use not in allowed]


def check_licences(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    """Stack rule: every model's licence allows every use the site serves (servedUses), unless the model's entry
    carries a licenceWaiver; and a waiver stands only where it waives something."""
    uses = ", ".join(site.serving.served_uses)
    for served, spec in site.serving.models.items():
        entry = catalogue().get(spec.catalogue)
        if entry is None:
            continue  # check_models names the unknown model
        licence = licences()[entry.licence]
        missing = unallowed_uses(site, served)
        base = f"{PROJECT}:models.{served}"
        if missing and spec.licence_waiver is None:
            yield Problem(f"{base}.catalogue", f"{entry.id} under {licence.id}, which allows "
                          + ", ".join(licence.uses) + f" ({licence.url})",
                          f"a model whose licence allows every use the site serves (servedUses: {uses})",
                          fix=f"serve a model whose licence allows {', '.join(missing)}, or give this model a "
                              "licenceWaiver with the justification and the approver the evidence pack records")
        elif spec.licence_waiver is not None and not missing:
            yield Problem(f"{base}.licenceWaiver", "a waiver",
                          f"no waiver: {licence.id} already allows every use the site serves ({uses})",
                          fix="remove licenceWaiver, so the evidence records only waivers the site relies on")


def licence_waivers(site: SiteConfig) -> list[dict]:
    """The licence waivers the site relies on, one per waived model, for its evidence pack: the served model, its
    catalogue entry, its licence (id, URL, the uses it allows), the uses waived, the justification and the
    approver."""
    out = []
    for served, spec in site.serving.models.items():
        waiver = spec.licence_waiver
        if waiver is None or spec.catalogue not in catalogue():
            continue
        licence = licences()[catalogue()[spec.catalogue].licence]
        out.append({"model": served, "catalogue": spec.catalogue, "licence": licence.id, "licence_url": licence.url,
                    "licence_uses": list(licence.uses), "waived_uses": unallowed_uses(site, served),
                    "justification": waiver.justification, "approver": waiver.approver})
    return out

