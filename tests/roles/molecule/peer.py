#!/usr/bin/env python3
"""A test-network peer: TCP listeners that greet, and a DNS server that answers every A query.

Runs on the "in-country" and "foreign" peers of the role scenarios so the hardened host's firewall
is proved with real connections and real DNS queries. Standard library only (python3 is in the image).
Usage: peer.py NAME --tcp 443,8443 --dns 53
"""

import argparse
import socket
import socketserver
import struct
import threading

ANSWER_IP = "198.51.100.80"


def dns_answer(query: bytes) -> bytes:
    """Reply to a DNS query with one A record (ANSWER_IP) for the name asked."""
    qid, _flags, qdcount = struct.unpack("!HHH", query[:6])
    end = 12
    while query[end] != 0:
        end += query[end] + 1
    question = query[12 : end + 5]
    header = struct.pack("!HHHHHH", qid, 0x8180, qdcount, 1, 0, 0)
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(ANSWER_IP)
    return header + question + answer


class Greeter(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(f"sovkit-peer {self.server.peer_name} {self.server.server_address[1]}\n".encode())


class DnsUdp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        sock.sendto(dns_answer(data), self.client_address)


class DnsTcp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        length = struct.unpack("!H", self.request.recv(2))[0]
        reply = dns_answer(self.request.recv(length))
        self.request.sendall(struct.pack("!H", len(reply)) + reply)


class TCP(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--tcp", default="")
    parser.add_argument("--dns", type=int, default=0)
    args = parser.parse_args()
    servers = []
    for port in filter(None, args.tcp.split(",")):
        srv = TCP(("0.0.0.0", int(port)), Greeter)
        srv.peer_name = args.name
        servers.append(srv)
    if args.dns:
        servers.append(socketserver.ThreadingUDPServer(("0.0.0.0", args.dns), DnsUdp))
        servers.append(TCP(("0.0.0.0", args.dns), DnsTcp))
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
