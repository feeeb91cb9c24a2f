"""What every OSCAL document of the kit shares: file names, the property namespace, stable UUIDs, metadata, and the
check that a document is valid OSCAL before it is written."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from importlib.metadata import version
from pathlib import Path

from trestle.core import validator_factory  # noqa: F401  trestle registers its validators here; first, or its import cycles
from trestle.core.all_validator import AllValidator
from trestle.core.base_model import OscalBaseModel
from trestle.core.oscal_backward_compatibility import check_raw_oscal
from trestle.oscal import OSCAL_VERSION
from trestle.oscal.common import Metadata, Property

TRESTLE_VERSION = version("compliance-trestle")
# Names the kit gives its properties are its own, so they carry its namespace (OSCAL's rule for non-OSCAL names).
NAMESPACE = "urn:sovkit:oscal"
_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, NAMESPACE)

CONTROLS_CATALOGUE = "catalog-sovkit-controls.json"
COMPONENT_DEFINITION = "component-definition.json"
ASSESSMENT_RESULTS = "assessment-results.json"


class OscalError(Exception):
    """A document the kit built is not valid OSCAL (a bug in the kit or in its data files)."""


def clauses_catalogue_file(profile_id: str) -> str:
    return f"catalog-{profile_id}-clauses.json"


def stable_uuid(*parts: str) -> str:
    """The same parts give the same UUID: regenerating a document gives the same document."""
    return str(uuid.uuid5(_UUID_NAMESPACE, "|".join(parts)))


def prop(name: str, value: str, remarks: str | None = None) -> Property:
    return Property(name=name, value=value, ns=NAMESPACE, remarks=remarks)


def metadata(title: str, doc_version: str, last_modified: dt.datetime, remarks: str | None = None) -> Metadata:
    return Metadata(title=title, last_modified=last_modified, version=doc_version, oscal_version=OSCAL_VERSION,
                    remarks=remarks)


def validated_json(document: OscalBaseModel) -> str:
    """The document as OSCAL JSON, after it parses back with trestle's model and passes trestle's validators (OSCAL
    version and time-zone checks, then duplicate UUIDs, references, links, catalogue parameters); OscalError if not."""
    text = document.oscal_serialize_json(pretty=True)
    raw = json.loads(text)
    kind = type(document)
    try:
        (body,) = raw.values()  # the document sits under one key naming its kind ("catalog", ...)
        parsed = kind.parse_obj(body)
    except Exception as err:  # trestle raises pydantic's and its own errors alike
        raise OscalError(f"{kind.__name__} does not parse back with trestle: {err}") from err
    issues = [str(i) for i in check_raw_oscal(raw) if i.severity == "ERROR"]
    if issues:
        raise OscalError(f"{kind.__name__} fails trestle's compatibility checks: {'; '.join(issues)}")
    validator = AllValidator()
    if not validator.model_is_valid(parsed, quiet=True):
        raise OscalError(f"{kind.__name__} fails trestle's validation: {validator.error_msg()}")
    return text + "\n"


def write_document(document: OscalBaseModel, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(validated_json(document), encoding="utf-8")
    return path
