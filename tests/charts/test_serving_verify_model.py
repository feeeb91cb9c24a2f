"""A signed model through the chart's init containers, for real: the tiny model signed with `sovkit model sign` in
a store on 127.0.0.1, fetched by files/fetch-model.sh with its signature, then verified by sovkit's verifier image
(built here with podman from the recipe, the lock's wheels and, as a stand-in for the pinned python base that this
machine cannot pull, sovkit's own Debian 12 host image, which has CPython 3.11) with the arguments the chart renders.
The signed model passes; one whose weights were changed (and its SHA256SUMS rewritten, so the revision check alone
would pass it) is refused, the model and the file named."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from sovkit.cli import run
from sovkit.models import verifier_image
from sovkit.serving import CHART_DIR, chart, tinymodel

SCRIPT = CHART_DIR / "files" / "fetch-model.sh"
NAME = "tiny-chat"
pytestmark = pytest.mark.skipif(not (shutil.which("curl") and shutil.which("sha256sum")),
                                reason="the fetcher needs curl and sha256sum (Debian: curl, coreutils)")


@pytest.fixture
def store(tmp_path):
    """A store holding the tiny model signed by a model team (key made here); yields (folder, url, signer)."""
    root = tmp_path / "store"
    folder = root / NAME
    tinymodel.build(folder)
    (folder / tinymodel.SIGNATURE).unlink()  # the kit's own signature: this team signs it again
    key, signer = tmp_path / "team.pem", tmp_path / "team.pub"
    subprocess.run(["openssl", "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", str(key)], check=True)
    assert run(["model", "sign", str(folder), "--key", str(key), "--public-key", str(signer)]) == 0
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/{NAME}", signer
    server.shutdown()
    server.server_close()


def revision(folder: Path) -> str:
    return "sha256:" + hashlib.sha256((folder / "SHA256SUMS").read_bytes()).hexdigest()


def tamper(folder: Path) -> None:
    """Change a weight file's bytes and rewrite SHA256SUMS to match: the revision check alone would take it."""
    (folder / "config.json").write_text('{"architectures": ["Altered"]}\n')
    lines = [f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}"
             for n in sorted(p.name for p in folder.iterdir() if p.name not in ("SHA256SUMS", tinymodel.SIGNATURE))]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def fetch(models: Path, source: str, revision_: str) -> Path:
    env = {"PATH": "/usr/bin:/bin", "MODELS_DIR": str(models), "MODEL_NAME": NAME, "MODEL_SOURCE": source,
           "MODEL_REVISION": revision_, "S3_ENDPOINT": "", "MODEL_SIGNATURE": f"{source}/{tinymodel.SIGNATURE}"}
    done = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return models


def verify_args() -> list[str]:
    """The verify-model container's arguments as the chart renders them for a signed model named NAME."""
    values = yaml.safe_load((CHART_DIR / "ci" / "signed-values.yaml").read_text())
    values["models"] = {NAME: values["models"]["llama-3-1-8b"]}
    deployment = next(o for o in chart.template(values) if o["kind"] == "Deployment")
    [verify] = [c for c in deployment["spec"]["template"]["spec"]["initContainers"] if c["name"] == "verify-model"]
    return verify["args"]


def mounted(models: Path, signer: Path) -> Path:
    """The pod's view: /models (what fetch-model filled) and /signers (the ConfigMap), readable by the pod's user."""
    signers = models.parent / "signers"
    signers.mkdir()
    shutil.copyfile(signer, signers / f"{NAME}.pem")
    for path in [models.parent, *models.parent.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return models.parent


# --- the fetcher and the verifier's entry point as a script (no container) --------------------------------------


def script(pod: Path, args: list[str]) -> subprocess.CompletedProcess:
    local = [a.replace("/models/", f"{pod}/models/").replace("/signers/", f"{pod}/signers/") for a in args]
    return subprocess.run([sys.executable, str(verifier_image.VERIFIER), *local], capture_output=True, text=True,
                          timeout=120, check=False, env={"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(
                              p for p in sys.path if p.endswith("site-packages"))})


def test_the_fetcher_places_the_signature_beside_the_folder_and_it_verifies(tmp_path, store):
    folder, source, signer = store
    pod = mounted(fetch(tmp_path / "pod" / "models", source, revision(folder)), signer)
    assert (pod / "models" / f"{NAME}.sig").read_bytes() == (folder / tinymodel.SIGNATURE).read_bytes()
    assert not (pod / "models" / NAME / tinymodel.SIGNATURE).exists()  # not in SHA256SUMS: never in the folder
    done = script(pod, verify_args())
    assert done.returncode == 0, done.stderr
    assert f"/models/{NAME}: verified" in done.stdout


def test_weights_changed_behind_the_signature_are_refused_naming_model_and_file(tmp_path, store):
    folder, source, signer = store
    tamper(folder)
    pod = mounted(fetch(tmp_path / "pod" / "models", source, revision(folder)), signer)  # the revision passes
    done = script(pod, verify_args())
    assert done.returncode == 1
    assert f"/models/{NAME}: REFUSED" in done.stderr and "altered (its bytes differ from the signed ones): " \
        "config.json" in done.stderr


# --- the image, built with podman and run as the pod runs it -----------------------------------------------------


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> tuple[str, dict[str, str]]:
    """The verifier image, built from the recipe and the lock's wheels on sovkit's Debian 12 host image."""
    if os.geteuid() != 0 or not shutil.which("podman"):
        pytest.skip("building the verifier image needs root and podman (as sovkit's host image does)")
    from sovkit.bundle.build import BundleError, cached_wheels
    from sovkit.hosts import Podman, ensure_image

    podman = Podman(tmp_path_factory.mktemp("podman"))
    base = ensure_image(podman).tag  # sovkit's Debian 12 host image as the stand-in base, built once and cached
    try:
        wheels = cached_wheels(verifier_image.LOCK, lambda _: None, "the weights verifier image")
    except BundleError as err:
        pytest.skip(f"the verifier's wheels could not be downloaded from PyPI: {err}")
    context = verifier_image.write_context(tmp_path_factory.mktemp("context") / "model-verifier", wheels)
    tag = f"localhost/sovkit-verifier-test:{verifier_image.image_tag()}"
    started = time.monotonic()
    podman("build", "--quiet", "--network", "none", "--build-arg", f"BASE={base}", "--tag", tag, str(context),
           timeout=300)
    print(f"verifier image built in {time.monotonic() - started:.1f} s")
    yield tag, podman.env()
    podman("rmi", "--force", tag, check=False)


def container(image: tuple[str, dict[str, str]], pod: Path, args: list[str]) -> subprocess.CompletedProcess:
    """Run the image as the chart's pod does: non-root, read-only root, no capabilities, no network."""
    tag, env = image
    name = f"sovkit-verifier-{uuid.uuid4().hex[:8]}"
    try:
        return subprocess.run(
            ["podman", "run", "--rm", "--name", name, "--network", "none", "--read-only", "--user", "10001:10001",
             "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--tmpfs", "/tmp",
             "--volume", f"{pod / 'models'}:/models:ro", "--volume", f"{pod / 'signers'}:/signers:ro", tag, *args],
            env=env, capture_output=True, text=True, timeout=120, check=False)
    finally:
        subprocess.run(["podman", "rm", "--force", name], env=env, capture_output=True, check=False)


def test_the_image_passes_the_signed_model(tmp_path, store, image):
    folder, source, signer = store
    pod = mounted(fetch(tmp_path / "pod" / "models", source, revision(folder)), signer)
    done = container(image, pod, verify_args())
    assert done.returncode == 0, done.stderr
    assert f"/models/{NAME}: verified against /models/{NAME}.sig, signed by /signers/{NAME}.pem" in done.stdout


def test_the_image_refuses_a_tampered_model_naming_it(tmp_path, store, image):
    folder, source, signer = store
    tamper(folder)
    pod = mounted(fetch(tmp_path / "pod" / "models", source, revision(folder)), signer)
    done = container(image, pod, verify_args())
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"/models/{NAME}: REFUSED, not what /signers/{NAME}.pem signed" in done.stderr
    assert "config.json" in done.stderr
