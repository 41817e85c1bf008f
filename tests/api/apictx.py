"""Shared state of the API suite: the servers, lazily built fixtures (keys,
certificates, signers, principals) cached once and reused by every test, and
the assertion helpers that check docs/api.md's status codes and error bodies.

A fixture that fails is cached as failed: every test that needs it then fails
with the fixture's reason instead of repeating slow work (RSA-4096 keys)."""

import os
import re
import select
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
import uuid

import rsigntest as rt
from rsigntest import Fail, Skip

UUID_RE = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
TIME_RE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$')
CREATED = (200, 201)
DELETED = (200, 204)


def slug(kt):
    """'RSA_2048' -> 'rsa-2048'."""
    return kt.lower().replace('_', '-')


def rand_uuid():
    return str(uuid.uuid4())


# ---------------------------------------------------------------- assertions

def check(cond, msg, resp=None):
    if not cond:
        raise Fail(msg, resp)


def expect(resp, statuses, what=''):
    """The response has one of `statuses` (an int or a tuple) and, when it is
    a success, a JSON body. Returns resp.json."""
    if isinstance(statuses, int):
        statuses = (statuses,)
    if resp.status not in statuses:
        raise Fail('%sexpected status %s, got %s' % (what + ': ' if what else '',
                                                    '/'.join(map(str, statuses)), resp.status), resp)
    if 200 <= resp.status < 300 and resp.status != 204:
        check(resp.json is not None, '%sbody is not JSON' % (what + ': ' if what else ''), resp)
    return resp.json


REASON_RE = re.compile(r'^[a-z][A-Za-z0-9]*$')


def expect_error(resp, status, error, what='', reason=None):
    """The API's error body (docs/api.md): {statusCode, error, reason,
    message, reqId}; reason is a camelCase word (equal to `reason` when one
    is given), reqId equal to the X-Request-Id header when there is one."""
    pre = what + ': ' if what else ''
    if resp.status != status:
        raise Fail('%sexpected %s %s, got %s' % (pre, status, error, resp.status), resp)
    j = resp.json
    check(isinstance(j, dict), '%serror body is not a JSON object' % pre, resp)
    check(j.get('statusCode') == status, '%sstatusCode %r != %d' % (pre, j.get('statusCode'), status), resp)
    check(j.get('error') == error, '%serror %r != %r' % (pre, j.get('error'), error), resp)
    check(isinstance(j.get('reason'), str) and REASON_RE.match(j['reason']),
          '%serror body has no camelCase reason: %r' % (pre, j.get('reason')), resp)
    if reason is not None:
        check(j['reason'] == reason, '%sreason %r != %r' % (pre, j['reason'], reason), resp)
    check(isinstance(j.get('message'), str) and j['message'].strip(),
          '%serror body has no message' % pre, resp)
    check(isinstance(j.get('reqId'), str) and j['reqId'], '%serror body has no reqId' % pre, resp)
    hdr = resp.header('X-Request-Id')
    if hdr is not None:
        check(hdr == j['reqId'], '%sreqId %r != X-Request-Id %r' % (pre, j['reqId'], hdr), resp)
    return j


def items(j, key, resp=None):
    """The list in a list response: `{key: [...], ...}` (or a bare list)."""
    if isinstance(j, list):
        return j
    check(isinstance(j, dict) and isinstance(j.get(key), list),
          'list response has no %r array' % key, resp)
    return j[key]


def is_time(v):
    return isinstance(v, str) and TIME_RE.match(v) is not None


def parse_time(v):
    return time.mktime(time.strptime(v[:19], '%Y-%m-%dT%H:%M:%S')) - time.timezone


def same_pem(a, b):
    """Two PEM texts carry the same DER blocks."""
    def blocks(t):
        return re.findall(r'-----BEGIN [^-]+-----(.*?)-----END', t or '', re.S)
    norm = lambda t: [''.join(x.split()) for x in blocks(t)]
    return norm(a) == norm(b) and norm(a) != []


def pem_blocks(t):
    return re.findall(r'-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----', t or '', re.S)


# ---------------------------------------------------------------- raw HTTPS

class RawConn:
    """One TLS connection driven by hand, for what urllib cannot do: send a
    request in parts, keep it in flight across a SIGTERM, read an early 413."""

    def __init__(self, url, ca_file, timeout=30.0):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        ctx = ssl.create_default_context(cafile=ca_file)
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        self.s = ctx.wrap_socket(sock, server_hostname=self.host)

    def head(self, method, path, token, length, extra=''):
        return ('%s /api/v1%s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n'
                'Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n%s\r\n'
                % (method, path, self.host, self.port, token, length, extra)).encode()

    def send(self, data):
        self.s.sendall(data)

    def readable(self, timeout):
        if self.s.pending():
            return True
        r, _, _ = select.select([self.s], [], [], timeout)
        return bool(r)

    def read_response(self, method='', path=''):
        """Reads until EOF (we always send Connection: close)."""
        data = b''
        while True:
            try:
                chunk = self.s.recv(65536)
            except (ssl.SSLError, OSError) as e:
                if data:
                    break
                raise Fail('%s %s: reading the response failed: %s' % (method, path, e))
            if not chunk:
                break
            data += chunk
        self.close()
        head, sep, body = data.partition(b'\r\n\r\n')
        if not sep:
            raise Fail('%s %s: incomplete response %r' % (method, path, data[:200]))
        lines = head.decode('latin-1').split('\r\n')
        m = re.match(r'HTTP/1\.[01] (\d{3})', lines[0])
        if not m:
            raise Fail('%s %s: bad status line %r' % (method, path, lines[0]))
        headers = _Headers()
        for l in lines[1:]:
            k, _, v = l.partition(':')
            headers[k.strip().lower()] = v.strip()
        if headers.get('transfer-encoding', '').lower() == 'chunked':
            body = _dechunk(body)
        elif headers.get('content-length'):
            body = body[:int(headers['content-length'])]
        return rt.Response(int(m.group(1)), headers, body, method, path)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class _Headers(dict):
    def get(self, k, d=None):
        return dict.get(self, k.lower(), d)


def _dechunk(b):
    out = b''
    while b:
        size_line, _, rest = b.partition(b'\r\n')
        n = int(size_line.split(b';')[0] or b'0', 16)
        if n == 0:
            break
        out += rest[:n]
        b = rest[n + 2:]
    return out


# ---------------------------------------------------------------- context

class Ctx:
    """The suite's servers and fixtures."""

    def __init__(self):
        self.A = None          # the main rsignd dev (DevServer)
        self.A_err = None
        self.B = None          # the short-TTL rsignd dev (--access-token-ttl 2)
        self.B_err = None
        self.B_ready = threading.Event()
        self._fx = {}
        self._fx_lock = threading.Lock()
        self.rsignctl = os.path.join(rt.top_builddir(), 'rsignctl')
        self.work = None

    # -- servers
    @property
    def srv(self):
        if self.A is None:
            raise Fail('rsignd dev did not start: %s' % self.A_err)
        return self.A

    @property
    def api(self):
        """Admin client on server A."""
        return self.srv.client()

    def as_(self, token):
        return self.srv.client(token)

    def srv_b(self, timeout=90):
        self.B_ready.wait(timeout)
        if self.B is None:
            raise Fail('second rsignd dev (--access-token-ttl 2) did not start: %s' % self.B_err)
        return self.B

    def ctl(self, *args):
        """Runs rsignctl against server A as the admin (Skip when it is not
        built); returns the CompletedProcess."""
        if not os.access(self.rsignctl, os.X_OK):
            raise Skip('rsignctl is not built at %s' % self.rsignctl)
        s = self.srv
        env = dict(os.environ, RSIGN_URL=s.url, RSIGN_TOKEN=s.token, RSIGN_CA_FILE=s.ca_file,
                   HOME=s.work_dir)
        env.pop('RSIGN_CONFIG', None)
        return subprocess.run([self.rsignctl] + list(args), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=60)

    # -- fixtures
    def fixture(self, name, fn):
        """fn() once; its value (or its failure) is cached under name."""
        with self._fx_lock:
            ent = self._fx.setdefault(name, {'lock': threading.Lock(), 'done': False})
        with ent['lock']:
            if not ent['done']:
                try:
                    ent['val'], ent['err'] = fn(), None
                except Fail as e:
                    ent['err'] = str(e) + ('\n' + e.resp.describe() if e.resp is not None else '')
                except Skip as e:
                    ent['skip'] = str(e)
                    ent['err'] = None
                except Exception as e:
                    ent['err'] = 'exception %s: %s' % (type(e).__name__, e)
                ent['done'] = True
        if ent.get('skip'):
            raise Skip(ent['skip'])
        if ent['err']:
            raise Fail('setup %r failed: %s' % (name, ent['err']))
        return ent['val']

    # -- keys, certificates, signers: one per key type, reused everywhere
    def key(self, kt):
        def make():
            r = self.api.post('/pki/keys', {'name': 'k-' + slug(kt), 'keyAlgorithm': kt},
                              timeout=120)
            return expect(r, CREATED, 'create key %s' % kt)
        return self.fixture('key:' + kt, make)

    def prefetch_keys(self):
        return [self.background(self.key, kt) for kt in rt.KEY_ALGS]

    def background(self, getter, *args):
        """Calls a fixture getter in a thread so its slow work overlaps the
        tests that do not need it (RSA-4096 key generation)."""
        def run():
            try:
                getter(*args)
            except (Fail, Skip):
                pass
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def cert(self, kt):
        def make():
            k = self.key(kt)
            r = self.api.post('/pki/certificates/issue',
                              {'keyId': k['id'], 'commonName': 'rsign api test ' + slug(kt),
                               'ttlDays': 30})
            return expect(r, CREATED, 'issue certificate for %s' % kt)
        return self.fixture('cert:' + kt, make)

    def signer(self, kt):
        def make():
            c = self.cert(kt)
            r = self.api.post('/pki/signers', {'name': 'mx-' + slug(kt),
                                               'description': 'matrix signer ' + kt,
                                               'certificateId': c['id']})
            return expect(r, CREATED, 'create signer for %s' % kt)
        return self.fixture('signer:' + kt, make)

    def signer_pub(self, signer_id):
        """PEM public key taken from the signer's certificate endpoint."""
        def make():
            r = self.api.get('/pki/signers/%s/certificate' % signer_id)
            j = expect(r, 200, 'signer certificate')
            return rt.openssl_pubkey_pem_from_cert(j['certificatePem'])
        return self.fixture('pub:' + signer_id, make)

    def make_signer(self, name, cert_id, description=None):
        """A named signer created once (fixture)."""
        def make():
            body = {'name': name, 'certificateId': cert_id}
            if description:
                body['description'] = description
            return expect(self.api.post('/pki/signers', body), CREATED, 'create signer ' + name)
        return self.fixture('named-signer:' + name, make)

    def dated_cert(self, tag, not_before, not_after):
        def make():
            k = self.key('EC_P256')
            r = self.api.post('/pki/certificates/issue',
                              {'keyId': k['id'], 'commonName': 'rsign api test ' + tag, 'ttlDays': 1,
                               'notBefore': not_before, 'notAfter': not_after})
            return expect(r, CREATED, 'issue %s certificate' % tag)
        return self.fixture('cert-' + tag, make)

    def expired_cert(self):
        return self.dated_cert('expired', '2020-01-01T00:00:00Z', '2021-01-01T00:00:00Z')

    def future_cert(self):
        fmt = lambda t: time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(t))
        if not hasattr(self, '_future'):
            now = int(time.time())
            self._future = (fmt(now + 30 * 86400), fmt(now + 60 * 86400))
        return self.dated_cert('future', *self._future)

    def disabled_signer(self):
        """'dis-ec', disabled right after creation."""
        def make():
            s = self.make_signer('dis-ec', self.cert('EC_P256')['id'])
            j = expect(self.api.patch('/pki/signers/' + s['id'], {'status': 'disabled'}), 200, 'disable')
            check(j.get('status') == 'disabled', 'PATCH did not disable: %r' % j)
            return j
        return self.fixture('disabled-signer', make)

    def ca_pem(self):
        def make():
            j = expect(self.api.get('/pki/ca'), 200, 'GET /pki/ca')
            check('BEGIN CERTIFICATE' in (j.get('certificatePem') or ''), 'no CA certificatePem')
            return j['certificatePem']
        return self.fixture('ca', make)

    # -- principals: users alice (operator), bob (auditor), carol (stranger);
    # identities ci-bot (operator), ci-other (stranger)
    def people(self):
        def make():
            out = {}
            for name in ('alice', 'bob', 'carol', 'dave'):
                j = expect(self.api.post('/principals', {'type': 'user', 'name': name}),
                           CREATED, 'create user ' + name)
                check(j.get('token'), 'user %s has no token' % name)
                out[name] = {'id': j['id'], 'token': j['token'], 'type': 'user', 'name': name}
            for name in ('ci-bot', 'ci-other'):
                j = expect(self.api.post('/principals', {'type': 'identity', 'name': name}),
                           CREATED, 'create identity ' + name)
                out[name] = {'id': j['id'], 'clientId': j.get('clientId'), 'type': 'identity',
                             'clientSecret': j.get('clientSecret'), 'name': name}
                r = self.api.post('/auth/universal-auth/login',
                                  {'clientId': j.get('clientId'), 'clientSecret': j.get('clientSecret')},
                                  token=None)
                lj = expect(r, 200, 'login ' + name)
                out[name]['token'] = lj.get('accessToken')
            me = expect(self.api.get('/auth/whoami'), 200, 'whoami')
            out['admin'] = {'id': me.get('id'), 'token': self.srv.token, 'type': 'user',
                            'name': me.get('name')}
            return out
        return self.fixture('people', make)

    def member(self, signer_id, who, role):
        def make():
            p = self.people()[who]
            r = self.api.post('/pki/signers/%s/members' % signer_id,
                              {'principalId': p['id'], 'role': role})
            return expect(r, CREATED + (204,), 'add %s as %s' % (who, role))
        return self.fixture('member:%s:%s:%s' % (signer_id, who, role), make)

    def ops_signer(self):
        """'ops-ec' (EC P-256): alice operator, bob auditor, ci-bot operator."""
        def make():
            s = self.make_signer('ops-ec', self.cert('EC_P256')['id'], 'permissions')
            self.member(s['id'], 'alice', 'operator')
            self.member(s['id'], 'bob', 'auditor')
            self.member(s['id'], 'ci-bot', 'operator')
            return s
        return self.fixture('ops-signer', make)

    def sign(self, client, signer, alg, data, is_digest, **extra):
        body = {'data': rt.b64(data), 'signingAlgorithm': alg, 'isDigest': is_digest}
        body.update(extra)
        return client.post('/pki/signers/%s/sign' % signer, body)

    def verify(self, pub, alg, data, is_digest, resp, salt_len=None, kt=None):
        """Checks a 200 sign response and its signature with OpenSSL."""
        j = expect(resp, 200, 'sign')
        for f in ('signature', 'signingAlgorithm', 'signerId', 'operationId'):
            check(j.get(f) not in (None, ''), 'sign response lacks %s' % f, resp)
        try:
            sig = rt.unb64(j['signature'])
        except Exception:
            raise Fail('signature is not base64', resp)
        if kt and kt.startswith('RSA'):
            check(len(sig) == rt.modulus_bytes(kt), 'RSA signature is %d bytes, modulus is %d'
                  % (len(sig), rt.modulus_bytes(kt)), resp)
        if rt.alg_family(alg) == 'ecdsa':
            check(sig[:1] == b'\x30', 'ECDSA signature is not a DER SEQUENCE', resp)
        if is_digest:
            ok, out = rt.openssl_verify_digest(pub, alg, data, sig, salt_len)
        else:
            ok, out = rt.openssl_verify_data(pub, alg, data, sig, salt_len)
        check(ok, 'openssl does not verify the signature: %s' % out[-300:], resp)
        return j
