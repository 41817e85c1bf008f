"""rsigntest -- shared helpers for rsign's integration tests (Python stdlib only).

The API suite (tests/api/run-api-tests) and the PKCS#11 module's integration
tests use this module to run a real `rsignd dev` server in a temporary
directory, talk JSON to it over HTTPS, verify signatures with the `openssl`
CLI, and print TAP.

    import os, sys
    sys.path.insert(0, os.path.join(os.environ.get('top_srcdir', '.'), 'tests', 'lib'))
    import rsigntest as rt

    srv = rt.DevServer.start()               # `$top_builddir/rsignd dev --dir <tmp>`
    try:
        api = srv.client()                   # Client authenticated with RSIGN_TOKEN
        r = api.get('/health', token=None)   # Response: .status .json .body .headers
        print(srv.env['RSIGN_PKCS11_CONF'])  # every `export NAME='value'` line it printed
    finally:
        rc = srv.stop()                      # SIGTERM, wait; the exit code (0 = clean)
        srv.cleanup()                        # removes the temp dir (kept if RSIGN_TEST_KEEP=1)

DevServer  starts/stops `rsignd dev`, parses its export lines, keeps its stderr
           in <tmp>/rsignd.log (log_tail() for diagnostics).
Client     JSON over HTTPS with urllib and an ssl context built from
           RSIGN_CA_FILE; never raises on an HTTP status, only on transport errors.
Tap        a TAP producer, plan first: plan(n) prints 1..n before any result;
           run(name, fn) turns Fail/Skip/exceptions into `ok`/`not ok`/`# SKIP`
           lines with `#` diagnostics; done() fails when the results that ran
           differ from the plan.
openssl_*  thin wrappers over the openssl CLI: public keys, certificates,
           signature verification for the 9 signing algorithms of the API;
           verified() turns a failed verification into Fail.

Environment: top_builddir (where rsignd is; default: two levels above this
file), RSIGN_TEST_KEEP=1 keeps temporary directories, RSIGN_TEST_VERBOSE=1
echoes the server log tail on every failure.
"""

import base64
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

import pgtest

__all__ = [
    'Fail', 'Skip', 'ServerError', 'DevServer', 'Client', 'Response', 'Tap',
    'SIGN_ALGS', 'KEY_ALGS', 'alg_hash', 'alg_family', 'alg_applies',
    'key_family', 'key_bits', 'key_curve', 'modulus_bytes', 'b64', 'unb64',
    'openssl', 'openssl_pubkey_pem_from_spki', 'openssl_pubkey_pem_from_cert',
    'openssl_pubkey_der_from_pem', 'openssl_pubkey_text', 'openssl_verify_digest',
    'openssl_verify_data', 'top_builddir', 'top_srcdir', 'hash_len', 'digest', 'pubkey_kind',
    'scratch_file', 'set_scratch_dir', 'verified',
]

# ---------------------------------------------------------------- errors


class Fail(Exception):
    """A test failure; `resp` (a Response) is printed as a diagnostic."""

    def __init__(self, msg, resp=None):
        super().__init__(msg)
        self.resp = resp


class Skip(Exception):
    """Raised by a test that cannot run; the reason goes after `# SKIP`."""


class ServerError(Exception):
    """rsignd could not be started (not built, crashed, timed out)."""


def top_builddir():
    return os.environ.get('top_builddir') or os.path.abspath(
        os.path.join(os.path.dirname(__file__), '..', '..'))


def top_srcdir():
    return os.environ.get('top_srcdir') or os.path.abspath(
        os.path.join(os.path.dirname(__file__), '..', '..'))


def b64(data):
    return base64.b64encode(data).decode('ascii')


def unb64(text):
    return base64.b64decode(text, validate=True)


# ---------------------------------------------------------------- server

_EXPORT_RE = re.compile(r"""^\s*export\s+([A-Za-z_][A-Za-z0-9_]*)=(?:'([^']*)'|"([^"]*)"|(\S*))\s*;?\s*$""")
REQUIRED_EXPORTS = ('RSIGN_URL', 'RSIGN_TOKEN', 'RSIGN_CA_FILE')


try:
    import ctypes
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (ImportError, OSError, AttributeError):
    _prctl = None


def _die_with_parent():
    """In the child before exec: SIGTERM when the test process dies, so an
    interrupted test run leaves no server behind (PR_SET_PDEATHSIG)."""
    if _prctl is not None:
        _prctl(1, int(signal.SIGTERM))


class DevServer:
    """A running `rsignd dev` in a fresh temporary directory.

    root/           tempfile.mkdtemp(); removed by cleanup()
    root/state/     the --dir given to rsignd (created empty by us)
    root/rsignd.log rsignd's stderr
    root/work/      scratch space for tests (work_dir)
    """

    def __init__(self):
        self.proc = None
        self.root = None
        self.state_dir = None
        self.work_dir = None
        self.log_path = None
        self.env = {}
        self.stdout_lines = []
        self.returncode = None
        self._log = None
        self.database = None  # a postgresql:// URI when it runs on PostgreSQL

    @classmethod
    def start(cls, args=(), timeout=60.0, builddir=None, rsignd=None, prefix='rsign-test-'):
        """Starts `rsignd dev --dir DIR *args` and waits (at most `timeout`
        seconds) for its RSIGN_URL/RSIGN_TOKEN/RSIGN_CA_FILE export lines.
        Raises ServerError (with the log tail) when that does not happen."""
        self = cls.spawn(args, builddir=builddir, rsignd=rsignd, prefix=prefix)
        try:
            self.wait_ready(timeout)
        except ServerError:
            self.cleanup()
            raise
        return self

    @classmethod
    def spawn(cls, args=(), builddir=None, rsignd=None, prefix='rsign-test-'):
        """Starts rsignd without waiting; call wait_ready() (from any thread)
        next. Call spawn from the thread that will outlive the server: the
        server gets SIGTERM when that thread's process dies (PR_SET_PDEATHSIG)."""
        self = cls()
        rsignd = rsignd or os.path.join(builddir or top_builddir(), 'rsignd')
        if not os.access(rsignd, os.X_OK):
            raise ServerError('%s is not built' % rsignd)
        self.root = tempfile.mkdtemp(prefix=prefix)
        self.state_dir = os.path.join(self.root, 'state')
        self.work_dir = os.path.join(self.root, 'work')
        os.mkdir(self.state_dir)
        os.mkdir(self.work_dir)
        self.log_path = os.path.join(self.root, 'rsignd.log')
        self._log = open(self.log_path, 'wb')
        cmd = [rsignd, 'dev', '--dir', self.state_dir] + [str(a) for a in args]
        # under tests/lib/with-pg every dev server gets a database of its own
        if '--database' in cmd:
            self.database = cmd[cmd.index('--database') + 1]
        else:
            self.database = pgtest.fresh_database()
            if self.database:
                cmd += ['--database', self.database]
        self._lines = queue.Queue()
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=self._log, start_new_session=True,
                                         preexec_fn=_die_with_parent)
        except OSError as e:
            self.cleanup()
            raise ServerError('cannot run %s: %s' % (rsignd, e))

        def reader():
            for raw in self.proc.stdout:
                line = raw.decode('utf-8', 'replace').rstrip('\n')
                self.stdout_lines.append(line)
                self._lines.put(line)
            self._lines.put(None)
        threading.Thread(target=reader, daemon=True).start()
        return self

    def wait_ready(self, timeout=60.0):
        """Waits for the export lines; raises ServerError (server killed) if
        they do not come within timeout seconds or rsignd exits first."""
        lines = self._lines
        deadline = time.monotonic() + timeout
        grace = None  # once the required exports are in, wait briefly for the rest
        while True:
            have_all = all(k in self.env for k in REQUIRED_EXPORTS)
            if have_all and 'RSIGN_PKCS11_CONF' in self.env:
                break
            now = time.monotonic()
            if have_all:
                grace = grace or now + 1.0
                if now >= grace:
                    break
            if now >= deadline:
                self._abort()
                raise ServerError('rsignd dev printed no %s within %ds; stdout %r\n%s' % (
                    '/'.join(k for k in REQUIRED_EXPORTS if k not in self.env), timeout,
                    self.stdout_lines[-5:], self.log_tail()))
            try:
                line = lines.get(timeout=min(0.2, max(0.01, (grace or deadline) - now)))
            except queue.Empty:
                continue
            if line is None:
                rc = self.proc.wait()
                self.returncode = rc
                if have_all:
                    break
                raise ServerError('rsignd dev exited with %s before it was ready\n%s' % (
                    rc, self.log_tail()))
            m = _EXPORT_RE.match(line)
            if m:
                self.env[m.group(1)] = next(g for g in m.groups()[1:] if g is not None)
        return self

    @property
    def url(self):
        return self.env['RSIGN_URL']

    @property
    def token(self):
        return self.env['RSIGN_TOKEN']

    @property
    def ca_file(self):
        return self.env['RSIGN_CA_FILE']

    def client(self, token=None):
        """A Client for this server, authenticated with `token` (default: admin)."""
        return Client(self.url, self.ca_file, token if token is not None else self.token)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig=signal.SIGTERM):
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout=30.0):
        """Waits for exit; returns the exit code, or None on timeout."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, timeout=30.0):
        """SIGTERM, wait up to `timeout`; SIGKILL after that (returns None then).
        Returns the exit status as subprocess reports it (negative = signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.wait(timeout)
            if rc is None:
                self._abort()
                return None
        self.returncode = self.proc.returncode
        return self.returncode

    def _abort(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def log_tail(self, n=30):
        """The last n lines of rsignd's stderr."""
        try:
            if self._log:
                self._log.flush()
            with open(self.log_path, 'rb') as f:
                data = f.read()
        except (OSError, TypeError):
            return '(no log)'
        tail = data.decode('utf-8', 'replace').splitlines()[-n:]
        return '\n'.join(tail) if tail else '(log empty)'

    def cleanup(self):
        self._abort()
        if self._log:
            self._log.close()
            self._log = None
        if self.root and not os.environ.get('RSIGN_TEST_KEEP'):
            shutil.rmtree(self.root, ignore_errors=True)


# ---------------------------------------------------------------- HTTP client

_DEFAULT = object()


class Response:
    def __init__(self, status, headers, body, method='', path=''):
        self.status = status
        self.headers = headers
        self.body = body
        self.method = method
        self.path = path
        self._json = _DEFAULT

    @property
    def json(self):
        """The parsed body, or None when it is not JSON."""
        if self._json is _DEFAULT:
            try:
                self._json = json.loads(self.body.decode('utf-8'))
            except (ValueError, UnicodeDecodeError):
                self._json = None
        return self._json

    def header(self, name):
        return self.headers.get(name) if self.headers is not None else None

    def describe(self, limit=600):
        body = self.body.decode('utf-8', 'replace')
        if len(body) > limit:
            body = body[:limit] + '...(%d bytes)' % len(self.body)
        return '%s %s -> %s %s' % (self.method, self.path, self.status, body)

    def __repr__(self):
        return '<Response %s>' % self.describe(200)


class Client:
    """JSON over HTTPS against RSIGN_URL + /api/v1. Paths not starting with
    /api/ are prefixed with /api/v1. request() never raises on an HTTP error
    status; it returns the Response."""

    def __init__(self, url, ca_file, token=None, timeout=60.0):
        self.url = url.rstrip('/')
        self.ca_file = ca_file
        self.token = token
        self.timeout = timeout
        self.ctx = ssl.create_default_context(cafile=ca_file)

    def with_token(self, token):
        c = Client.__new__(Client)
        c.__dict__.update(self.__dict__)
        c.token = token
        return c

    def full_url(self, path):
        if not path.startswith('/api/'):
            path = '/api/v1' + path
        return self.url + path

    def request(self, method, path, body=_DEFAULT, token=_DEFAULT, raw=None, headers=None,
                timeout=None):
        """body: JSON-serialisable object; raw: bytes sent as-is instead.
        token: overrides the client's token; None sends no Authorization."""
        token = self.token if token is _DEFAULT else token
        data = None
        hdrs = {'Accept': 'application/json'}
        if raw is not None:
            data = raw
            hdrs['Content-Type'] = 'application/json'
        elif body is not _DEFAULT:
            data = json.dumps(body).encode('utf-8')
            hdrs['Content-Type'] = 'application/json'
        if token is not None:
            hdrs['Authorization'] = 'Bearer ' + token
        hdrs.update(headers or {})
        req = urllib.request.Request(self.full_url(path), data=data, headers=hdrs, method=method)
        try:
            with urllib.request.urlopen(req, context=self.ctx,
                                        timeout=timeout or self.timeout) as r:
                return Response(r.status, r.headers, r.read(), method, path)
        except urllib.error.HTTPError as e:
            try:
                body = e.read()
            except Exception:  # connection closed under us
                body = b''
            return Response(e.code, e.headers, body, method, path)
        except (urllib.error.URLError, OSError) as e:
            raise Fail('%s %s: transport error: %s' % (method, path, e))

    def get(self, path, **kw):
        return self.request('GET', path, **kw)

    def post(self, path, body=_DEFAULT, **kw):
        return self.request('POST', path, body=body, **kw)

    def patch(self, path, body=_DEFAULT, **kw):
        return self.request('PATCH', path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request('DELETE', path, **kw)


# ---------------------------------------------------------------- TAP

class Tap:
    """Prints TAP, plan first: plan(n) prints `1..n` before the first result
    (count the tests from the same lists that run them). run(name, fn, *args)
    calls fn(*args): returning normally is `ok`, raising Skip is
    `ok ... # SKIP reason`, anything else `not ok` with `#` diagnostic lines.
    `on_fail` (optional callable returning text) adds context, e.g. a server
    log tail, to every failure when verbose. done() is the exit status: 1 when
    a test failed or the results that ran differ from the plan (the TAP
    driver reports that as an ERROR too)."""

    def __init__(self, out=None, on_fail=None):
        self.out = out or sys.stdout
        self.n = 0
        self.planned = None
        self.failed = []
        self.skipped = []
        self.on_fail = on_fail
        self.lock = threading.Lock()

    def _emit(self, text):
        with self.lock:
            self.out.write(text + '\n')
            self.out.flush()

    def plan(self, n, skip_reason=None):
        """Declares the number of results; once, before the first. A run
        that can test nothing here plans 0 with the reason."""
        with self.lock:
            if self.planned is not None or self.n:
                raise RuntimeError('plan(%d) after a plan or a result' % n)
            self.planned = n
        self._emit('1..%d' % n + (' # SKIP ' + ' '.join(str(skip_reason).split())
                                   if skip_reason else ''))

    def _result(self, make):
        """Numbers one result; make(n) is its text."""
        with self.lock:
            if self.planned is None:
                raise RuntimeError('a result before plan()')
            self.n += 1
            self.out.write(make(self.n) + '\n')
            self.out.flush()

    def diag(self, text):
        self._emit('\n'.join('# ' + l for l in str(text).splitlines()))

    def ok(self, name, passed, diag=None):
        lines = [] if passed else ['#   ' + l for l in str(diag or 'failed').splitlines()]
        if not passed:
            self.failed.append(name)
        self._result(lambda n: '\n'.join(['%sok %d - %s' % ('' if passed else 'not ', n, name)]
                                          + lines))
        return passed

    def skip(self, name, reason):
        self.skipped.append(name)
        reason = ' '.join(str(reason).split())
        self._result(lambda n: 'ok %d - %s # SKIP %s' % (n, name, reason))

    def run(self, name, fn, *args, **kw):
        try:
            fn(*args, **kw)
        except Skip as e:
            self.skip(name, str(e) or 'skipped')
            return None
        except Fail as e:
            d = str(e)
            if e.resp is not None:
                d += '\n' + e.resp.describe()
            if self.on_fail and os.environ.get('RSIGN_TEST_VERBOSE'):
                d += '\n' + (self.on_fail() or '')
            return self.ok(name, False, d)
        except Exception as e:  # a bug in the test or an unexpected server answer
            tb = traceback.format_exception(type(e), e, e.__traceback__)
            return self.ok(name, False, 'exception: %s\n%s' % (e, ''.join(tb[-3:]).rstrip()))
        return self.ok(name, True)

    def done(self):
        if self.planned is None:
            self._emit('Bail out! no plan() in this run')
            return 1
        if self.n != self.planned:
            self.diag('planned %d tests but ran %d' % (self.planned, self.n))
            return 1
        return 1 if self.failed else 0


# ---------------------------------------------------------------- algorithms

SIGN_ALGS = (
    'RSASSA_PKCS1_V1_5_SHA256', 'RSASSA_PKCS1_V1_5_SHA384', 'RSASSA_PKCS1_V1_5_SHA512',
    'RSASSA_PSS_SHA256', 'RSASSA_PSS_SHA384', 'RSASSA_PSS_SHA512',
    'ECDSA_SHA256', 'ECDSA_SHA384', 'ECDSA_SHA512',
)
KEY_ALGS = ('RSA_2048', 'RSA_3072', 'RSA_4096', 'EC_P256', 'EC_P384', 'EC_P521')


def alg_hash(alg):
    """'sha256' for ..._SHA256 and the alias ..._SHA_256."""
    m = re.search(r'SHA_?(256|384|512)$', alg)
    return 'sha' + m.group(1)


def hash_len(hname):
    return {'sha256': 32, 'sha384': 48, 'sha512': 64}[hname]


def alg_family(alg):
    if alg.startswith('RSASSA_PKCS1'):
        return 'pkcs1'
    if alg.startswith('RSASSA_PSS'):
        return 'pss'
    return 'ecdsa'


def key_family(kt):
    return 'rsa' if kt.startswith('RSA') else 'ec'


def alg_applies(alg, kt):
    return (alg_family(alg) == 'ecdsa') == (key_family(kt) == 'ec')


def key_bits(kt):
    return int(re.search(r'(\d+)$', kt).group(1))


def key_curve(kt):
    """OpenSSL's short curve name for EC_P256/384/521, None for RSA."""
    return {'EC_P256': 'prime256v1', 'EC_P384': 'secp384r1', 'EC_P521': 'secp521r1'}.get(kt)


def modulus_bytes(kt):
    return key_bits(kt) // 8


# ---------------------------------------------------------------- openssl

_tmp_lock = threading.Lock()
_tmp_dir = None


def _scratch():
    global _tmp_dir
    with _tmp_lock:
        if _tmp_dir is None or not os.path.isdir(_tmp_dir):
            _tmp_dir = tempfile.mkdtemp(prefix='rsign-ossl-')
        return _tmp_dir


def set_scratch_dir(path):
    """Where the openssl helpers write their temporary files."""
    global _tmp_dir
    _tmp_dir = path


def scratch_file(data, suffix='.bin'):
    """Writes bytes/str to a new file in the scratch dir; returns its path."""
    fd, path = tempfile.mkstemp(suffix=suffix, dir=_scratch())
    with os.fdopen(fd, 'wb') as f:
        f.write(data.encode('utf-8') if isinstance(data, str) else data)
    return path


def openssl(args, input=None, check=True):
    """Runs `openssl *args`; returns CompletedProcess (bytes). Raises Fail with
    openssl's stderr when it fails and check is true."""
    p = subprocess.run(['openssl'] + list(args), input=input, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if check and p.returncode != 0:
        raise Fail('openssl %s failed: %s' % (' '.join(args[:3]),
                                              p.stderr.decode('utf-8', 'replace').strip()[-400:]))
    return p


def openssl_pubkey_pem_from_spki(spki_b64):
    """PEM public key from base64 DER SubjectPublicKeyInfo (raises Fail if it
    does not parse)."""
    try:
        der = unb64(spki_b64)
    except (ValueError, TypeError) as e:
        raise Fail('publicKey is not base64: %s' % e)
    return openssl(['pkey', '-pubin', '-inform', 'DER', '-outform', 'PEM'],
                   input=der).stdout.decode('ascii')


def openssl_pubkey_der_from_pem(pem):
    return openssl(['pkey', '-pubin', '-outform', 'DER'], input=pem.encode()).stdout


def openssl_pubkey_pem_from_cert(cert_pem):
    return openssl(['x509', '-noout', '-pubkey'], input=cert_pem.encode()).stdout.decode('ascii')


def openssl_pubkey_text(pem):
    return openssl(['pkey', '-pubin', '-noout', '-text_pub'],
                   input=pem.encode()).stdout.decode('utf-8', 'replace')


def pubkey_kind(pem):
    """('rsa', bits) or ('ec', curve short name) of a PEM public key."""
    text = openssl_pubkey_text(pem)
    m = re.search(r'ASN1 OID:\s*(\S+)', text)
    if m:
        return ('ec', m.group(1))
    m = re.search(r'Public-Key:\s*\((\d+) bit\)', text)
    if m and 'Modulus' in text:
        return ('rsa', int(m.group(1)))
    raise Fail('unrecognised public key: %s' % text[:200])


def _pss_opts(flag, salt):
    return [flag, 'rsa_padding_mode:pss', flag, 'rsa_pss_saltlen:%s' % salt]


def openssl_verify_digest(pub_pem, alg, digest, sig, salt_len=None):
    """Verifies `sig` over a precomputed digest with `openssl pkeyutl -verify`.
    For PSS, salt_len defaults to the hash length (API default). Returns
    (ok, openssl output)."""
    h = alg_hash(alg)
    fam = alg_family(alg)
    key = scratch_file(pub_pem, '.pem')
    d = scratch_file(digest)
    s = scratch_file(sig)
    args = ['pkeyutl', '-verify', '-pubin', '-inkey', key, '-in', d, '-sigfile', s]
    if fam == 'pkcs1':
        args += ['-pkeyopt', 'rsa_padding_mode:pkcs1']
    elif fam == 'pss':
        args += _pss_opts('-pkeyopt', hash_len(h) if salt_len is None else salt_len)
    args += ['-pkeyopt', 'digest:' + h]
    p = openssl(args, check=False)
    out = (p.stdout + p.stderr).decode('utf-8', 'replace').strip()
    return p.returncode == 0 and 'Success' in out, out


def openssl_verify_data(pub_pem, alg, data, sig, salt_len=None):
    """Verifies `sig` over raw data with `openssl dgst -verify`."""
    h = alg_hash(alg)
    fam = alg_family(alg)
    key = scratch_file(pub_pem, '.pem')
    d = scratch_file(data)
    s = scratch_file(sig)
    args = ['dgst', '-' + h, '-verify', key, '-signature', s]
    if fam == 'pss':
        args += _pss_opts('-sigopt', hash_len(h) if salt_len is None else salt_len)
    elif fam == 'pkcs1':
        args += ['-sigopt', 'rsa_padding_mode:pkcs1']
    args.append(d)
    p = openssl(args, check=False)
    out = (p.stdout + p.stderr).decode('utf-8', 'replace').strip()
    return p.returncode == 0 and 'Verified OK' in out, out


def verified(res, what):
    """res: the (ok, output) of openssl_verify_*; raises Fail unless ok."""
    good, out = res
    if not good:
        raise Fail('%s: openssl does not verify the signature: %s' % (what, out[-600:]))


def digest(hname, data):
    return hashlib.new(hname, data).digest()
