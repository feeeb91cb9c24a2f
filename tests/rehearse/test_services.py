"""The stand-in services of a rehearsal, proven for real from a client host of the site.

One lab of our own (site `svc-test`, documentation ranges 198.51.100.0/24 and 2001:db8:77::/48): the stand-ins'
container and a client host (the kit's host image) are attached to it, and nothing touches this machine's own
network namespace. The client asks the resolver, the NTP servers, the mirror (apt, with and without the right
key), the model store over https, the SMTP sink and the webhook sink, exactly as a site's hosts would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sovkit.hosts import LabLock, MachineSnapshot, Podman, default_cache_dir, ensure_image
from sovkit.hosts.netlab import NetLab
from sovkit.rehearse.mirror import MirrorLayout, build_debian_mirror, make_archive_key
from sovkit.rehearse.services import (
    HttpSite,
    SmtpSink,
    StandIns,
    ensure_services_image,
    received_mail,
    received_webhooks,
    start_stand_ins,
    stop_stand_ins,
)

pytestmark = [pytest.mark.hosts, pytest.mark.slow]

PROBES = Path(__file__).resolve().parent / "client_probes.py"
DOMAIN = "svc-test.example"
SITE_CIDRS = ["198.51.100.0/24", "2001:db8:77::/48"]
CONTROLLER = ["198.51.100.1/24", "2001:db8:77::1/64"]
SERVICES = "svc-test-services"
CLIENT = "svc-test-client"
CLIENT_ADDRESSES = ["198.51.100.10/24", "2001:db8:77::10/64"]
DNS = ("198.51.100.53", "2001:db8:77::53")
NTP = ("198.51.100.123", "198.51.100.124", "2001:db8:77::123")
WEB = ("198.51.100.80", "2001:db8:77::80")
SMTP = ("198.51.100.25", "2001:db8:77::25")
RECORDS = {
    f"mirror.{DOMAIN}": WEB, f"models.{DOMAIN}": WEB, f"alerts.{DOMAIN}": (WEB[0],),
    f"mail.{DOMAIN}": SMTP, f"ntp1.{DOMAIN}": (NTP[0],), f"ntp2.{DOMAIN}": (NTP[1],), f"ntp6.{DOMAIN}": (NTP[2],),
}
APT_PACKAGES = ("hello", "sl", "nspark", "firmware-zd1211")  # main x2, non-free, non-free-firmware
KEYRING = "/etc/apt/keyrings/svc-test-archive.gpg"
WRONG_KEYRING = "/etc/apt/keyrings/wrong.gpg"


def download_debs(dest: Path) -> Path:
    """A small flat folder of real Debian packages (cached): apt-get download against a throwaway sources list
    with every component, so this machine's own apt configuration and caches are not touched."""
    if all(any(dest.glob(f"{name}_*.deb")) for name in APT_PACKAGES):
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for sub in ("lists/partial", "cache/archives/partial"):
            Path(tmp, sub).mkdir(parents=True)
        Path(tmp, "sources.list").write_text(
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm "
            "main contrib non-free non-free-firmware\n")
        opts = ["-q", "-o", "Acquire::Retries=5", "-o", f"Dir::Etc::sourcelist={tmp}/sources.list",
                "-o", "Dir::Etc::sourceparts=-", "-o", f"Dir::State::Lists={tmp}/lists",
                "-o", f"Dir::Cache={tmp}/cache", "-o", "APT::Sandbox::User=root"]
        subprocess.run(["apt-get", *opts, "update"], check=True, capture_output=True, timeout=300)
        subprocess.run(["apt-get", *opts, "download", *APT_PACKAGES], check=True, capture_output=True,
                       timeout=300, cwd=dest)
    return dest


def make_tls(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway site CA and a server certificate for the model store, made with openssl."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (folder / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    subprocess.run(["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
                    "-subj", "/CN=svc-test site CA", "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign"], check=True, capture_output=True)
    subprocess.run(["openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN=models.{DOMAIN}"],
                   check=True, capture_output=True)
    ext = folder / "server.ext"
    ext.write_text(f"subjectAltName=DNS:models.{DOMAIN},DNS:mail.{DOMAIN}\nextendedKeyUsage=serverAuth\n"
                   "keyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                    "-out", cert, "-days", "2", "-extfile", ext], check=True, capture_output=True)
    return ca, cert, key


@dataclass
class Rehearsal:
    podman: Podman
    lab: NetLab
    spec: StandIns
    mirror: MirrorLayout
    model: Path
    start_s: float

    def probe(self, *args: str) -> dict:
        out = self.podman.exec(CLIENT, ["python3", "/srv/probes.py", *args])
        return json.loads(out)

    def client(self, script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["podman", "exec", CLIENT, "sh", "-c", script], env=self.podman.env(),
                              capture_output=True, text=True, timeout=300, check=False)
        if check:
            assert proc.returncode == 0, f"{script}\n{proc.stdout}\n{proc.stderr}"
        return proc


def site_spec(lab: NetLab, workdir: Path, mirror: Path, models: Path, cert: Path, key: Path,
              records: dict[str, tuple[str, ...]] = RECORDS) -> StandIns:
    return StandIns(
        name=SERVICES,
        lab=lab,
        addresses=tuple(f"{a}/{64 if ':' in a else 24}" for a in (*DNS, *NTP, *WEB, *SMTP)),
        workdir=workdir,
        dns_listen=DNS,
        dns_records=records,
        dns_mx={DOMAIN: f"mail.{DOMAIN}"},
        ntp_listen=NTP,
        http_sites=(
            *(HttpSite(f"mirror.{DOMAIN}", a, 80, False, roots={"/": mirror}) for a in WEB),
            *(HttpSite(f"models.{DOMAIN}", a, 443, True, roots={"/models": models}, cert=cert, key=key)
              for a in WEB),
            HttpSite(f"alerts.{DOMAIN}", WEB[0], 80, False, sink=True),
        ),
        # each address plain on 25 (what the MX record names) and as a relay with TLS from the first byte on 465
        smtp_sinks=(*(SmtpSink(a) for a in SMTP), *(SmtpSink(a, 465, True, cert, key) for a in SMTP)),
    )


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:
    """The lab, the stand-ins and a client; everything goes at the end and the machine is as it was."""
    tmp = tmp_path_factory.mktemp("rehearsal")
    podman = Podman(default_cache_dir() / "podman")
    host_image = ensure_image(podman).tag
    services_image = ensure_services_image(podman)
    key = make_archive_key(tmp / "archive-key", "svc-test archive key (sovkit test)")
    wrong = make_archive_key(tmp / "wrong-key", "not the archive key")
    mirror = build_debian_mirror(download_debs(default_cache_dir() / "rehearse-test-debs"), tmp / "mirror", key)
    models = tmp / "models"
    (models / "tiny").mkdir(parents=True)
    model = models / "tiny" / "model.safetensors"
    model.write_bytes(secrets.token_bytes(3 << 20))
    ca, cert, tls_key = make_tls(tmp / "tls")
    lab = NetLab("svc-test", SITE_CIDRS)
    spec = site_spec(lab, tmp / "work", mirror.root, models, cert, tls_key)

    lock = LabLock()
    # Other labs of this machine wait, so the snapshot below is ours alone; in a session whose role tests
    # already hold the lock (flock: a second acquire in this process would wait for ever), theirs covers us.
    held_here = lock.path.exists() and lock.path.read_text().strip() == f"pid {os.getpid()}"
    if not held_here:
        lock.acquire()
    snapshot = MachineSnapshot.capture()
    try:
        for name in (CLIENT, SERVICES):  # what a killed earlier run may have left
            podman.stop_host(name)
        lab.destroy()
        lab.create(controller=CONTROLLER, resolvers=list(DNS))
        started = time.monotonic()
        assert start_stand_ins(podman, spec, services_image)
        start_s = time.monotonic() - started
        client_ns = lab.attach(CLIENT, CLIENT_ADDRESSES)
        podman("run", "--detach", "--name", CLIENT, "--hostname", "client", "--label", "io.sovkit.host=1",
               "--systemd=always", "--network", f"ns:{client_ns}", "--no-hosts", *(f"--dns={d}" for d in DNS),
               "--volume", f"{PROBES}:/srv/probes.py:ro", "--volume", f"{ca}:/srv/site-ca.crt:ro",
               "--volume", f"{key.keyring}:{KEYRING}:ro", "--volume", f"{wrong.keyring}:{WRONG_KEYRING}:ro",
               host_image, "/sbin/init")
        podman.wait_booted(CLIENT)
        yield Rehearsal(podman, lab, spec, mirror, model, start_s)
    finally:
        try:
            podman.stop_host(CLIENT)
            stop_stand_ins(podman, spec)
            lab.destroy()
            snapshot.restore()
            leftover = snapshot.changes()
            assert not leftover, f"machine not as it was: {leftover}"
        finally:
            if not held_here:
                lock.release()


def test_listens_only_where_told(rehearsal: Rehearsal) -> None:
    """Each daemon listens on its own addresses only (no wildcard socket answering at another service's)."""
    ss = subprocess.run(rehearsal.lab.machine_argv(SERVICES, ["ss", "-Hlntu"]), capture_output=True, text=True,
                        check=True).stdout
    listening = set()
    for line in ss.splitlines():
        proto, *_, local, _peer = line.split()[:6]
        host, _, port = local.rpartition(":")
        listening.add((proto, host.strip("[]"), int(port)))
    assert listening == set(rehearsal.spec.sockets())


def test_names_resolve(rehearsal: Rehearsal) -> None:
    """Each resolver address answers the site's names, v4 and v6, and its MX; other names get no answer."""
    for server in DNS:
        assert rehearsal.probe("dns", server, f"mirror.{DOMAIN}", "A") == {"rcode": 0, "answers": [WEB[0]]}
        assert rehearsal.probe("dns", server, f"mirror.{DOMAIN}", "AAAA") == {"rcode": 0, "answers": [WEB[1]]}
        assert rehearsal.probe("dns", server, DOMAIN, "MX") == {"rcode": 0, "answers": [f"mail.{DOMAIN}"]}
        # in the site's zone: unknown names do not exist (NXDOMAIN), missing types are empty (NODATA)
        assert rehearsal.probe("dns", server, f"unknown.{DOMAIN}", "A") == {"rcode": 3, "answers": []}
        assert rehearsal.probe("dns", server, f"alerts.{DOMAIN}", "AAAA") == {"rcode": 0, "answers": []}
        assert rehearsal.probe("dns", server, f"mirror.{DOMAIN}", "MX") == {"rcode": 0, "answers": []}
        # anywhere else: refused, nothing is forwarded
        assert rehearsal.probe("dns", server, "deb.debian.org", "A") == {"rcode": 5, "answers": []}
    # the client's own resolver (glibc, through resolv.conf) sees the same
    hosts = rehearsal.client(f"getent ahosts mirror.{DOMAIN}").stdout
    assert WEB[0] in hosts and WEB[1] in hosts
    assert rehearsal.client("getent hosts deb.debian.org", check=False).returncode == 2


@pytest.mark.parametrize("server", NTP)
def test_ntp_serves_time(rehearsal: Rehearsal, server: str) -> None:
    """SNTP from the client gets a server reply at stratum 10, synchronised, with this machine's time."""
    reply = rehearsal.probe("sntp", server)
    assert reply["mode"] == 4 and reply["stratum"] == 10 and reply["leap"] != 3, reply
    assert abs(reply["offset"]) < 1.0, reply


def test_apt_from_mirror(rehearsal: Rehearsal) -> None:
    """deb822 sources with Signed-By on the archive key: update and install from the mirror, every component."""
    sources = rehearsal.mirror.sources(f"http://mirror.{DOMAIN}", KEYRING)
    rehearsal.client(f"rm -f /etc/apt/sources.list.d/*; printf '%s' '{sources}' > /etc/apt/sources.list.d/site.sources")
    update = rehearsal.client("apt-get update 2>&1").stdout
    assert update.count("InRelease") == 3 and "W:" not in update and "E:" not in update, update
    rehearsal.client("DEBIAN_FRONTEND=noninteractive apt-get install -y -q hello")
    assert rehearsal.client("hello").stdout.strip() == "Hello, world!"
    policy = rehearsal.client("apt-cache policy firmware-zd1211 nspark").stdout
    assert f"http://mirror.{DOMAIN}/debian bookworm/non-free-firmware amd64 Packages" in policy, policy
    assert f"http://mirror.{DOMAIN}/debian bookworm/non-free amd64 Packages" in policy, policy
    rehearsal.client("apt-get download -q firmware-zd1211 nspark sl")


def test_apt_refuses_wrong_key(rehearsal: Rehearsal) -> None:
    sources = rehearsal.mirror.sources(f"http://mirror.{DOMAIN}", WRONG_KEYRING)
    proc = rehearsal.client(
        f"rm -rf /var/lib/apt/lists/* /etc/apt/sources.list.d/*; "
        f"printf '%s' '{sources}' > /etc/apt/sources.list.d/site.sources; apt-get update 2>&1", check=False)
    assert proc.returncode != 0, proc.stdout
    assert "NO_PUBKEY" in proc.stdout and "is not signed" in proc.stdout, proc.stdout


def test_model_over_https(rehearsal: Rehearsal) -> None:
    """The model store serves the file byte for byte over https, trusted through the site CA only."""
    url = f"https://models.{DOMAIN}/models/tiny/model.safetensors"
    got = rehearsal.probe("get", url, "/srv/site-ca.crt")
    assert got == {"status": 200, "sha256": hashlib.sha256(rehearsal.model.read_bytes()).hexdigest(),
                   "size": rehearsal.model.stat().st_size}
    untrusted = rehearsal.probe("get", url)  # the system's CAs do not know the site CA
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.get("error", ""), untrusted


def test_mail_reaches_sink(rehearsal: Rehearsal) -> None:
    """A message to the site's mail domain, sent to its MX host, arrives in received_mail with its envelope."""
    mx = rehearsal.probe("dns", DNS[0], DOMAIN, "MX")["answers"][0]
    subject = f"rehearsal alert {secrets.token_hex(4)}"
    assert rehearsal.probe("smtp", mx, f"alertmanager@{DOMAIN}", f"ops@{DOMAIN}", subject) == {"sent": True}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mails = [m for m in received_mail(rehearsal.spec) if m["Subject"] == subject]
        if mails:
            break
        time.sleep(0.2)
    assert len(mails) == 1
    assert f"ops@{DOMAIN}" in mails[0]["X-Rcpt-Args"]
    # smtp-sink writes the client address, "ipv6:"-prefixed for IPv6 (the client prefers the MX host's AAAA)
    assert mails[0]["X-Client-Addr"] in ("198.51.100.10", "ipv6:2001:db8:77::10")
    assert mails[0].get_content().strip() == "A rehearsal alert."


def test_mail_through_the_tls_relay_reaches_sink(rehearsal: Rehearsal) -> None:
    """A relay on port 465 takes TLS from the first byte, with a certificate the site CA signed for its name, and
    keeps the message as the plain sink does; a client that does not trust the site CA is refused."""
    subject = f"relayed alert {secrets.token_hex(4)}"
    sent = rehearsal.probe("smtps", f"mail.{DOMAIN}", "/srv/site-ca.crt", f"alertmanager@{DOMAIN}", f"ops@{DOMAIN}",
                           subject)
    assert sent == {"sent": True}, sent
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
            mails := [m for m in received_mail(rehearsal.spec) if m["Subject"] == subject]):
        time.sleep(0.2)
    assert len(mails) == 1 and f"ops@{DOMAIN}" in mails[0]["X-Rcpt-Args"]
    untrusted = rehearsal.probe("smtps", f"mail.{DOMAIN}", "", f"alertmanager@{DOMAIN}", f"ops@{DOMAIN}", subject)
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.get("error", ""), untrusted


def test_webhook_reaches_sink(rehearsal: Rehearsal) -> None:
    body = json.dumps({"receiver": "site", "status": "firing", "id": secrets.token_hex(4)})
    assert rehearsal.probe("post", f"http://alerts.{DOMAIN}/api/alerts", body) == {"status": 200}
    assert body.encode() in received_webhooks(rehearsal.spec)
    assert rehearsal.probe("get", f"http://alerts.{DOMAIN}/")["status"] == 403  # a sink serves nothing


def test_start_again_is_a_no_op(rehearsal: Rehearsal) -> None:
    """Starting the same spec again restarts nothing and rewrites nothing."""
    inspect = ["inspect", "--format", "{{.Id}} {{.State.StartedAt}}", SERVICES]
    before = rehearsal.podman(*inspect)
    files = {p: p.stat().st_mtime_ns for p in rehearsal.spec.workdir.rglob("*") if p.is_file()}
    started = time.monotonic()
    assert start_stand_ins(rehearsal.podman, rehearsal.spec) is False
    again_s = time.monotonic() - started
    assert rehearsal.podman(*inspect) == before
    assert {p: p.stat().st_mtime_ns for p in files} == files
    print(f"\nstand-ins: first start {rehearsal.start_s:.1f} s, second start (no-op) {again_s:.2f} s")


def test_changed_spec_restarts(rehearsal: Rehearsal) -> None:
    """A changed spec (one more name) replaces the container, and the new name resolves."""
    before = rehearsal.podman("inspect", "--format", "{{.Id}}", SERVICES)
    spec = rehearsal.spec
    changed = dataclasses.replace(spec, dns_records={**spec.dns_records, f"registry.{DOMAIN}": (WEB[0],)})
    assert start_stand_ins(rehearsal.podman, changed) is True
    assert rehearsal.podman("inspect", "--format", "{{.Id}}", SERVICES) != before
    assert rehearsal.probe("dns", DNS[1], f"registry.{DOMAIN}", "A") == {"rcode": 0, "answers": [WEB[0]]}
