"""The services the kit runs on a host (the gateway, the model servers, monitoring): each sandboxed (SOV-SRV-*)."""

from __future__ import annotations

import json
import re
import shlex

import pytest

from .conftest import not_applicable

# What each check covers; the units a host runs come from its inventory (sandbox_units), as the play was given them.
SERVICES = {"gateway": r"nginx\.service", "model servers": r"sovkit-vllm-.+\.service",
            "Prometheus": r"prometheus\.service", "node exporter": r"prometheus-node-exporter\.service",
            "GPU exporter": r"sovkit-gpu-exporter\.service", "Alertmanager": r"prometheus-alertmanager\.service",
            "blackbox exporter": r"prometheus-blackbox-exporter\.service",
            "gateway's log metrics": r"mtail\.service", "budget keeper": r"sovkit-budget-keeper\.service",
            "weights verification": r"sovkit-verify-weights-.+\.service"}
# Not counted: cgroup v1 hosts do not enforce them (egress is nftables' job), yet systemd-analyze credits them.
NOT_COUNTED = ("IPAddressAllow=", "IPAddressDeny=")


def exposure(host, unit: str, text: str) -> tuple[float, str]:
    """`systemd-analyze security` of the unit as it runs (`text`: `systemctl cat`, drop-ins included), without the
    NOT_COUNTED settings: (the overall exposure, what it found exposed)."""
    kept = "\n".join(line for line in text.splitlines() if not line.startswith(NOT_COUNTED))
    folder = host.check_output("mktemp -d")
    try:
        path = f"{folder}/{unit}"
        host.check_output(f"printf '%s\\n' {shlex.quote(kept)} > {shlex.quote(path)}")
        report = host.run(f"systemd-analyze security --offline=yes --no-pager {shlex.quote(path)}")
    finally:
        host.run(f"rm -rf {shlex.quote(folder)}")
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", report.stdout)
    assert found, f"systemd-analyze security of {unit} gave no exposure: {report.stdout[-500:]}{report.stderr[-500:]}"
    exposed = [line.split()[1] for line in report.stdout.splitlines() if line.startswith("✗")]
    return float(found.group(1)), ", ".join(exposed)


@pytest.mark.control("SOV-SRV-001")
@pytest.mark.parametrize("service", SERVICES)
def test_service_is_sandboxed(host, site, evidence, service: str):
    """A service that faces the network or holds keys (nginx holds the TLS key and the tenants' key hashes) is
    confined by systemd: `systemd-analyze security` rates each unit at most the kit's limit, without crediting
    the IP firewall where the host cannot enforce it."""
    units = [u for u in site["sandbox_units"] if re.fullmatch(SERVICES[service], u)]
    if not units:
        not_applicable(f"no {service} runs on this host")
    shown = {u: host.run(f"systemctl cat {shlex.quote(u)}") for u in units}
    installed = {u: cat.stdout for u, cat in shown.items() if cat.rc == 0}
    if not installed:  # a converge of the hardening play alone, say: nothing of it runs to be confined
        pytest.skip(f"the {service} ({', '.join(units)}) is not installed on this host")
    measured = {unit: exposure(host, unit, text) for unit, text in installed.items()}
    evidence({**{unit: f"{level} (exposed: {what})" for unit, (level, what) in measured.items()},
              **{unit: "not installed" for unit in units if unit not in installed}})
    over = {unit: level for unit, (level, _) in measured.items() if level > site["sandbox_max_exposure"]}
    assert not over, f"exposure over {site['sandbox_max_exposure']}: {over}"


@pytest.fixture
def model_servers(site, installed_units) -> list[str]:
    """The served names whose model server runs on this host (as the play was given its units, and installed: a
    converge of the hardening play alone installs none)."""
    names = [name for name in site["vllm_service_models"] if f"sovkit-vllm-{name}.service" in site["sandbox_units"]]
    if not names:
        not_applicable("no model server runs on this host")
    if not any(f"sovkit-vllm-{name}.service" in installed_units for name in names):
        pytest.skip("the model servers are not installed on this host")
    return names


LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|\[::1\]|\[::ffff:127\.\d+\.\d+\.\d+\]):\d+$")


@pytest.mark.control("SOV-SRV-002")
def test_model_servers_listen_on_loopback_only(host, site, model_servers, evidence):
    """A model server takes no key on most of its routes and its workers none at all: every TCP port its account
    listens on is on loopback, so the gateway is the only way to it, whatever the host firewall holds."""
    uid = host.check_output(f"id -u {shlex.quote(site['vllm_service_user'])}").strip()
    listening = [line.split() for line in host.check_output("ss -Hltne").splitlines()]
    own = sorted(fields[3] for fields in listening if f"uid:{uid}" in fields)
    evidence({"listening": ", ".join(own) or "nothing"})
    assert own, f"no port of {site['vllm_service_user']} is listening: the model servers are not running"
    exposed = [address for address in own if not LOOPBACK.match(address)]
    assert not exposed, f"listening beyond loopback: {exposed}"


@pytest.mark.control("SOV-SRV-003")
def test_model_servers_run_with_the_rendered_environment(host, site, model_servers, evidence):
    """Telemetry off and the model hub unreachable hold only if the running process has them: each model server's
    main process carries every variable sovkit rendered for it, with its value."""
    found, wrong = {}, {}
    for name in model_servers:
        pid = host.check_output(f"systemctl show -p MainPID --value sovkit-vllm-{name}.service").strip()
        # read as the service's own account: root may lack the ptrace right it takes (a container drops it)
        environ = host.check_output(f"runuser -u {shlex.quote(site['vllm_service_user'])} -- cat /proc/{pid}/environ "
                                    "| tr '\\0' '\\n'") if pid not in ("", "0") else ""
        running = dict(line.split("=", 1) for line in environ.splitlines() if "=" in line)
        wanted = site["vllm_service_models"][name]["env"]
        found[name] = {k: running.get(k) for k in wanted} if environ else {"running": "no"}
        if found[name] != wanted:
            wrong[name] = found[name]
    evidence({name: ", ".join(f"{k}={v}" for k, v in sorted(env.items())) for name, env in found.items()})
    assert not wrong, f"not as rendered: {wrong}"


@pytest.mark.control("SOV-SRV-005")
def test_signed_models_start_only_after_their_weights_verify(host, site, model_servers, evidence):
    """A signed model's server requires its verification unit, which checks the placed weights against the model's
    signature with the signer the stack trusts (OpenSSF model signing) before every start: the signer on the host is
    the rendered one, and the running server started after a verification that passed."""
    signed = [name for name in model_servers if "signature" in site["vllm_service_models"][name]]
    if not signed:
        not_applicable("no model this host serves is signed")
    folder = site["vllm_service_signatures_dir"]
    seen, wrong = {}, {}
    for name in signed:
        server, verifier = f"sovkit-vllm-{name}.service", f"sovkit-verify-weights-{name}.service"
        shown = dict(line.split("=", 1) for line in host.check_output(
            f"systemctl show -p Requires -p ActiveEnterTimestampMonotonic {server}").splitlines())
        ran = dict(line.split("=", 1) for line in host.check_output(
            f"systemctl show -p Result -p ExecMainStatus -p ExecMainExitTimestampMonotonic {verifier}").splitlines())
        signer = host.file(f"{folder}/{name}.pem")
        said = host.run(f"journalctl -u {verifier} -n 1 -o cat --no-pager").stdout.strip()
        seen[name] = {"requires": verifier in shown["Requires"].split(), "last verification": ran["Result"],
                      "exit": ran["ExecMainStatus"], "signer as rendered": signer.exists and
                      signer.content_string == site["vllm_service_models"][name]["signer"], "said": said}
        if not (seen[name]["requires"] and ran["Result"] == "success" and ran["ExecMainStatus"] == "0"
                and seen[name]["signer as rendered"]
                and 0 < int(ran["ExecMainExitTimestampMonotonic"]) <= int(shown["ActiveEnterTimestampMonotonic"])):
            wrong[name] = seen[name]
    evidence(seen)
    assert not wrong, f"not started from verified weights: {wrong}"


# Connects to each host:port given, as whoever runs it; prints {"host:port": "connected" | why not}.
CONNECT = """
import concurrent.futures, json, socket, sys
def attempt(target):
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=3).close()
        return "connected"
    except OSError as err:
        return err.__class__.__name__
# all at once: a dropped packet costs the whole timeout, and most of these are dropped
with concurrent.futures.ThreadPoolExecutor(len(sys.argv) - 1) as pool:
    print(json.dumps(dict(zip(sys.argv[1:], pool.map(attempt, sys.argv[1:])))))
"""


@pytest.mark.control("SOV-SRV-004")
def test_model_server_account_reaches_loopback_only(host_python, site, model_servers, evidence):
    """A model server that is taken over must not reach anything else: as its account, the host's own gateway (on
    the host's address), the site's resolvers and the monitoring stack's APIs on loopback are unreachable, though
    its own API on loopback answers. The host firewall admits the gateway from in-country addresses and loopback
    to anyone, so only the rules on the socket owner refuse them."""
    own_api = f"127.0.0.1:{site['vllm_service_models'][model_servers[0]]['port']}"
    elsewhere = [f"{site['sovkit_address']}:{site['gateway_listen_port']}",
                 *(f"[{r}]:53" if ":" in r else f"{r}:53" for r in site["residency_network_dns_resolvers"]),
                 *(f"127.0.0.1:{port}" for port in site["vllm_service_refused_loopback_ports"])]
    reached = json.loads(host_python(CONNECT, own_api, *elsewhere, user=site["vllm_service_user"]))
    evidence(reached)
    assert reached[own_api] == "connected", f"the probe could not reach the model server's own API: {reached}"
    leaks = {t: r for t, r in reached.items() if t != own_api and r == "connected"}
    assert not leaks, f"the model servers' account reached {sorted(leaks)}"
