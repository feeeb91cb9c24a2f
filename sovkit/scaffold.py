"""`sovkit new-site`: a stack file for a new site, with TODO markers `validate` reports until filled."""

from __future__ import annotations

from string import Template

import pycountry

from sovkit.config.profiles import profile_ids
from sovkit.config.types import check_country, check_slug
from sovkit.data import data_text


class ScaffoldError(ValueError):
    pass


def scaffold(country: str, name: str) -> str:
    """The text of a new stack file; the profile is the country's own when sovkit ships one."""
    try:
        check_country(country)
        check_slug(name)
    except ValueError as err:
        raise ScaffoldError(f"--country {country!r} / --name {name!r}: expected {err}") from None
    profile = country.lower() if country.lower() in profile_ids() else (
        f'"TODO: country profile (add sovkit/data/profiles/{country.lower()}.yaml; see README)"')
    country_name = pycountry.countries.get(alpha_2=country).name
    return Template(data_text("new-site.yaml.tmpl")).substitute(
        name=name, country=country, country_name=country_name, profile=profile)
