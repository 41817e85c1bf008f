"""rsignd's HTTP edge against a client without a login (issue 10, items 1, 7,
10 and 13), over real TLS: the TLS versions it speaks (openssl s_client),
request targets and framing that would route or read a request otherwise
than meant (raw bytes on a TLS socket), libmicrohttpd's own refusals with
the API's JSON body, rate limits on failed logins, bad tokens and signatures
(429 with Retry-After), and a flood of connections that would take the
descriptors the token needs.

Server A (the suite's) serves the TLS, edge, login and token checks; the
bad-token storm comes from 127.0.0.2, so A's other clients (127.0.0.1) are
not limited. max_sign_rate and the descriptor limit need settings `rsignd
dev` has no option for: a state made by `rsignd dev` is served again by
`rsignd serve -c` with them (server E)."""

import atexit
import hashlib
import http.client
import json
import os
import re
import resource
import signal
import socket
import ssl
import subprocess
import sqlite3
import tempfile
import threading
import time
import urllib.parse

import rsigntest as rt
from apictx import CREATED, check, expect, expect_error
from rsigntest import Fail, Skip


# ---------------------------------------------------------------- clients

def _host_port(srv):
    u = urllib.parse.urlsplit(srv.url)
    return u.hostname, u.port


def https(srv, method, path, body=None, token=None, source='127.0.0.1', conn=None):
    """One request over HTTPS from the loopback address `source`, or on the
    kept-alive `conn`; the rt.Response."""
    host, port = _host_port(srv)
    c = conn or http.client.HTTPSConnection(
        host, port, timeout=60, source_address=(source, 0),
        context=ssl.create_default_context(cafile=srv.ca_file))
    hdrs = {'Accept': 'application/json'}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs['Content-Type'] = 'application/json'
    if token:
        hdrs['Authorization'] = 'Bearer ' + token
    try:
        c.request(method, '/api/v1' + path, body=data, headers=hdrs)
        r = c.getresponse()
        resp = rt.Response(r.status, r.headers, r.read(), method, path)
    except (OSError, http.client.HTTPException) as e:
        raise Fail('%s %s from %s: transport error: %s' % (method, path, source, e))
    finally:
        if conn is None:
            c.close()
    return resp


def raw_tls(srv, data):
    """Writes data as it is on a fresh TLS connection and reads to its end:
    (the Response of the last answer, the number of answers)."""
    host, port = _host_port(srv)
    ctx = ssl.create_default_context(cafile=srv.ca_file)
    with socket.create_connection((host, port), timeout=60) as sock:
        with ctx.wrap_socket(sock, server_hostname=host) as s:
            s.sendall(data)
            got = b''
            while True:
                try:
                    chunk = s.recv(65536)
                except (ssl.SSLError, OSError):
                    break
                if not chunk:
                    break
                got += chunk
    heads = re.findall(rb'HTTP/1\.[01] ([1-5]\d\d) ', got)
    # the body follows the last blank line (a compact JSON body has none)
    head, _, body = got.rpartition(b'\r\n\r\n')
    status = int(heads[0]) if heads else -1
    hdrs = {}
    for line in head.decode('latin-1').split('\r\n')[1:]:
        k, _, v = line.partition(':')
        hdrs[k.strip().lower()] = v.strip()
    resp = rt.Response(status, _Headers(hdrs), body, 'RAW', data[:60].decode('latin-1'))
    return resp, len(heads)


class _Headers(dict):
    def get(self, k, d=None):
        return dict.get(self, k.lower(), d)


def retry_after(resp):
    v = resp.header('Retry-After')
    check(v is not None and re.match(r'^[0-9]+$', v), 'no Retry-After in whole seconds: %r' % v,
          resp)
    return int(v)


# ---------------------------------------------------------------- server E

class Serve:
    """`rsignd serve -c CONF` on the state a `rsignd dev` made and left:
    its rsignd.conf plus `extra` settings; RLIMIT_NOFILE set to nofile (soft
    and hard) when given. Ready when /health answers."""

    def __init__(self, dev, extra, nofile=None, timeout=60.0):
        self.dev = dev
        with open(os.path.join(dev.state_dir, 'rsignd.conf')) as f:
            text = f.read()
        text += ''.join('%s = %s\n' % kv for kv in extra.items())
        conf = os.path.join(dev.root, 'serve-%d.conf' % len(os.listdir(dev.root)))
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        self.log_path = conf + '.log'
        self._log = open(self.log_path, 'wb')

        def child():
            rt._die_with_parent()
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen([os.path.join(rt.top_builddir(), 'rsignd'), 'serve', '-c', conf],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     start_new_session=True, preexec_fn=child)
        self.url, self.ca_file, self.token = dev.url, dev.ca_file, dev.token
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise Fail('rsignd serve exited with %s:\n%s' % (self.proc.returncode, self.log_tail()))
            try:
                if https(self, 'GET', '/health').status == 200:
                    break
            except Fail:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise Fail('rsignd serve did not answer /health within %ds:\n%s'
                           % (timeout, self.log_tail()))
            time.sleep(0.1)

    def log(self):
        self._log.flush()
        with open(self.log_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def log_tail(self, n=15):
        return '\n'.join(self.log().splitlines()[-n:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class StateE:
    """A state of its own, made by `rsignd dev` (stopped once made), and the
    one `rsignd serve` on it that runs at a time."""

    def __init__(self):
        self.dev = rt.DevServer.start(prefix='rsign-edges-')
        rc = self.dev.stop(30)
        if rc != 0:
            raise Fail('rsignd dev for server E exited %r:\n%s' % (rc, self.dev.log_tail()))
        self.current = None
        atexit.register(self.close)

    def serve(self, extra, nofile=None):
        if self.current:
            self.current.stop()
            self.current = None
        self.current = Serve(self.dev, extra, nofile)
        return self.current

    def close(self):
        if self.current:
            self.current.stop()
            self.current = None
        self.dev.cleanup()


def state_e(ctx):
    return ctx.fixture('edges-state', StateE)


def ec_sign_body(tag):
    return {'data': rt.b64(ec_digest(tag)), 'signingAlgorithm': 'ECDSA_SHA256', 'isDigest': True}


def ec_digest(tag):
    return hashlib.sha256(tag.encode()).digest()


def demo_ec_pub(e):
    j = expect(https(e, 'GET', '/pki/signers/demo-ec/certificate', token=e.token), 200,
               'demo-ec certificate')
    return rt.openssl_pubkey_pem_from_cert(j['certificatePem'])


def kept_conn(srv, source='127.0.0.1'):
    host, port = _host_port(srv)
    return http.client.HTTPSConnection(host, port, timeout=60, source_address=(source, 0),
                                       context=ssl.create_default_context(cafile=srv.ca_file))


# ---------------------------------------------------------------- TLS

def _s_client(port, flag, cafile):
    p = subprocess.run(['openssl', 's_client', '-connect', '127.0.0.1:%d' % port, flag,
                        '-cipher', 'DEFAULT@SECLEVEL=0', '-CAfile', cafile],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60, env=dict(os.environ, OPENSSL_CONF='/dev/null'))
    out = p.stdout.decode('utf-8', 'replace')
    # "New, TLSv1.2, Cipher is ..." after a handshake, "New, (NONE), ..."
    # without one (its "Protocol" line names the version tried either way)
    done = re.search(r'^New, (\S+), Cipher is (\S+)', out, re.M)
    ok = p.returncode == 0 and done is not None and done.group(2) != '(NONE)'
    m = re.search(r'^\s*Protocol\s*:\s*(\S+)', out, re.M)
    return ok, (m.group(1) if m else None) if ok else None, out


def _client_speaks(flag, tmp):
    """Whether this openssl can make a connection of that version at all:
    against `openssl s_server` allowing only it (a control, so that a refusal
    by rsignd means rsignd refused)."""
    key, crt = os.path.join(tmp, 'k.pem'), os.path.join(tmp, 'c.pem')
    if not os.path.exists(crt):
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt,
                        '-subj', '/CN=127.0.0.1', '-days', '1'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=60)
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    # stdin stays open: s_server stops at its end
    srv = subprocess.Popen(['openssl', 's_server', '-accept', '127.0.0.1:%d' % port, flag,
                            '-cipher', 'DEFAULT@SECLEVEL=0', '-cert', crt, '-key', key, '-naccept', '1'],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=dict(os.environ, OPENSSL_CONF='/dev/null'))
    try:
        # s_server prints ACCEPT once it listens
        for line in srv.stdout:
            if line.startswith(b'ACCEPT'):
                break
        ok, _, _ = _s_client(port, flag, crt)
        return ok
    finally:
        srv.kill()
        srv.wait()


def register(add, ctx):

    # ---- TLS 1.2 and 1.3 only (item 10)
    def tls_versions():
        _, port = _host_port(ctx.srv)
        got = {f: _s_client(port, f, ctx.srv.ca_file) for f in ('-tls1', '-tls1_1', '-tls1_2', '-tls1_3')}
        for f in ('-tls1_2', '-tls1_3'):
            check(got[f][0], 's_client %s was refused: %s' % (f, got[f][2][-400:]))
        for f in ('-tls1', '-tls1_1'):
            check(not got[f][0], 's_client %s connected with %s' % (f, got[f][1]))
        with tempfile.TemporaryDirectory(prefix='rsign-tls-') as tmp:
            missing = [f for f in ('-tls1', '-tls1_1') if not _client_speaks(f, tmp)]
        if missing:
            raise Skip('this openssl cannot speak %s at all, so its refusal proves nothing'
                       % ' '.join(missing))
    add('tls_1_0_and_1_1_are_refused_1_2_and_1_3_accepted', tls_versions)

    # ---- request targets (item 13)
    def targets():
        tok = ctx.srv.token
        for path, reason in (('/pki/signers/demo-ec%00/operations', 'invalidPath'),
                             ('/pki/signers/demo-ec%2Foperations', 'invalidPath'),
                             ('/pki/signers/demo-ec%0d%0aX:%20y', 'invalidPath'),
                             ('/pki/signers?search=demo%00', 'invalidQuery')):
            req = ('GET /api/v1%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n'
                   'Connection: close\r\n\r\n' % (path, tok)).encode()
            r, n = raw_tls(ctx.srv, req)
            expect_error(r, 400, 'BadRequest', path, reason=reason)
        # what the %00 reached before: "get signer", not its operations
        r = ctx.api.get('/pki/signers/demo-ec/operations')
        expect(r, 200, 'the operations route itself')
    add('escaped_nul_slash_or_newline_in_a_path_and_nul_in_a_query_are_400', targets)

    def utf8_bodies():
        req = ('GET /api/v1/pki/signers/caf%%E9%%FF HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer '
               '%s\r\nConnection: close\r\n\r\n' % ctx.srv.token).encode()
        r, _ = raw_tls(ctx.srv, req)
        try:
            r.body.decode('utf-8', 'strict')
        except UnicodeDecodeError as e:
            raise Fail('the error body is not UTF-8: %s' % e, r)
        j = expect_error(r, 404, 'NotFound', 'a signer named with bytes that are not UTF-8')
        check('\ufffd' in j['message'], 'the message does not show U+FFFD for the bad bytes: %r'
              % j['message'], r)
    add('error_bodies_are_utf8_whatever_the_path_held', utf8_bodies)

    # ---- libmicrohttpd's own refusals carry the API's body (item 13)
    def mhd_refusals():
        cases = (
            (b'GET /api/v1/health HTTP/2.0\r\nHost: x\r\n\r\n', 505, 'HTTPVersionNotSupported',
             'httpVersion'),
            (b'GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ' + b'0' * 40000 + b'\r\n\r\n', 431,
             'RequestHeaderFieldsTooLarge', 'headersTooLarge'),
            (b'POST /api/v1/auth/universal-auth/login HTTP/1.1\r\nHost: x\r\n'
             b'Transfer-Encoding: chunked\r\n\r\nZZ\r\nx\r\n0\r\n\r\n', 400, 'BadRequest',
             'malformedRequest'),
        )
        for req, status, error, reason in cases:
            r, n = raw_tls(ctx.srv, req)
            expect_error(r, status, error, req[:40].decode('latin-1'), reason=reason)
            check(n == 1, '%d answers to one request' % n, r)
            check((r.header('Content-Type') or '').startswith('application/json'),
                  'Content-Type %r' % r.header('Content-Type'), r)
    add('libmicrohttpd_refusals_505_431_400_carry_the_api_json_body', mhd_refusals)

    # ---- request smuggling (item 13)
    def framing():
        after = (b'GET /api/v1/pki/signers/demo-ec HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer '
                 + ctx.srv.token.encode() + b'\r\n\r\n')
        login = b'POST /api/v1/auth/universal-auth/login HTTP/1.1\r\nHost: x\r\n'
        for heads, body in ((b'Content-Length: 2\r\nContent-Length: 150\r\n', b'{}'),
                            (b'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', b'0\r\n\r\n')):
            r, n = raw_tls(ctx.srv, login + heads + b'\r\n' + body + after)
            expect_error(r, 400, 'BadRequest', heads.decode(), reason='ambiguousLength')
            check(n == 1, 'the request smuggled after an ambiguous body was answered too (%d '
                  'answers)' % n, r)
    add('two_lengths_or_length_with_chunked_are_400_and_nothing_after_is_answered', framing)

    # ---- failed logins (item 7)
    def logins():
        api = ctx.api
        who = {}
        for name in ('edge-bot', 'edge-other'):
            who[name] = expect(api.post('/principals', {'type': 'identity', 'name': name}), CREATED,
                               'create ' + name)
        bot = who['edge-bot']
        wrong = {'clientId': bot['clientId'], 'clientSecret': 'rss_' + '0' * 64}
        conn = kept_conn(ctx.srv)  # one connection: the ten fall within the minute
        try:
            for i in range(10):
                r = https(ctx.srv, 'POST', '/auth/universal-auth/login', wrong, conn=conn)
                expect_error(r, 401, 'Unauthorized', 'bad login %d of 10' % (i + 1),
                             reason='invalidCredentials')
        finally:
            conn.close()
        r = https(ctx.srv, 'POST', '/auth/universal-auth/login', wrong)
        expect_error(r, 429, 'RateLimitExceeded', 'the 11th bad login', reason='rateLimited')
        wait = retry_after(r)
        check(1 <= wait <= 60, 'Retry-After %d is not within the 60 s block' % wait, r)
        good = {'clientId': bot['clientId'], 'clientSecret': bot['clientSecret']}
        for src in ('127.0.0.1', '127.0.0.2'):
            r = https(ctx.srv, 'POST', '/auth/universal-auth/login', good, source=src)
            expect_error(r, 429, 'RateLimitExceeded', 'the right secret of the blocked clientId from '
                         + src, reason='rateLimited')
            retry_after(r)
        other = who['edge-other']
        r = https(ctx.srv, 'POST', '/auth/universal-auth/login',
                  {'clientId': other['clientId'], 'clientSecret': other['clientSecret']})
        j = expect(r, 200, 'another clientId logs in from the same address')
        check(str(j.get('accessToken', '')).startswith('rsa_'), 'no access token', r)
    add('the_11th_bad_login_is_429_with_retry_after_and_another_client_id_logs_in', logins)

    # ---- bad bearer tokens from one address (item 7)
    def token_storm():
        bad = 'rsu_' + 'e' * 64
        conn = kept_conn(ctx.srv, '127.0.0.2')  # one connection: the hundred fall within the minute
        try:
            statuses = [https(ctx.srv, 'GET', '/auth/whoami', token=bad, conn=conn).status
                        for _ in range(100)]
        finally:
            conn.close()
        check(statuses == [401] * 100, '100 bad tokens were not all 401: %r'
              % sorted(set(statuses)))
        r = https(ctx.srv, 'GET', '/auth/whoami', token=bad, source='127.0.0.2')
        expect_error(r, 429, 'RateLimitExceeded', 'the 101st bad token', reason='rateLimited')
        retry_after(r)
        r = https(ctx.srv, 'GET', '/auth/whoami', token=ctx.srv.token, source='127.0.0.2')
        expect_error(r, 429, 'RateLimitExceeded', 'a good token from the blocked address',
                     reason='rateLimited')
        r = https(ctx.srv, 'GET', '/auth/whoami', token=ctx.srv.token, source='127.0.0.1')
        expect(r, 200, 'a good token from another address')
    add('a_storm_of_101_bad_tokens_from_one_address_is_429_there_only', token_storm)

    # ---- max_sign_rate (item 7), on server E
    def sign_rate():
        e = state_e(ctx).serve({'max_sign_rate': 1})
        admin = e.token
        api = rt.Client(e.url, e.ca_file, admin)
        op = expect(api.post('/principals', {'type': 'user', 'name': 'rate-op'}), CREATED, 'user')
        expect(api.post('/pki/signers/demo-ec/members', {'principalId': op['id'], 'role': 'operator'}),
               CREATED, 'operator')
        # signatures from 8 threads until one is refused: at 1 a second,
        # two that land within a second of each other are enough
        found, lock, stop = [], threading.Lock(), threading.Event()

        def worker(k):
            for i in range(25):
                if stop.is_set():
                    return
                try:
                    r = https(e, 'POST', '/pki/signers/demo-ec/sign',
                              ec_sign_body('rate %d %d' % (k, i)), token=admin)
                except Fail as err:
                    r = err
                if not isinstance(r, rt.Response) or r.status != 200:
                    with lock:
                        found.append(r)
                    stop.set()
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(found, '200 signatures at max_sign_rate = 1, none refused')
        r = found[0]
        if not isinstance(r, rt.Response):
            raise r
        expect_error(r, 429, 'RateLimitExceeded', 'a signature past max_sign_rate', reason='rateLimited')
        check(retry_after(r) >= 1, 'Retry-After below 1', r)
        # the operator's own rate is untouched by the admin's
        r = https(e, 'POST', '/pki/signers/demo-ec/sign', ec_sign_body('operator'), token=op['token'])
        ctx.verify(demo_ec_pub(e), 'ECDSA_SHA256', ec_digest('operator'), True, r)
        # the refusal is in the history like any refusal: denied
        h = expect(api.get('/pki/signers/demo-ec/operations?status=denied&limit=100'), 200, 'history')
        rows = [o for o in h.get('operations', []) if o.get('errorCode') == 'RateLimitExceeded']
        check(rows, 'no denied RateLimitExceeded row in the history: %r' % h.get('operations', [])[:3])
        check(rows[0].get('actorName') == 'admin' and rows[0].get('status') == 'denied',
              'the row is %r' % rows[0])
    add('max_sign_rate_refuses_with_429_retry_after_and_records_it_denied', sign_rate)

    # ---- connections that would take the token's descriptors (item 1)
    def descriptors():
        e = state_e(ctx).serve({}, nofile=256)
        pub = demo_ec_pub(e)
        host, port = _host_port(e)
        kept = kept_conn(e)
        r = https(e, 'POST', '/pki/signers/demo-ec/sign', ec_sign_body('before'), token=e.token,
                  conn=kept)
        ctx.verify(pub, 'ECDSA_SHA256', ec_digest('before'), True, r)
        # TLS handshakes until one is not answered: the server holds no
        # more connections, or has no descriptor left to accept one
        flood, tctx = [], ssl.create_default_context(cafile=e.ca_file)
        try:
            for _ in range(400):
                s = socket.create_connection((host, port), timeout=60)
                s.settimeout(5)
                try:
                    flood.append(tctx.wrap_socket(s, server_hostname=host))
                except (OSError, ssl.SSLError):
                    s.close()
                    break
            r = https(e, 'POST', '/pki/signers/demo-ec/sign', ec_sign_body('during'), token=e.token,
                      conn=kept)
            ctx.verify(pub, 'ECDSA_SHA256', ec_digest('during'), True, r)
        finally:
            for s in flood:
                s.close()
            kept.close()
        r = https(e, 'POST', '/pki/signers/demo-ec/sign', ec_sign_body('after'), token=e.token)
        ctx.verify(pub, 'ECDSA_SHA256', ec_digest('after'), True, r)
        m = re.search(r'max_connections \d+ lowered to (\d+)', e.log())
        check(m, 'no "max_connections lowered" line under a limit of 256:\n' + e.log_tail())
        check(len(flood) + 1 <= int(m.group(1)), '%d connections held at once, max_connections '
              'is %s' % (len(flood) + 1, m.group(1)))
    add('a_connection_flood_under_a_256_descriptor_limit_leaves_the_token_signing', descriptors)

    # ---- GET /backup (issue 15, item 6): the database's online copy
    def backup_api():
        r = ctx.api.get('/backup')
        if ctx.srv.database:  # PostgreSQL: its own tools
            expect_error(r, 409, 'Conflict', 'GET /backup on PostgreSQL', reason='backupUnsupported')
            check('pg_dump' in r.json.get('message', ''), 'no pointer to pg_dump: %r' % r.json)
            return
        check(r.status == 200 and r.headers.get('Content-Type') == 'application/vnd.sqlite3',
              'GET /backup: %d %s' % (r.status, r.headers.get('Content-Type')), r)
        check(r.body[:16] == b'SQLite format 3\0', 'not an SQLite file: %r' % r.body[:16])
        check(hashlib.sha256(r.body).hexdigest() == r.headers.get('X-Content-SHA256'),
              'the body does not match X-Content-SHA256')
        check(r.headers.get('X-Request-Id'), 'no X-Request-Id')
        left = [f for f in os.listdir(ctx.srv.state_dir) if '.backup-' in f]
        check(not left, 'copies left beside the database: %r' % left)
        # the copy holds its own audit entry
        with tempfile.NamedTemporaryFile(suffix='.db') as f:
            f.write(r.body)
            f.flush()
            db = sqlite3.connect('file:%s?mode=ro' % f.name, uri=True)
            try:
                n = db.execute("SELECT count(*) FROM audit WHERE action = 'backup.create'"
                               ).fetchone()[0]
            finally:
                db.close()
        check(n >= 1, 'the copy holds no backup.create audit entry')
        u = expect(ctx.api.post('/principals', {'type': 'user', 'name': 'backup-nonadmin'}),
                   CREATED, 'a user')
        expect_error(ctx.api.with_token(u['token']).get('/backup'), 403, 'PermissionDenied',
                     'a non-admin backs up', reason='adminRequired')
    add('get_backup_streams_a_checked_copy_to_admins_or_names_pg_dump', backup_api)
