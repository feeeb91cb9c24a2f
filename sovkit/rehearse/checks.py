"""What a rehearsal proves after `sovkit verify`, by mode.

Hosts mode: every served model answers a tenant granted it, through the gateway with the site's TLS, a tenant not
granted it is refused, and Prometheus scrapes every target. Kubernetes mode: live probes between the nodes (and
from the admin machine, the stand-in services and the pod network) show that each node's firewall admits exactly
what its rendered rules say, and nothing else: each (source, node, port) is tried, and reached or not as expected.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sovkit import ports
from sovkit.hosts import HostsError
from sovkit.rehearse.hosts import container_name
from sovkit.rehearse.services import StandIns, received_mail, received_webhooks
from sovkit.verify.runner import inventory_hosts

if TYPE_CHECKING:
    from sovkit.config import SiteConfig
    from sovkit.rehearse.plan import Machine
    from sovkit.rehearse.run import Rehearsal

CLOSED_PORT = 12345  # a port nothing admits: the default drop, tried on every node
PROBE_TIMEOUT_S = 1.5
TARGETS_WAIT_S = 90  # several of the role's 15 s scrape intervals: Prometheus may have just restarted

# Run in the lab as the admin machine: the calls a tenant makes, and Prometheus's view of its targets.
SERVING_CALLS = r"""
import json, ssl, sys, time, urllib.error, urllib.request
spec = json.loads(sys.argv[1])
context = ssl.create_default_context(cafile=spec["ca"])
out = []
for call in spec["calls"]:
    body = json.dumps({"model": call["model"], "max_tokens": 4,
                       "messages": [{"role": "user", "content": "Hello"}]}).encode()
    request = urllib.request.Request(spec["endpoint"] + "/chat/completions", data=body, headers={
        "Content-Type": "application/json", "Authorization": "Bearer " + call["key"]})
    try:
        # The whole answer is read, as a client does: one closed after the headers cuts the body short at the
        # gateway, which then logs the request without the usage that ends it.
        with urllib.request.urlopen(request, context=context, timeout=120) as response:
            response.read()
            out.append([call["label"], response.status])
    except urllib.error.HTTPError as err:
        out.append([call["label"], err.code])
    except OSError as err:
        out.append([call["label"], str(err)])
# Until discovery has run Prometheus lists no target, and one it has not scraped yet is "unknown", neither up nor
# down: wait for every first scrape, up to the deadline.
deadline = time.monotonic() + spec["targets_wait_s"]
while True:
    try:
        with urllib.request.urlopen(spec["prometheus"] + "/api/v1/targets", timeout=30) as response:
            targets = json.load(response)["data"]["activeTargets"]
        seen = [[t["labels"].get("job", ""), t["scrapeUrl"], t["health"]] for t in targets]
    except OSError as err:
        seen = str(err)
    if time.monotonic() > deadline or (isinstance(seen, list) and seen and all(t[2] != "unknown" for t in seen)):
        break
    time.sleep(2)
out.append(["targets", seen])
print(json.dumps(out))
"""

# Started on a node: listens on every probed TCP port and the UDP overlay port, notes who reached it.
LISTENER = r"""
import socket, sys, threading
log = open("/run/sovkit-probe.log", "a", buffering=1)
def tcp(port, family):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port)); s.listen(64)
    while True:
        conn, _ = s.accept(); conn.close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port))
    while True:
        data, _ = s.recvfrom(512); log.write(data.decode() + "\n")
for port in map(int, sys.argv[1].split(",")):
    threading.Thread(target=tcp, args=(port, socket.AF_INET), daemon=True).start()
for port in map(int, sys.argv[2].split(",")):
    threading.Thread(target=udp, args=(port,), daemon=True).start()
threading.Event().wait()
"""

# Run on a source: tries each (address, proto, port, token) at once; TCP is reached or not, UDP is sent.
PROBER = r"""
import json, socket, sys, concurrent.futures as cf
spec = json.loads(sys.argv[1])
def one(p):
    address, proto, port, token = p
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    if spec["source"]:
        s.bind((spec["source"], 0))
    try:
        if proto == "udp":
            s.sendto(token.encode(), (address, port)); return [token, "sent"]
        s.settimeout(spec["timeout"]); s.connect((address, port)); return [token, "reached"]
    except OSError as err:
        return [token, "refused" if isinstance(err, ConnectionRefusedError) else "dropped"]
    finally:
        s.close()
with cf.ThreadPoolExecutor(64) as pool:
    print(json.dumps(list(pool.map(one, spec["probes"]))))
"""


def _run_json(argv: list[str], timeout: float = 600) -> object:
    # Not hosts.run: its error would print the whole command line, tenant keys included.
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise HostsError(f"`{' '.join(argv[:6])} ...` exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- hosts mode --------------------------------------------------------------------------------------------------
def granted_caller(site: SiteConfig, inventory: dict, model: str) -> str | None:
    """The tenant the serving check calls `model` as (the first, by name, the gateway grants it: the stack's grant,
    unless the quality gate withholds it), whose usage the usage check then looks for; None when none may."""
    grants = inventory["all"]["vars"]["gateway_tenants"]
    return min((t for t in site.serving.tenants if model in grants[t]["models"]), default=None)


def refused_callers(site: SiteConfig, inventory: dict, model: str) -> list[str]:
    """The tenants the gateway refuses `model` to: not granted it by the stack, or withheld by the quality gate."""
    grants = inventory["all"]["vars"]["gateway_tenants"]
    return sorted(t for t in site.serving.tenants if model not in grants[t]["models"])


def serving(rehearsal: Rehearsal, inventory: dict, keys: dict[str, str]) -> tuple[list[str], list[str]]:
    """Each served model through the gateway: 200 for a tenant granted it, 404 for one that is not (to that tenant
    the model does not exist); Prometheus scrapes every target; each model server holds its GPUs (`inventory`:
    what the play was given). Returns (what was found, what failed)."""
    site = rehearsal.site
    serving_node = site.serving_nodes()[0]
    address = rehearsal.plan.addresses[serving_node.name]
    host = f"[{address}]" if ":" in address else address
    calls = []
    for model in site.serving.models:
        caller, refused = granted_caller(site, inventory, model), refused_callers(site, inventory, model)
        if caller:
            calls.append({"label": f"{model} as {caller}: 200", "model": model, "key": keys[caller]})
        if refused:
            calls.append({"label": f"{model} as {refused[0]}: 404", "model": model, "key": keys[refused[0]]})
    spec = {"ca": str(rehearsal.workspace.pki / "ca.crt"), "endpoint": f"https://{host}:{ports.GATEWAY}/v1",
            "prometheus": f"http://{host}:{ports.PROMETHEUS}", "calls": calls, "targets_wait_s": TARGETS_WAIT_S}
    results = _run_json(rehearsal.lab.argv([sys.executable, "-c", SERVING_CALLS, json.dumps(spec)]))
    found, failures = [], []
    for label, outcome in results:  # type: ignore[union-attr]
        if label == "targets":
            problem = targets_problem(outcome)
            count = len(outcome) if isinstance(outcome, list) else 0
            (failures if problem else found).append(f"Prometheus: {count} targets, down: {problem or 'none'}")
            continue
        expected = int(label.rsplit(": ", 1)[1])
        line = f"gateway: {label.rsplit(': ', 1)[0]} -> {outcome} (expected {expected})"
        (found if outcome == expected else failures).append(line)
    for more_found, more_failures in (model_listeners(rehearsal, inventory), model_devices(rehearsal, inventory)):
        found, failures = found + more_found, failures + more_failures
    return found, failures


# Run in the lab, as the admin machine: what `sovkit usage` reads, every gateway's log lines since a day.
USAGE_LINES = """
import datetime as dt, json, sys
from sovkit.usage.collect import gateway_log_lines
inventory, first = json.loads(sys.argv[1]), dt.date.fromisoformat(sys.argv[2])
print(json.dumps([line for _, lines in gateway_log_lines(inventory, first) for line in lines]))
"""


def usage(rehearsal: Rehearsal, inventory: dict) -> tuple[list[str], list[str]]:
    """Usage as `sovkit usage` reads it over SSH (sudo) from the site's gateways: each model the serving check
    called as a tenant granted it has that tenant's requests, with the tokens its model server counted."""
    from sovkit.usage.ledger import usage_between

    today = dt.date.today()
    since = today - dt.timedelta(days=1)
    argv = rehearsal.lab.argv([sys.executable, "-c", USAGE_LINES, json.dumps(inventory), str(since)])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "SOVKIT_SSH_CONFIG": str(rehearsal.access.config)})
    if proc.returncode != 0:
        return [], [f"usage: the gateways' logs could not be read: {proc.stderr.strip()[-600:]}"]
    lines = json.loads(proc.stdout.strip().splitlines()[-1])
    counted = {(u.tenant, u.model): u for u in usage_between(lines, since, today)}
    found, failures = [], []
    for model in sorted(rehearsal.site.serving.models):
        caller = granted_caller(rehearsal.site, inventory, model)
        if not caller:
            continue
        u = counted.get((caller, model))
        if u is None or not u.prompt_tokens or not u.completion_tokens:
            failures.append(f"usage: {model} as {caller}: {u or 'no request'} (expected its tokens)")
        else:
            found.append(f"usage: {model} as {caller}: {u.requests} requests, {u.prompt_tokens} prompt and "
                         f"{u.completion_tokens} completion tokens, {u.requests_without_usage} without usage")
    return found, failures


def targets_problem(targets: list | str) -> str:
    """What is wrong with Prometheus's targets as SERVING_CALLS read them ([job, url, health] each, or the error
    met asking): those not up, or that there are none; "" when every one is up."""
    if not isinstance(targets, list):
        return targets
    if not targets:
        return "no target at all"
    return ", ".join(f"{job} {url} ({health})" for job, url, health in targets if health != "up")


def listen_addresses(ss_output: str, port: int) -> list[str]:
    """The local addresses listening on TCP `port`, from `ss -Htln` ("127.0.0.1", "[::1]", "0.0.0.0", "*", ...)."""
    local = [line.split()[3] for line in ss_output.splitlines() if len(line.split()) > 3]
    return sorted(address for address, _, found in (a.rpartition(":") for a in local) if found == str(port))


def model_listeners(rehearsal: Rehearsal, inventory: dict) -> tuple[list[str], list[str]]:
    """Each model server's API listens on loopback only, on the port the role gave it: read on every serving host
    (the gateway is the one way in)."""
    found, failures = [], []
    for node in rehearsal.site.serving_nodes():
        listening = rehearsal.on(rehearsal.host(node.name), "ss", "-Htln")
        for served, launch in inventory["all"]["vars"]["vllm_service_models"].items():
            addresses = listen_addresses(listening, launch["port"])
            line = f"listening: {served} on {node.name} port {launch['port']} at {', '.join(addresses) or 'nothing'}"
            ok = bool(addresses) and set(addresses) <= {"127.0.0.1", "[::1]"}
            (found if ok else failures).append(line if ok else f"{line}; expected loopback only")
    return found, failures


# Run on the monitoring host: hands Alertmanager one alert on loopback, as Prometheus would.
POST_ALERT = r"""
import json, sys, urllib.request
# its own instance label: a group of its own, sent after the first group wait, not with an earlier run's group
labels = {"alertname": "SovkitRehearsalDelivery", "severity": "info", "instance": "rehearsal-" + sys.argv[2]}
alert = [{"labels": labels,
          "annotations": {"summary": "A rehearsal checks that alerts reach every receiver"}}]
request = urllib.request.Request("http://" + sys.argv[1] + "/api/v2/alerts", data=json.dumps(alert).encode(),
                                 headers={"Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=10) as response:
    print(response.status)
"""
ALERT_WAIT_S = 120  # Alertmanager's first group wait (30 s) and a retry if the first send fails


def alert_delivery(rehearsal: Rehearsal, inventory: dict, stand_ins: StandIns) -> tuple[list[str], list[str]]:
    """An alert handed to the monitoring host's Alertmanager reaches every receiver of the stack: each email
    receiver by mail through the site's relay (TLS from the first byte on port 465), each webhook over https with
    the site's trust; what each stand-in took is read back."""
    receivers = rehearsal.site.monitoring.alert_receivers
    if not receivers:
        return ["alerts: the stack names no receivers, so no delivery to prove"], []
    token = secrets.token_hex(6)
    monitoring = rehearsal.host(rehearsal.site.serving_nodes()[0].name)
    listen = inventory["all"]["vars"]["monitoring_alertmanager_listen"]
    rehearsal.on(monitoring, "python3", "-c", POST_ALERT, listen, token)
    pending = dict(receivers)
    deadline = time.monotonic() + ALERT_WAIT_S
    while pending and time.monotonic() < deadline:
        time.sleep(3)
        mails = [m for m in received_mail(stand_ins) if token in str(m["Subject"])]  # labels are in the subject
        hooks = [body for body in received_webhooks(stand_ins) if token.encode() in body]
        for name, receiver in list(pending.items()):
            if (receiver.email and any(receiver.email in str(m["X-Rcpt-Args"]) for m in mails)) or (
                    receiver.webhook and hooks):
                del pending[name]
    found = [f"alert delivered: {name} ({r.email or r.webhook})" for name, r in sorted(receivers.items())
             if name not in pending]
    failures = [f"alert not delivered in {ALERT_WAIT_S} s: {name} ({r.email or r.webhook}); see "
                f"`journalctl -u prometheus-alertmanager` on {monitoring.name}" for name, r in sorted(pending.items())]
    return found, failures


def model_devices(rehearsal: Rehearsal, inventory: dict) -> tuple[list[str], list[str]]:
    """Each model server on each serving host holds exactly the GPUs the planner gave it: the vendor's device
    variable in its environment and the device nodes its unit may open (on a GPU site; the rehearsal runs the CPU
    engine, but the units are the site's own)."""
    found, failures = [], []
    models = inventory["all"]["vars"]["vllm_service_models"]
    config_dir = inventory["all"]["vars"]["vllm_service_config_dir"]
    hosts = inventory_hosts(inventory)
    for node in rehearsal.site.serving_nodes():
        machine = rehearsal.host(node.name)
        for served, given in (hosts[node.name].get("vllm_service_devices") or {}).items():
            env = rehearsal.on(machine, "cat", f"{config_dir}/{served}.env")
            allow = rehearsal.on(machine, "systemctl", "show", "--property=DeviceAllow,DevicePolicy",
                                 f"sovkit-vllm-{served}.service")
            wanted_env = [f"{k}={v}" for k, v in given["env"].items()]
            env_problem = env_file_problem(env, {**models[served]["env"], **given["env"]})
            # one DeviceAllow= line each; systemd adds its own (char-rtc, for ProtectClock): the nodes are /dev paths
            listed = {line.removeprefix("DeviceAllow=").split()[0] for line in allow.splitlines()
                      if line.startswith("DeviceAllow=/dev/")}
            ok = not env_problem and "DevicePolicy=closed" in allow and listed == set(given["allow"])
            line = (f"devices: {served} on {node.name} -> {', '.join(wanted_env)}, DeviceAllow "
                    f"{', '.join(given['allow'])}")
            (found if ok else failures).append(
                line if ok else f"{line}; found {env_problem or 'the environment as given'}, {sorted(listed)} and "
                                f"{allow!r}")
    return found, failures


def env_file_problem(text: str, given: dict[str, str]) -> str:
    """What is wrong with a model server's environment file: each variable once, exactly those the role was given
    (the model's and its devices') besides its own HOME and XDG_CACHE_HOME under it; "" when nothing is."""
    pairs = [line.partition("=") for line in text.splitlines() if line.strip() and not line.startswith("#")]
    names = [name for name, _, _ in pairs]
    env = {name: value for name, _, value in pairs}
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        return f"{', '.join(twice)} set more than once"
    if set(env) != {*given, "HOME", "XDG_CACHE_HOME"}:
        return f"variables {sorted(env)} (given {sorted(given)}, HOME and XDG_CACHE_HOME)"
    if any(env[k] != str(v) for k, v in given.items()) or env["XDG_CACHE_HOME"] != env["HOME"] + "/cache":
        return f"values {env}"
    return ""


# -- kubernetes mode ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    name: str
    address: str
    command: Callable[[list[str]], list[str]]  # the command line running argv there


def _admits(rule: dict, address: str) -> bool:
    ip = ipaddress.ip_address(address)
    family = "v6" if ip.version == 6 else "v4"
    return any(ip in ipaddress.ip_network(cidr, strict=False) for cidr in rule["from"][family])


def _in_rule(rule: dict, proto: str, port: int) -> bool:
    return rule["proto"] == proto and port in _ports(rule)


def node_firewall(rehearsal: Rehearsal, inventory: dict) -> tuple[list[str], list[str]]:
    """Every node's firewall as `inventory` renders it, probed live from every other node, the admin machine, the
    stand-in services and an address of the pod network. Returns (a summary of what was tried, every probe that
    came out otherwise)."""
    site, lab = rehearsal.site, rehearsal.lab
    rules = {name: variables["residency_network_inbound"] for name, variables in inventory_hosts(inventory).items()}
    tcp_ports = sorted({p for node_rules in rules.values() for r in node_rules if r["proto"] == "tcp"
                        for p in _ports(r)} | {CLOSED_PORT})
    udp_ports = sorted({p for node_rules in rules.values() for r in node_rules if r["proto"] == "udp"
                        for p in _ports(r)})
    addresses = rehearsal.plan.addresses
    pod_address = str(ipaddress.ip_network(site.platform.cluster_cidr)[-2])
    first = rehearsal.plan.hosts[-1]
    sources = [Source(h.name, h.address, functools.partial(rehearsal.root_argv, h)) for h in rehearsal.plan.hosts]
    sources.append(Source("admin machine", rehearsal.plan.controller[0].split("/")[0], lab.argv))
    services = container_name(site.name, "services")
    sources.append(Source("stand-in services", rehearsal.plan.service_addresses[0].split("/")[0],
                          lambda argv: ["podman", "exec", services, *argv]))
    pod = Source(f"a pod on {first.name}", pod_address, functools.partial(rehearsal.root_argv, first))
    started = []
    try:
        # A pod's address on one node, and the route back to it on every other (what the CNI would set up).
        _ip(rehearsal, first, "addr", "replace", f"{pod_address}/32", "dev", "eth0")
        for host in rehearsal.plan.hosts:
            if host.name != first.name:
                _ip(rehearsal, host, "route", "replace", site.platform.cluster_cidr, "via", first.address)
            # in the background, its output away: podman exec or SSH returns while it listens
            rehearsal.on(host, "sh", "-c", 'nohup "$@" >/dev/null 2>&1 &', "listen", "python3", "-c", LISTENER,
                         ",".join(map(str, tcp_ports)), ",".join(map(str, udp_ports)))
            started.append(host)
        _wait_listening(rehearsal, tcp_ports)
        expected: dict[str, tuple[str, str, str, int, bool]] = {}
        results: dict[str, str] = {}
        for source in [*sources, pod]:
            probes = []
            for target, target_rules in rules.items():
                if target == source.name:
                    continue
                for proto, port_list in (("tcp", tcp_ports), ("udp", udp_ports)):
                    for port in port_list:
                        token = f"{source.name}|{target}|{proto}|{port}"
                        admitted = source is pod or any(_in_rule(r, proto, port) and _admits(r, source.address)
                                                        for r in target_rules)
                        expected[token] = (source.name, target, proto, port, admitted)
                        probes.append([addresses[target], proto, port, token])
            spec = {"source": pod_address if source is pod else "", "timeout": PROBE_TIMEOUT_S, "probes": probes}
            results.update(dict(_run_json(source.command(["python3", "-c", PROBER, json.dumps(spec)]))))  # type: ignore[arg-type]
        received = set()
        for host in started:
            received |= set(rehearsal.on(host, "cat", "/run/sovkit-probe.log", check=False).split("\n"))
    finally:
        for host in started:
            rehearsal.on(host, "pkill", "-f", "[s]ovkit-probe[.]log", check=False)  # never itself
            rehearsal.on(host, "rm", "-f", "/run/sovkit-probe.log", check=False)
        _ip(rehearsal, first, "addr", "del", f"{pod_address}/32", "dev", "eth0", check=False)
        for host in rehearsal.plan.hosts:
            _ip(rehearsal, host, "route", "del", site.platform.cluster_cidr, check=False)
    failures, admitted_count = [], 0
    for token, (source, target, proto, port, admitted) in sorted(expected.items()):
        outcome = results.get(token)
        reached = (token in received) if proto == "udp" else outcome in ("reached", "refused")
        admitted_count += admitted
        if reached != admitted:
            failures.append(f"{source} -> {target} {proto}/{port}: {'reached' if reached else 'dropped'}, expected "
                            f"{'admitted' if admitted else 'dropped'}")
    found = [f"node firewall: {len(expected)} probes from {len(sources) + 1} sources to {len(rules)} nodes, "
             f"{admitted_count} admitted and {len(expected) - admitted_count} dropped as rendered; "
             f"{len(failures)} otherwise"]
    return found, failures


def _ip(rehearsal: Rehearsal, machine: Machine, *args: str, check: bool = True) -> None:
    """`ip ARGS` on `machine`'s network: from this machine in a podman host's namespace (the host's own tools may
    lack the right), inside a VM as root."""
    if machine.vm:
        rehearsal.on(machine, "ip", *args, check=check)
    else:
        subprocess.run(["ip", "-n", rehearsal.lab.machine_namespace(machine.name), *args], check=check,
                       capture_output=True)


def _ports(rule: dict) -> range:
    """The ports of a rendered rule: "443" or "30000-32767"."""
    low, _, high = str(rule["ports"]).partition("-")
    return range(int(low), int(high or low) + 1)


def _wait_listening(rehearsal: Rehearsal, tcp_ports: list[int], attempts: int = 40) -> None:
    for host in rehearsal.plan.hosts:
        for _ in range(attempts):
            listening = rehearsal.on(host, "ss", "-Htln", check=False)
            if all(f":{p} " in listening for p in tcp_ports):
                break
            time.sleep(0.25)
