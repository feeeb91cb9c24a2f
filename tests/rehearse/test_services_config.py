"""The stand-ins' config files and checks, without hosts: what each daemon is told, and specs refused up front."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sovkit.hosts import HostsError
from sovkit.hosts.netlab import NetLab
from sovkit.rehearse.services import HttpSite, SmtpSink, StandIns, dns_zones, render, start_stand_ins

LAB = NetLab("cfg-test", ["198.51.100.0/24", "2001:db8:77::/48"])


def spec(tmp_path: Path, **changes: object) -> StandIns:
    (tmp_path / "mirror").mkdir(exist_ok=True)
    base = StandIns(
        name="cfg-test-services", lab=LAB, workdir=tmp_path / "work",
        addresses=("198.51.100.53/24", "2001:db8:77::53/64", "198.51.100.80/24", "198.51.100.123/24",
                   "2001:db8:77::123/64", "198.51.100.25/24"),
        dns_listen=("198.51.100.53", "2001:db8:77::53"),
        dns_records={"mirror.mh.gov.example": ("198.51.100.80",), "mail.mh.gov.example": ("198.51.100.25",),
                     "ntp.time.gov.example": ("198.51.100.123", "2001:db8:77::123")},
        dns_mx={"mh.gov.example": "mail.mh.gov.example"},
        ntp_listen=("198.51.100.123", "2001:db8:77::123"),
        http_sites=(HttpSite("mirror.mh.gov.example", "198.51.100.80", 80, False, roots={"/": tmp_path / "mirror"}),
                    HttpSite("alerts.mh.gov.example", "198.51.100.80", 80, False, sink=True)),
        smtp_sinks=(SmtpSink("198.51.100.25"),
                    SmtpSink("198.51.100.25", 465, True, tmp_path / "c.pem", tmp_path / "k.pem")),
    )
    return dataclasses.replace(base, **changes)


def test_dnsmasq_answers_only_the_site(tmp_path: Path) -> None:
    conf = render(spec(tmp_path))["etc/dnsmasq.conf"].splitlines()
    assert {"no-resolv", "no-hosts", "bind-interfaces"} <= set(conf)
    assert not [line for line in conf if line.startswith("server=")]  # nothing upstream
    assert "listen-address=2001:db8:77::53" in conf
    assert "host-record=ntp.time.gov.example,198.51.100.123,2001:db8:77::123" in conf
    assert "mx-host=mh.gov.example,mail.mh.gov.example,10" in conf
    assert dns_zones(spec(tmp_path)) == ["mh.gov.example", "time.gov.example"]
    assert "local=/mh.gov.example/" in conf and "local=/time.gov.example/" in conf


def test_one_chronyd_per_address_never_setting_the_clock(tmp_path: Path) -> None:
    files = render(spec(tmp_path))
    assert "bindaddress 2001:db8:77::123\n" in files["etc/chrony-1.conf"]
    assert "local stratum 10\n" in files["etc/chrony-1.conf"]
    assert "ExecStart=/usr/sbin/chronyd -6 -d -x -f /etc/sovkit/chrony-1.conf\n" in files[
        "systemd/sovkit-ntp-1.service"]
    assert "ExecStart=/usr/sbin/chronyd -4 -d -x " in files["systemd/sovkit-ntp-0.service"]


def test_nginx_sites_and_sink(tmp_path: Path) -> None:
    conf = render(spec(tmp_path))["etc/nginx.conf"]
    assert "listen 198.51.100.80:80;\n    server_name mirror.mh.gov.example;" in conf
    assert "root /srv/sovkit/www/0-0;" in conf
    assert "client_body_in_file_only on;" in conf and "limit_except POST { deny all; }" in conf


def test_smtp_sink_unit_escapes_strftime(tmp_path: Path) -> None:
    unit = render(spec(tmp_path))["systemd/sovkit-smtp-0.service"]
    assert "-d /var/spool/sovkit/mail/%%Y%%m%%d-%%H%%M%%S-0. 198.51.100.25:25 64" in unit


def test_tls_relay_is_nginx_stream_in_front_of_its_own_sink(tmp_path: Path) -> None:
    files = render(spec(tmp_path))
    assert "127.0.0.1:2526 64" in files["systemd/sovkit-smtp-1.service"]  # the second sink, behind TLS
    conf = files["etc/nginx-smtp-tls.conf"]
    assert "listen 198.51.100.25:465 ssl;" in conf and "proxy_pass 127.0.0.1:2526;" in conf
    assert "198.51.100.25:25" not in conf  # the plain sink is not behind TLS
    assert ("tcp", "198.51.100.25", 465) in spec(tmp_path).sockets()


def test_target_wants_every_unit(tmp_path: Path) -> None:
    s = spec(tmp_path)
    target = render(s)["systemd/sovkit-stand-ins.target"]
    assert [line.removeprefix("Wants=") for line in target.splitlines() if line.startswith("Wants=")] == s.units()
    assert ("udp", "2001:db8:77::123", 123) in s.sockets() and ("tcp", "198.51.100.80", 80) in s.sockets()


@pytest.mark.parametrize(("changes", "message"), [
    ({"ntp_listen": ("198.51.100.99",)}, "listen addresses 198.51.100.99 are not among"),
    ({"dns_records": {"bad name.example": ("198.51.100.80",)}}, "'bad name.example' is not a DNS name"),
    ({"dns_records": {"x.example": ("mirror",)}}, "record x.example: 'mirror' is not an IP address"),
    ({"http_sites": (HttpSite("m.example", "198.51.100.80", 443, True),)}, "https site m.example needs cert"),
    ({"smtp_sinks": (SmtpSink("198.51.100.25", 465, True),)}, "TLS SMTP sink 198.51.100.25:465 needs cert"),
])
def test_bad_spec_refused_before_anything(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(HostsError, match=message):
        start_stand_ins(None, spec(tmp_path, **changes))  # type: ignore[arg-type]  # never reaches podman
    assert not (tmp_path / "work").exists()
