"""Answers every POST on 127.0.0.1:PORT with what reached it: port, tenant header, whether an
Authorization header arrived, and the body's length (never the body)."""

import http.server
import json
import sys


class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        out = json.dumps({"port": int(sys.argv[1]), "tenant": self.headers.get("X-Sovkit-Tenant"),
                          "authorization": self.headers.get("Authorization"), "body_bytes": len(body)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self):
        out = f"# stand-in metrics of port {sys.argv[1]}\nvllm:num_requests_running 0\n".encode()
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
