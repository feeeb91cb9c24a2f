"""Answers every POST on 127.0.0.1:PORT as vLLM does, with what reached it: port, tenant header, whether an
Authorization header arrived, the body's length (never the body) and its stream_options. Its usage: the body's
length as prompt tokens, 5 completion tokens. A streamed answer (`"stream": true`) comes as server-sent events,
each split over two writes, with the usage event (no choices) last before [DONE] only when the body asked for it
(stream_options.include_usage)."""

import http.server
import json
import sys


def compact(value):
    return json.dumps(value, separators=(",", ":")).encode()


class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = json.loads(body)
        seen = {"port": int(sys.argv[1]), "tenant": self.headers.get("X-Sovkit-Tenant"),
                "authorization": self.headers.get("Authorization"), "body_bytes": len(body),
                "stream_options": request.get("stream_options")}
        usage = {"prompt_tokens": len(body), "total_tokens": len(body) + 5, "completion_tokens": 5,
                 "prompt_tokens_details": None}
        if request.get("stream") is not True:
            out = compact({**seen, "object": "chat.completion", "choices": [], "usage": usage})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        events = [compact({**seen, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}}]})]
        events += [compact({"choices": [{"index": 0, "delta": {"content": "s\u00e9"}}]})] * 3
        if (request.get("stream_options") or {}).get("include_usage") is True:
            events.append(compact({"object": "chat.completion.chunk", "choices": [], "usage": usage}))
        for event in [*events, b"[DONE]"]:
            whole = b"data: " + event + b"\n\n"
            for part in (whole[:9], whole[9:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

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
