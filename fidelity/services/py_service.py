# Fidelity test service (Python, thread per request). Ordinary code with no
# tracing: for GET /r/<id> it calls every downstream with GET /r/<id>.<NAME><i>
# (new connections, a keep-alive pool, or in parallel threads), optionally
# INCRs a Redis key, and logs one ground-truth line: {"svc","in","out":[...]}.
import http.client
import http.server
import json
import os
import queue
import socket
import socketserver
import sys
import threading

NAME = os.environ["NAME"]
DOWNSTREAMS = [d for d in os.environ.get("DOWNSTREAMS", "").split(",") if d]
MODE = os.environ.get("MODE", "new")  # new | pool | fanout
REDIS = os.environ.get("REDIS")
DELAY_BODY = int(os.environ.get("BODY_BYTES", "16"))
log_lock = threading.Lock()
pools = {d: queue.LifoQueue() for d in DOWNSTREAMS}


def hostport(d):
    h, p = d.split(":")
    return h, int(p)


def call(d, path):
    if MODE == "pool":
        try:
            conn = pools[d].get_nowait()
        except queue.Empty:
            conn = http.client.HTTPConnection(*hostport(d), timeout=10)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            pools[d].put(conn)
            return r.status, body
        except Exception:
            conn.close()
            raise
    conn = http.client.HTTPConnection(*hostport(d), timeout=10)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def redis_incr(key):
    h, p = hostport(REDIS)
    k = key.encode()
    with socket.create_connection((h, p), timeout=5) as s:
        s.sendall(b"*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n" % (len(k), k))
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        rid = self.path.rsplit("/", 1)[-1]
        outs = ["%s.%s%d" % (rid, NAME, i) for i in range(len(DOWNSTREAMS))]
        ok = True
        if MODE == "fanout":
            results = [None] * len(outs)

            def run(i):
                try:
                    results[i] = call(DOWNSTREAMS[i], "/r/" + outs[i])[0]
                except Exception:
                    results[i] = 0

            ts = [threading.Thread(target=run, args=(i,)) for i in range(len(outs))]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            ok = all(r == 200 for r in results)
        else:
            for d, o in zip(DOWNSTREAMS, outs):
                try:
                    ok = call(d, "/r/" + o)[0] == 200 and ok
                except Exception:
                    ok = False
        if REDIS:
            outs.append(rid + ".redis")
            redis_incr(rid)
        body = (("%s:%s " % (NAME, rid)) * max(1, DELAY_BODY // 8)).encode()
        self.send_response(200 if ok else 502)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with log_lock:
            sys.stdout.write(json.dumps({"svc": NAME, "in": rid, "out": outs}) + "\n")
            sys.stdout.flush()

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


srv = Server(("0.0.0.0", int(os.environ["PORT"])), Handler)
sys.stdout.write("ready on %s\n" % os.environ["PORT"])
sys.stdout.flush()
srv.serve_forever()
