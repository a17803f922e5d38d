# A stateless stand-in for the login host, for benches/callgrind/run.sh: every POST gets
# a token response of Procore's shape at once.
import http.server, json, sys, itertools
n = itertools.count()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        i = next(n)
        body = json.dumps({"access_token": f"at-{i}", "token_type": "Bearer", "expires_in": 5400,
                           "refresh_token": f"rt-{i}", "created_at": 1700000000}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
