"""More rsignd replicas of one `rsignd dev` (the helper of run-failover and
run-replicas; Python stdlib only).

    a = rt.DevServer.start(...)            # replica A: `rsignd dev --dir DIR`
    b = Replica.start(a, 'b')              # `rsignd serve -c DIR/rsignd.conf
                                           #  --listen 127.0.0.1:PORT`
    b.url, b.proc, b.log_path; b.stop()

A replica serves A's configuration, so the same database (A's SQLite file,
or the PostgreSQL database A was started on with --database) and the same
SoftHSM2 token directory, as replicas share one database and one HSM."""

import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import urllib.parse

import rsigntest as rt


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _die_with_parent():
    rt._die_with_parent()  # noqa: SLF001 -- the same guard as DevServer's children


def shared_database(a, pg):
    """What the replicas of A will share: the `database =` of A's
    rsignd.conf, checked against --pg (pg) and A's own --database. Returns
    its description for a diagnostic line; Fail when they disagree."""
    with open(os.path.join(a.state_dir, 'rsignd.conf')) as f:
        db = [l.split('=', 1)[1].strip() for l in f if l.split('=', 1)[0].strip() == 'database']
    if len(db) != 1:
        raise rt.Fail('rsignd.conf of A has %d database lines' % len(db))
    on_pg = db[0].startswith('postgresql:')
    if on_pg != pg or (pg and db[0] != a.database):
        raise rt.Fail('--pg %s, but the replicas share database %s (A was started with %s)'
                      % ('given' if pg else 'not given', db[0], a.database))
    return 'PostgreSQL (%s)' % db[0] if on_pg else 'one SQLite file (%s)' % db[0]


class Replica:
    """`rsignd serve -c A's rsignd.conf --listen 127.0.0.1:PORT`."""

    def __init__(self):
        self.proc = None
        self.url = None
        self.log_path = None

    @classmethod
    def start(cls, a, name):
        """Starts it and returns once it logs that it serves (an event: the
        log line, or the end of its stderr when it exits first)."""
        self = cls()
        conf = os.path.join(a.state_dir, 'rsignd.conf')
        port = free_port()
        self.log_path = os.path.join(a.root, 'replica-%s.log' % name)
        log = open(self.log_path, 'wb')
        self.proc = subprocess.Popen([os.path.join(rt.top_builddir(), 'rsignd'), 'serve', '-c',
                                      conf, '--listen', '127.0.0.1:%d' % port],
                                     stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.PIPE, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        ready = threading.Event()

        def reader():
            for raw in self.proc.stderr:
                log.write(raw)
                log.flush()
                if b' serving ' in raw:
                    ready.set()
            ready.set()
            log.close()
        threading.Thread(target=reader, daemon=True).start()
        ready.wait()
        if self.proc.poll() is not None:
            raise rt.Fail('replica %s exited %s before serving; see %s'
                          % (name, self.proc.returncode, self.log_path))
        self.url = 'https://127.0.0.1:%d' % port
        return self

    def client(self, a, token=None):
        return rt.Client(self.url, a.ca_file, token if token is not None else a.token)

    def stop(self):
        """SIGTERM and wait; the exit status (negative: a signal)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait() if self.proc else None

    def log_tail(self, n=10):
        try:
            with open(self.log_path, 'rb') as f:
                return '\n'.join(f.read().decode('utf-8', 'replace').splitlines()[-n:])
        except OSError:
            return '(no log)'


# ---- objects the scenarios need, made through the API of one replica

def expect(resp, status, what):
    """The JSON of resp when its status is one of status (an int or a
    tuple), else Fail."""
    if resp.status not in (status if isinstance(status, tuple) else (status,)):
        raise rt.Fail('%s: expected %s' % (what, status), resp)
    return resp.json


def make_user(admin, name):
    """A user principal; its JSON has `id` and `token`."""
    return expect(admin.post('/principals', {'type': 'user', 'name': name}), 201,
                  'create user %s' % name)


def make_signer(admin, name, operator_id, policy_id=None):
    """A new EC P-256 key, a certificate for it and a signer `name` with
    operator_id as its operator; returns the signer's JSON plus `pub`, the
    certificate's public key in PEM (for openssl)."""
    k = expect(admin.post('/pki/keys', {'name': name + '-key', 'keyAlgorithm': 'EC_P256'}), 201,
               'create key %s-key' % name)
    c = expect(admin.post('/pki/certificates/issue', {'keyId': k['id'], 'commonName': name,
                                                       'ttlDays': 1}), 201,
               'issue a certificate for %s' % name)
    body = {'name': name, 'certificateId': c['id']}
    if policy_id:
        body['policyId'] = policy_id
    s = expect(admin.post('/pki/signers', body), 201, 'create signer %s' % name)
    expect(admin.post('/pki/signers/%s/members' % s['id'],
                      {'principalId': operator_id, 'role': 'operator'}), 201,
           'make the operator of %s' % name)
    cert = expect(admin.get('/pki/signers/%s/certificate' % s['id']), 200,
                  'certificate of %s' % name)
    s['pub'] = rt.openssl_pubkey_pem_from_cert(cert['certificatePem'])
    return s


def make_policy(admin, name, approver_id, max_signings):
    return expect(admin.post('/pki/signing-policies', {
        'name': name, 'approvers': [approver_id], 'requiredApprovals': 1,
        'constraints': {'maxSignings': max_signings}}), 201, 'create policy %s' % name)


def grant(requester, approver, signer_id, signings):
    """requester asks for `signings` signings on the signer, approver
    approves: the grant's JSON (maxSignings checked)."""
    rq = expect(requester.post('/pki/signers/%s/requests' % signer_id, {
        'justification': 'replica test', 'requestedSignings': signings}), 201, 'request')
    ap = expect(approver.post('/pki/signing-requests/%s/approve' % rq['id'], {}), 200, 'approve')
    if ap.get('status') != 'approved' or not ap.get('grantId'):
        raise rt.Fail('the approval made no grant: %r' % ap)
    gs = expect(approver.get('/pki/grants?signerId=%s' % signer_id), 200, 'grants')['grants']
    g = [g for g in gs if g['id'] == ap['grantId']]
    if len(g) != 1 or g[0]['maxSignings'] != signings or g[0]['status'] != 'active':
        raise rt.Fail('grant %s: not one active grant of %d signings: %r'
                      % (ap['grantId'], signings, gs))
    return g[0]


class Preconnected:
    """One HTTPS connection of an rsigntest Client (its URL, CA and token),
    the TLS handshake done up front: a request sent on it once a barrier
    opens reaches rsignd at once, so calls released together arrive
    together. Send within rsignd's request_header_timeout (10 s) of
    connecting."""

    def __init__(self, client):
        self.client = client
        u = urllib.parse.urlsplit(client.url)
        self.conn = http.client.HTTPSConnection(u.hostname, u.port, context=client.ctx,
                                                timeout=client.timeout)
        self.conn.connect()

    def post(self, path, body, headers=None):
        """As Client.post: a Response for any status, Fail on a transport error."""
        url = urllib.parse.urlsplit(self.client.full_url(path))
        hdrs = {'Accept': 'application/json', 'Content-Type': 'application/json',
                'Authorization': 'Bearer ' + self.client.token}
        hdrs.update(headers or {})
        try:
            self.conn.request('POST', url.path, body=json.dumps(body).encode(), headers=hdrs)
            r = self.conn.getresponse()
            return rt.Response(r.status, r.headers, r.read(), 'POST', path)
        except (OSError, http.client.HTTPException) as e:
            raise rt.Fail('POST %s: transport error: %s' % (path, e))
        finally:
            self.conn.close()
