"""The hygiene rules (sovkit/config/hygiene.py), on small edits of shipped stacks: what passes, what is refused and
what the message says. Each refusal here passes without its rule."""

from pathlib import Path

import pytest

from sovkit.config import load_stack
from sovkit.config.locations import public_hub, under_store
from sovkit.config.types import covered_share, ipv4_carried
from sovkit.errors import StackError

STACKS = Path(__file__).parents[3] / "stacks"


def edited(tmp_path: Path, stack: str, old: str, new: str) -> Path:
    text = (STACKS / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def problems(path: Path) -> StackError:
    with pytest.raises(StackError) as caught:
        load_stack(path)
    return caught.value


PUNE_WAN = "    - 198.51.100.128/25  # state wide-area network\n"


def with_networks(tmp_path: Path, *cidrs: str) -> Path:
    return edited(tmp_path, "in-mh-pune", PUNE_WAN, PUNE_WAN + "".join(f"    - {c}\n" for c in cidrs))


# --- egress sets that amount to the Internet ------------------------------------------------------------


@pytest.mark.parametrize("cidrs", [
    ("0.0.0.0/1", "128.0.0.0/1"),
    ("0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/2", "192.0.0.0/2"),
    ("0.0.0.0/1",),  # half of all addresses is the Internet too
    ("::/1", "8000::/1"),
    ("64:ff9b::/96",),  # every IPv4 address through the NAT64 well-known prefix
], ids=["halves", "quarters", "one-half", "v6-halves", "nat64"])
def test_the_internet_in_pieces_is_refused(tmp_path, cidrs):
    error = problems(with_networks(tmp_path, *cidrs))
    assert [p.key_path for p in error.problems] == ["sovereign-ai:inCountryCidrs"]
    found = error.problems[0].found
    assert all(c in found for c in cidrs) and "together" in found and "% of all IPv" in found
    assert "well under half" in error.problems[0].allowed


def test_admin_networks_in_pieces_are_refused(tmp_path):
    path = edited(tmp_path, "in-mh-pune", "  sovereign-ai:adminCidrs:\n    - 203.0.113.0/27\n",
                  "  sovereign-ai:adminCidrs:\n    - 203.0.113.0/27\n    - 0.0.0.0/1\n    - 128.0.0.0/1\n")
    keys = {p.key_path for p in problems(path).problems}
    assert "sovereign-ai:adminCidrs" in keys


@pytest.mark.parametrize(("cidr", "bound"), [("40.0.0.0/6", "/8"), ("2c00::/12", "/16"), ("2000::/3", "/16"),
                                             ("2002::/22", "/8")])
def test_a_prefix_wider_than_any_country_holds_is_refused(tmp_path, cidr, bound):
    error = problems(with_networks(tmp_path, cidr))
    assert [p.key_path for p in error.problems] == ["sovereign-ai:inCountryCidrs[2]"]
    assert error.problems[0].found.startswith(cidr)
    assert f"a prefix of {bound} or longer" in error.problems[0].allowed


@pytest.mark.parametrize("cidrs", [("10.0.0.0/8",), ("2003::/19",), ("2a01:c000::/19", "2001:db8::/32"),
                                   ("64:ff9b::c633:6400/120",), ("2002:c633:6400::/40",)],
                         ids=["ipv4-/8", "dt-/19", "two-v6", "nat64-of-a-/24", "6to4-of-a-/24"])
def test_large_but_real_networks_pass(tmp_path, cidrs):
    site = load_stack(with_networks(tmp_path, *cidrs))
    assert set(cidrs) <= set(site.residency.in_country_cidrs)


def test_the_whole_internet_is_reported_once(tmp_path):
    """0.0.0.0/0 is the existing rule's; the hygiene rule does not report it again."""
    error = problems(with_networks(tmp_path, "0.0.0.0/0"))
    assert [p.key_path for p in error.problems] == ["sovereign-ai:inCountryCidrs[2]"]


def test_carried_ipv4_and_shares():
    import ipaddress

    carried = ipv4_carried(ipaddress.IPv6Network("64:ff9b::c633:6400/120"))
    assert carried is not None and str(carried[0]) == "198.51.100.0/24"
    assert str(ipv4_carried(ipaddress.IPv6Network("2002:c633:6400::/40"))[0]) == "198.51.100.0/24"  # type: ignore[index]
    assert ipv4_carried(ipaddress.IPv6Network("2001:db8::/32")) is None
    halves = [ipaddress.IPv4Network("0.0.0.0/1"), ipaddress.IPv4Network("128.0.0.0/1"),
              ipaddress.IPv4Network("0.0.0.0/2")]
    assert covered_share(halves, 4) == 1.0  # overlaps counted once


# --- in-country domains ---------------------------------------------------------------------------------


@pytest.mark.parametrize("domain", ["gov", "za", "example", "gov."])
def test_a_top_level_domain_is_not_in_country(tmp_path, domain):
    path = edited(tmp_path, "za-national-dc", "    - dc.gov.example\n", f"    - dc.gov.example\n    - {domain}\n")
    error = problems(path)
    assert [p.key_path for p in error.problems] == ["sovereign-ai:inCountryDomains[1]"]
    assert "two labels or more" in error.problems[0].allowed and "top-level domain" in error.problems[0].fix


# --- model sources --------------------------------------------------------------------------------------

ZA_SOURCE = "source: s3://models.dc.gov.example/sovkit/qwen2.5-14b-instruct"


@pytest.mark.parametrize(("source", "hub"), [
    ("hf://Qwen/Qwen2.5-14B-Instruct", "Hugging Face"),
    ("https://huggingface.co/Qwen/Qwen2.5-14B-Instruct", "Hugging Face"),
    ("huggingface.co/Qwen/Qwen2.5-14B-Instruct", "Hugging Face"),
    ("https://hf.co/Qwen/Qwen2.5-14B-Instruct", "Hugging Face"),
    ("https://cdn-lfs.hf.co/repos/ab/cd", "Hugging Face"),
    ("Qwen/Qwen2.5-14B-Instruct", "Hugging Face"),
    ("modelscope://qwen/Qwen2.5-14B-Instruct", "ModelScope"),
    ("https://www.modelscope.cn/models/qwen/Qwen2.5-14B-Instruct", "ModelScope"),
    ("ollama://qwen2.5:14b", "Ollama"),
    ("https://registry.ollama.ai/library/qwen2.5", "Ollama"),
])
def test_weights_from_a_public_hub_are_refused_naming_the_hub(tmp_path, source, hub):
    error = problems(edited(tmp_path, "za-national-dc", ZA_SOURCE, f"source: {source}"))
    assert [p.key_path for p in error.problems] == ["sovereign-ai:models.qwen2-5-14b.source"]
    problem = error.problems[0]
    assert f"{hub} is a public model hub" in problem.fix and "only from the in-country store" in problem.fix
    assert "s3://models.dc.gov.example/sovkit" in problem.allowed


@pytest.mark.parametrize("source", [
    "s3://models.dc.gov.example/sovkitx/qwen",  # a prefix of the store's path is not inside it
    "s3://models.dc.gov.example/sovkit/../other/qwen",
    "s3://models.dc.gov.example/sovkit/%2e%2e/other/qwen",
    "s3://elsewhere.dc.gov.example/sovkit/qwen",
    "https://models.dc.gov.example/sovkit/qwen",  # another scheme is another store
    "/srv/sovkit/models/qwen",
])
def test_weights_outside_the_store_are_refused(tmp_path, source):
    error = problems(edited(tmp_path, "za-national-dc", ZA_SOURCE, f"source: {source}"))
    assert [p.key_path for p in error.problems] == ["sovereign-ai:models.qwen2-5-14b.source"]
    assert "under the in-country model store" in error.problems[0].allowed


def test_the_store_compares_normalised():
    store = "https://modelos.ministerio.gov.example/sovkit"
    assert under_store("https://MODELOS.ministerio.gov.example:443/sovkit//qwen/", store)
    assert under_store("https://modelos.ministerio.gov.example/sovkit/a/./b", store)
    assert not under_store("https://modelos.ministerio.gov.example/sovkit-teste/qwen", store)
    assert not under_store("https://modelos.ministerio.gov.example:8443/sovkit/qwen", store)
    assert under_store("/srv/sovkit/models/sarvam-1", "/srv/sovkit/models/")
    assert under_store("file:///srv/sovkit/models/sarvam-1", "/srv/sovkit/models")
    assert not under_store("/srv/sovkit/models-old/sarvam-1", "/srv/sovkit/models")
    assert not under_store("/srv/sovkit/models/../keys", "/srv/sovkit/models")


def test_a_public_hub_as_the_model_store_is_refused(tmp_path):
    path = edited(tmp_path, "br-ministerio-cpu", "sovereign-ai:inCountryDomains:\n",
                  "sovereign-ai:inCountryDomains:\n    - huggingface.co\n")
    path.write_text(path.read_text(encoding="utf-8").replace(
        "https://modelos.ministerio.gov.example/sovkit", "https://huggingface.co/sovkit"), encoding="utf-8")
    keys = [p.key_path for p in problems(path).problems]
    assert keys == ["sovereign-ai:modelStore"]


def test_public_hub_names():
    assert public_hub("hf://a/b") == "Hugging Face"
    assert public_hub("Qwen/Qwen2.5-7B") == "Hugging Face"
    assert public_hub("/srv/models/a") is None
    assert public_hub("s3://models.dc.gov.example/a/b") is None
    assert public_hub("models.dc.gov.example/a") is None  # a host, not an org


# --- credentials in URLs --------------------------------------------------------------------------------

SECRET = "Zq7-NotForPrinting-4Kx"


@pytest.mark.parametrize(("stack", "old", "new", "key"), [
    ("za-national-dc", "https://mirror.dc.gov.example/debian", f"https://sync:{SECRET}@mirror.dc.gov.example/debian",
     "sovereign-ai:aptMirror"),
    ("za-national-dc", "s3://models.dc.gov.example/sovkit\n", f"s3://models.dc.gov.example/sovkit?token={SECRET}\n",
     "sovereign-ai:modelStore"),
    ("za-national-dc", "s3://pulumi-state?endpoint=objects.dc.gov.example",
     f"s3://pulumi-state?endpoint=objects.dc.gov.example&secret_key={SECRET}", "sovereign-ai:stateBackend"),
    ("za-national-dc", "https://alerts.dc.gov.example/hooks/sovkit",
     f"https://alerts.dc.gov.example/hooks/sovkit?X-Amz-Signature={SECRET}",
     "sovereign-ai:alertReceivers.noc-pager.webhook"),
    ("za-national-dc", "sovereign-ai:containerRegistry: registry.dc.gov.example/sovkit",
     f"sovereign-ai:containerRegistry: robot:{SECRET}@registry.dc.gov.example/sovkit",
     "sovereign-ai:containerRegistry"),
    ("za-national-dc", "source: s3://models.dc.gov.example/sovkit/bge-m3",
     f"source: s3://models.dc.gov.example/sovkit/bge-m3?sig={SECRET}",
     "sovereign-ai:models.bge-m3.source"),
    ("br-ministerio-cpu", "http://espelho.serpro.gov.example/debian",
     f"http://espelho:{SECRET}@espelho.serpro.gov.example/debian", "sovereign-ai:aptMirror"),
    ("br-ministerio-cpu", "https://modelos.ministerio.gov.example/sovkit\n",
     f"https://modelos.ministerio.gov.example/sovkit?Password={SECRET}\n", "sovereign-ai:modelStore"),
], ids=["userinfo", "token", "secret_key", "x-amz", "registry", "source-sig", "http-userinfo", "password"])
def test_a_credential_in_a_url_is_refused_and_never_printed(tmp_path, stack, old, new, key):
    error = problems(edited(tmp_path, stack, old, new))
    assert [p.key_path for p in error.problems] == [key]
    assert "a credential in the URL" in error.problems[0].found and "<redacted>" in error.problems[0].found
    assert SECRET not in str(error) and SECRET not in repr(error.problems)


def test_apt_repository_urls_are_checked_too(tmp_path):
    url = "https://mirror.dc.gov.example/nvidia-cuda/debian12/x86_64"
    path = edited(tmp_path, "za-national-dc", url, f"{url}?access_token={SECRET}")
    error = problems(path)
    assert [p.key_path for p in error.problems] == ["sovereign-ai:aptRepositories.nvidia.url"]
    assert SECRET not in str(error)


def test_a_url_without_credentials_passes(tmp_path):
    site = load_stack(edited(tmp_path, "za-national-dc", "https://alerts.dc.gov.example/hooks/sovkit",
                             "https://alerts.dc.gov.example/hooks/sovkit?channel=noc&keyword=gpu"))
    assert site.monitoring.alert_receivers["noc-pager"].webhook.endswith("keyword=gpu")


# --- tenants sharing a key ------------------------------------------------------------------------------


@pytest.mark.parametrize("written", ["/etc/sovkit/keys/citizen-services.key",
                                     "/etc/sovkit//keys/./citizen-services.key",
                                     "/etc/sovkit/keys/../keys/citizen-services.key"])
def test_tenants_sharing_a_key_file_are_refused_naming_both(tmp_path, written):
    path = edited(tmp_path, "in-mh-pune", "apiKey: {file: /etc/sovkit/keys/revenue-dept.key}",
                  f"apiKey: {{file: {written}}}")
    error = problems(path)
    assert [p.key_path for p in error.problems] == ["sovereign-ai:tenants.revenue-dept.apiKey.file"]
    text = str(error)
    assert "citizen-services" in text and "revenue-dept" in text


def test_tenants_sharing_a_pulumi_secret_are_refused(tmp_path):
    path = edited(tmp_path, "za-national-dc", "apiKey: {pulumiSecret: tenantKeyHealth}",
                  "apiKey: {pulumiSecret: tenantKeyHomeAffairs}")
    error = problems(path)
    assert [p.key_path for p in error.problems] == ["sovereign-ai:tenants.health.apiKey.pulumiSecret"]
    assert "home-affairs" in error.problems[0].allowed
