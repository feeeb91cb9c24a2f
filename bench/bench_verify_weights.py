"""How long the weights verification (sovkit/models/verify_weights.py, the verify-model init container of kubernetes
mode and the hosts' verification unit) takes per GiB of weights: signs a folder of incompressible files with a fresh
key, verifies it, and prints the wall and CPU time per GiB beside the allowance the Helm wait gives a signed model
(sovkit/render/cluster.py VERIFY_S_PER_GIB). The files are read from the page cache here: a node reading them from its
disk is bounded by the disk instead, which the allowance's margin is for.

    .venv/bin/python bench/bench_verify_weights.py [GiB, default 1]
"""

from __future__ import annotations

import hashlib
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sovkit.models.signing import sign_model
from sovkit.models.verify_weights import verify_model
from sovkit.render.cluster import VERIFY_S_PER_GIB

CHUNK = 64 * 2**20


def write_weights(folder: Path, gib: float) -> None:
    """Two shards of random bytes and the SHA256SUMS that lists them (what `sovkit model sign` signs)."""
    sums = []
    for index in range(2):
        digest, path, left = hashlib.sha256(), folder / f"model-0000{index + 1}-of-00002.safetensors", gib * 2**29
        with path.open("wb") as out:
            while left > 0:
                block = os.urandom(int(min(CHUNK, left)))
                out.write(block)
                digest.update(block)
                left -= len(block)
        sums.append(f"{digest.hexdigest()}  {path.name}\n")
    (folder / "SHA256SUMS").write_text("".join(sums))


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    gib = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    with tempfile.TemporaryDirectory(prefix="sovkit-bench-verify-") as tmp:
        model, key_file = Path(tmp) / "model", Path(tmp) / "signer.pem"
        model.mkdir()
        write_weights(model, gib)
        key = ec.generate_private_key(ec.SECP256R1())
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        public = Path(tmp) / "signer.pub"
        public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
        signed = sign_model(model, key_file)
        started, cpu = time.perf_counter(), cpu_s()
        verdict = verify_model(model, signed.signature, public)
        wall, used = time.perf_counter() - started, cpu_s() - cpu
    if not verdict.verified:
        print(f"verification failed: {verdict.report()}")
        return 1
    print(f"verified {gib:.2f} GiB: {wall:.2f} s wall, {used:.2f} s CPU on {os.cpu_count()} cores")
    print(f"per GiB: {wall / gib:.2f} s wall, {used / gib:.2f} s CPU; the Helm wait allows {VERIFY_S_PER_GIB:.1f} s")
    return 0 if wall / gib <= VERIFY_S_PER_GIB else 1


if __name__ == "__main__":
    sys.exit(main())
