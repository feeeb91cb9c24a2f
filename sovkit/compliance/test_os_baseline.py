"""os_baseline: CIS Debian 12 Level 1 server controls (SOV-OS-*)."""

from __future__ import annotations

import fnmatch

import pytest

from .conftest import not_applicable


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
@pytest.mark.parametrize(("key", "value"), [
    ("disableforwarding", "yes"), ("allowtcpforwarding", "no"), ("allowagentforwarding", "no"),
    ("x11forwarding", "no"), ("gatewayports", "no"), ("permittunnel", "no"), ("compression", "no"),
    ("tcpkeepalive", "no"),
])
def test_sshd_forwards_nothing(sshd, evidence, key, value):
    """A login opens no tunnel, agent or display into the site, and sessions are kept alive only inside the
    encrypted channel (CIS 5.1.8)."""
    evidence(f"sshd -T: {key} {sshd.get(key)}")
    assert sshd.get(key) == value


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
    ("SHA_CRYPT_MIN_ROUNDS", "os_baseline_sha_crypt_rounds"), ("SHA_CRYPT_MAX_ROUNDS", "os_baseline_sha_crypt_rounds"),
])
def test_login_defs(host, site, evidence, key, var):
    """Passwords age out, any SHA-512 hash is slow to guess and new files are private by default (CIS 5.4.1.1,
    5.4.1.3)."""
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


def _settings(text: str) -> dict[str, str]:
    """key = value lines (a bare word is a flag: value "")."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() and not key.lstrip().startswith("#"):
            out[key.strip()] = value.strip()
    return out


@pytest.mark.control("SOV-OS-004")
@pytest.mark.parametrize(("key", "var"), [
    ("difok", "os_baseline_pwquality_difok"), ("minlen", "os_baseline_pwquality_minlen"),
    ("minclass", "os_baseline_pwquality_minclass"), ("maxsequence", "os_baseline_pwquality_maxsequence"),
])
def test_pwquality_settings(host, site, evidence, key, var):
    """A new password is long, varied, no long run like abcd, and differs from the old one in enough characters
    (CIS 5.3.3.2.1, 5.3.3.2.2, 5.3.3.2.3, 5.3.3.2.5)."""
    settings = _settings(host.file("/etc/security/pwquality.conf").content_string)
    evidence(f"pwquality.conf {key} = {settings.get(key)}")
    assert settings.get(key) == str(site[var])
    assert key != "maxsequence" or settings[key] != "0"  # 0 would switch the check off


def _pam_lines(host, path: str) -> list[list[str]]:
    return [line.split() for line in host.file(path).content_string.splitlines()
            if line.split() and not line.lstrip().startswith("#")]


@pytest.mark.control("SOV-OS-004")
def test_password_history(host, site, evidence):
    """A password change may not reuse one of the last passwords, root's included: pam_pwhistory takes the new
    password pwquality accepted (use_authtok) before pam_unix stores it (CIS 5.3.2.4, 5.3.3.3.1-5.3.3.3.3)."""
    lines = _pam_lines(host, "/etc/pam.d/common-password")
    modules = [next((w for w in line if w.endswith(".so")), "") for line in lines]
    evidence("; ".join(" ".join(line) for line in lines))
    assert "pam_pwhistory.so" in modules, "pam_pwhistory is not in common-password"
    history = lines[modules.index("pam_pwhistory.so")]
    assert f"remember={site['os_baseline_pwhistory_remember']}" in history
    assert "enforce_for_root" in history and "use_authtok" in history
    assert modules.index("pam_pwquality.so") < modules.index("pam_pwhistory.so") < modules.index("pam_unix.so")


@pytest.mark.control("SOV-OS-004")
@pytest.mark.parametrize("path", ["/etc/pam.d/common-auth", "/etc/pam.d/common-account", "/etc/pam.d/common-password",
                                  "/etc/pam.d/common-session"])
def test_no_empty_passwords(host, evidence, path):
    """pam_unix accepts no empty password (no nullok), so an account without a password cannot log in at the console
    or through sudo (CIS 5.3.3.4.1)."""
    unix = [" ".join(line) for line in _pam_lines(host, path) if any(w == "pam_unix.so" for w in line)]
    evidence(unix)
    assert not [line for line in unix if "nullok" in line.split()]


@pytest.mark.control("SOV-OS-004")
def test_inactive_accounts_lock(host, site, evidence):
    """A new account locks some days after its password expires (useradd -D: INACTIVE; CIS 5.4.1.5)."""
    defaults = dict(line.split("=", 1) for line in host.check_output("useradd -D").splitlines() if "=" in line)
    evidence(f"useradd -D: INACTIVE={defaults.get('INACTIVE')}")
    assert defaults.get("INACTIVE") == str(site["os_baseline_inactive_days"])


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


@pytest.mark.control("SOV-OS-005")
def test_the_kits_sysctls_are_what_boot_applies(boot_sysctls, site, in_container, evidence):
    """At boot every sysctl file is applied in the order of its name, so a file that sorts after the kit's (Debian's
    99-protect-links.conf, say) silently resets what the kit set. The boot-time value of each of the kit's keys,
    read from the files as systemd-sysctl reads them, is the kit's (CIS 1.5.x, 3.3.x)."""
    boot = boot_sysctls.values
    # a container gets no kernel sysctl file (they are not namespaced): there, the network ones
    wanted = {**site["os_baseline_sysctl_net"], **({} if in_container else site["os_baseline_sysctl_kernel"])}
    wrong = {k: boot.get(k) for k, v in wanted.items() if boot.get(k, ("",))[0] != str(v)}
    evidence(f"{boot_sysctls.files} files; not the kit's at boot: {wrong}")
    assert wrong == {}


ALWAYS_THERE = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/ssh/sshd_config")
# there only where cron is installed; a kernel's symbol map only where a kernel is (not in a container)
MAYBE_THERE = ("/etc/crontab", "/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly",
               "/etc/cron.d", "/boot/System.map-*")


@pytest.fixture(scope="module")
def file_modes(host) -> dict[str, tuple[int, str, str]]:
    """Mode, owner and group of every path SOV-OS-006 checks (patterns expanded), from one stat; a missing path is
    left out."""
    out = host.run(f"stat -c '%n %a %U %G' {' '.join((*ALWAYS_THERE, *MAYBE_THERE))}").stdout
    rows = (line.split() for line in out.splitlines())
    return {path: (int(mode, 8), user, group) for path, mode, user, group in rows}


@pytest.mark.control("SOV-OS-006")
@pytest.mark.parametrize("pattern", [*ALWAYS_THERE, *MAYBE_THERE])
def test_sensitive_file_permissions(file_modes, site, evidence, pattern):
    """Password hashes, sshd settings, root's scheduled jobs and the kernel's symbol maps readable only by those who
    need them (CIS 7.1.x, 2.4.1.2-2.4.1.7)."""
    want = next(f for f in site["os_baseline_file_modes"] if f["path"] == pattern)
    found = {path: found for path, found in file_modes.items() if fnmatch.fnmatchcase(path, pattern)}
    if not found:  # nothing there to protect
        evidence(f"{pattern}: absent")
        assert pattern not in ALWAYS_THERE, f"{pattern} is missing"
        return
    evidence("; ".join(f"{path}: {oct(mode)} {user}:{group}" for path, (mode, user, group) in found.items()))
    expected = (int(want["mode"], 8), want["owner"], want["group"])
    assert {path: modes for path, modes in found.items() if modes != expected} == {}


@pytest.mark.control("SOV-OS-007")
def test_unused_modules_disabled(host, site, evidence):
    """Filesystems and protocols the platform never uses cannot be loaded (CIS 1.1.1.x, 3.2.x)."""
    config = host.check_output("modprobe --showconfig 2>/dev/null | grep -E '^(install|blacklist) '")
    missing = [m for m in site["os_baseline_disabled_modules"]
               if f"install {m} /bin/true" not in config or f"blacklist {m}" not in config]
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


@pytest.mark.control("SOV-OS-008")
@pytest.mark.parametrize("unit", ["rsync.service"])
def test_client_package_daemons_masked(host, site, evidence, unit):
    """The daemon of a package kept for its client (rsync) cannot start, whether or not the package is installed
    (CIS 2.1.13)."""
    assert unit in site["os_baseline_masked_services"]
    state = host.run(f"systemctl is-enabled {unit}").stdout.strip()
    evidence(f"{unit}: {state}")
    assert state == "masked"


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


@pytest.mark.control("SOV-OS-010")
def test_su_for_root_only(host, site, evidence):
    """su asks pam_wheel for membership of a group that has no members, after pam_rootok: root still uses su, nobody
    else can, and administrators reach root through sudo, which logs every command (CIS 5.2.7)."""
    group = site["os_baseline_su_group"]
    auth = [line for line in _pam_lines(host, "/etc/pam.d/su") if line[0] in ("auth", "@include")]
    wheel = [i for i, line in enumerate(auth) if "pam_wheel.so" in line and line[1] == "required"]
    rootok = [i for i, line in enumerate(auth) if "pam_rootok.so" in line]
    common = [i for i, line in enumerate(auth) if line == ["@include", "common-auth"]]
    entry = host.run(f"getent group {group}").stdout.strip()
    evidence(f"/etc/pam.d/su auth: {[' '.join(line) for line in auth]}; group: {entry!r}")
    assert wheel, "pam_wheel is not required in /etc/pam.d/su"
    assert {"use_uid", f"group={group}"} <= set(auth[wheel[0]])
    assert rootok and rootok[0] < wheel[0] and (not common or wheel[0] < common[0])
    assert entry and entry.split(":")[3] == "", f"{group} must exist and have no members"


@pytest.fixture(scope="module")
def os_names(host) -> set[str]:
    """What names the OS (/etc/os-release ID and NAME), lower-cased: a banner must say none of it."""
    release = dict(line.split("=", 1) for line in host.file("/etc/os-release").content_string.splitlines()
                   if "=" in line)
    return {release[k].strip('"').lower() for k in ("ID", "NAME") if k in release} | {"linux", "gnu"}


@pytest.mark.control("SOV-OS-013")
@pytest.mark.parametrize("path", ["/etc/issue", "/etc/motd"])
def test_banner_names_no_os(host, site, os_names, evidence, path):
    """The console (/etc/issue) and every login (/etc/motd) show the site's warning banner, which names no OS and
    holds none of getty's escapes that would print it (\\m \\r \\s \\v); only root may change it (CIS 1.6.1, 1.6.2,
    1.6.4, 1.6.5)."""
    f = host.file(path)
    text = f.content_string
    evidence(f"{path}: {oct(f.mode)} {f.user}:{f.group}: {text.strip()!r}")
    assert text.strip() == site["os_baseline_banner"].strip()
    assert not [e for e in ("\\m", "\\r", "\\s", "\\v") if e in text]
    assert not [name for name in os_names if name in text.lower()]
    assert (f.mode, f.user, f.group) == (0o644, "root", "root")


@pytest.mark.control("SOV-OS-013")
def test_motd_scripts_that_print_the_os_are_off(host, site, evidence):
    """Debian's dynamic motd script that prints uname (the kernel and distribution) does not run at login (CIS
    1.6.1)."""
    found = {p: host.file(p) for p in site["os_baseline_motd_scripts_off"] if host.file(p).exists}
    evidence({p: oct(f.mode) for p, f in found.items()})
    assert [p for p, f in found.items() if f.mode & 0o111] == []


def _is_weak_umask(value: str) -> bool:
    """An octal umask that leaves group write or anything for others (less than 027)."""
    return value.isdigit() and int(value, 8) & 0o027 != 0o027


@pytest.mark.control("SOV-OS-013")
def test_login_shell_timeout_and_umask(host, site, evidence):
    """A login shell, root's included, starts with the kit's umask and a read-only, exported TMOUT, so an idle
    session ends and new files are private (CIS 5.4.2.6, 5.4.3.2, 5.4.3.3). Read from a real login shell, after
    every profile file and root's own dot files."""
    out = host.run("bash -lc 'umask; echo \"TMOUT=${TMOUT-}\"; readonly -p | grep -c TMOUT=; "
                   "env | grep -c ^TMOUT=' </dev/null 2>/dev/null").stdout
    umask, tmout, readonly, exported = [*out.splitlines(), "", "", "", ""][:4]
    evidence(f"login shell: umask {umask}, {tmout}, read-only {readonly}, exported {exported}")
    assert int(umask, 8) == int(site["os_baseline_shell_umask"], 8)
    assert tmout == f"TMOUT={site['os_baseline_shell_timeout']}"
    assert readonly.strip() == "1" and exported.strip() == "1"


@pytest.mark.control("SOV-OS-013")
def test_no_weaker_umask_in_profiles(host, evidence):
    """No shell start-up file, system-wide or root's, sets a umask weaker than 027 (CIS 5.4.2.6, 5.4.3.3)."""
    files = ("/etc/profile /etc/profile.d/*.sh /etc/bash.bashrc /root/.profile /root/.bashrc /root/.bash_profile "
             "/root/.bash_login")
    out = host.run(f"grep -HE '^[[:space:]]*umask[[:space:]]+[0-7]+' {files} 2>/dev/null").stdout
    weak = [line for line in out.splitlines() if _is_weak_umask(line.partition("umask")[2].split()[0])]
    evidence(out.strip() or "no umask line")
    assert weak == []


@pytest.mark.control("SOV-OS-011")
def test_no_core_dumps(host, evidence):
    """No process writes its memory to disk: login sessions have a hard core limit of 0, services get 0 from
    systemd's default, and systemd-coredump, if installed, keeps nothing (CIS 1.5.3). fs.suid_dumpable=0 is
    checked with the kernel sysctls."""
    limits = host.check_output("cat /etc/security/limits.conf /etc/security/limits.d/*.conf 2>/dev/null; true")
    hard = [f[3] for f in (line.split() for line in limits.splitlines() if not line.lstrip().startswith("#"))
            if len(f) >= 4 and f[0] == "*" and f[1] in ("hard", "-") and f[2] == "core"]
    manager = host.check_output("systemctl show --property=DefaultLimitCORE --value")
    coredump = host.check_output("systemd-analyze cat-config systemd/coredump.conf 2>/dev/null; true")
    settings = dict(line.split("=", 1) for line in coredump.splitlines() if "=" in line and line[0] not in "#;")
    evidence(f"pam_limits * hard core: {hard}; systemd DefaultLimitCORE={manager}; coredump.conf: {settings}")
    assert hard and hard[-1] == "0"  # the last one read wins
    assert manager.strip() == "0"
    assert (settings.get("Storage"), settings.get("ProcessSizeMax")) == ("none", "0")


# The mount points CIS 1.1.2.x names; what each must carry is the rendered os_baseline_mount_options.
MOUNT_POINTS = ("/tmp", "/dev/shm", "/home", "/var", "/var/tmp", "/var/log", "/var/log/audit")


@pytest.mark.control("SOV-OS-012")
@pytest.mark.live_only("a container's mounts are its container engine's")
@pytest.mark.parametrize("path", MOUNT_POINTS)
def test_mount_options(host, site, evidence, path):
    """Temporary and data file systems carry nodev, nosuid and noexec where CIS asks, in force and in fstab (so a
    reboot keeps them): /tmp and /dev/shm always; the others wherever they are separate file systems (CIS 1.1.2.x)."""
    want = next((m for m in site["os_baseline_mount_options"] if m["path"] == path), None)
    if want is None:
        not_applicable(f"{path} is not in this host's os_baseline_mount_options")
    live = host.run(f"findmnt --kernel --noheadings --output OPTIONS --mountpoint {path}").stdout.split()
    if not live:
        assert "tmpfs" not in want, f"{path} is not mounted: the kit mounts it as a tmpfs"
        evidence(f"{path}: not a separate file system")
        not_applicable(f"{path} is not a separate file system here: its partition is the operator's installer's "
                    "(CIS Level 2); nothing to mount with options")
    fstab = host.run(f"findmnt --fstab --noheadings --output OPTIONS --mountpoint {path}").stdout.split()
    in_force, at_boot = set(live[-1].split(",")), set(fstab[-1].split(",")) if fstab else set()
    evidence(f"{path}: mounted {live[-1]}; fstab {fstab[-1] if fstab else '(none)'}")
    assert set(want["options"]) - in_force == set(), f"{path} lacks {set(want['options']) - in_force} now"
    assert set(want["options"]) - at_boot == set(), f"{path}'s fstab line lacks {set(want['options']) - at_boot}"
