"""Small builders the serving tests share (imported by name: test folders are not packages)."""

from __future__ import annotations


def model(catalogue: str, quantization: str = "none", context: int = 8192, **extra: object) -> dict:
    return {"catalogue": catalogue, "source": "/srv/sovkit/models/m", "quantization": quantization,
            "revision": "sha256:" + "0e9e39f2" * 8, "maxContext": context, "languages": ["en"],
            **extra}


def gpu_host(accelerator: str, count: int) -> dict:
    return {"pune-ai-01": {"address": "203.0.113.40", "role": "gpu_worker",
                           "accelerator": {"model": accelerator, "count": count}}}
