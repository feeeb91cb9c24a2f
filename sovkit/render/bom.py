"""The site's AI bill of materials: a CycloneDX 1.6 ML-BOM written with CycloneDX's own library.

    metadata.component   the site (country, profile, provider, mode, accelerator), supplied by its operator
    machine-learning-model, one per served model: catalogue entry, checkpoint, revision (and the SHA-256 of its
                         SHA256SUMS when the revision is that digest), licence (SPDX id when it is one), languages,
                         quantization, signature and signer fingerprint when signed, evaluation results when a
                         quality gate passes them in (left out otherwise: no placeholders)
    serving runtime      hosts mode: every package of the runtime lock with its wheel's sha256; kubernetes mode: the
                         chart's images for the site's accelerator (and its weights verifier's, when a model is signed)
    bundle               when its manifest is given: every file of the offline bundle with its sha256

CycloneDX's Python library does not model the ML-BOM's modelCard yet, so what a model card would hold (languages,
quantization, evaluation results) is written as properties in sovkit's namespace: `sovkit:language`,
`sovkit:quantization`, `sovkit:evaluation:<task>:<metric>`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import yaml
from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.contact import OrganizationalContact, OrganizationalEntity
from cyclonedx.model.license import DisjunctiveLicense
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.spdx import fixup_id
from packageurl import PackageURL

from sovkit.config import SiteConfig, runtime
from sovkit.config.catalogue import get as catalogue_entry
from sovkit.config.signers import read_signer, signature_location
from sovkit.render.evaltasks import METRIC
from sovkit.render.gate import GateReport, gated_models, verdicts
from sovkit.stacks import project_root

NAMESPACE = "sovkit"
# BOMs of one site at one time are one document: its serial number is derived from both, not drawn at random.
SERIAL_NAMESPACE = uuid.UUID("5d0b6a53-1c8e-4e7b-9a57-6f3c1b2d9e40")
SHA256_REVISION = re.compile(r"^sha256:([0-9a-f]{64})$")
GIT_COMMIT = re.compile(r"^[0-9a-f]{40}$")
HUB_REPOSITORY = re.compile(r"^([A-Za-z0-9][\w.-]*)/([\w.-]+)$")  # org/name, as the catalogue's checkpoints
CHART_VALUES = ("charts", "sovkit-serving", "values.yaml")


@dataclass(frozen=True)
class Evaluation:
    """One evaluation result of a served model, as a quality gate measured it (e.g. task mmlu, metric acc)."""

    task: str
    metric: str
    value: float | str


def gate_evaluations(site: SiteConfig, reports: Mapping[str, GateReport]) -> dict[str, list[Evaluation]]:
    """Each gated model's quality-gate results for the BOM: every set's score, and the verdict per language as the
    stack judges it now (a report of another revision or other sets is no pass), with when and how it ran."""
    found: dict[str, list[Evaluation]] = {}
    for served in gated_models(site):
        report = reports.get(served)
        results = [Evaluation(f"gate-{v.language}", "verdict", v.reason) for v in verdicts(site, served, report)]
        if report is not None:
            results = [Evaluation(f"{s.name}-{s.language}", METRIC, round(s.score, 4)) for s in report.sets] + \
                results + [Evaluation("gate", "run", f"{report.harness}, {report.started}, {report.seconds} s")]
        found[served] = results
    return found


def _property(name: str, value: object) -> Property:
    return Property(name=f"{NAMESPACE}:{name}", value=str(value))


def _properties(pairs: Iterable[tuple[str, object]]) -> list[Property]:
    return [_property(name, value) for name, value in pairs if value not in (None, "")]


def _licence(text: str) -> tuple[DisjunctiveLicense, str | None]:
    """The catalogue's licence: an SPDX id when it starts with one (the rest is a note), else the licence's name."""
    head, _, note = text.partition(" (")
    spdx = fixup_id(head.strip())
    if spdx:
        return DisjunctiveLicense(id=spdx), note.rstrip(")") or None
    return LicenseFactory().make_with_name(text), None  # type: ignore[return-value]


def _model(site: SiteConfig, served: str, results: Sequence[Evaluation]) -> Component:
    spec = site.serving.models[served]
    entry = catalogue_entry(spec.catalogue)
    checkpoint = entry.quantizations[spec.quantization].checkpoint
    licence, note = _licence(entry.licence)
    digest = SHA256_REVISION.match(spec.revision)
    repository = HUB_REPOSITORY.match(checkpoint)
    purl = (PackageURL("huggingface", repository.group(1), repository.group(2), spec.revision)
            if repository and GIT_COMMIT.match(spec.revision) else None)
    pairs: list[tuple[str, object]] = [
        ("catalogue", spec.catalogue), ("checkpoint", checkpoint), ("revision", spec.revision),
        ("source", spec.source), ("quantization", spec.quantization), ("parameters", entry.parameters),
        ("max-context", spec.max_context), ("licence-note", note),
        *(("language", language) for language in spec.languages)]
    if digest:
        pairs.append(("digest-of", "SHA256SUMS, the sha256sum manifest of every file of the weights"))
    if spec.signer is not None:
        signer = read_signer(spec.signer)
        pairs += [("signature", signature_location(spec)), ("signer:kind", signer.kind),
                  ("signer:fingerprint", signer.fingerprint), ("signer:name", signer.description)]
    pairs += [(f"evaluation:{r.task}:{r.metric}", r.value) for r in results]
    return Component(type=ComponentType.MACHINE_LEARNING_MODEL, bom_ref=f"model:{served}", name=served,
                     version=spec.revision, description=f"{entry.name} ({checkpoint})",
                     hashes=[HashType(alg=HashAlgorithm.SHA_256, content=digest.group(1))] if digest else [],
                     licenses=[licence], purl=purl, properties=_properties(pairs))


def _runtime(site: SiteConfig) -> Component | None:
    """Hosts mode: the runtime lock's packages; kubernetes mode: the chart's images for the accelerator."""
    vendor = site.accelerator.accelerator
    lines = runtime.requirements(site)
    if lines:
        packages = []
        for line in lines:
            pin, *hashes = line.split()
            name, pinned = pin.split("==", 1)
            packages.append(Component(
                type=ComponentType.LIBRARY, bom_ref=f"runtime:{runtime.normalise(name)}", name=name, version=pinned,
                purl=PackageURL("pypi", None, runtime.normalise(name), pinned),
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=h.removeprefix("--hash=sha256:")) for h in hashes]))
        return Component(type=ComponentType.FRAMEWORK, bom_ref="runtime", name=f"{vendor} serving runtime",
                         description=f"the hosts-mode runtime lock sovkit/data/runtime/{vendor}.txt, every wheel "
                                     "pinned with its sha256", components=packages)
    values = yaml.safe_load(project_root().joinpath(*CHART_VALUES).read_text(encoding="utf-8"))
    images = {"vllm": values["images"]["vllm"][vendor], "fetcher": values["images"]["fetcher"]}
    if any(spec.signature is not None for spec in site.serving.models.values()):
        images["verifier"] = values["images"]["verifier"]  # sovkit's, built by the site (verify-model)
    containers = [Component(type=ComponentType.CONTAINER, bom_ref=f"runtime:{role}", name=image["repository"],
                            version=str(image["tag"]), purl=PackageURL("docker", None, image["repository"],
                                                                       str(image["tag"])),
                            properties=_properties([("role", role),
                                                    ("registry", site.residency.container_registry)]))
                  for role, image in images.items()]
    return Component(type=ComponentType.FRAMEWORK, bom_ref="runtime", name=f"{vendor} serving runtime",
                     description="the images of charts/sovkit-serving, pulled from the in-country registry",
                     components=containers)


def _bundle(site: SiteConfig, manifest_bytes: bytes) -> Component:
    manifest = json.loads(manifest_bytes)
    files = [Component(type=ComponentType.FILE, bom_ref=f"bundle:{name}", name=name,
                       hashes=[HashType(alg=HashAlgorithm.SHA_256, content=facts["sha256"])],
                       properties=_properties([("bytes", facts["bytes"])]))
             for name, facts in sorted(manifest["files"].items())]
    facts = [(key, value if isinstance(value, str) else json.dumps(value))
             for key, value in sorted(manifest.items()) if key != "files" and value is not None]
    return Component(type=ComponentType.FILE, bom_ref="bundle", name=f"{site.name} offline bundle",
                     description="manifest.json of `sovkit bundle`, with every file it lists",
                     hashes=[HashType(alg=HashAlgorithm.SHA_256, content=hashlib.sha256(manifest_bytes).hexdigest())],
                     properties=_properties(facts), components=files)


def _kit_version() -> str | None:
    try:
        return version("sovkit")
    except PackageNotFoundError:
        return None  # run from a checkout


def site_bom(site: SiteConfig, *, evaluations: Mapping[str, Sequence[Evaluation]] | None = None,
             bundle_manifest: bytes | None = None, timestamp: dt.datetime | None = None) -> Bom:
    """The site's ML-BOM. `evaluations`: results by served model name (from a quality gate; unknown names are
    refused); `bundle_manifest`: the bytes of the bundle's manifest.json, when the site has one."""
    evaluations = evaluations or {}
    unknown = sorted(set(evaluations) - set(site.serving.models))
    if unknown:
        raise ValueError(f"evaluations for models the site does not serve: {', '.join(unknown)} (it serves "
                         f"{', '.join(site.serving.models)})")
    timestamp = timestamp or dt.datetime.now(dt.UTC)
    operator = OrganizationalEntity(name=site.site.operator_name,
                                    contacts=[OrganizationalContact(email=site.site.operator_email)])
    subject = Component(type=ComponentType.PLATFORM, bom_ref=f"site:{site.name}", name=site.name, supplier=operator,
                        properties=_properties([("country", site.site.country), ("profile", site.profile.id),
                                                ("provider", site.infrastructure.provider),
                                                ("mode", site.platform.mode),
                                                ("accelerator", site.accelerator.accelerator)]))
    tool = Component(type=ComponentType.APPLICATION, name="sovkit", version=_kit_version())
    bom = Bom(serial_number=uuid.uuid5(SERIAL_NAMESPACE, f"{site.name}@{timestamp.isoformat()}"),
              metadata=BomMetaData(component=subject, supplier=operator, timestamp=timestamp,
                                   tools=ToolRepository(components=[tool])))
    parts = [_model(site, served, evaluations.get(served, ())) for served in site.serving.models]
    parts += [part for part in (_runtime(site),) if part is not None]
    parts += [_bundle(site, bundle_manifest)] if bundle_manifest is not None else []
    for part in parts:
        bom.components.add(part)
    bom.register_dependency(subject, parts)
    return bom


def bom_document(site: SiteConfig, *, evaluations: Mapping[str, Sequence[Evaluation]] | None = None,
                 bundle_manifest: bytes | None = None, timestamp: dt.datetime | None = None) -> str:
    """The site's ML-BOM as CycloneDX 1.6 JSON (see `site_bom`)."""
    bom = site_bom(site, evaluations=evaluations, bundle_manifest=bundle_manifest, timestamp=timestamp)
    return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"
