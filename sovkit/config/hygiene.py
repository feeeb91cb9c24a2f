"""Cross-field rules on mistakes no single field notices: egress sets that amount to the Internet, top-level domains
taken as in-country, model weights from outside the in-country store (or from a public hub), credentials written
into URLs, and tenants sharing one key. Each rule is registered in rules.RULES and returns every problem it finds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sovkit.config import checks, rules
from sovkit.config.locations import clean_path, public_hub
from sovkit.config.site import SiteConfig
from sovkit.errors import Problem, short, url_secrets

# Where each kind of URL key keeps its credentials instead (what the fix says).
CREDENTIALS_HOME = {
    "aptMirror": "apt reads them from /etc/apt/auth.conf.d/ on the hosts",
    "aptRepositories": "apt reads them from /etc/apt/auth.conf.d/ on the hosts",
    "modelStore": "the serving platform reads the store's keys from the sovkit-model-store secret",
    "models": "the serving platform reads the store's keys from the sovkit-model-store secret",
    "stateBackend": "give them to `pulumi login` in its environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)",
    "alertReceivers": "keep the receiver's token in a secret of the monitoring stack, not in the URL",
    "logCollector": "the collector authenticates hosts by their TLS certificate, not by a password in the URL",
    "containerRegistry": "the container runtime reads registry logins from its own credentials file",
}


def domains(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    """inCountryDomains: a domain, never a top-level one (gov, za, example would make every name under it
    in-country, in every country)."""
    for i, domain in enumerate(site.residency.in_country_domains):
        if "." not in domain.strip("."):
            yield Problem(rules.key(f"inCountryDomains[{i}]"), short(domain),
                          "a domain of two labels or more, such as health.gov.example",
                          fix=f"{domain!r} is a top-level domain: every name under it, in any country, would count "
                              "as in-country; name the domains of the country's own services")


def model_sources(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    """Every model's weights come from the in-country model store, never from a public hub (in hosts mode the
    same check is part of rules.hosts_mode_models, the model store role's own)."""
    store = site.residency.model_store
    store_hub = public_hub(store)
    if store_hub:
        yield Problem(rules.key("modelStore"), short(store), "the site's own in-country model store",
                      fix=f"{store_hub} is a public model hub: weights come only from the in-country store; copy "
                          "them there, with their revision, and name that store")
        return
    if site.platform.mode == "hosts":
        return
    models = {served: {"source": spec.source} for served, spec in site.serving.models.items()}
    yield from rules.from_findings("models", checks.model_locations(models, store))


def url_keys(site: SiteConfig) -> list[tuple[str, str]]:
    """(key path, URL) of every key that holds a URL; the container registry as oci://HOST[:PORT][/PATH]."""
    res = site.residency
    urls = [("aptMirror", res.apt_mirror), ("modelStore", res.model_store), ("stateBackend", res.state_backend),
            ("containerRegistry", "oci://" + res.container_registry)]
    urls += [(f"aptRepositories.{name}.url", repo.url) for name, repo in res.apt_repositories.items()]
    urls += [(f"models.{name}.source", spec.source) for name, spec in site.serving.models.items()]
    urls += [(f"alertReceivers.{name}.webhook", r.webhook) for name, r in site.monitoring.alert_receivers.items()
             if r.webhook]
    urls += [("logCollector", res.log_collector)] if res.log_collector else []
    return urls


def url_credentials(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    """No URL carries a credential (user:password@, or a token, key or signature parameter). The value is shown with
    the credential redacted: a stack file is read by many, and what validate prints lands in CI logs."""
    for path, url in url_keys(site):
        secrets = url_secrets(url)
        if not secrets:
            continue
        what = ", ".join(dict.fromkeys(_credential_kind(name) for name, _, _ in secrets))
        shown = short(url.removeprefix("oci://") if path == "containerRegistry" else url, limit=400)
        home = CREDENTIALS_HOME[re.split(r"[.\[]", path, maxsplit=1)[0]]
        yield Problem(rules.key(path), f"a credential in the URL ({what}): {shown}",
                      "a URL without credentials", fix=f"remove it from the file and rotate it (it has been written "
                      f"down); {home}")


def _credential_kind(name: str) -> str:
    if name == "userinfo":
        return "a user name and password before the host"
    for family in ("X-Amz-", "X-Goog-"):
        if name.lower().startswith(family.lower()):
            return f"the {family}* parameters of a signed URL"
    return f"the {name} parameter"


def tenant_keys(site: SiteConfig, _plain_keys: frozenset[str]) -> Iterable[Problem]:
    """Every tenant has a key of its own: the gateway tells tenants apart by their key, so two tenants reading one
    key file (or one Pulumi secret) would share each other's grants and rate limits."""
    files: dict[str, tuple[str, str]] = {}
    secrets: dict[str, str] = {}
    for name, tenant in site.serving.tenants.items():
        ref = tenant.api_key
        if ref.file is not None:
            path = clean_path(ref.file)
            if path in files:
                first, written = files[path]
                yield Problem(rules.key(f"tenants.{name}.apiKey.file"), short(ref.file),
                              f"a key file of its own: tenant {first} reads {written} already",
                              fix=f"give {name} its own key file; tenants {first} and {name} would be one tenant to "
                                  "the gateway")
            files.setdefault(path, (name, ref.file))
        if ref.pulumi_secret is not None:
            if ref.pulumi_secret in secrets:
                first = secrets[ref.pulumi_secret]
                yield Problem(rules.key(f"tenants.{name}.apiKey.pulumiSecret"), short(ref.pulumi_secret),
                              f"a secret of its own: tenant {first} reads {ref.pulumi_secret} already",
                              fix=f"give {name} its own secret; tenants {first} and {name} would be one tenant to "
                                  "the gateway")
            secrets.setdefault(ref.pulumi_secret, name)


RULES = (domains, model_sources, url_credentials, tenant_keys)
