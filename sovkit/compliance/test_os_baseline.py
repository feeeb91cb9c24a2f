"""os_baseline: CIS Debian 12 Level 1 server controls (SOV-OS-*)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def sshd(host) -> dict[str, str]:
    """Effective sshd configuration (sshd -T): what sshd really does, whatever file set it."""
    out = host.check_output("sshd -T 2>/dev/null")
    return {k: v for k, _, v in (line.partition(" ") for line in out.splitlines())}


@pytest.fixture(scope="module")
def sysctls(host) -> dict[str, str]:
    out = host.check_output("sysctl -a 2>/dev/null")
    return {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in out.splitlines())}


@pytest.mark.control("SOV-OS-001")
@pytest.mark.parametrize(("key", "value"), [
    ("permitrootlogin", "no"), ("passwordauthentication", "no"), ("kbdinteractiveauthentication", "no"),
    ("pubkeyauthentication", "yes"), ("permitemptypasswords", "no"), ("hostbasedauthentication", "no"),
    ("ignorerhosts", "yes"), ("permituserenvironment", "no"),
])
def test_sshd_key_only(sshd, evidence, key, value):
    """Key-only SSH without root login: passwords cannot be guessed and root is never a direct target
    (CIS 5.1.12, 5.1.17, 5.1.19, 5.1.20; evidences security safeguards)."""
    evidence(f"sshd -T: {key} {sshd.get(key)}")
    assert sshd.get(key) == value


@pytest.mark.control("SOV-OS-002")
@pytest.mark.parametrize(("key", "var"), [
    ("ciphers", "os_baseline_ssh_ciphers"), ("macs", "os_baseline_ssh_macs"), ("kexalgorithms", "os_baseline_ssh_kex"),
])
def test_sshd_crypto(sshd, site, evidence, key, var):
    """Only the modern algorithms the kit allows: no CBC, no SHA-1 MACs, no weak DH groups
    (CIS 5.1.6, 5.1.12, 5.1.15)."""
    evidence(f"sshd -T: {key} {sshd.get(key)}")
    assert sshd.get(key, "").split(",") == list(site[var])


@pytest.mark.control("SOV-OS-003")
@pytest.mark.parametrize(("key", "var"), [
    ("maxauthtries", "os_baseline_ssh_max_auth_tries"), ("logingracetime", "os_baseline_ssh_login_grace_time"),
    ("clientaliveinterval", "os_baseline_ssh_client_alive_interval"),
    ("clientalivecountmax", "os_baseline_ssh_client_alive_count_max"), ("maxsessions", "os_baseline_ssh_max_sessions"),
    ("port", "os_baseline_ssh_port"),
])
def test_sshd_limits(sshd, site, evidence, key, var):
    """Brute force and idle sessions are cut short, on the site's own SSH port (CIS 5.1.7, 5.1.14, 5.1.16,
    5.1.18)."""
    evidence(f"sshd -T: {key} {sshd.get(key)}")
    assert sshd.get(key) == str(site[var])


@pytest.mark.control("SOV-OS-003")
def test_sshd_allow_groups_and_banner(sshd, host, site, evidence):
    """Only members of the allowed groups may log in, after the legal banner (CIS 5.1.4, 5.1.5)."""
    evidence(f"allowgroups={sshd.get('allowgroups')} banner={sshd.get('banner')}")
    assert sshd.get("allowgroups", "").split() == list(site["os_baseline_ssh_allow_groups"])
    assert sshd.get("banner") == "/etc/issue.net"
    assert host.file("/etc/issue.net").content_string.strip() == site["os_baseline_banner"].strip()


@pytest.mark.control("SOV-OS-004")
@pytest.mark.parametrize(("key", "var"), [
    ("PASS_MAX_DAYS", "os_baseline_pass_max_days"), ("PASS_MIN_DAYS", "os_baseline_pass_min_days"),
    ("PASS_WARN_AGE", "os_baseline_pass_warn_age"), ("UMASK", "os_baseline_umask"),
])
def test_login_defs(host, site, evidence, key, var):
    """Passwords age out and new files are private by default (CIS 5.4.1.1, 5.4.1.3)."""
    lines = [ln.split() for ln in host.file("/etc/login.defs").content_string.splitlines()]
    values = [ln[1] for ln in lines if len(ln) >= 2 and ln[0] == key]
    evidence(f"/etc/login.defs {key} = {values}")
    assert values == [str(site[var])]


@pytest.mark.control("SOV-OS-004")
def test_password_quality_and_lockout(host, site, evidence):
    """Long, varied passwords, and an account locks after repeated failures (CIS 5.3.3.1.1, 5.3.3.2.2)."""
    pwq = host.file("/etc/security/pwquality.conf").content_string
    faillock = host.file("/etc/security/faillock.conf").content_string
    auth = host.file("/etc/pam.d/common-auth").content_string
    evidence(f"pwquality: {pwq.strip()!r}; faillock: {faillock.strip()!r}")
    assert f"minlen = {site['os_baseline_pwquality_minlen']}" in pwq
    assert f"deny = {site['os_baseline_faillock_deny']}" in faillock
    assert "pam_faillock.so preauth" in auth and "pam_faillock.so authfail" in auth
    assert "pam_pwquality.so" in host.file("/etc/pam.d/common-password").content_string


NET_SYSCTLS = [
    "net.ipv4.conf.all.send_redirects", "net.ipv4.conf.default.send_redirects",
    "net.ipv4.conf.all.accept_redirects", "net.ipv4.conf.default.accept_redirects",
    "net.ipv4.conf.all.secure_redirects", "net.ipv6.conf.all.accept_redirects",
    "net.ipv4.conf.all.accept_source_route", "net.ipv6.conf.all.accept_source_route",
    "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.all.log_martians",
    "net.ipv4.icmp_echo_ignore_broadcasts", "net.ipv4.icmp_ignore_bogus_error_responses",
    "net.ipv4.tcp_syncookies", "net.ipv6.conf.all.accept_ra",
]


@pytest.mark.control("SOV-OS-005")
@pytest.mark.parametrize("name", NET_SYSCTLS)
def test_network_sysctl(sysctls, site, evidence, name):
    """Redirects, source routing and spoofed sources are refused by the kernel (CIS 3.3.x)."""
    evidence(f"{name} = {sysctls.get(name)}")
    assert sysctls.get(name) == str(site["os_baseline_sysctl_net"][name])


@pytest.mark.control("SOV-OS-005")
@pytest.mark.parametrize("name", ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"])
def test_ip_forwarding_as_platform_needs(sysctls, forwarding, evidence, name):
    """IP forwarding is off, except on hosts that route for containers or Kubernetes, where turning it
    off would break their networking (CIS 3.3.1; os_baseline_ip_forwarding)."""
    evidence(f"{name} = {sysctls.get(name)} (forwarding expected: {forwarding})")
    assert sysctls.get(name) == ("1" if forwarding else "0")


@pytest.mark.control("SOV-OS-005")
@pytest.mark.live_only("kernel.* and fs.* sysctls are not namespaced")
@pytest.mark.parametrize("name", ["kernel.randomize_va_space", "kernel.yama.ptrace_scope", "fs.suid_dumpable",
                                  "kernel.dmesg_restrict", "fs.protected_symlinks", "fs.protected_hardlinks"])
def test_kernel_sysctl(sysctls, site, evidence, name):
    """Address-space randomisation on, ptrace and core dumps of setuid programs restricted (CIS 1.5.x)."""
    evidence(f"{name} = {sysctls.get(name)}")
    assert sysctls.get(name) == str(site["os_baseline_sysctl_kernel"][name])


@pytest.mark.control("SOV-OS-006")
@pytest.mark.parametrize("path", ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/ssh/sshd_config"])
def test_sensitive_file_permissions(host, site, evidence, path):
    """Password hashes and sshd settings readable only by those who need them (CIS 7.1.x)."""
    want = next(f for f in site["os_baseline_file_modes"] if f["path"] == path)
    f = host.file(path)
    evidence(f"{path}: {oct(f.mode)} {f.user}:{f.group}")
    assert (f.mode, f.user, f.group) == (int(want["mode"], 8), want["owner"], want["group"])


@pytest.mark.control("SOV-OS-007")
def test_unused_modules_disabled(host, site, evidence):
    """Filesystems and protocols the platform never uses cannot be loaded (CIS 1.1.1.x, 3.2.x)."""
    config = host.check_output("modprobe --showconfig 2>/dev/null | grep -E '^(install|blacklist) '")
    missing = [m for m in site["os_baseline_disabled_modules"]
               if f"install {m} /bin/false" not in config or f"blacklist {m}" not in config]
    evidence(f"not disabled: {missing}")
    assert missing == []


@pytest.mark.control("SOV-OS-007")
@pytest.mark.live_only("a container shares the machine's kernel and cannot load or unload modules")
def test_unused_modules_not_loaded(host, site, evidence):
    """None of the disabled modules is loaded now (CIS 1.1.1.x)."""
    loaded = {line.split()[0] for line in host.file("/proc/modules").content_string.splitlines() if line}
    evidence(f"loaded: {sorted(loaded & set(site['os_baseline_disabled_modules']))}")
    assert not loaded & set(site["os_baseline_disabled_modules"])


@pytest.mark.control("SOV-OS-008")
def test_unneeded_packages_absent(host, site, evidence):
    """No telnet, rsh, NIS, avahi, CUPS, FTP, SNMP or file servers: less to attack (CIS 2.1.x, 2.2.x)."""
    out = host.run("dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n' %s 2>/dev/null",
                   " ".join(site["os_baseline_absent_packages"])).stdout
    installed = [line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["ii"]]
    evidence(f"installed: {installed}")
    assert installed == []


def _uri(uri: str) -> str:
    """apt's spelling of a repository URI, for comparison: file:/x, no trailing slash."""
    return uri.replace("file:///", "file:/").rstrip("/")


@pytest.mark.control("SOV-OS-009")
def test_apt_sources_in_country_only(host, site, evidence):
    """Packages come only from the sources the site names (its in-country mirror and the vendor repositories
    mirrored in-country): nothing is fetched from abroad (CIS 1.2.1.x)."""
    allowed = {_uri(s["uris"]) for s in site["os_baseline_apt_sources"]}
    listed = host.check_output("apt-get indextargets --format '$(REPO_URI)' 2>/dev/null").split()
    uris = sorted({_uri(u) for u in listed})
    evidence(f"apt repositories: {uris}; the site's sources: {sorted(allowed)}")
    assert uris, "apt knows no repository"
    assert [u for u in uris if u not in allowed] == []


@pytest.mark.control("SOV-OS-009")
def test_unattended_security_upgrades(host, evidence):
    """Security fixes are installed without waiting for a person (CIS 1.2.2.1)."""
    periodic = host.file("/etc/apt/apt.conf.d/20auto-upgrades").content_string
    origins = host.file("/etc/apt/apt.conf.d/52sovkit-unattended-upgrades").content_string
    evidence(periodic + origins)
    assert 'APT::Periodic::Unattended-Upgrade "1";' in periodic
    assert "label=Debian-Security" in origins
    assert host.package("unattended-upgrades").is_installed


@pytest.mark.control("SOV-OS-010")
def test_sudo_logged(host, site, evidence):
    """Every sudo command is logged and runs in a pty (CIS 5.2.2, 5.2.3)."""
    out = host.check_output("sudo -l -U root 2>/dev/null; cat /etc/sudoers.d/50-sovkit")
    f = host.file("/etc/sudoers.d/50-sovkit")
    evidence(out[-500:])
    assert "use_pty" in f.content_string
    assert f'logfile="{site["os_baseline_sudo_logfile"]}"' in f.content_string
    assert f.mode == 0o440
