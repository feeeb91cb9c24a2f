"""The rules on what the roles are given, each written once.

`sovkit validate` applies them to the stack's values (sovkit/config/rules.py turns each finding into a Problem on
the stack key), and the roles apply the very same functions to the variables they receive, before they change
anything (the `sovkit_check` action of playbooks/action_plugins, called from each role's tasks/validate.yml). A
stack that validates is a stack the plays accept; a role given a hand-written inventory refuses it with the same
words.

Every check takes plain data (lists, dicts, strings: what a role variable holds) and returns its findings; an
empty list means the value passes. `CHECKS` is what the action plugin may call, by name.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sovkit.config import locations, types
from sovkit.errors import redact

MIN_JUSTIFICATION = 20  # characters of a written reason for an egress exception
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# The quality gate's own tenant at the gateway (granted every gated model, never withheld, so a model is evaluated
# through the gateway before any tenant is granted it): rendered with "gate": true; no stack tenant may take the name.
GATE_TENANT = "sovkit-gate"
MIN_SECRET_LENGTH = 32  # characters of an API key (tenants, the gateway's key to its model servers)
PINNED_WHEEL = re.compile(r"^[A-Za-z0-9_.\-\[\]]+==[^\s=]+( --hash=sha256:[0-9a-f]{64})+$")  # a lock's line


@dataclass(frozen=True)
class Finding:
    """One value that fails: where it is below the checked value ("" for the value itself, "[2]", ".name"),
    what was found and what is allowed. Its texts are redacted as a Problem's are: a role refusing a value prints
    no credential that `sovkit validate` would hide."""

    at: str
    found: str
    allowed: str
    fix: str = ""

    def __post_init__(self) -> None:
        for name in ("at", "found", "allowed", "fix"):
            object.__setattr__(self, name, redact(getattr(self, name)))


def _text(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _networks(cidrs: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for cidr in cidrs:
        try:
            out.append(ipaddress.ip_network(str(cidr), strict=False))
        except ValueError:
            continue  # reported by the check of that list
    return out


def inside(address: str, cidrs: Iterable[str]) -> bool:
    """An address inside one of the networks (of its own family)."""
    try:
        ip = ipaddress.ip_address(str(address))
    except ValueError:
        return False
    return any(ip.version == net.version and ip in net for net in _networks(cidrs))


def under_domains(host: str, domains: Iterable[str]) -> bool:
    """A name that is one of the domains or under one of them."""
    name = str(host).lower().rstrip(".")
    return any(name == d.lower().rstrip(".") or name.endswith("." + d.lower().rstrip(".")) for d in domains)


def in_country(host: str, cidrs: Iterable[str], domains: Iterable[str]) -> bool:
    """An address inside the in-country networks, or a name under the in-country domains."""
    return inside(host, cidrs) if types.is_address(host) else under_domains(host, domains)


def _list(value: object) -> list | None:
    return list(value) if isinstance(value, list | tuple) else None


# --- checks, by the role input they guard ----------------------------------------------------------------


def networks(value: object) -> list[Finding]:
    """A non-empty list of networks in CIDR form, each once, none the whole Internet."""
    items = _list(value)
    if not items:
        return [Finding("", _text(value) if value else "nothing", "a list of one or more networks in CIDR form")]
    findings, seen = [], set()
    for i, cidr in enumerate(items):
        try:
            net = ipaddress.ip_network(types.cidr(str(cidr)))
        except ValueError as err:
            findings.append(Finding(f"[{i}]", _text(cidr), str(err)))
            continue
        if net.prefixlen == 0:
            findings.append(Finding(f"[{i}]", str(cidr), "a bounded in-country network, never the whole Internet "
                                    "(0.0.0.0/0 or ::/0)"))
        if str(net) in seen:
            findings.append(Finding(f"[{i}]", str(cidr), "each network once"))
        seen.add(str(net))
    # Prefixes wider than any one holder's, or the Internet in pieces (0.0.0.0/1 and 128.0.0.0/1, say).
    findings += [Finding("" if index is None else f"[{index}]", found, allowed, fix)
                 for index, found, allowed, fix in types.spread_findings([str(c) for c in items])]
    return findings


def admin_networks(value: object, in_country_cidrs: Sequence[str]) -> list[Finding]:
    """`networks`, each inside the in-country networks: administrators are in-country."""
    findings = networks(value)
    if findings:
        return findings
    country = _networks(in_country_cidrs)
    for i, cidr in enumerate(value):  # type: ignore[arg-type]
        net = ipaddress.ip_network(str(cidr))
        if not any(net.version == n.version and net.subnet_of(n) for n in country):  # type: ignore[arg-type]
            findings.append(Finding(f"[{i}]", str(cidr), "a network inside the in-country networks: administrators "
                                    "are in-country"))
    return findings


def in_country_addresses(value: object, in_country_cidrs: Sequence[str]) -> list[Finding]:
    """A non-empty list of IP addresses (never names), each inside the in-country networks: what the firewall
    admits NTP and DNS to, and what chrony and the resolver use."""
    items = _list(value)
    if not items:
        return [Finding("", _text(value) if value else "nothing", "a list of one or more IP addresses")]
    findings = []
    for i, host in enumerate(items):
        try:
            types.address(str(host))
        except ValueError as err:
            findings.append(Finding(f"[{i}]", _text(host), str(err)))
            continue
        if not inside(str(host), in_country_cidrs):
            findings.append(Finding(f"[{i}]", str(host), "an address inside the in-country networks ("
                                    + ", ".join(in_country_cidrs) + ")"))
    return findings


def endpoint(host: object, port: object, justification: object) -> list[Finding]:
    """One egress exception: an IP address (the firewall admits it by address), a port, a written reason."""
    findings = []
    if not types.is_address(str(host)):
        findings.append(Finding(".host", _text(host), "an IPv4 or IPv6 address: the firewall admits the exception "
                                "by address, never by a name DNS answers on the day"))
    elif str(host) in ("0.0.0.0", "::"):
        findings.append(Finding(".host", str(host), "one named endpoint, never every address"))
    if not (isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535):
        findings.append(Finding(".port", _text(port), "a port from 1 to 65535"))
    text = str(justification or "")
    if len(text.strip()) < MIN_JUSTIFICATION or "TODO" in text:
        findings.append(Finding(".justification", _text(justification) if justification else "nothing",
                                f"a written justification of at least {MIN_JUSTIFICATION} characters"))
    return findings


def endpoints(value: object) -> list[Finding]:
    """The egress exceptions as the firewall role gets them: [{host, port, justification}]."""
    items = _list(value)
    if items is None:
        return [Finding("", _text(value), "a list of {host, port, justification}")]
    findings = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            findings.append(Finding(f"[{i}]", _text(item), "a map of host, port and justification"))
            continue
        findings += [Finding(f"[{i}]{f.at}", f.found, f.allowed)
                     for f in endpoint(item.get("host"), item.get("port"), item.get("justification"))]
    return findings


def collectors(value: object, in_country_cidrs: Sequence[str], in_country_domains: Sequence[str]) -> list[Finding]:
    """Journal collectors (systemd-journal-remote) as http(s)://host[:port], each in-country: logs stay in the
    country. systemd-journal-upload sends to one collector."""
    items = _list(value)
    if items is None or len(items) > 1:
        return [Finding("", _text(value), "at most one collector URL")]
    findings = []
    for i, url in enumerate(items):
        match = re.match(r"^https?://(\[[0-9A-Fa-f:.]+\]|[^/:\[\]@]+)(:\d{1,5})?/?$", str(url))
        if not match:
            findings.append(Finding(f"[{i}]", _text(url), "https://host[:port], such as https://logs.gov.example:19532"))
            continue
        host = match.group(1).strip("[]")
        if not in_country(host, in_country_cidrs, in_country_domains):
            findings.append(Finding(f"[{i}]", str(url), "a collector inside the in-country networks or under the "
                                    "in-country domains: logs must not leave the country"))
    return findings


def retention(value: object, minimum: object = None, basis: str = "") -> list[Finding]:
    """Days logs are kept: a whole number from 1, and not below what the country's law requires (`basis`: the
    clause that sets the minimum)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return [Finding("", _text(value), "a whole number of days, 1 or more")]
    if isinstance(minimum, int) and not isinstance(minimum, bool) and value < minimum:
        return [Finding("", str(value), f"{minimum} days or more ({basis or 'the country profile'})")]
    return []


def grants(value: object, served: Sequence[str]) -> list[Finding]:
    """Tenants {name: {models: [...], withheld: [...], requests_per_minute, burst}}: each grants only served
    models, within a rate. A stack's tenant lists one model or more; the gateway's may list none when the quality
    gate withholds the rest (`withheld`, served models too). GATE_TENANT is the gate's own, rendered as such."""
    if not isinstance(value, Mapping) or not value:
        return [Finding("", _text(value) if value else "nothing", "a map of one or more tenants")]
    findings = []
    for name, grant in value.items():
        if name == GATE_TENANT and not (isinstance(grant, Mapping) and grant.get("gate") is True):
            findings.append(Finding(f".{name}", name, f"a tenant name other than {GATE_TENANT}, which the quality "
                                    "gate's own key at the gateway holds", fix="rename the tenant"))
            continue
        models = grant.get("models") if isinstance(grant, Mapping) else None
        withheld = (grant.get("withheld") if isinstance(grant, Mapping) else None) or []
        if not models and not (isinstance(models, list) and withheld):
            findings.append(Finding(f".{name}.models", _text(models), "one or more served model names"))
            continue
        for field, names in (("models", models), ("withheld", withheld)):
            findings += [Finding(f".{name}.{field}[{i}]", _text(m), "a served model name: " + ", ".join(served))
                         for i, m in enumerate(names) if m not in served]
        rate = grant.get("requests_per_minute")
        if isinstance(rate, bool) or not isinstance(rate, int) or rate < 1:
            findings.append(Finding(f".{name}.requests_per_minute", _text(rate), "a whole number from 1"))
    return findings


def model_locations(value: object, store: str) -> list[Finding]:
    """Models {name: {source}}: each source inside the in-country model store (compared exactly, so
    https://store.example/a does not admit https://store.example/ab), never a public hub."""
    if not isinstance(value, Mapping):
        return [Finding("", _text(value), "a map of models")]
    if locations.public_hub(store):
        return []  # the store itself is refused, once (hygiene.model_sources)
    findings = []
    for name, model in value.items():
        source = str((model if isinstance(model, Mapping) else {}).get("source", ""))
        hub = locations.public_hub(source)
        if hub:
            findings.append(Finding(f".{name}.source", _text(source), f"a location under the in-country model store "
                                    f"{store}", fix=(f"{source} is a {hub} repository id to vLLM. "
                                                     if locations.is_repo_id(source) else "")
                                    + f"{hub} is a public model hub: weights come only from the in-country store; "
                                    "copy them there, with their revision, and name that copy"))
        elif not locations.under_store(source, store):
            findings.append(Finding(f".{name}.source", _text(source), f"a location under the in-country model store "
                                    f"{store}", fix="copy the weights into the model store and name that copy; the "
                                    "hosts fetch weights from the store only"))
    return findings


def model_sources(value: object, root: str, store: str) -> list[Finding]:
    """Hosts mode's models {name: {source, revision, path}}: each from the in-country store (`model_locations`),
    proven by the SHA-256 of its SHA256SUMS, fetched from a folder or the https store (the model store role reads
    no other kind), placed directly under `root`."""
    if not isinstance(value, Mapping) or not value:
        return [Finding("", _text(value) if value else "nothing", "a map of one or more models")]
    findings = model_locations(value, store)
    for name, model in value.items():
        model = model if isinstance(model, Mapping) else {}
        if not re.match(r"^sha256:[0-9a-f]{64}$", str(model.get("revision", ""))):
            findings.append(Finding(f".{name}.revision", _text(model.get("revision")), "sha256: and the 64 hex "
                                    "digits of the SHA-256 of the model's SHA256SUMS (hosts mode proves the weights "
                                    "file by file; a git commit proves nothing on a host)"))
        if not re.match(r"^(/|https://)", str(model.get("source", ""))):
            findings.append(Finding(f".{name}.source", _text(model.get("source")), "a folder on the hosts or an "
                                    "https:// URL of the in-country store (hosts mode reads no other kind)"))
        if "path" in model and not re.match(rf"^{re.escape(root)}/[^/]+$", str(model["path"])):
            findings.append(Finding(f".{name}.path", _text(model["path"]), f"a folder directly under {root}"))
    return findings


def runtime_pins(value: object) -> list[Finding]:
    """The serving runtime, locked: `name==version --hash=sha256:<digest>` lines, nothing resolved on a host and
    no wheel installed that is not the one the lock was made from."""
    items = _list(value)
    if not items:
        return [Finding("", "no pins", "the locked serving runtime of the site's accelerator (sovkit ships "
                        "sovkit/data/runtime/<vendor>.txt)")]
    return [Finding(f"[{i}]", _text(pin), "name==version --hash=sha256:<64 hex digits>")
            for i, pin in enumerate(items) if not PINNED_WHEEL.match(str(pin))]


NVIDIA_SMI_QUERY = "nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits"
ROCM_SMI_QUERY = "rocm-smi --showmeminfo vram --csv"
ROCM_SMI_TOTAL = "VRAM Total Memory (B)"  # the column of ROCM_SMI_QUERY's CSV with each GPU's total, in bytes
MIB = 1024 * 1024


def accelerator_inventory(value: object, *, model: str, count: int | str, memory_mib: int | str) -> list[Finding]:
    """The GPUs a host's driver reports (NVIDIA_SMI_QUERY's output: one `index, name, MiB` line per GPU) against
    the stack: exactly `count` of them, each with the total memory the catalogue records for `model`, which is the
    memory the planner sized the models against. A host that differs would place models on GPUs that are not there
    or overfill them."""
    gpus, findings = [], []
    for line in (line.strip() for line in str(value or "").splitlines()):
        parts = [part.strip() for part in line.split(",")]
        if not line:
            continue
        if len(parts) != 3 or not parts[2].isdigit():
            findings.append(Finding("", _text(line), f"index, name, MiB per line ({NVIDIA_SMI_QUERY})"))
        else:
            gpus.append((parts[0], parts[1], int(parts[2])))
    count_of = len(gpus) + len(findings)  # a line that is no GPU's is still counted: the driver printed it
    return _inventory(gpus, count_of, findings, model=model, count=count, memory_mib=memory_mib)


def rocm_inventory(value: object, *, model: str, count: int | str, memory_mib: int | str) -> list[Finding]:
    """`accelerator_inventory` for AMD GPUs, read from ROCM_SMI_QUERY's CSV: a `device,VRAM Total Memory (B),...`
    header (after any warning rocm-smi prints first), then one `cardN,<bytes>,...` row per GPU."""
    lines = [line.strip() for line in str(value or "").splitlines() if line.strip()]
    header = next((i for i, line in enumerate(lines) if line.split(",")[0] == "device"), None)
    columns = lines[header].split(",") if header is not None else []
    if ROCM_SMI_TOTAL not in columns:
        return [Finding("", _text(" | ".join(lines)) if lines else "nothing",
                        f"a CSV with a device and a {ROCM_SMI_TOTAL} column ({ROCM_SMI_QUERY})")]
    total = columns.index(ROCM_SMI_TOTAL)
    gpus, findings = [], []
    for line in lines[header + 1:]:  # type: ignore[operator]
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) != len(columns) or not cells[total].isdigit():
            findings.append(Finding("", _text(line), f"cardN and the bytes of {ROCM_SMI_TOTAL} ({ROCM_SMI_QUERY})"))
        else:
            gpus.append((cells[0].removeprefix("card"), cells[0], int(cells[total]) // MIB))
    return _inventory(gpus, len(gpus) + len(findings), findings, model=model, count=count, memory_mib=memory_mib)


def _inventory(gpus: list[tuple[str, str, int]], shown: int, findings: list[Finding], *, model: str,
               count: int | str, memory_mib: int | str) -> list[Finding]:
    """The comparison both inventories make: `shown` devices where the stack counts `count`, and each of `gpus`
    (index, name, MiB) with the catalogue's memory."""
    count, memory_mib = int(count), int(memory_mib)  # a play passes them as text
    if shown != count:
        findings.insert(0, Finding("", f"{shown} GPUs", f"{count} {model} GPUs, as the stack counts them"))
    findings += [Finding(f"[{index}]", f"{name} with {mib} MiB", f"a {model} with {memory_mib} MiB (the memory the "
                         "planner sized the models against)") for index, name, mib in gpus if mib != memory_mib]
    return findings


def model_launches(value: object) -> list[Finding]:
    """A host's model servers ({name: {port, args, ...}}): one or more, each on a port of its own and bound to a
    loopback address with --host (vLLM listens on every address without one): only the gateway is reached."""
    if not isinstance(value, Mapping) or not value:
        return [Finding("", _text(value) if value else "nothing", "a map of one or more model servers")]
    findings, owners = [], {}
    for name, launch in value.items():
        launch = launch if isinstance(launch, Mapping) else {}
        port = launch.get("port")
        if port in owners:
            findings.append(Finding(f".{name}.port", _text(port), f"a port of its own (also {owners[port]}'s)"))
        owners.setdefault(port, name)
        args = [str(a) for a in launch.get("args") or []]
        host = args[args.index("--host") + 1] if "--host" in args[:-1] else None
        if host is None or not (types.is_address(host) and ipaddress.ip_address(host).is_loopback):
            findings.append(Finding(f".{name}.args", f"--host {host}" if host else "no --host",
                                    "--host 127.0.0.1 or ::1: a model server listens on loopback, behind the gateway"))
    return findings


def key_hashes(value: object, tenants: Sequence[str]) -> list[Finding]:
    """The SHA-256 of every tenant's API key, made on the machine running sovkit: the gateway holds no key."""
    hashes = value if isinstance(value, Mapping) else {}
    return [Finding(f".{t}", "nothing" if t not in hashes else "not a SHA-256", "the 64 hex digits of the SHA-256 "
                    "of the tenant's key (the converge pipeline makes them from the key files or Pulumi secrets)")
            for t in tenants if not SHA256_HEX.match(str(hashes.get(t, "")))]


def secret(value: object) -> list[Finding]:
    """A key sovkit made: present and long enough (its value is never shown)."""
    if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
        return [Finding("", f"{len(value) if isinstance(value, str) else 0} characters",
                        f"{MIN_SECRET_LENGTH} characters or more")]
    return []


ENVIRONMENT_VALUE = re.compile(r"^[!#%&(-\[\]-_a-~]+$")  # printable ASCII but space " $ ' \\ and `


def environment_value(value: object) -> list[Finding]:
    """A credential written to a systemd EnvironmentFile (rke2-server's etcd snapshot store's): present, one line of
    printable ASCII without a space, quote, backslash, $ or backquote, which systemd would read otherwise than written
    (its value is never shown)."""
    if not isinstance(value, str) or not value:
        return [Finding("", "nothing", "the credential, one line")]
    if not ENVIRONMENT_VALUE.fullmatch(value):
        return [Finding("", f"{len(value)} characters with a space, quote, backslash, $, backquote, line break or "
                        "non-ASCII character", "printable ASCII without those (an S3 access key id or secret key)")]
    return []


def admitted(address: object, admin_cidrs: Sequence[str]) -> list[Finding]:
    """The machine running the play is inside the admin networks, or loading the firewall would cut its own
    session. A fact of the run, not of the stack: the converge pipeline and the firewall role both check it."""
    if not address:
        return []  # not over SSH (a local connection): nothing to cut
    if inside(str(address), admin_cidrs):
        return []
    return [Finding("", str(address), "an address inside the admin networks (" + ", ".join(admin_cidrs) + "): "
                    "run the play from an admin network, or add its network to adminCidrs")]


def artifact_mirror(value: object, in_country_cidrs: Sequence[str], in_country_domains: Sequence[str]) -> list[Finding]:
    """The folder a release's artifacts are fetched from (RKE2's air-gap tarball, images and checksum file): an
    http(s):// URL of an in-country server or a file:// folder (the offline bundle), with no credentials in it.
    Plain http is admitted because nothing fetched is used before its digest matches the pinned checksum file."""
    text = str(value or "")
    match = re.match(r"^(https?|file)://([^/]*)(/.*)?$", text)
    if not match:
        return [Finding("", _text(value) if value else "nothing", "an https://, http:// or file:// URL of the "
                        "in-country folder holding the release's artifacts")]
    if "@" in match.group(2):
        return [Finding("", "a URL with credentials in it", "a URL without user:password@ (the mirror is read "
                        "without credentials; the pinned checksums prove what it serves)")]
    if match.group(1) == "file":
        return [] if text.startswith("file:///") else [Finding("", _text(value), "file:///an/absolute/folder")]
    host = types.host_of_url(text) or ""
    if not in_country(host, in_country_cidrs, in_country_domains):
        return [Finding("", text, "a server inside the in-country networks or under the in-country domains: the "
                        "cluster's binaries and images come from the in-country mirror")]
    return []


def sha256_pin(value: object) -> list[Finding]:
    """A file pinned by its digest, as `sha256:` and 64 lower-case hex digits (what get_url's checksum takes)."""
    if not re.match(r"^sha256:[0-9a-f]{64}$", str(value or "")):
        return [Finding("", _text(value) if value else "nothing", "sha256: and the 64 hex digits of the file's "
                        "SHA-256 (sha256sum FILE, on a copy you verified)")]
    return []


CHECKS: dict[str, Callable[..., list[Finding]]] = {
    "networks": networks,
    "admin_networks": admin_networks,
    "in_country_addresses": in_country_addresses,
    "endpoints": endpoints,
    "collectors": collectors,
    "retention": retention,
    "grants": grants,
    "model_sources": model_sources,
    "runtime_pins": runtime_pins,
    "accelerator_inventory": accelerator_inventory,
    "rocm_inventory": rocm_inventory,
    "model_launches": model_launches,
    "key_hashes": key_hashes,
    "secret": secret,
    "admitted": admitted,
    "artifact_mirror": artifact_mirror,
    "sha256_pin": sha256_pin,
}
