"""A test OIDC issuer: signing keys made with the openssl CLI (RSA and EC),
key sets (JWKS) served over HTTPS on loopback by a small threaded server
with a test CA of its own, and JWTs minted per case (signed with `openssl
dgst`; the stdlib has no RSA). Stdlib + openssl only.

    iss = Issuer(workdir)            # CA, server certificate, HTTPS server
    k = iss.rsa_key('k1')            # or iss.ec_key('e1', 'P-256')
    iss.publish('/a/jwks.json', [k]) # what GET /a/jwks.json answers
    tok = iss.mint(k, {'iss': ..., 'aud': ..., 'exp': ...})
    iss.hits('/a/jwks.json')         # how many times it was fetched
    iss.github('req-token', lambda aud: tok)  # a fake of GitHub Actions'
                                     # ACTIONS_ID_TOKEN_REQUEST_URL at /gh-token
    iss.stop()
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import ssl
import subprocess
import threading


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def _openssl(args, input=None):
    p = subprocess.run(['openssl'] + args, input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=False)
    if p.returncode != 0:
        raise RuntimeError('openssl %s: %s' % (' '.join(args), p.stderr.decode(errors='replace')))
    return p.stdout


def _der_len(b, i):
    n = b[i]
    i += 1
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(b[i:i + k], 'big')
        i += k
    return n, i


def ecdsa_der_to_raw(der, half):
    """An ECDSA-Sig-Value (DER) as the r||s of JWS (RFC 7518 3.4)."""
    assert der[0] == 0x30
    _, i = _der_len(der, 1)
    out = b''
    for _ in range(2):
        assert der[i] == 0x02
        n, i = _der_len(der, i + 1)
        v = der[i:i + n].lstrip(b'\0')
        i += n
        out += v.rjust(half, b'\0')
    return out


class Key:
    def __init__(self, kid, path, kind, jwk, alg):
        self.kid, self.path, self.kind, self.jwk, self.alg = kid, path, kind, jwk, alg

    @property
    def public_pem(self):
        return _openssl(['pkey', '-in', self.path, '-pubout'])


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        srv = self.server.issuer
        path = self.path.split('?')[0]
        if path == '/gh-token' and srv.gh:
            return self.github(srv)
        with srv.lock:
            srv.counts[path] = srv.counts.get(path, 0) + 1
            body = srv.docs.get(path)
            status = srv.status.get(path, 200)
        if body is None:
            status, body = 404, b'{}'
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def github(self, srv):
        """{"value": JWT} for the audience asked, with the request token as
        bearer (as GitHub's endpoint); 401 without it."""
        import urllib.parse
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        want, mint = srv.gh
        aud = q.get('audience', [None])[0]
        with srv.lock:
            srv.gh_asked.append(aud)
        if self.headers.get('Authorization') != 'Bearer ' + want or not aud:
            status, body = 401, b'{"message":"Bad credentials"}'
        else:
            status, body = 200, json.dumps({'count': 1, 'value': mint(aud)}).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class Issuer:
    def __init__(self, workdir):
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.lock = threading.Lock()
        self.docs, self.counts, self.status = {}, {}, {}
        self.gh, self.gh_asked = None, []
        self.ca_file = os.path.join(workdir, 'issuer-ca.pem')
        ca_key = os.path.join(workdir, 'issuer-ca.key')
        _openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
                  '-nodes', '-keyout', ca_key, '-out', self.ca_file, '-subj',
                  '/CN=rsign test OIDC CA', '-days', '2'])
        key = os.path.join(workdir, 'issuer-tls.key')
        cert = os.path.join(workdir, 'issuer-tls.pem')
        _openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
                  '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=127.0.0.1', '-days',
                  '2', '-CA', self.ca_file, '-CAkey', ca_key, '-addext',
                  'subjectAltName=IP:127.0.0.1', '-addext', 'basicConstraints=CA:FALSE'])
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        self.httpd.issuer = self
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.base = 'https://127.0.0.1:%d' % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---- keys
    def rsa_key(self, kid, bits=2048):
        path = os.path.join(self.dir, 'key-%s.pem' % kid)
        _openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:%d' % bits,
                  '-out', path])
        mod = _openssl(['rsa', '-in', path, '-noout', '-modulus']).decode().strip()
        n = bytes.fromhex(mod.split('=', 1)[1])
        jwk = {'kty': 'RSA', 'kid': kid, 'use': 'sig', 'alg': 'RS256', 'n': b64url(n),
               'e': 'AQAB'}
        return Key(kid, path, 'RSA', jwk, 'RS256')

    def ec_key(self, kid, curve='P-256'):
        path = os.path.join(self.dir, 'key-%s.pem' % kid)
        _openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:%s' % curve,
                  '-out', path])
        der = _openssl(['pkey', '-in', path, '-pubout', '-outform', 'DER'])
        half = 32 if curve == 'P-256' else 48
        pt = der[-(1 + 2 * half):]
        assert pt[0] == 4
        jwk = {'kty': 'EC', 'kid': kid, 'use': 'sig', 'crv': curve,
               'x': b64url(pt[1:1 + half]), 'y': b64url(pt[1 + half:])}
        return Key(kid, path, 'EC', jwk, 'ES256' if half == 32 else 'ES384')

    @staticmethod
    def jwks(keys):
        return {'keys': [k.jwk for k in keys]}

    # ---- the HTTPS side
    def publish(self, path, keys=None, raw=None, status=200):
        body = raw if raw is not None else json.dumps(self.jwks(keys)).encode()
        with self.lock:
            self.docs[path] = body
            self.status[path] = status

    def github(self, request_token, mint):
        """Serves GET /gh-token?audience=AUD as GitHub Actions does: mint(AUD)
        is the JWT answered to the bearer request_token."""
        self.gh = (request_token, mint)

    def hits(self, path):
        with self.lock:
            return self.counts.get(path, 0)

    def url(self, path):
        return self.base + path

    # ---- tokens
    def mint(self, key, claims, alg=None, kid=None, header=None):
        """A compact JWT of claims signed with key (alg defaults to the
        key's). kid: the header's kid (default key.kid; '' leaves it out)."""
        alg = alg or key.alg
        h = {'alg': alg, 'typ': 'JWT'}
        kid = key.kid if kid is None else kid
        if kid:
            h['kid'] = kid
        if header:
            h.update(header)
        signing = b64url(json.dumps(h, separators=(',', ':'))) + '.' + \
            b64url(json.dumps(claims, separators=(',', ':')))
        if alg == 'none':
            return signing + '.'
        if alg.startswith('HS'):
            secret = key.public_pem  # the attack: the public key as the HMAC secret
            md = {'HS256': hashlib.sha256, 'HS384': hashlib.sha384}[alg]
            return signing + '.' + b64url(hmac.new(secret, signing.encode(), md).digest())
        md = {'256': '-sha256', '384': '-sha384', '512': '-sha512'}[alg[2:]]
        sig = _openssl(['dgst', md, '-sign', key.path], input=signing.encode())
        if alg.startswith('ES'):
            sig = ecdsa_der_to_raw(sig, 32 if alg == 'ES256' else 48)
        return signing + '.' + b64url(sig)
