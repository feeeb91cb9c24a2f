"""Probes a client host runs against the stand-in services (stdlib only: it runs in the kit's host image).

Mounted read-only into the client and run there with `python3 /srv/probes.py KIND ARGS...`; prints one JSON value.
    dns SERVER NAME TYPE      -> {"rcode": int, "answers": [str, ...]}   (A, AAAA or MX, raw UDP query)
    sntp SERVER               -> {"mode": int, "stratum": int, "leap": int, "offset": float}
    get URL [CAFILE]          -> {"status": int, "sha256": str, "size": int} or {"error": str}
    post URL BODY             -> {"status": int} or {"error": str}
    smtp HOST FROM TO SUBJECT -> {"sent": true}
"""

from __future__ import annotations

import hashlib
import json
import random
import smtplib
import socket
import ssl
import struct
import sys
import time
import urllib.error
import urllib.request
from email.message import EmailMessage

TYPES = {"A": 1, "AAAA": 28, "MX": 15}
NTP_EPOCH = 2208988800  # seconds from 1900 to 1970


def _family(address: str) -> int:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _name(packet: bytes, offset: int) -> tuple[str, int]:
    """A (possibly compressed) domain name at offset; returns it and the offset after it."""
    labels, end = [], None
    while True:
        length = packet[offset]
        if length & 0xC0 == 0xC0:
            end = offset + 2 if end is None else end
            offset = struct.unpack("!H", packet[offset:offset + 2])[0] & 0x3FFF
            continue
        if length == 0:
            return ".".join(labels), (offset + 1 if end is None else end)
        labels.append(packet[offset + 1:offset + 1 + length].decode())
        offset += 1 + length


def dns(server: str, name: str, qtype: str) -> dict:
    ident = random.randrange(1 << 16)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    query = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", TYPES[qtype], 1)
    with socket.socket(_family(server), socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(query, (server, 53))
        packet = sock.recv(4096)
    _, flags, qd, an, _, _ = struct.unpack("!HHHHHH", packet[:12])
    offset = 12
    for _ in range(qd):
        _, offset = _name(packet, offset)
        offset += 4
    answers = []
    for _ in range(an):
        _, offset = _name(packet, offset)
        rtype, _, _, rdlength = struct.unpack("!HHIH", packet[offset:offset + 10])
        rdata = packet[offset + 10:offset + 10 + rdlength]
        if rtype == 1:
            answers.append(socket.inet_ntop(socket.AF_INET, rdata))
        elif rtype == 28:
            answers.append(socket.inet_ntop(socket.AF_INET6, rdata))
        elif rtype == 15:
            answers.append(_name(packet, offset + 12)[0])
        offset += 10 + rdlength
    return {"rcode": flags & 0xF, "answers": answers}


def sntp(server: str) -> dict:
    request = bytes([0x23]) + bytes(47)  # LI 0, version 4, mode 3 (client)
    with socket.socket(_family(server), socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sent = time.time()
        sock.sendto(request, (server, 123))
        reply = sock.recv(512)
        received = time.time()
    seconds, fraction = struct.unpack("!II", reply[40:48])  # transmit timestamp
    server_time = seconds - NTP_EPOCH + fraction / 2**32
    return {"leap": reply[0] >> 6, "mode": reply[0] & 7, "stratum": reply[1],
            "offset": server_time - (sent + received) / 2}


def get(url: str, cafile: str | None = None) -> dict:
    context = ssl.create_default_context(cafile=cafile) if url.startswith("https") else None
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as resp:
            data = resp.read()
            return {"status": resp.status, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    except urllib.error.HTTPError as err:
        return {"status": err.code}
    except (urllib.error.URLError, OSError) as err:
        return {"error": str(err)}


def post(url: str, body: str) -> dict:
    req = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return {"status": resp.status}
    except urllib.error.HTTPError as err:
        return {"status": err.code}


def smtp(host: str, sender: str, recipient: str, subject: str) -> dict:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, recipient, subject
    msg.set_content("A rehearsal alert.\n")
    with smtplib.SMTP(host, 25, local_hostname="client.svc-test.example", timeout=10) as client:
        client.send_message(msg)
    return {"sent": True}


def smtps(host: str, cafile: str, sender: str, recipient: str, subject: str) -> dict:
    """Mail through a relay that takes TLS from the first byte (port 465), trusting only `cafile` (or the
    system's CAs when empty)."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, recipient, subject
    msg.set_content("A relayed rehearsal alert.\n")
    context = ssl.create_default_context(cafile=cafile or None)
    try:
        with smtplib.SMTP_SSL(host, 465, local_hostname="client.svc-test.example", timeout=10,
                              context=context) as client:
            client.send_message(msg)
    except (ssl.SSLError, OSError) as err:
        return {"error": str(err)}
    return {"sent": True}


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    print(json.dumps({"dns": dns, "sntp": sntp, "get": get, "post": post, "smtp": smtp,
                      "smtps": smtps}[kind](*args)))
