#!/usr/bin/env python3
"""A token server (docker's token authentication) on loopback, for the pull
tests: GET /token?service=S&scope=repository:NAME:ACTIONS with basic auth
USER:PASS answers {"token": JWT}, an RS256 JWT signed with KEY (openssl
does the signing) whose header carries CERT in x5c; no or other
credentials: 401. POST /token with the OAuth2 form grant_type=refresh_token
&refresh_token=REFRESH&service=S&scope=... (an identity token) answers
{"access_token": JWT} for REFRESH's owner, USER; another token: 401
invalid_grant. Each request goes to the log.

    token-server.py PORTFILE LOG KEY CERT ISSUER USER:PASS [REFRESH]
"""
import base64
import http.server
import json
import os
import subprocess
import sys
import time
import urllib.parse
import uuid

portfile, logfile, key, cert, issuer, creds = sys.argv[1:7]
refresh = sys.argv[7] if len(sys.argv) > 7 else None


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def cert_der():
    pem = open(cert).read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return "".join(body.split())  # x5c: base64 (not url) DER


def sign(claims):
    header = {"typ": "JWT", "alg": "RS256", "x5c": [cert_der()]}
    signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing.encode(),
                         capture_output=True, check=True).stdout
    return signing + "." + b64url(sig)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, code, doc, extra=()):
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        u = urllib.parse.urlparse(self.path)
        n = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(n).decode(errors="replace"))
        one = lambda k: form.get(k, ["-"])[0]
        ok = (refresh is not None and one("grant_type") == "refresh_token"
              and one("refresh_token") == refresh
              and self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"))
        with open(logfile, "a") as f:
            f.write(f"token POST grant={one('grant_type')} client={one('client_id')} "
                    f"valid={'yes' if ok else 'no'} service={one('service')} scope={one('scope')} "
                    f"authorization={'yes' if self.headers.get('Authorization') else 'no'}\n")
        if u.path != "/token":
            return self.answer(404, {"errors": [{"code": "NOT_FOUND"}]})
        if not ok:
            return self.answer(401, {"error": "invalid_grant"})
        self.grant(creds.split(":")[0], form.get("service", [""])[0], form.get("scope", []))

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        auth = self.headers.get("Authorization", "")
        user = None
        if auth.startswith("Basic "):
            given = base64.b64decode(auth[6:]).decode(errors="replace")
            if given == creds:
                user = given.split(":")[0]
        scopes = q.get("scope", [])
        with open(logfile, "a") as f:
            f.write(f"token user={user or '-'} service={q.get('service', ['-'])[0]} "
                    f"scope={' '.join(scopes) or '-'}\n")
        if u.path != "/token":
            return self.answer(404, {"errors": [{"code": "NOT_FOUND"}]})
        if user is None:
            return self.answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "credentials"}]},
                               [("WWW-Authenticate", 'Basic realm="kago-token"')])
        self.grant(user, q.get("service", [""])[0], scopes)

    def grant(self, user, service, scopes):
        access = []
        for sc in " ".join(scopes).split():
            parts = sc.split(":")
            if len(parts) == 3 and parts[0] == "repository":
                acts = [a for a in parts[2].split(",") if a in ("pull", "push")]
                access.append({"type": "repository", "name": parts[1], "actions": acts})
        now = int(time.time())
        claims = {"iss": issuer, "sub": user, "aud": service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        token = sign(claims)
        if self.command == "POST":  # OAuth2: access_token only
            return self.answer(200, {"access_token": token, "expires_in": 300})
        self.answer(200, {"token": token, "access_token": token, "expires_in": 300})


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.daemon_threads = True
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
