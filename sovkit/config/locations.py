"""Where model weights may come from: the site's in-country store, compared exactly, and never a public hub."""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote, urlsplit

# Public model hubs, by the names and hosts operators write them with: weights come only from the in-country store.
PUBLIC_HUBS = {
    "Hugging Face": (("hf", "huggingface", "hf-hub"), ("huggingface.co", "hf.co", "hf-mirror.com")),
    "ModelScope": (("modelscope", "ms"), ("modelscope.cn", "modelscope.ai")),
    "Ollama": (("ollama",), ("ollama.com", "ollama.ai")),
    "Kaggle": (("kaggle",), ("kaggle.com",)),
}
# vLLM (and the Hugging Face libraries) read a bare org/model as a Hugging Face repository and download it.
BARE_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
DEFAULT_PORTS = {"https": 443, "http": 80}


def public_hub(location: str) -> str | None:
    """The public model hub a model location names (by scheme, host or a bare org/model id), or None."""
    text = location.strip()
    scheme = re.match(r"^([A-Za-z][\w+.-]*):", text)
    host = ""
    if "://" in text:
        host = (urlsplit(text).hostname or "").lower()
    elif not text.startswith(("/", ".")):
        host = text.split("/", 1)[0].lower()
    for hub, (schemes, hosts) in PUBLIC_HUBS.items():
        if scheme and scheme.group(1).lower() in schemes:
            return hub
        if any(host == h or host.endswith("." + h) for h in hosts):
            return hub
    if is_repo_id(text):
        return "Hugging Face"
    return None


def is_repo_id(location: str) -> bool:
    """A bare org/model, which vLLM (and the Hugging Face libraries) take for a Hugging Face repository."""
    return bool(BARE_REPO_ID.match(location)) and "." not in location.split("/", 1)[0]


def _location(value: str) -> tuple[str, str, int | None, str] | None:
    """(scheme, host, port, normalised path) of a store or model location; a path is ("path", "", None, path)."""
    if value.startswith("/"):
        return "path", "", None, clean_path(value)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme == "file":
        return "path", "", None, clean_path(unquote(parts.path) or "/")
    if not scheme or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS.get(scheme), clean_path(unquote(parts.path) or "/")


def clean_path(path: str) -> str:
    return posixpath.normpath(re.sub(r"/+", "/", "/" + path.lstrip("/")))


def under_store(source: str, store: str) -> bool:
    """A location inside the store: the same scheme, host and port, and the store's path or a path below it
    (compared normalised: https://store.example/a does not admit https://store.example/ab, nor /a/../b)."""
    src, root = _location(source), _location(store)
    if src is None or root is None or src[:3] != root[:3]:
        return False
    return src[3] == root[3] or src[3].startswith(root[3].rstrip("/") + "/")


def path_in_store(source: str, store: str) -> str | None:
    """The path of a location below the store (a/b.jsonl for STORE/a/b.jsonl), or None when it is not inside it."""
    if not under_store(source, store):
        return None
    src, root = _location(source), _location(store)
    assert src is not None and root is not None  # under_store parsed both
    return src[3][len(root[3].rstrip("/")):].lstrip("/")
