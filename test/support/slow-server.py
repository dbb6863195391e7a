#!/usr/bin/env python3
"""A server that reads a request and never answers (the test kills it mid-request).

  slow-server.py HOST PORT    prints "listening", then "request" per request read
"""
import socket
import sys
import threading
import time


def serve(conn):
    conn.recv(65536)
    print("request", flush=True)
    time.sleep(3600)


def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(sys.argv[2])))
    s.listen(16)
    print("listening", flush=True)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
