#!/usr/bin/env python3
"""A proxy on loopback in front of a registry, for the pull tests: it passes
requests through, except that it cuts the connection in the middle of the
first blob answer (--cut: then passes everything through; --cut-norange:
the same, but drops Range headers, as a server that ignores them; --die:
then exits, as a registry that dies; --die-two: passes the first blob
through (a pull's config, fetched alone), then waits until two blob
answers are under way at once, sends half of each, and exits, as a
registry that dies while several layers are in flight). Each request goes
to the log, with its Range.

    registry-proxy.py UPSTREAM(HOST:PORT) PORTFILE LOG MODE [PORT]
"""
import http.client
import http.server
import os
import socket
import sys
import threading

upstream, portfile, logfile, mode = sys.argv[1:5]
want_port = int(sys.argv[5]) if len(sys.argv) > 5 else 0
state = {"cut": False}
lock = threading.Lock()
two = threading.Barrier(2, timeout=20)


def log(line):
    with lock, open(logfile, "a") as f:
        f.write(line + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        rng = self.headers.get("Range")
        log(f"GET {self.path} range={rng or '-'}")
        conn = http.client.HTTPConnection(upstream, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                   and not (mode == "--cut-norange" and k.lower() == "range")}
        conn.request("GET", self.path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        cut = False
        first = False
        if mode == "--die-two" and "/blobs/" in self.path:
            with lock:
                state["blobs"] = state.get("blobs", 0) + 1
                first = state["blobs"] == 1
        if mode == "--die-two" and "/blobs/" in self.path and resp.status == 200 and not first:
            try:
                two.wait()
                log(f"two at once {self.path}")
            except threading.BrokenBarrierError:
                log(f"alone {self.path}")
            cut = True
        with lock:
            if (mode != "--die-two" and "/blobs/" in self.path and resp.status == 200
                    and len(body) > 1 and not state["cut"]):
                state["cut"] = cut = True
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not cut:
            self.wfile.write(body)
            return
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        log(f"cut {self.path} after {len(body) // 2} of {len(body)} bytes")
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True
        if mode == "--die":
            os._exit(0)
        if mode == "--die-two":
            with lock:
                state["dying"] = state.get("dying", 0) + 1
                if state["dying"] == 2:
                    os._exit(0)


class Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True


srv = Server(("127.0.0.1", want_port), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
