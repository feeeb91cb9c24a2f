"""A credential written into a URL is refused, and never printed back: not in a Problem, not on stdout or stderr
of any command that loads a stack, not in a log record, not in `sovkit show`."""

import dataclasses
import json
import logging
from pathlib import Path

import pytest

import sovkit.cli
from sovkit.cli import run
from sovkit.config import load_pulumi_config, load_stack
from sovkit.config.checks import CHECKS
from sovkit.config.schema import ResidencySection
from sovkit.errors import REDACTED, StackError, redact, short
from sovkit.infra.testing import stack_environment

ROOT = Path(__file__).parents[3]
SECRETS = ["Mirror-Pass-7731", "Zm9vYmFyc2lnbmF0dXJl", "state-Key-0042", "hook-Token-55aa", "Robot-Pass-2210",
           "src-Sig-9a9a", "siem-Pass-3131"]
EDITS = [
    ("https://mirror.dc.gov.example/debian", f"https://apt:{SECRETS[0]}@mirror.dc.gov.example/debian"),
    ("sovereign-ai:modelStore: s3://models.dc.gov.example/sovkit\n",
     f"sovereign-ai:modelStore: s3://models.dc.gov.example/sovkit?X-Amz-Signature={SECRETS[1]}\n"),
    ("endpoint=objects.dc.gov.example&", f"endpoint=objects.dc.gov.example&secret_key={SECRETS[2]}&"),
    ("https://alerts.dc.gov.example/hooks/sovkit", f"https://alerts.dc.gov.example/hooks/sovkit?token={SECRETS[3]}"),
    ("sovereign-ai:containerRegistry: registry.dc.gov.example/sovkit",
     f"sovereign-ai:containerRegistry: robot:{SECRETS[4]}@registry.dc.gov.example/sovkit"),
    ("source: s3://models.dc.gov.example/sovkit/bge-m3",
     f"source: s3://models.dc.gov.example/sovkit/bge-m3?sig={SECRETS[5]}"),
]
if "log_collector" in ResidencySection.model_fields:  # the journal collector, where the schema has one
    EDITS.append(("  sovereign-ai:encryptionAtRestRequired: true\n", "  sovereign-ai:encryptionAtRestRequired: true\n"
                  f"  sovereign-ai:logCollector: https://journal:{SECRETS[6]}@siem.dc.gov.example:19532\n"))


@pytest.fixture
def secret_stack(tmp_path: Path) -> Path:
    text = (ROOT / "stacks" / "Pulumi.za-national-dc.yaml").read_text(encoding="utf-8")
    for old, new in EDITS:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "Pulumi.za-national-dc.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def assert_no_secret(*texts: str) -> None:
    for secret in SECRETS:
        for text in texts:
            assert secret not in text, f"{secret} printed in:\n{text}"


def test_every_url_with_a_credential_is_refused_without_printing_it(secret_stack):
    with pytest.raises(StackError) as caught:
        load_stack(secret_stack)
    keys = {p.key_path for p in caught.value.problems}
    assert {"sovereign-ai:aptMirror", "sovereign-ai:modelStore", "sovereign-ai:stateBackend",
            "sovereign-ai:alertReceivers.noc-pager.webhook", "sovereign-ai:containerRegistry",
            "sovereign-ai:models.bge-m3.source"} <= keys
    assert len(keys) == len(EDITS)
    assert_no_secret(str(caught.value), repr(caught.value.problems))


@pytest.mark.parametrize("argv", [["validate"], ["show"], ["show", "--json"], ["inventory"], ["plan"], ["values"]],
                         ids=" ".join)
def test_no_command_prints_a_secret(secret_stack, argv, capsys, caplog, monkeypatch):
    monkeypatch.chdir(ROOT)
    caplog.set_level(logging.DEBUG)
    assert run([*argv, str(secret_stack)]) != 0
    captured = capsys.readouterr()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert_no_secret(captured.out, captured.err, logged)
    assert REDACTED in captured.err


def test_the_pulumi_program_does_not_print_a_secret(secret_stack):
    config, secret_keys, _ = stack_environment(secret_stack)
    with pytest.raises(StackError) as caught:
        load_pulumi_config(config, set(secret_keys), "pulumi config")
    assert_no_secret(str(caught.value))


def test_a_role_refusing_a_value_does_not_print_its_credential():
    """A role's sovkit_check (playbooks/action_plugins) prints its findings: the same redaction as validate's."""
    url = f"https://journal:{SECRETS[6]}@siem.dc.gov.example:19532"
    findings = CHECKS["collectors"]([url], in_country_cidrs=["198.51.100.0/24"], in_country_domains=["gov.example"])
    assert findings and REDACTED in findings[0].found
    assert_no_secret(*(f"{f.at} {f.found} {f.allowed} {f.fix}" for f in findings))


@pytest.mark.parametrize("as_json", [False, True])
def test_show_redacts_whatever_it_prints(monkeypatch, capsys, as_json):
    """`show` prints resolved values; were a credential ever to reach a loaded site, it would still be redacted."""
    site = load_stack(ROOT / "stacks" / "Pulumi.za-national-dc.yaml")
    residency = site.residency.model_copy(update={
        "apt_mirror": f"https://apt:{SECRETS[0]}@mirror.dc.gov.example/debian",
        "state_backend": f"s3://pulumi-state?endpoint=objects.dc.gov.example&password={SECRETS[2]}"})
    monkeypatch.setattr(sovkit.cli, "load_site", lambda _stack: dataclasses.replace(site, residency=residency))
    assert run(["show", "za-national-dc", *(["--json"] if as_json else [])]) == 0
    out = capsys.readouterr().out
    assert_no_secret(out)
    assert "https://<redacted>@mirror.dc.gov.example/debian" in out and "password=<redacted>" in out
    if as_json:
        assert json.loads(out)["site"] == "za-national-dc"


@pytest.mark.parametrize(("text", "shown"), [
    ("https://user:pw@mirror.example/debian", "https://<redacted>@mirror.example/debian"),
    ("https://user:p w@mirror.example/x", "https://<redacted>@mirror.example/x"),  # a space in the password
    ("https://user:p@ss@mirror.example/x", "https://<redacted>@mirror.example/x"),  # an '@' in the password
    ("https://user:pa/ss@mirror.example/x", "https://<redacted>@mirror.example/x"),  # an unencoded '/'
    ("https://user:pa?ss@mirror.example/x", "https://<redacted>@mirror.example/x"),  # an unencoded '?'
    ("https://TOKEN@git.example/x", "https://<redacted>@git.example/x"),
    ("s3://b?endpoint=h&X-Amz-Credential=AKIA&region=r", "s3://b?endpoint=h&X-Amz-Credential=<redacted>&region=r"),
    ("https://h/x?api_key=k1&Signature=s&AWSAccessKeyId=a", "https://h/x?api_key=<redacted>&Signature=<redacted>&"
     "AWSAccessKeyId=<redacted>"),
    ("https://h/x#access_token=t", "https://h/x#access_token=<redacted>"),
    ("robot:pw@registry.example/sovkit", "<redacted>@registry.example/sovkit"),
    ("see https://a:b@h/x and https://c/?passwd=d", "see https://<redacted>@h/x and https://c/?passwd=<redacted>"),
    # Nothing to hide: left as it is.
    ("noc@dc.gov.example", "noc@dc.gov.example"),
    ("s3://pulumi-state?endpoint=objects.example&s3ForcePathStyle=true",
     "s3://pulumi-state?endpoint=objects.example&s3ForcePathStyle=true"),
    ("https://[2001:db8::1]:8443/a@b", "https://[2001:db8::1]:8443/a@b"),
    ("https://registry.example/@scope/pkg", "https://registry.example/@scope/pkg"),
])
def test_redact(text, shown):
    assert redact(text) == shown
    assert redact(redact(text)) == shown  # redacting twice changes nothing


def test_short_redacts_before_it_cuts():
    """A long password cut in the middle would no longer look like one: short() redacts first."""
    text = short("https://admin:" + "S" * 200 + "@mirror.example/debian")
    assert "S" not in text.replace("https", "") and text == "'https://<redacted>@mirror.example/debian'"
    long = short("s3://b?" + "&".join(f"p{i}=v" for i in range(30)) + "&token=" + "T" * 40)
    assert "T" * 5 not in long
