"""Errors a tired operator can act on: the file, the key path, what was found, what is allowed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

REDACTED = "<redacted>"
# Query (or fragment) parameters of a URL that carry a credential. A name is compared lower-case with '-', '_'
# and '.' removed, so X-Amz-Signature, x_amz_signature and xamzsignature are one name.
SECRET_PARAMETERS = frozenset({
    "password", "passwd", "pwd", "pass", "passphrase", "token", "secret", "key", "apikey", "accesskey",
    "accesskeyid", "awsaccesskeyid", "secretkey", "secretaccesskey", "privatekey", "sig", "signature", "credential",
    "credentials", "auth", "authorization",
})
SECRET_PARAMETER_SUFFIXES = ("password", "passwd", "token", "secret", "apikey", "accesskey", "secretkey",
                             "signature", "credential", "credentials")
# Whole families of signed-URL parameters: AWS SigV4 presigned URLs (X-Amz-*) and Google Cloud Storage signed URLs
# (X-Goog-*); an Azure SAS signs with sig, above.
SECRET_PARAMETER_PREFIXES = ("xamz", "xgoog")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")
_ANOTHER_URL = re.compile(r"\s[A-Za-z][A-Za-z0-9+.-]*://")
# A scheme-less host with credentials, such as user:pass@registry.gov.example (an e-mail address has no ':'); the
# password runs to the last '@' of the word, as it would in a URL.
_BARE_USERINFO = re.compile(r"(?<![^\s'\"(\[,])[^\s'\"(\[,/@:]+:(?!//)[^\s'\"]*@(?=[^\s@])")
_PORT = re.compile(r"^\d*$")


def _is_secret_parameter(name: str) -> bool:
    plain = re.sub(r"[-_.]", "", unquote(name)).lower()
    return (plain in SECRET_PARAMETERS or plain.endswith(SECRET_PARAMETER_SUFFIXES)
            or plain.startswith(SECRET_PARAMETER_PREFIXES))


def url_secrets(url: str, *, ends: str = "") -> list[tuple[str, int, int]]:
    """The parts of one URL that carry a credential: (what, start, end) with the offsets of the secret text.

    `what` is "userinfo" (user:password@, or a lone token@, before the host) or the name of a query/fragment
    parameter. An '@' after
    a host whose "port" is not a number (https://user:pa/ss@host: a password with an unencoded '/', '?' or '#')
    is treated as userinfo too, so a malformed URL never prints its password. A parameter's value also ends at
    any character of `ends` (quotes, when the URL is quoted inside a message)."""
    match = _SCHEME.match(url)
    if not match:
        return []
    start = match.end()
    rest = url[start:]
    found: list[tuple[str, int, int]] = []
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in authority:
        found.append(("userinfo", start, start + authority.rfind("@")))
    elif "@" in rest and ":" in authority and not authority.endswith("]") and not _PORT.match(
            authority.rpartition(":")[2]):
        found.append(("userinfo", start, start + rest.rfind("@")))
    after = found[0][2] + 1 if found else start  # parameters are looked for after the host
    tail = url[after:]
    cut = re.search(r"[?#]", tail)
    if cut:
        for param in re.finditer(rf"([^?#&;=]+)=([^&;#{re.escape(ends)}]*)", tail[cut.start():]):
            if param.group(2) and _is_secret_parameter(param.group(1)):
                offset = after + cut.start()
                found.append((unquote(param.group(1)), offset + param.start(2), offset + param.end(2)))
    return found


def _redact_url(url: str, ends: str = "") -> str:
    for _what, start, end in sorted(url_secrets(url, ends=ends), key=lambda s: s[1], reverse=True):
        # Redacted already, or cut off by short(): nothing is left to hide (redacting twice changes nothing).
        if not url.startswith((REDACTED, "..."), start):
            url = url[:start] + REDACTED + url[end:]
    return url


def redact(text: str) -> str:
    """`text` with every credential in it replaced by <redacted>: the userinfo of URLs (user:password@), their
    query or fragment parameters that carry secrets (password, token, key, signature, X-Amz-*, ...), and
    user:password@ before a scheme-less host. Everything sovkit prints of a value goes through here."""
    if not isinstance(text, str) or ("@" not in text and "=" not in text):
        return text
    body = text.lstrip()
    if _SCHEME.match(body) and not _ANOTHER_URL.search(body):
        # A value that is one URL: the whole of it, as a password may hold a space.
        return text[: len(text) - len(body)] + _redact_url(body)
    return _BARE_USERINFO.sub(REDACTED + "@", _URL.sub(lambda m: _redact_url(m.group(0), "'\""), text))


@dataclass(frozen=True)
class Problem:
    """One mistake in a stack file. Its texts are redacted: a credential in a value is never printed back."""

    key_path: str  # e.g. "sovereign-ai:models.qwen7b.tensorParallel", as `pulumi config get --path` spells it
    found: str  # the value found, rendered short
    allowed: str  # what is allowed instead
    fix: str = ""  # how to fix it, when there is more to say than "allowed"
    line: int | None = None  # 1-based line in the file, when known

    def __post_init__(self) -> None:
        for name in ("key_path", "found", "allowed", "fix"):
            object.__setattr__(self, name, redact(getattr(self, name)))

    def render(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line else file
        lines = [f"{where}: {self.key_path}", f"  found:   {self.found}", f"  allowed: {self.allowed}"]
        if self.fix:
            lines.append(f"  fix:     {self.fix}")
        return "\n".join(lines)


@dataclass
class StackError(Exception):
    """A stack file that cannot be used; nothing has been touched."""

    file: str
    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"{self.file}: {count} problem{'s' if count != 1 else ''}; nothing was changed"
        return "\n".join([head, *(p.render(self.file) for p in self.problems)])


def short(value: object, limit: int = 80) -> str:
    """Render a found value briefly and unambiguously (strings quoted, long values cut), its secrets redacted
    before it is cut (a cut URL could no longer be recognised)."""
    text = repr(redact(value)) if isinstance(value, str) else redact(str(value))
    if isinstance(value, bool):
        text = str(value).lower()  # as YAML writes it
    if value is None:
        text = "nothing (the key is missing or empty)"
    if len(text) <= limit:
        return text
    cut = text[: limit - 3]
    partial = cut.rfind("<")
    if partial != -1 and REDACTED.startswith(cut[partial:]):
        cut = cut[:partial]  # never half a <redacted>
    return cut + "..."
