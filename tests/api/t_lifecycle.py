"""Everything that needs time or a process: expired access tokens (a second
server with --access-token-ttl 2), rsignctl end to end, secrets at rest,
SIGTERM with requests in flight, clean exit."""

import binascii
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pgtest
import rsigntest as rt
from apictx import CREATED, RawConn, check, expect, expect_error, items
from rsigntest import Fail, Skip

B_TTL = 2


def _b_login_make(ctx):
    b = ctx.srv_b()
    api = b.client()
    j = expect(api.post('/principals', {'type': 'identity', 'name': 'ttl-bot'}), CREATED, 'B: identity')
    t0 = time.monotonic()
    lj = expect(api.post('/auth/universal-auth/login',
                         {'clientId': j['clientId'], 'clientSecret': j['clientSecret']}, token=None),
                200, 'B: login')
    first = b.client(lj['accessToken']).get('/auth/whoami')
    return {'login': lj, 't0': t0, 'first': first, 'first_after': time.monotonic() - t0, 'creds': j}


def register_b_login(ctx):
    """Called early: logs an identity in on server B in the background, so
    its access token has expired by the time the tests below run."""
    return ctx.background(b_login, ctx)


def b_login(ctx):
    return ctx.fixture('b-login', lambda: _b_login_make(ctx))


def register(add, ctx):

    # ---- expired access token
    def ttl_reported():
        st = b_login(ctx)
        lj = st['login']
        check(lj.get('expiresIn') == B_TTL, 'expiresIn %r with --access-token-ttl %d' % (lj.get('expiresIn'), B_TTL))
        if st['first_after'] < B_TTL - 1:  # a loaded machine may have taken too long to tell
            expect(st['first'], 200, 'access token right after login')
    add('access_token_ttl_is_configurable_and_reported', ttl_reported)

    def expired_token():
        st = b_login(ctx)
        wait = st['t0'] + B_TTL + 1.2 - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        b = ctx.srv_b()
        cl = b.client(st['login']['accessToken'])
        expect_error(cl.get('/auth/whoami'), 401, 'Unauthorized', 'whoami with an expired access token',
                     reason='tokenInvalid')
        r = cl.post('/pki/signers/demo-ec/sign', {'data': rt.b64(b'x'), 'signingAlgorithm': 'ECDSA_SHA256'})
        expect_error(r, 401, 'Unauthorized', 'sign with an expired access token')
        expect(b.client().get('/auth/whoami'), 200, 'user token unaffected by the access-token TTL')
        c = st['creds']
        lj = expect(b.client().post('/auth/universal-auth/login',
                                    {'clientId': c['clientId'], 'clientSecret': c['clientSecret']}, token=None),
                    200, 'login again')
        expect(b.client(lj['accessToken']).get('/auth/whoami'), 200, 'fresh access token')
    add('expired_access_token_is_401', expired_token)

    # ---- rsignctl
    def ctl(args, token=None, timeout=60):
        if not os.access(ctx.rsignctl, os.X_OK):
            raise Skip('rsignctl is not built at %s' % ctx.rsignctl)
        s = ctx.srv
        env = dict(os.environ, RSIGN_URL=s.url, RSIGN_TOKEN=token or s.token, RSIGN_CA_FILE=s.ca_file,
                   HOME=s.work_dir)
        env.pop('RSIGN_CONFIG', None)
        p = subprocess.run([ctx.rsignctl] + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        out, err = p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8', 'replace')
        return p.returncode, out, err

    def ctl_ok(args):
        rc, out, err = ctl(args)
        check(rc == 0, 'rsignctl %s exited %d\nstdout: %s\nstderr: %s' % (' '.join(args), rc, out[-500:], err[-500:]))
        return out

    def ctl_health():
        out = ctl_ok(['health'])
        check(re.search(r'\bok\b', out, re.I), 'health output lacks "ok": %r' % out[:300])
    add('rsignctl_health', ctl_health)

    def ctl_list():
        out = ctl_ok(['signer', 'list'])
        check('demo-ec' in out and 'demo-rsa' in out, 'signer list lacks the demo signers: %r' % out[:500])
        out = ctl_ok(['signer', 'list', '--json'])
        try:
            j = json.loads(out)
        except ValueError:
            raise Fail('signer list --json is not JSON: %r' % out[:300])
        names = {x.get('name') for x in (j if isinstance(j, list) else j.get('signers', []))}
        check({'demo-ec', 'demo-rsa'} <= names, 'signer list --json names %r' % names)
    add('rsignctl_signer_list', ctl_list)

    def signature_candidates(out):
        try:
            j = json.loads(out)
            if isinstance(j, dict) and j.get('signature'):
                return [rt.unb64(j['signature'])]
        except ValueError:
            pass
        cands = []
        for tok in re.findall(r'[A-Za-z0-9+/=]{40,}', out):
            try:
                cands.append(rt.unb64(tok))
            except (ValueError, binascii.Error):
                pass
            if re.fullmatch(r'[0-9a-fA-F]+', tok) and len(tok) % 2 == 0:
                cands.append(bytes.fromhex(tok))
        return cands

    def ctl_sign():
        d = hashlib.sha256(os.urandom(64)).digest()
        out = ctl_ok(['sign', 'demo-ec', '--alg', 'ECDSA_SHA256', '--digest', d.hex()])
        pub = ctx.signer_pub('demo-ec')
        for sig in signature_candidates(out):
            if rt.openssl_verify_digest(pub, 'ECDSA_SHA256', d, sig)[0]:
                ctx.ctl_digest = d
                return
        raise Fail('no signature in the output verifies over the digest: %r' % out[:500])
    add('rsignctl_sign_digest_verifies', ctl_sign)

    def ctl_history():
        d = getattr(ctx, 'ctl_digest', None)
        if d is None:
            raise Fail('rsignctl_sign_digest_verifies did not leave a signature')
        out = ctl_ok(['history', 'demo-ec', '--json'])
        try:
            j = json.loads(out)
        except ValueError:
            raise Fail('history --json is not JSON: %r' % out[:300])
        ops = j if isinstance(j, list) else j.get('operations', [])
        want = hashlib.sha256(d).hexdigest()
        check(any(o.get('dataHash') == want and o.get('status') == 'success' for o in ops),
              'history lacks the rsignctl signature (dataHash %s): %r' % (want, ops[:3]))
    add('rsignctl_history_json_shows_the_signature', ctl_history)

    def ctl_bad_token():
        rc, out, err = ctl(['signer', 'list'], token='rsu_' + '0' * 64)
        check(rc != 0, 'rsignctl exited 0 with a bad token')
        check(re.search(r'401 Unauthorized \(tokenInvalid\)', err),
              'stderr lacks "401 Unauthorized (tokenInvalid)": %r' % (out + err)[:300])
    add('rsignctl_reports_unauthorized_and_exits_nonzero', ctl_bad_token)

    # ---- SIGTERM on server B with requests in flight
    def shutdown():
        def make():
            b = ctx.srv_b()
            api = b.client()
            sid = expect(api.get('/pki/signers/demo-rsa'), 200, 'B: demo-rsa')['id']
            pub = rt.openssl_pubkey_pem_from_cert(
                expect(api.get('/pki/signers/%s/certificate' % sid), 200)['certificatePem'])
            path = '/pki/signers/%s/sign' % sid
            datas = [os.urandom(64) for _ in range(5)]
            bodies = [json.dumps({'data': rt.b64(x), 'signingAlgorithm': 'RSASSA_PKCS1_V1_5_SHA256'}).encode()
                      for x in datas]
            conns = [RawConn(b.url, b.ca_file) for _ in bodies]  # TLS handshakes done: connected
            for c, body in zip(conns[:4], bodies[:4]):
                c.send(c.head('POST', path, b.token, len(body)) + body)
            slow, sbody = conns[4], bodies[4]
            slow.send(slow.head('POST', path, b.token, len(sbody)) + sbody[:len(sbody) // 2])
            time.sleep(0.05)
            b.signal(signal.SIGTERM)
            time.sleep(0.3)
            try:
                slow.send(sbody[len(sbody) // 2:])
            except OSError:
                pass
            results = []
            for c in conns:
                try:
                    results.append(c.read_response('POST', path))
                except Fail as e:
                    results.append(e)
            rc = b.wait(30)
            if rc is None:
                b.stop(5)
            return {'results': results, 'rc': rc, 'pub': pub, 'datas': datas, 'log': b.log_tail(15)}
        return ctx.fixture('b-shutdown', make)

    def check_done(i, st):
        r = st['results'][i]
        if isinstance(r, Exception):
            raise Fail('request %d: %s' % (i, r))
        j = expect(r, 200, 'request %d' % i)
        ok, out = rt.openssl_verify_data(st['pub'], 'RSASSA_PKCS1_V1_5_SHA256', st['datas'][i],
                                         rt.unb64(j.get('signature', '')))
        check(ok, 'request %d: signature does not verify: %s' % (i, out))

    def inflight():
        st = shutdown()
        for i in range(4):
            check_done(i, st)
    add('sigterm_finishes_sign_requests_in_flight', inflight)

    def inflight_partial():
        st = shutdown()
        check_done(4, st)
    add('sigterm_finishes_request_whose_body_was_still_arriving', inflight_partial)

    def exit_zero_b():
        st = shutdown()
        check(st['rc'] == 0, 'exit status %r after SIGTERM with requests in flight\n%s' % (st['rc'], st['log']))
    add('sigterm_with_requests_in_flight_exits_zero', exit_zero_b)

    # ---- the token itself: private keys never leave it
    def token_keys():
        tool = shutil.which('pkcs11-tool')
        if not tool:
            raise Skip('pkcs11-tool (opensc) is not installed')
        s = ctx.srv
        conf = {}
        try:
            for line in open(os.path.join(s.state_dir, 'rsignd.conf')):
                k, sep, v = line.partition('=')
                if sep and not k.strip().startswith('#'):
                    conf[k.strip()] = v.strip()
        except OSError:
            raise Skip('rsignd dev wrote no rsignd.conf to find the token')
        module = conf.get('pkcs11_module') or conf.get('module') or '/usr/lib/softhsm/libsofthsm2.so'
        if not all(conf.get(k) for k in ('softhsm2_conf', 'token_label', 'pin_file')):
            raise Skip('rsignd.conf lacks softhsm2_conf/token_label/pin_file: %r' % sorted(conf))
        pin = open(conf['pin_file']).read().strip()
        env = dict(os.environ, SOFTHSM2_CONF=conf['softhsm2_conf'])
        p = subprocess.run([tool, '--module', module, '--token-label', conf['token_label'], '--login',
                            '--pin', pin, '--list-objects', '--type', 'privkey'], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        out = p.stdout.decode('utf-8', 'replace')
        check(p.returncode == 0, 'pkcs11-tool failed: %s' % p.stderr.decode()[-300:])
        objs = out.split('Private Key Object')[1:]
        keys = items(expect(ctx.api.get('/pki/keys?limit=100'), 200), 'keys')
        check(len(objs) >= len(keys), '%d private keys in the token, %d keys in the API' % (len(objs), len(keys)))
        bad = [o.strip().splitlines()[0:3] for o in objs
               if not re.search(r'Access:.*\bsensitive\b', o) or 'never extractable' not in o]
        check(not bad, 'private keys not sensitive or extractable: %r' % bad)
    add('private_keys_in_token_are_sensitive_and_never_extractable', token_keys)

    def plain_http():
        s = ctx.srv
        host, port = s.url.split('//')[1].split(':')
        with socket.create_connection((host, int(port)), timeout=10) as c:
            c.sendall(b'GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
            data = b''
            try:
                while len(data) < 4096:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
        check(b'"status"' not in data, 'plain HTTP on the HTTPS port answered: %r' % data[:200])
        expect(ctx.api.get('/health', token=None), 200, 'HTTPS still serves')
    add('plain_http_is_not_served_on_the_https_port', plain_http)

    # ---- server A: secrets at rest, then stop
    def stop_a():
        def make():
            s = ctx.srv
            rc = s.stop(30)
            return {'rc': rc, 'log': s.log_tail(15)}
        return ctx.fixture('a-stop', make)

    def exit_zero_a():
        st = stop_a()
        check(st['rc'] == 0, 'exit status %r after SIGTERM\n%s' % (st['rc'], st['log']))
    add('sigterm_stops_server_with_exit_zero', exit_zero_a)

    def at_rest():
        p = ctx.people()
        stop_a()  # the database files are complete once the server has exited
        secrets = {'admin token': ctx.srv.token, 'alice token': p['alice']['token'],
                   'ci-bot clientSecret': p['ci-bot']['clientSecret'],
                   'ci-bot access token': p['ci-bot']['token']}
        files = []
        for root, _, names in os.walk(ctx.srv.state_dir):
            for n in names:
                path = os.path.join(root, n)
                try:
                    with open(path, 'rb') as f:
                        head = f.read(16)
                except OSError:
                    continue
                if head.startswith(b'SQLite format 3') or n.endswith(('-wal', '-journal', '.db', '.sqlite')):
                    files.append(path)
        blobs = [(os.path.relpath(path, ctx.srv.state_dir), open(path, 'rb').read()) for path in files]
        if ctx.srv.database:  # PostgreSQL: every row, as pg_dump writes them
            blobs.append(('the PostgreSQL database', pgtest.dump(ctx.srv.database)))
        check(blobs, 'no SQLite database found under the state directory')
        leaks = []
        for where, blob in blobs:
            for what, sec in secrets.items():
                if sec and (sec.encode() in blob or sec.split('_', 1)[-1].encode() in blob):
                    leaks.append('%s in %s' % (what, where))
        check(not leaks, 'secrets stored in plaintext: %s' % ', '.join(leaks))
    add('tokens_and_secrets_stored_only_as_hashes', at_rest)
