"""A site's in-country services, stood up as local stand-ins for a rehearsal: real Debian servers, one container.

One podman container (systemd as PID 1, the services image) sits in the site's lab (:class:`NetLab`) holding
every address the services answer on, and runs:

- DNS: dnsmasq, answering only the site's names (A, AAAA, MX; their PTRs) with authority for their domains
  (an unknown name there is NXDOMAIN); nothing upstream, so any other name gets REFUSED;
- NTP: chronyd serving its local clock at stratum 10, one instance per address (chrony binds one address per
  family), run with `-x` and without CAP_SYS_TIME, so it can never set this machine's clock;
- HTTP(S): nginx serving folders of this machine (the mirror, the model store) read-only, and webhook sinks
  that answer 200 to a POST and keep each body (`client_body_in_file_only`);
- SMTP: Postfix's `smtp-sink`, one per address and port, dumping each message to its own file; a relay that takes
  TLS from the first byte (port 465) is nginx's stream module in front of its sink, with the rehearsal's PKI.

Every config is the daemon's own file, written under `spec.workdir` on this machine and bind-mounted read-only;
received mail and webhooks land under `spec.workdir` too (:func:`received_mail`, :func:`received_webhooks`).
The container's network namespace gets all its addresses before the container starts, so every daemon finds
its addresses when it binds. The container's /proc/sys stays read-only (podman's default): its boot writes no
sysctl of this machine.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import ipaddress
import json
import logging
import re
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

from sovkit.hosts import HostsError, ImageSpec, Podman, build_rootfs
from sovkit.hosts.image import BASE_PACKAGES, MASKED_UNITS
from sovkit.hosts.netlab import GUEST_IFACE, NetLab
from sovkit.hosts.podman import LABEL as HOST_LABEL

# dnsmasq-base: the resolver binary without Debian's dnsmasq.service (which would start with the stock config).
# chrony: the NTP server. nginx: bookworm's core nginx (nginx-light only adds the echo module).
# postfix: for `smtp-sink`, Postfix's own SMTP test server; Postfix's MTA daemons are masked.
# libnginx-mod-stream: TLS in front of an SMTP sink, for a relay that takes TLS from the first byte.
SERVICE_PACKAGES = ("dnsmasq-base", "chrony", "nginx", "libnginx-mod-stream", "postfix")
# The packages' own units (stock configs on every address): the stand-ins run only the units below. The image
# has no sshd either (nothing but the services listens); reach it with `podman exec`.
SERVICE_MASKED_UNITS = ("nginx.service", "chrony.service", "postfix.service", "postfix@.service")
SERVICES_IMAGE = ImageSpec(
    packages=(*(p for p in BASE_PACKAGES if p != "openssh-server"), *SERVICE_PACKAGES),
    masked_units=(*MASKED_UNITS, *SERVICE_MASKED_UNITS),
)
LABEL = "io.sovkit.stand-ins"  # the spec digest the running container was started with

# Where things live inside the container.
CONF_DIR = "/etc/sovkit"
UNIT_DIR = "/usr/local/lib/systemd/system"  # on systemd's unit path, free in the image
MAIL_DIR = "/var/spool/sovkit/mail"
HOOK_DIR = "/var/spool/sovkit/webhooks"
LOG_DIR = "/var/log/sovkit"
WWW_DIR = "/srv/sovkit/www"
TLS_DIR = "/srv/sovkit/tls"
SINK_SOCKET = "/run/sovkit-webhook-sink.sock"
SMTP_SINK_BEHIND_TLS = 2525  # + the sink's index: smtp-sink's loopback port behind nginx's TLS
TARGET = "sovkit-stand-ins.target"
log = logging.getLogger("sovkit.rehearse")


def ensure_services_image(podman: Podman, cache_dir: Path | None = None) -> str:
    """The services image (the host image plus the servers above), built once, cached and imported; its tag."""
    built = build_rootfs(SERVICES_IMAGE, cache_dir)
    return podman.import_image(built.tarball, built.tag)


# -- what to stand up ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HttpSite:
    """One virtual host of nginx. nginx's workers run as www-data: the served files must be world-readable."""

    server_name: str  # e.g. mirror.mh.gov.example
    address: str  # the address it answers on (one of StandIns.addresses, without prefix length)
    port: int  # 80 or 443
    tls: bool  # https with cert/key (PEM)
    roots: dict[str, Path] = field(default_factory=dict, hash=False)  # URL path prefix -> folder (read-only)
    cert: Path | None = None  # PEM chain, the server's certificate first
    key: Path | None = None
    sink: bool = False  # a webhook receiver: POST anywhere answers 200 and keeps the body; nothing else is served


@dataclass(frozen=True)
class SmtpSink:
    """An SMTP server that keeps every message: plain, or TLS from the first byte (a relay on port 465)."""

    address: str
    port: int = 25
    tls: bool = False
    cert: Path | None = None  # PEM chain, the server's certificate first (tls only)
    key: Path | None = None

    def sink_socket(self, index: int) -> tuple[str, int]:
        """Where smtp-sink itself listens: the address, or behind TLS a loopback port of its own."""
        return ("127.0.0.1", SMTP_SINK_BEHIND_TLS + index) if self.tls else (self.address, self.port)

    def sink_listen(self, index: int) -> str:
        address, port = self.sink_socket(index)
        return f"{_bracket(address)}:{port}"


@dataclass(frozen=True)
class StandIns:
    """The stand-in services of one site, all in one container attached to the site's lab."""

    name: str  # container name and lab machine name, e.g. "<site>-services"
    lab: NetLab
    addresses: tuple[str, ...]  # CIDR notation: every address the container answers on
    workdir: Path  # configs, received mail and webhooks, on this machine
    dns_listen: tuple[str, ...] = ()  # resolver addresses
    dns_records: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)  # name -> A/AAAA addresses
    dns_mx: dict[str, str] = field(default_factory=dict, hash=False)  # mail domain -> mail host name
    ntp_listen: tuple[str, ...] = ()
    http_sites: tuple[HttpSite, ...] = ()
    smtp_sinks: tuple[SmtpSink, ...] = ()

    def units(self) -> list[str]:
        """The systemd units of the services, as started in the container."""
        units = ["sovkit-dns.service"] if self.dns_listen else []
        units += [f"sovkit-ntp-{i}.service" for i in range(len(self.ntp_listen))]
        units += ["sovkit-http.service"] if self.http_sites else []
        units += [f"sovkit-smtp-{i}.service" for i in range(len(self.smtp_sinks))]
        units += ["sovkit-smtp-tls.service"] if any(s.tls for s in self.smtp_sinks) else []
        return units

    def sockets(self) -> list[tuple[str, str, int]]:
        """(protocol, address, port) each service listens on once it is up."""
        out = [(proto, a, 53) for a in self.dns_listen for proto in ("udp", "tcp")]
        out += [("udp", a, 123) for a in self.ntp_listen]
        out += sorted({("tcp", s.address, s.port) for s in self.http_sites})
        out += [("tcp", s.address, s.port) for s in self.smtp_sinks]
        # behind TLS, each sink's own socket is on loopback, reached only through nginx
        out += [("tcp", *s.sink_socket(i)) for i, s in enumerate(self.smtp_sinks) if s.tls]
        return out


# -- the daemons' own config files ---------------------------------------------------------------------------------
def _bracket(address: str) -> str:
    return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address


def dns_zones(spec: StandIns) -> list[str]:
    """The domains the resolver answers for with authority: each record's parent domain and each mail domain.
    In them an unknown name is NXDOMAIN and a missing type NODATA; any other name is REFUSED."""
    zones = {name.split(".", 1)[1] for name in spec.dns_records if "." in name} | set(spec.dns_mx)
    return sorted(z for z in zones if not any(z.endswith(f".{other}") for other in zones))


def dnsmasq_conf(spec: StandIns) -> str:
    lines = [
        "# sovkit stand-in resolver: answers the site's names below, forwards nothing anywhere.",
        "port=53",
        *(f"listen-address={a}" for a in spec.dns_listen),
        "bind-interfaces",
        "no-resolv", "no-poll", "no-hosts", "domain-needed",
        "log-queries", "log-facility=-",
        *(f"local=/{zone}/" for zone in dns_zones(spec)),
    ]
    lines += [f"host-record={name},{','.join(addrs)}" for name, addrs in sorted(spec.dns_records.items())]
    lines += [f"mx-host={domain},{host},10" for domain, host in sorted(spec.dns_mx.items())]
    return "\n".join(lines) + "\n"


def chrony_conf(index: int, address: str) -> str:
    return (
        "# sovkit stand-in NTP server: serves the local clock; chronyd runs with -x, so it never sets it.\n"
        "local stratum 10\n"
        "allow all\n"
        f"bindaddress {address}\n"
        "port 123\n"
        "cmdport 0\n"
        "bindcmdaddress /\n"
        f"pidfile /run/sovkit-ntp-{index}.pid\n"
    )


def nginx_conf(spec: StandIns) -> str:
    servers = []
    for i, site in enumerate(spec.http_sites):
        ssl = " ssl" if site.tls else ""
        body = [f"    listen {_bracket(site.address)}:{site.port}{ssl};", f"    server_name {site.server_name};"]
        if site.tls:
            body += [f"    ssl_certificate {TLS_DIR}/{i}.crt;", f"    ssl_certificate_key {TLS_DIR}/{i}.key;"]
        if site.sink:
            body += [
                "    location / {",
                "        limit_except POST { deny all; }",
                "        client_body_in_file_only on;  # each body stays in its own file",
                f"        client_body_temp_path {HOOK_DIR};",
                f"        proxy_pass http://unix:{SINK_SOCKET}:/;",
                "    }",
            ]
        for j, (prefix, _) in enumerate(sorted(site.roots.items())):
            folder = f"{WWW_DIR}/{i}-{j}"
            if prefix.strip("/"):
                body += [f"    location ^~ /{prefix.strip('/')}/ {{", f"        alias {folder}/;", "    }"]
            else:
                body += ["    location / {", f"        root {folder};", "    }"]
        servers.append("  server {\n" + "\n".join(body) + "\n  }\n")
    if any(s.sink for s in spec.http_sites):
        servers.append(f"  server {{  # what the sinks answer\n    listen unix:{SINK_SOCKET};\n"
                       "    location / { return 200 \"ok\\n\"; }\n  }\n")
    return (
        "# sovkit stand-in web server: the site's mirror, model store and webhook receivers.\n"
        "user www-data;\n"
        "worker_processes 1;\n"
        "daemon off;\n"
        "pid /run/sovkit-http.pid;\n"
        "error_log stderr;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        "  include /etc/nginx/mime.types;\n"
        "  default_type application/octet-stream;\n"
        "  sendfile on;\n"
        "  server_tokens off;\n"
        f"  access_log {LOG_DIR}/http-access.log;  # on this machine: who fetched what\n"
        "  client_max_body_size 8m;\n"
        + "".join(servers)
        + "}\n"
    )


def _unit(description: str, exec_start: str, *, pre: Iterable[str] = ()) -> str:
    pre_lines = "".join(f"ExecStartPre={p}\n" for p in pre)
    return (
        f"[Unit]\nDescription=sovkit stand-in: {description}\nPartOf={TARGET}\n\n"
        f"[Service]\n{pre_lines}ExecStart={exec_start}\nRestart=on-failure\nRestartSec=1\n"
    )


def render(spec: StandIns) -> dict[str, str]:
    """Every file the container gets, by path under `spec.workdir` (etc/ -> /etc/sovkit, systemd/ -> units)."""
    files: dict[str, str] = {}
    if spec.dns_listen:
        files["etc/dnsmasq.conf"] = dnsmasq_conf(spec)
        files["systemd/sovkit-dns.service"] = _unit(
            f"DNS at {', '.join(spec.dns_listen)} (dnsmasq)",
            f"/usr/sbin/dnsmasq --keep-in-foreground --conf-file={CONF_DIR}/dnsmasq.conf",
            pre=[f"/usr/sbin/dnsmasq --test --conf-file={CONF_DIR}/dnsmasq.conf"])
    for i, address in enumerate(spec.ntp_listen):
        files[f"etc/chrony-{i}.conf"] = chrony_conf(i, address)
        files[f"systemd/sovkit-ntp-{i}.service"] = _unit(
            f"NTP at {address} (chronyd, local clock, stratum 10)",
            # -4/-6: no wildcard socket of the other family; -x: never touch the clock
            f"/usr/sbin/chronyd -{ipaddress.ip_address(address).version} -d -x -f {CONF_DIR}/chrony-{i}.conf")
    if spec.http_sites:
        files["etc/nginx.conf"] = nginx_conf(spec)
        files["systemd/sovkit-http.service"] = _unit(
            "HTTP(S) (nginx)", f"/usr/sbin/nginx -c {CONF_DIR}/nginx.conf",
            pre=[f"/usr/sbin/nginx -t -q -c {CONF_DIR}/nginx.conf"])
    for i, sink in enumerate(spec.smtp_sinks):
        # one file per message: strftime template (%% is systemd's escape of %) plus smtp-sink's random suffix
        files[f"systemd/sovkit-smtp-{i}.service"] = _unit(
            f"SMTP sink for {_bracket(sink.address)}:{sink.port} (Postfix smtp-sink)",
            f"/usr/sbin/smtp-sink -u nobody -h {spec.name} -d {MAIL_DIR}/%%Y%%m%%d-%%H%%M%%S-{i}. "
            f"{sink.sink_listen(i)} 64",
            pre=[f"/bin/chown nobody:nogroup {MAIL_DIR}"])
    if any(s.tls for s in spec.smtp_sinks):
        files["etc/nginx-smtp-tls.conf"] = smtp_tls_conf(spec)
        files["systemd/sovkit-smtp-tls.service"] = _unit(
            "TLS in front of the SMTP sinks (nginx stream)", f"/usr/sbin/nginx -c {CONF_DIR}/nginx-smtp-tls.conf",
            pre=[f"/usr/sbin/nginx -t -q -c {CONF_DIR}/nginx-smtp-tls.conf"])
    files[f"systemd/{TARGET}"] = (
        "[Unit]\nDescription=sovkit stand-in services\n"
        + "".join(f"Wants={u}\n" for u in spec.units()) + "\n[Install]\nWantedBy=multi-user.target\n")
    return files


def smtp_tls_conf(spec: StandIns) -> str:
    """nginx's stream module: TLS from the first byte on each TLS sink's address, passed on to its smtp-sink."""
    servers = "".join(
        f"  server {{\n    listen {_bracket(s.address)}:{s.port} ssl;\n"
        f"    ssl_certificate {TLS_DIR}/smtp-{i}.crt;\n    ssl_certificate_key {TLS_DIR}/smtp-{i}.key;\n"
        f"    proxy_pass {s.sink_listen(i)};\n  }}\n"
        for i, s in enumerate(spec.smtp_sinks) if s.tls)
    return ("# sovkit stand-in mail relay: TLS in front of smtp-sink.\n"
            "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n"
            "user www-data;\nworker_processes 1;\ndaemon off;\npid /run/sovkit-smtp-tls.pid;\nerror_log stderr;\n"
            "events { worker_connections 64; }\n"
            "stream {\n" + servers + "}\n")


# -- the container -------------------------------------------------------------------------------------------------
def _mounts(spec: StandIns) -> list[tuple[Path, str, str]]:
    """(this machine's path, container path, mode) of every bind mount."""
    work = spec.workdir
    mounts = [(work / "etc", CONF_DIR, "ro"), (work / "systemd", UNIT_DIR, "ro"), (work / "mail", MAIL_DIR, "rw"),
              (work / "webhooks", HOOK_DIR, "rw"), (work / "logs", LOG_DIR, "rw")]
    for i, site in enumerate(spec.http_sites):
        for j, (_, folder) in enumerate(sorted(site.roots.items())):
            mounts.append((Path(folder).resolve(), f"{WWW_DIR}/{i}-{j}", "ro"))
        if site.tls and site.cert and site.key:
            mounts += [(Path(site.cert).resolve(), f"{TLS_DIR}/{i}.crt", "ro"),
                       (Path(site.key).resolve(), f"{TLS_DIR}/{i}.key", "ro")]
    for i, sink in enumerate(spec.smtp_sinks):
        if sink.tls and sink.cert and sink.key:
            mounts += [(Path(sink.cert).resolve(), f"{TLS_DIR}/smtp-{i}.crt", "ro"),
                       (Path(sink.key).resolve(), f"{TLS_DIR}/smtp-{i}.key", "ro")]
    return mounts


def _run_args(spec: StandIns, image: str, digest: str) -> list[str]:
    args = [
        "--detach", "--name", spec.name, "--hostname", spec.name,
        "--label", f"{HOST_LABEL}=1", "--label", f"{LABEL}={digest}",
        "--systemd=always",
        "--network", f"ns:{spec.lab.netns_path(spec.name)}",
        "--cap-drop", "SYS_TIME",  # not in podman's default set either: chronyd -x never needs it
        # the image's /etc/hosts, not podman's (which names this machine's own LAN address), and the site's resolver
        "--no-hosts", f"--dns={spec.dns_listen[0] if spec.dns_listen else '127.0.0.1'}",
    ]
    for src, dest, mode in _mounts(spec):
        args += ["--volume", f"{src}:{dest}:{mode}"]
    return [*args, image, "/sbin/init"]


_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")  # host names, as dnsmasq and nginx take them


def _check(spec: StandIns) -> None:
    own = {str(ipaddress.ip_interface(a).ip) for a in spec.addresses}
    wanted = [*spec.dns_listen, *spec.ntp_listen, *(s.address for s in spec.smtp_sinks),
              *(s.address for s in spec.http_sites)]
    missing = sorted({a for a in wanted if str(ipaddress.ip_address(a)) not in own})
    problems = [f"listen addresses {', '.join(missing)} are not among the container's addresses "
                f"({', '.join(spec.addresses)})"] if missing else []
    names = [*spec.dns_records, *spec.dns_mx, *spec.dns_mx.values(), *(s.server_name for s in spec.http_sites)]
    problems += [f"{name!r} is not a DNS name" for name in names if not _DNS_NAME.fullmatch(name)]
    for name, addrs in spec.dns_records.items():
        for addr in addrs:
            try:
                ipaddress.ip_address(addr)
            except ValueError:
                problems.append(f"record {name}: {addr!r} is not an IP address")
    problems += [f"TLS SMTP sink {_bracket(s.address)}:{s.port} needs cert and key"
                 for s in spec.smtp_sinks if s.tls and not (s.cert and s.key)]
    for site in spec.http_sites:
        if site.tls and not (site.cert and site.key):
            problems.append(f"https site {site.server_name} needs cert and key")
        problems += [f"site {site.server_name}: root {prefix} -> {folder} is not a folder"
                     for prefix, folder in site.roots.items() if not Path(folder).is_dir()]
    if problems:
        raise HostsError(f"stand-ins {spec.name}: " + "; ".join(problems))


def _digest(spec: StandIns, files: dict[str, str], image: str) -> str:
    """What the running container depends on: its files, mounts, addresses, image and the TLS material."""
    tls = [hashlib.sha256(Path(p).read_bytes()).hexdigest() for s in (*spec.http_sites, *spec.smtp_sinks) if s.tls
           for p in (s.cert, s.key) if p]
    text = json.dumps({"files": files, "mounts": [list(map(str, m)) for m in _mounts(spec)], "image": image,
                       "addresses": sorted(spec.addresses), "tls": tls}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_files(workdir: Path, files: dict[str, str]) -> None:
    """Write what differs, link the target into multi-user.target, and drop files of an earlier spec."""
    for sub in ("etc", "systemd", "mail", "webhooks", "logs"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = workdir / rel
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
    wants = workdir / "systemd" / "multi-user.target.wants"
    wants.mkdir(exist_ok=True)
    link = wants / TARGET
    if not link.is_symlink():
        link.symlink_to(f"../{TARGET}")
    for sub in ("etc", "systemd"):
        for path in (workdir / sub).iterdir():
            if path.is_file() and not path.is_symlink() and f"{sub}/{path.name}" not in files:
                path.unlink()


def _running_digest(podman: Podman, spec: StandIns) -> str | None:
    """The spec digest of the container running in the lab's namespace for it now; None if there is none."""
    out = podman("inspect", "--type", "container", "--format",
                 f'{{{{.State.Pid}}}} {{{{index .Config.Labels "{LABEL}"}}}}', spec.name, check=False)
    pid, _, digest = out.strip().partition(" ")
    try:  # running, and in the namespace the lab has now (not one a recreated lab replaced)
        same_ns = Path(f"/proc/{pid}/ns/net").stat().st_ino == spec.lab.netns_path(spec.name).stat().st_ino
    except (OSError, ValueError):
        return None
    return digest if pid not in ("", "0") and same_ns else None


def _listening(spec: StandIns) -> set[tuple[str, str, int]]:
    """The sockets listening in the container's network namespace (seen from this machine, no podman exec)."""
    proc = subprocess.run(spec.lab.machine_argv(spec.name, ["ss", "-Hlntu"]), capture_output=True, text=True,
                          check=False, timeout=30)
    found = set()
    for line in proc.stdout.splitlines():
        cols = line.split()
        if len(cols) < 5:
            continue
        host, _, port = cols[4].rpartition(":")
        try:
            found.add((cols[0], str(ipaddress.ip_address(host.strip("[]").split("%")[0])), int(port)))
        except ValueError:
            continue
    return found


def _wait_listening(podman: Podman, spec: StandIns, wait_s: float) -> None:
    want = {(proto, str(ipaddress.ip_address(a)), port) for proto, a, port in spec.sockets()}
    deadline = time.monotonic() + wait_s
    missing = want
    while time.monotonic() < deadline:
        missing = want - _listening(spec)
        if not missing:
            return
        time.sleep(0.2)
    units = spec.units()
    states = podman.exec(spec.name, ["systemctl", "is-active", *units], check=False).split()
    logs = podman.exec(spec.name, ["journalctl", "--no-pager", "-n", "40", *(f"--unit={u}" for u in units)],
                       check=False)
    raise HostsError(
        f"stand-ins {spec.name}: not listening after {wait_s:.0f} s on "
        + ", ".join(f"{p} {_bracket(a)}:{port}" for p, a, port in sorted(missing))
        + "\n" + "\n".join(f"  {u}: {s}" for u, s in zip(units, states, strict=False)) + f"\n{logs}")


def _drop_other_addresses(spec: StandIns) -> None:
    """Remove the addresses an earlier spec gave the namespace (NetLab only adds)."""
    ns = spec.lab.machine_namespace(spec.name)
    wanted = {ipaddress.ip_interface(a) for a in spec.addresses}
    listing = subprocess.run(["ip", "-n", ns, "-o", "addr", "show", "dev", GUEST_IFACE], capture_output=True,
                             text=True, check=True, timeout=30).stdout
    for line in listing.splitlines():
        cols = line.split()
        if len(cols) > 3 and cols[2] in ("inet", "inet6"):
            address = ipaddress.ip_interface(cols[3])
            if address not in wanted and not address.ip.is_link_local:
                subprocess.run(["ip", "-n", ns, "addr", "del", str(address), "dev", GUEST_IFACE], check=True,
                               capture_output=True, timeout=30)


def start_stand_ins(podman: Podman, spec: StandIns, image: str | None = None, wait_s: float = 60) -> bool:
    """Stand up (or keep) the services of `spec`: a running container of the same spec is left alone, a changed
    spec replaces it. Returns whether anything was (re)started. The lab must exist (`spec.lab.create`)."""
    _check(spec)
    image = image or ensure_services_image(podman)
    files = render(spec)
    digest = _digest(spec, files, image)
    if _running_digest(podman, spec) == digest:
        return False
    # The namespace (and its veth's MAC) stays across a restart: the site's hosts keep valid neighbour entries.
    started = time.monotonic()
    podman.stop_host(spec.name)
    _write_files(spec.workdir, files)
    spec.lab.attach(spec.name, list(spec.addresses))  # every address exists before any daemon starts
    _drop_other_addresses(spec)
    try:
        podman("run", *_run_args(spec, image, digest))
        podman.wait_booted(spec.name, wait_s)
        _wait_listening(podman, spec, wait_s)
    except BaseException:
        stop_stand_ins(podman, spec)
        raise
    log.info("stand-ins %s up in %.1f s: %s", spec.name, time.monotonic() - started, ", ".join(spec.units()))
    return True


def stop_stand_ins(podman: Podman, spec: StandIns) -> None:
    """Remove the container and its network namespace (received mail and webhooks stay in the workdir)."""
    podman.stop_host(spec.name)
    spec.lab.detach(spec.name)


# -- what the sinks received ---------------------------------------------------------------------------------------
def _files_in_order(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def received_mail(spec: StandIns) -> list[Message]:
    """Every message the SMTP sink took, oldest first. smtp-sink puts the envelope in front as headers
    (X-Client-Addr, X-Helo-Args, X-Mail-Args, one X-Rcpt-Args per recipient) before the message's own."""
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in _files_in_order(spec.workdir / "mail")]


def received_webhooks(spec: StandIns) -> list[bytes]:
    """The body of every POST the webhook sinks took, oldest first."""
    return [p.read_bytes() for p in _files_in_order(spec.workdir / "webhooks")]
