#!/usr/bin/env python3
"""An HTTP server with a listen backlog of 1 that answers one request at a
time, slowly: a burst of connections overflows its accept queue, the kernel
drops their SYNs and the clients' connects take a retransmission (~1 s).

  backlog-server.py HOST PORT    prints "listening"; answers 200 with the path
"""
import http.server
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        time.sleep(0.005)
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.HTTPServer):
    request_queue_size = 1


def main():
    server = Server((sys.argv[1], int(sys.argv[2])), Handler)
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
