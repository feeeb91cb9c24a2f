"""The gateway finds the model a speech-recognition upload names in its multipart form, by njs itself (the
njs of Debian 12, as the gateway's nginx runs it), without decoding the audio around it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

GATEWAY_JS = Path(__file__).resolve().parents[2] / "roles/gateway/files/etc/nginx/sovkit/gateway.js"
BOUNDARY = "sovkit-7e1"
# A form in the bytes a client sends: each part (name, value, an uploaded file?), the audio raw bytes that hold
# CRLFs and dashes, as real audio does.
MAKE_FORM = r"""
function form(parts) {
    var chunks = [];
    parts.forEach(function (p) {
        chunks.push(Buffer.from('--BOUNDARY\r\nContent-Disposition: form-data; name="' + p[0] + '"'
            + (p[2] ? '; filename="speech.wav"\r\nContent-Type: audio/wav' : '') + '\r\n\r\n'));
        chunks.push(typeof p[1] === 'string' ? Buffer.from(p[1]) : Buffer.from(p[1]));
        chunks.push(Buffer.from('\r\n'));
    });
    chunks.push(Buffer.from('--BOUNDARY--\r\n'));
    return Buffer.concat(chunks);
}
var audio = [0, 255, 13, 10, 13, 10, 45, 45, 66, 200, 1];
function ask(type, body) {
    console.log(JSON.stringify(formModel({headersIn: {'Content-Type': type}, requestBuffer: body})));
}
""".replace("BOUNDARY", BOUNDARY)
CASES = {
    "the model after the audio": ("multipart/form-data; boundary=BOUNDARY",
                                  "form([['file', audio, true], ['model', 'whisper-small'], ['language', 'sw']])",
                                  "whisper-small"),
    "the model first, a quoted boundary": ('multipart/form-data; boundary="BOUNDARY"',
                                           "form([['model', 'tiny-chat'], ['file', audio, true]])", "tiny-chat"),
    "no model part": ("multipart/form-data; boundary=BOUNDARY", "form([['file', audio, true]])", None),
    "a part whose name only starts with model": ("multipart/form-data; boundary=BOUNDARY",
                                                 "form([['model_id', 'x'], ['file', audio, true]])", None),
    "not a form": ("application/json", "Buffer.from('{\"model\": \"tiny-chat\"}')", None),
}


@pytest.mark.skipif(shutil.which("njs") is None,
                    reason="njs is not installed (Debian package njs, scripts/tool-deps.sh)")
def test_the_model_of_a_multipart_upload_is_found_in_its_bytes(tmp_path):
    source = GATEWAY_JS.read_text().replace("export default {route, account};", "")
    calls = "".join(f"ask({type_!r}, {body});\n".replace("BOUNDARY", BOUNDARY) for type_, body, _ in CASES.values())
    script = tmp_path / "form.js"
    script.write_text(source + MAKE_FORM + calls)
    ran = subprocess.run(["njs", str(script)], capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr
    found = [json.loads(line) for line in ran.stdout.splitlines()]
    assert dict(zip(CASES, found, strict=True)) == {case: want for case, (_, _, want) in CASES.items()}
