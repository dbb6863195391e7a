#!/usr/bin/env python3
"""Client side of the connection-lifecycle test: plain sockets, one mode each.

  halfclose HOST PORT        request, shutdown(SHUT_WR), read the response to EOF
  reset HOST PORT            request, first byte of the response, then an abortive close (RST)
  reuse HOST PORT LPORT N    N requests, each on a new connection from the same local port
  wait HOST PORT             request, read until the server goes away
Prints one line per request: "<mode> <status line or what happened>".
"""
import socket
import struct
import sys
import time


def request(path):
    return f"GET {path} HTTP/1.1\r\nHost: lifecycle\r\nConnection: close\r\n\r\n".encode()


def read_all(s):
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        data += b"<reset>"
    return data


def status(data):
    return data.split(b"\r\n", 1)[0].decode("latin1") if data else "<no response>"


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "halfclose":
        s = socket.create_connection((host, port))
        s.sendall(request("/halfclose"))
        s.shutdown(socket.SHUT_WR)
        print(mode, status(read_all(s)), flush=True)
        s.close()
    elif mode == "reset":
        s = socket.create_connection((host, port))
        s.sendall(request("/reset"))
        s.recv(1)  # the server has read the request and started answering
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        print(mode, "closed with RST mid-response", flush=True)
    elif mode == "reuse":
        lport, n = int(sys.argv[4]), int(sys.argv[5])
        for i in range(n):
            for attempt in range(50):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("", lport))
                try:
                    s.connect((host, port))
                    break
                except OSError:
                    s.close()
                    time.sleep(0.1)
            else:
                print(mode, "could not reuse the local port", flush=True)
                sys.exit(1)
            s.sendall(request(f"/reuse/{i}"))
            print(mode, i, s.getsockname()[1], status(read_all(s)), flush=True)
            s.close()
            time.sleep(0.2)
    elif mode == "wait":
        s = socket.create_connection((host, port))
        s.sendall(request("/slow"))
        print(mode, status(read_all(s)), flush=True)
        s.close()
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
