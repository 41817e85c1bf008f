"""Idempotency-Key on the sign endpoint: a retry of a key by the same
principal gets the first answer back (the same signature bytes, operationId
and grantId) with no second history record and no second grant use; the key
with other data is 409 idempotencyKeyReused; keys are per principal; a
malformed key is 400 invalidIdempotencyKey; a refused attempt claims no key;
concurrent duplicates give one signature and one record."""

import hashlib
import os
import subprocess
import threading
import uuid

import rsigntest as rt
from apictx import check, expect, expect_error

ALG = 'ECDSA_SHA256'  # randomised signatures: a second signing would differ


def register(add, ctx):
    def signer():
        """'idem-ec' (EC P-256): alice and ci-bot operators."""
        def make():
            s = ctx.make_signer('idem-ec', ctx.cert('EC_P256')['id'], 'idempotency')
            ctx.member(s['id'], 'alice', 'operator')
            ctx.member(s['id'], 'ci-bot', 'operator')
            return s
        return ctx.fixture('idem-signer', make)

    def other_signer():
        def make():
            s = ctx.make_signer('idem-ec-2', ctx.cert('EC_P256')['id'], 'idempotency 2')
            ctx.member(s['id'], 'alice', 'operator')
            return s
        return ctx.fixture('idem-signer-2', make)

    def who(name):
        return ctx.as_(ctx.people()[name]['token'])

    def sign(client, s, data, key, alg=ALG, is_digest=True, **extra):
        body = {'data': rt.b64(data), 'signingAlgorithm': alg, 'isDigest': is_digest}
        body.update(extra)
        hdrs = {'Idempotency-Key': key} if key is not None else {}
        return client.post('/pki/signers/%s/sign' % s['id'], body, headers=hdrs)

    def records(s, op_id=None):
        """Success records of s (all, or those of op_id)."""
        j = expect(ctx.api.get('/pki/signers/%s/operations?status=success&limit=100' % s['id']),
                   200, 'history')
        ops = j['operations']
        check(j['totalCount'] <= 100, 'history page too short for this test')
        return [o for o in ops if op_id is None or o['id'] == op_id]

    def verify(s, data, r):
        return ctx.verify(ctx.signer_pub(s['id']), ALG, data, True, r)

    def digest():
        return hashlib.sha256(os.urandom(16)).digest()

    def same_key_twice():
        s, d, key = signer(), digest(), str(uuid.uuid4())
        before = len(records(s))
        r1 = sign(who('alice'), s, d, key)
        j1 = verify(s, d, r1)
        r2 = sign(who('alice'), s, d, key)
        j2 = verify(s, d, r2)
        check(rt.unb64(j1['signature']) == rt.unb64(j2['signature']),
              'the retry got another signature: %s vs %s' % (j1['signature'], j2['signature']), r2)
        check(j1 == j2, 'the retry got another answer: %r vs %r' % (j1, j2), r2)
        check(len(records(s, j1['operationId'])) == 1, 'no record of the first signing')
        check(len(records(s)) == before + 1, 'a retry of a key added a history record: %d -> %d'
              % (before, len(records(s))))
    add('idempotency_same_key_twice_same_signature_one_record', same_key_twice)

    def without_key_signs_twice():
        # the control: without the header, two calls are two signings
        s, d = signer(), digest()
        j1 = verify(s, d, sign(who('alice'), s, d, None))
        j2 = verify(s, d, sign(who('alice'), s, d, None))
        check(j1['operationId'] != j2['operationId'], 'two calls without a key share an operation')
    add('idempotency_without_key_two_calls_two_operations', without_key_signs_twice)

    def other_data():
        s, d, key = signer(), digest(), str(uuid.uuid4())
        first = verify(s, d, sign(who('alice'), s, d, key))
        before = len(records(s))
        cases = (('other data', dict(data=digest())),
                 ('other algorithm', dict(alg='ECDSA_SHA384',
                                          data=hashlib.sha384(b'x').digest())),
                 ('raw data instead of a digest', dict(is_digest=False)),
                 ('other signer', dict(s=other_signer())))
        for what, kw in cases:
            args = dict(s=s, data=d)
            args.update(kw)
            r = sign(who('alice'), args.pop('s'), args.pop('data'), key, **args)
            expect_error(r, 409, 'Conflict', what, reason='idempotencyKeyReused')
        again = verify(s, d, sign(who('alice'), s, d, key))
        check(again == first, 'after the 409s the key no longer answers as the first time')
        check(len(records(s)) == before, 'a 409 added a success record')
    add('idempotency_same_key_other_request_is_409', other_data)

    def metadata_is_not_the_request():
        s, d, key = signer(), digest(), str(uuid.uuid4())
        j1 = verify(s, d, sign(who('alice'), s, d, key, clientMetadata={'run': '1'}))
        j2 = verify(s, d, sign(who('alice'), s, d, key, clientMetadata={'run': '2'}))
        check(j1 == j2, 'clientMetadata changed what a key answers')
    add('idempotency_client_metadata_does_not_change_the_request', metadata_is_not_the_request)

    def alias_is_the_same_request():
        s, d, key = signer(), digest(), str(uuid.uuid4())
        j1 = verify(s, d, sign(who('alice'), s, d, key))
        j2 = verify(s, d, sign(who('alice'), s, d, key, alg='ECDSA_SHA_256'))
        check(j1 == j2, 'the algorithm alias ECDSA_SHA_256 made the retry another request')
    add('idempotency_algorithm_alias_is_the_same_request', alias_is_the_same_request)

    def per_principal():
        s, d, key = signer(), digest(), str(uuid.uuid4())
        ja = verify(s, d, sign(who('alice'), s, d, key))
        jb = verify(s, d, sign(who('ci-bot'), s, d, key))
        check(ja['operationId'] != jb['operationId'],
              "another principal's key answered with alice's operation")
        ops = {o['id']: o for o in records(s)}
        check(ops[jb['operationId']]['actorName'] == 'ci-bot', 'the second record is not ci-bot\'s')
    add('idempotency_keys_are_per_principal', per_principal)

    def malformed():
        s, d = signer(), digest()
        for key in ('', 'has space', 'x' * 65, '\xe9t\xe9', 'tab\there'):
            r = sign(who('alice'), s, d, key)
            expect_error(r, 400, 'BadRequest', 'Idempotency-Key %r' % key,
                         reason='invalidIdempotencyKey')
        verify(s, d, sign(who('alice'), s, d, 'k' * 64))
        verify(s, d, sign(who('alice'), s, d, '!~' + str(uuid.uuid4())))
    add('idempotency_malformed_key_is_400', malformed)

    def refused_claims_nothing():
        s, d, key = signer(), digest(), str(uuid.uuid4())
        r = sign(who('alice'), s, d, key, alg='RSASSA_PKCS1_V1_5_SHA256')
        expect_error(r, 400, 'BadRequest', 'RSA on an EC key', reason='algorithmMismatch')
        verify(s, d, sign(who('alice'), s, d, key))
    add('idempotency_refused_attempt_does_not_claim_the_key', refused_claims_nothing)

    # ---- rsignctl sign
    def ctl_sign(s, d, *extra):
        r = ctx.ctl('sign', s['id'], '--alg', ALG, '--digest', d.hex(), *extra)
        return r.returncode, r.stdout.decode().strip(), r.stderr.decode()

    def ctl_key():
        s, d, key = signer(), digest(), str(uuid.uuid4())
        before = len(records(s))
        rc1, sig1, err1 = ctl_sign(s, d, '--idempotency-key', key)
        rc2, sig2, err2 = ctl_sign(s, d, '--idempotency-key', key)
        check(rc1 == 0 and rc2 == 0, 'rsignctl sign failed: %s %s' % (err1, err2))
        check(sig1 == sig2, 'rsignctl sign with one --idempotency-key signed twice')
        ok, out = rt.openssl_verify_digest(ctx.signer_pub(s['id']), ALG, d, rt.unb64(sig1))
        check(ok, 'openssl does not verify the signature: %s' % out[-300:])
        rc3, sig3, err3 = ctl_sign(s, d)
        check(rc3 == 0 and sig3 != sig1, 'a run without --idempotency-key is a new signing')
        check(len(records(s)) == before + 2, 'expected 2 new records, found %d'
              % (len(records(s)) - before))
        rc4, _, err4 = ctl_sign(s, digest(), '--idempotency-key', key)
        check(rc4 == 1 and '409' in err4,
              'rsignctl sign with a used key and other data: exit %d, %s' % (rc4, err4))
        for bad in ('has space', 'x' * 65, ''):
            rc5, _, err5 = ctl_sign(s, d, '--idempotency-key', bad)
            check(rc5 == 64 and 'idempotency-key' in err5,
                  'bad --idempotency-key %r: exit %d, %s' % (bad, rc5, err5))
    add('idempotency_rsignctl_sign_sends_the_key', ctl_key)

    def ctl_no_answer():
        # no answer: the key to retry with is printed
        srv, key = ctx.srv, str(uuid.uuid4())
        env = dict(os.environ, RSIGN_URL='https://127.0.0.1:1', RSIGN_TOKEN=srv.token,
                   RSIGN_CA_FILE=srv.ca_file, HOME=srv.work_dir)
        env.pop('RSIGN_CONFIG', None)
        r = subprocess.run([ctx.rsignctl, 'sign', signer()['id'], '--alg', ALG, '--digest',
                            digest().hex(), '--idempotency-key', key], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        err = r.stderr.decode()
        check(r.returncode == 2 and ('--idempotency-key ' + key) in err,
              'no answer: exit %d, stderr %s' % (r.returncode, err))
    add('idempotency_rsignctl_without_an_answer_prints_the_key_to_retry_with', ctl_no_answer)

    # ---- under a policy: the grant is used once
    def policy_signer(max_signings):
        p = ctx.people()
        pol = expect(ctx.api.post('/pki/signing-policies', {
            'name': 'idem-pol-%s' % uuid.uuid4().hex[:8], 'approvers': [p['bob']['id']],
            'requiredApprovals': 1, 'constraints': {'maxSignings': max_signings},
            'requestTtl': 3600, 'bypassForMachineIdentities': False}), 201, 'policy')
        s = ctx.make_signer('idem-pol-%s' % uuid.uuid4().hex[:8], ctx.cert('EC_P256')['id'])
        expect(ctx.api.patch('/pki/signers/' + s['id'], {'policyId': pol['id']}), 200, 'policy on')
        ctx.member(s['id'], 'alice', 'operator')
        q = expect(who('alice').post('/pki/signers/%s/requests' % s['id'],
                                     {'justification': 'idempotency'}), 201, 'request')
        expect(who('bob').post('/pki/signing-requests/%s/approve' % q['id'], {}), 200, 'approve')
        return s

    def used_signings(s):
        g = expect(ctx.api.get('/pki/grants?signerId=%s' % s['id']), 200, 'grants')['grants']
        check(len(g) == 1, 'expected one grant: %r' % g)
        return g[0]['usedSignings']

    def grant_used_once():
        s = policy_signer(2)
        d, key = digest(), str(uuid.uuid4())
        j1 = verify(s, d, sign(who('alice'), s, d, key))
        check(j1.get('grantId'), 'a signing under a grant names no grantId')
        j2 = verify(s, d, sign(who('alice'), s, d, key))
        check(j1 == j2, 'the retry under a grant got another answer')
        check(used_signings(s) == 1, 'a retry used the grant again: usedSignings %d'
              % used_signings(s))
        d2 = digest()
        verify(s, d2, sign(who('alice'), s, d2, str(uuid.uuid4())))
        check(used_signings(s) == 2, 'usedSignings %d after two signings' % used_signings(s))
        # the grant is used up: a retry still answers, a new key is refused
        j3 = verify(s, d, sign(who('alice'), s, d, key))
        check(j3 == j1, 'a retry after the grant ran out did not answer as the first time')
        r = sign(who('alice'), s, digest(), str(uuid.uuid4()))
        expect_error(r, 403, 'ApprovalRequired', 'a third signing of maxSignings 2')
        check(len(records(s)) == 2, 'expected 2 success records, found %d' % len(records(s)))
    add('idempotency_retry_uses_the_grant_once', grant_used_once)

    def concurrent(policy):
        s = policy_signer(5) if policy else signer()
        d, key, n = digest(), str(uuid.uuid4()), 16
        before = len(records(s))
        token = ctx.people()['alice']['token']
        barrier = threading.Barrier(n)
        results, lock = [], threading.Lock()

        def one():
            c = rt.Client(ctx.srv.url, ctx.srv.ca_file, token)
            barrier.wait()
            r = sign(c, s, d, key)
            with lock:
                results.append(r)
        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(len(results) == n, 'only %d of %d calls answered' % (len(results), n))
        answers = [verify(s, d, r) for r in results]
        sigs = {a['signature'] for a in answers}
        ops = {a['operationId'] for a in answers}
        check(len(sigs) == 1 and len(ops) == 1, '%d calls with one key gave %d signatures and %d '
              'operations' % (n, len(sigs), len(ops)))
        check(len(records(s)) == before + 1, '%d concurrent calls with one key left %d records'
              % (n, len(records(s)) - before))
        if policy:
            check(used_signings(s) == 1, '%d concurrent calls with one key used the grant %d '
                  'times' % (n, used_signings(s)))
    add('idempotency_concurrent_duplicates_one_signature_one_record', concurrent, False)
    add('idempotency_concurrent_duplicates_under_a_grant_use_it_once', concurrent, True)
