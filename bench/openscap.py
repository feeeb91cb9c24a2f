"""OpenSCAP with Debian's SCAP content (package ssg-debian), as the auditors run it, for bench_harden.py.

Debian 12's ssg-debian (0.1.65) ships content for Debian 10 and 11 only. The bench adapts the Debian 11 data
stream in one place, and only for the bench: its platform check (the OVAL object reading /etc/debian_version
with the pattern `^11.[0-9]+$`) is made to match 12, so the Debian 11 rules are evaluated on Debian 12 hosts
instead of all coming out "notapplicable". Nothing else in the content changes.

The scanner (openscap-scanner and what it needs) reaches a host the way the roles' packages do on an air-gapped
site: from a flat repository built on this machine, copied to the host and used for that one install.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from sovkit.hosts import build_apt_repo, default_cache_dir

CONTENT_PACKAGE = "ssg-debian"
DATASTREAM = "usr/share/xml/scap/ssg/content/ssg-debian11-ds.xml"
PLATFORM_PATTERN = "^11.[0-9]+$"
PROFILES = {"standard": "xccdf_org.ssgproject.content_profile_standard",
            "ANSSI average": "xccdf_org.ssgproject.content_profile_anssi_np_nt28_average"}
REPO_ON_HOST = "/var/tmp/sovkit-scanner-repo"
DATASTREAM_ON_HOST = "/var/tmp/ssg-debian12-bench-ds.xml"

# Rules of the Debian 11 content that ask a server the kit builds for the other of two choices CIS Debian 12 allows,
# or for what residency forbids: rule id -> why. The bench prints the pass rate over all the rules that apply (as
# OpenSCAP says) first, then without these, naming each.
NOT_FOR_THIS_SERVER = {
    **dict.fromkeys(("package_ntp_installed", "service_ntp_enabled"),
                    "time comes from chrony: CIS Debian 12 2.3.1.1 wants one time daemon, and ntp would be a second"),
    **dict.fromkeys(("package_rsyslog_installed", "service_rsyslog_enabled", "rsyslog_files_groupownership",
                     "rsyslog_files_ownership", "rsyslog_files_permissions", "package_syslogng_installed",
                     "service_syslogng_enabled"),
                    "journald is the one logging system (CIS Debian 12 6.1.1.4: only one in use)"),
    **dict.fromkeys(("package_cron_installed", "service_cron_enabled"),
                    "no cron: systemd timers schedule jobs, and CIS Debian 12 2.4 then wants cron removed"),
    **dict.fromkeys(("sshd_set_keepalive_0", "sshd_set_idle_timeout"),  # the second's OVAL extends the first
                    "ClientAliveCountMax 0 turns idle disconnection off in OpenSSH 8.2 and later (Debian 12 has 9.2); "
                    "CIS Debian 12 5.1.7 asks for more than 0 (ClientAliveInterval 300 itself meets the rule)"),
    "apt_sources_list_official": "packages come only from the in-country mirror (SOV-OS-009): Debian's servers are "
                                 "abroad",
    "sudo_remove_nopasswd": "the admin account has no password (key-only SSH, SOV-OS-001), so sudo cannot ask for one; "
                            "CIS Debian 12 5.2.4 is Level 2",
}

Run = Callable[[str], str]  # a shell command run as root on the host; its output
Put = Callable[[Path, str], None]  # a file or folder of this machine copied to a path on the host


def datastream(cache: Path | None = None) -> Path:
    """The Debian 11 data stream from Debian 12's ssg-debian, adapted to Debian 12 as the module says (cached)."""
    folder = (cache or default_cache_dir()) / "openscap"
    adapted = folder / "ssg-debian12-bench-ds.xml"
    if adapted.exists():
        return adapted
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", "-q", CONTENT_PACKAGE], cwd=tmp, check=True, capture_output=True,
                       timeout=600)
        deb = next(Path(tmp).glob(f"{CONTENT_PACKAGE}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp + "/x"], check=True, capture_output=True, timeout=300)
        text = (Path(tmp) / "x" / DATASTREAM).read_text()
    if text.count(PLATFORM_PATTERN) < 1:
        raise RuntimeError(f"{DATASTREAM} no longer holds the platform pattern {PLATFORM_PATTERN}: adapt the bench")
    adapted.write_text(text.replace(PLATFORM_PATTERN, "^12.[0-9]+$"))
    return adapted


def install_scanner(have: set[str], run: Run, put: Put) -> None:
    """openscap-scanner on the host, from a repository of it and of what it needs that the host lacks (`have`)."""
    repo = build_apt_repo(["openscap-scanner"], have, default_cache_dir())
    put(repo.path, REPO_ON_HOST)
    sources = f"{REPO_ON_HOST}.list"
    apt = f"-o Dir::Etc::sourcelist={sources} -o Dir::Etc::sourceparts=- -o Dir::State::Lists={REPO_ON_HOST}.lists"
    run(f"mkdir -p {REPO_ON_HOST}.lists/partial && echo 'deb [trusted=yes] file:{REPO_ON_HOST} ./' > {sources} && "
        f"apt-get {apt} update -qq && DEBIAN_FRONTEND=noninteractive apt-get {apt} install -y -qq "
        "--no-install-recommends openscap-scanner >/dev/null")


def scores(run: Run, put: Put) -> dict[str, dict[str, list[str]]]:
    """{profile: {result ("pass", "fail", "notapplicable", ...): [rule ids, without the content's prefix]}}."""
    put(datastream(), DATASTREAM_ON_HOST)
    out = {}
    for name, profile in PROFILES.items():
        text = run(f"oscap xccdf eval --profile {profile} {DATASTREAM_ON_HOST} 2>/dev/null; true")
        results: dict[str, list[str]] = {}
        rule = ""
        for key, value in re.findall(r"^(Rule|Result)\s+(\S+)", text, re.M):  # oscap writes "Rule\r\t<id>"
            if key == "Rule":
                rule = value.removeprefix("xccdf_org.ssgproject.content_rule_")
            else:
                results.setdefault(value, []).append(rule)
        out[name] = results
    return out
