"""The sign endpoint: the 9 algorithms on every key type they apply to,
verified with OpenSSL; PSS salt lengths; aliases; every rejection of
docs/api.md's table; the order of the checks; roles."""

import json
import threading
import os
import time

import rsigntest as rt
from apictx import (RawConn, UUID_RE, check, expect, expect_error, is_time, parse_time,
                    rand_uuid, slug)
from rsigntest import Fail

LIMIT = 64 * 1024


def register(add, ctx):
    # ---- the matrix: 27 (algorithm, key type) pairs x isDigest true/false
    def matrix(alg, kt, is_digest):
        s = ctx.signer(kt)
        pub = ctx.signer_pub(s['id'])
        raw = os.urandom(100)
        data = rt.digest(rt.alg_hash(alg), raw) if is_digest else raw
        meta = {'tool': 'run-api-tests', 'case': alg + '/' + kt}
        r = ctx.sign(ctx.api, s['id'], alg, data, is_digest, clientMetadata=meta)
        j = ctx.verify(pub, alg, data, is_digest, r, kt=kt)
        check(j['signingAlgorithm'] == alg, 'signingAlgorithm %r != %r' % (j['signingAlgorithm'], alg), r)
        check(j['signerId'] == s['id'], 'signerId %r != %r' % (j['signerId'], s['id']), r)
        check(UUID_RE.match(str(j['operationId'])), 'operationId %r not a uuid' % j['operationId'], r)
    for kt in rt.KEY_ALGS:
        for alg in rt.SIGN_ALGS:
            if not rt.alg_applies(alg, kt):
                continue
            for is_digest in (True, False):
                add('sign_%s_with_%s_%s_verifies' % (alg.lower(), slug(kt).replace('-', '_'),
                                                     'digest' if is_digest else 'raw_data'),
                    matrix, alg, kt, is_digest)

    # ---- PSS salt lengths
    def pss(kt, alg, salt):
        s = ctx.signer(kt)
        hl = len(rt.digest(rt.alg_hash(alg), b''))
        if salt == 'max':
            salt = rt.modulus_bytes(kt) - hl - 2
        d = rt.digest(rt.alg_hash(alg), os.urandom(32))
        r = ctx.sign(ctx.api, s['id'], alg, d, True, pssSaltLength=salt)
        ctx.verify(ctx.signer_pub(s['id']), alg, d, True, r, salt_len=salt, kt=kt)
    add('sign_pss_salt_length_zero_verifies', pss, 'RSA_2048', 'RSASSA_PSS_SHA256', 0)
    add('sign_pss_salt_length_max_verifies_rsa_2048_sha256', pss, 'RSA_2048', 'RSASSA_PSS_SHA256', 'max')
    add('sign_pss_salt_length_max_verifies_rsa_4096_sha512', pss, 'RSA_4096', 'RSASSA_PSS_SHA512', 'max')
    add('sign_pss_salt_length_explicit_20_verifies', pss, 'RSA_3072', 'RSASSA_PSS_SHA384', 20)

    def pss_bad():
        s = ctx.signer('RSA_2048')
        d = rt.digest('sha256', b'x')
        for salt in (256 - 32 - 2 + 1, -1, 1.5, '32', 100000):
            r = ctx.sign(ctx.api, s['id'], 'RSASSA_PSS_SHA256', d, True, pssSaltLength=salt)
            expect_error(r, 400, 'BadRequest', 'pssSaltLength %r' % (salt,), reason='saltLength')
    add('sign_rejects_bad_pss_salt_length', pss_bad)

    # ---- aliases
    def aliases():
        for kt, alias, canon in (('RSA_2048', 'RSASSA_PSS_SHA_256', 'RSASSA_PSS_SHA256'),
                                 ('RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_384', 'RSASSA_PKCS1_V1_5_SHA384'),
                                 ('EC_P256', 'ECDSA_SHA_512', 'ECDSA_SHA512')):
            s = ctx.signer(kt)
            data = os.urandom(20)
            r = ctx.sign(ctx.api, s['id'], alias, data, False)
            j = ctx.verify(ctx.signer_pub(s['id']), canon, data, False, r, kt=kt)
            check(j['signingAlgorithm'] in (canon, alias), 'signingAlgorithm %r' % j['signingAlgorithm'], r)
    add('sign_accepts_underscore_algorithm_aliases', aliases)

    # ---- rejections (admin on the matrix signers)
    def ec():
        return ctx.signer('EC_P256')['id']

    def rsa():
        return ctx.signer('RSA_2048')['id']

    def bad(sid, body, error='BadRequest', status=400, what='', reason=None):
        r = ctx.api.post('/pki/signers/%s/sign' % sid, body) if not isinstance(body, bytes) else \
            ctx.api.post('/pki/signers/%s/sign' % sid, raw=body)
        return expect_error(r, status, error, what or repr(body)[:80], reason=reason)

    def good_body(**kw):
        b = {'data': rt.b64(rt.digest('sha256', b'abc')), 'signingAlgorithm': 'ECDSA_SHA256', 'isDigest': True}
        b.update(kw)
        return b

    def unknown_signer():
        bad(rand_uuid(), good_body(), 'NotFound', 404, 'unknown id', reason='notFound')
        bad('no-such-signer', good_body(), 'NotFound', 404, 'unknown name', reason='notFound')
    add('sign_rejects_unknown_signer_404', unknown_signer)

    def disabled():
        s = ctx.disabled_signer()
        bad(s['id'], good_body(), 'SignerDisabled', reason='signerDisabled')
    add('sign_rejects_disabled_signer', disabled)

    def expired():
        s = ctx.make_signer('exp-ec', ctx.expired_cert()['id'])
        bad(s['id'], good_body(), 'CertificateExpired', reason='certificateExpired')
    add('sign_rejects_expired_certificate', expired)

    def not_yet():
        s = ctx.make_signer('fut-ec', ctx.future_cert()['id'])
        bad(s['id'], good_body(), 'CertificateExpired', reason='certificateNotYetValid')
    add('sign_rejects_not_yet_valid_certificate', not_yet)

    def mismatch():
        for alg in ('ECDSA_SHA256', 'ECDSA_SHA512'):
            bad(rsa(), good_body(signingAlgorithm=alg, data=rt.b64(rt.digest(rt.alg_hash(alg), b'x'))),
                what='%s on RSA' % alg, reason='algorithmMismatch')
        for alg in ('RSASSA_PKCS1_V1_5_SHA256', 'RSASSA_PSS_SHA256'):
            bad(ec(), good_body(signingAlgorithm=alg), what='%s on EC' % alg, reason='algorithmMismatch')
    add('sign_rejects_algorithm_that_does_not_fit_the_key', mismatch)

    def malformed():
        for raw in (b'{"data": ', b'', b'not json', b'[1, 2]', b'"string"', b'{"data": "AA==",}',
                    b'{"data":"AA==","signingAlgorithm":"ECDSA_SHA256"}garbage'):
            bad(ec(), raw, what='body %r' % raw, reason='invalidJson')
    add('sign_rejects_malformed_json', malformed)

    def bad_b64():
        for data in ('***not base64***', 'A=AA', 'AA==AA==', '\u00e9\u00e9\u00e9\u00e9'):
            bad(ec(), good_body(data=data, isDigest=False), what='data %r' % data, reason='invalidBase64')
    add('sign_rejects_bad_base64', bad_b64)

    def missing():
        bad(ec(), {'signingAlgorithm': 'ECDSA_SHA256'}, what='no data')
        bad(ec(), good_body(data=''), what='empty data')
        b = good_body()
        del b['signingAlgorithm']
        bad(ec(), b, what='no signingAlgorithm')
    add('sign_rejects_missing_or_empty_fields', missing)

    def types():
        for kw in ({'isDigest': 'true'}, {'isDigest': 1}, {'data': 12345}, {'data': None}, {'signingAlgorithm': 7},
                   {'clientMetadata': 'tool=x'}, {'clientMetadata': ['tool', 'x']}, {'clientMetadata': 5}):
            bad(ec(), good_body(**kw), what=repr(kw))
    add('sign_rejects_wrong_field_types_and_non_object_client_metadata', types)

    def sizes():
        s = ctx.signer('EC_P384')
        pub = ctx.signer_pub(s['id'])
        data = os.urandom(128)
        ctx.verify(pub, 'ECDSA_SHA384', data, False, ctx.sign(ctx.api, s['id'], 'ECDSA_SHA384', data, False))
        bad(s['id'], good_body(data=rt.b64(os.urandom(129)), isDigest=False, signingAlgorithm='ECDSA_SHA384'),
            what='129 bytes', reason='dataLength')
        bad(s['id'], good_body(data=rt.b64(os.urandom(1000)), isDigest=False, signingAlgorithm='ECDSA_SHA384'),
            what='1000 bytes', reason='dataLength')
    add('sign_accepts_128_bytes_and_rejects_129_bytes_of_data', sizes)

    def digest_len():
        for alg, n in (('ECDSA_SHA256', 48), ('ECDSA_SHA256', 31), ('ECDSA_SHA384', 32), ('ECDSA_SHA512', 65)):
            bad(ec(), good_body(signingAlgorithm=alg, data=rt.b64(os.urandom(n))), what='%s, %d bytes' % (alg, n),
                reason='digestLength')
        for alg, n in (('RSASSA_PKCS1_V1_5_SHA256', 64), ('RSASSA_PSS_SHA512', 32)):
            bad(rsa(), good_body(signingAlgorithm=alg, data=rt.b64(os.urandom(n))), what='%s, %d bytes' % (alg, n),
                reason='digestLength')
    add('sign_rejects_digest_of_wrong_length_for_algorithm', digest_len)

    def unknown_alg():
        for alg in ('RSASSA_PKCS1_V1_5_MD5', 'ECDSA_SHA1', 'ECDSA_SHA_1', 'ECDSA', '', 'ECDSA_SHA256 ',
                    'RSASSA_PSS_SHA__256'):
            bad(ec(), good_body(signingAlgorithm=alg), what='algorithm %r' % alg, reason='unknownAlgorithm')
    add('sign_rejects_unknown_algorithm', unknown_alg)

    def metadata_ok():
        s = ec()
        for meta in ({'k%02d' % i: 'v' for i in range(16)}, {'tool': 'x' * 256}, {'k' * 256: 'v'}, {}):
            r = ctx.sign(ctx.api, s, 'ECDSA_SHA256', rt.digest('sha256', b'm'), True, clientMetadata=meta)
            expect(r, 200, 'clientMetadata with %d keys' % len(meta))
    add('sign_accepts_client_metadata_at_limits', metadata_ok)

    def metadata_bad():
        for meta, why in (({'k%02d' % i: 'v' for i in range(17)}, '17 keys'),
                          ({'tool': 'x' * 257}, 'value of 257 chars'),
                          ({'k' * 257: 'v'}, 'key of 257 chars'),
                          ({'n': 1}, 'number value'), ({'n': None}, 'null value'),
                          ({'n': {'deep': 'x'}}, 'object value'), ({'n': ['x']}, 'array value')):
            bad(ec(), good_body(clientMetadata=meta), what='clientMetadata ' + why, reason='invalidMetadata')
    add('sign_rejects_client_metadata_too_many_keys_too_long_or_not_strings', metadata_bad)

    def metadata_chars():
        # docs/api.md: values and keys of at most 256 characters -- characters,
        # not UTF-8 bytes ('\u00e9' is 2 bytes, '\U0001F600' 4).
        s, problems = ec(), []
        for meta, why in (({'tool': '\u00e9' * 256}, '256 x e-acute'), ({'\u043a' * 256: 'v'}, 'key of 256 Cyrillic'),
                          ({'emoji': '\U0001F600' * 256}, '256 emoji')):
            r = ctx.sign(ctx.api, s, 'ECDSA_SHA256', rt.digest('sha256', b'm'), True, clientMetadata=meta)
            if r.status != 200:
                problems.append('%s (%d UTF-8 bytes) -> %s' % (why, len(json.dumps(meta, ensure_ascii=False).encode()),
                                                             r.describe(160)))
        check(not problems, '; '.join(problems))
        bad(s, good_body(clientMetadata={'tool': '\u00e9' * 257}), what='257 x e-acute')
    add('sign_counts_client_metadata_length_in_characters', metadata_chars)

    def invalid_utf8():
        sig, problems = ctx.make_signer('utf8-ec', ctx.cert('EC_P256')['id']), []
        for raw in (b'{"data":"eA==","signingAlgorithm":"ECDSA_SHA256","clientMetadata":{"k":"\xff\xfe"}}',
                    b'{"data":"eA==","signingAlgorithm":"ECDSA_SHA256","clientMetadata":{"\xc3":"v"}}',
                    b'{"data":"eA==","signingAlgorithm":"ECDSA_SHA256\xed\xa0\x80"}'):
            r = ctx.api.post('/pki/signers/%s/sign' % sig['id'], raw=raw)
            if r.status != 400 or (r.json or {}).get('error') != 'BadRequest':
                problems.append('%r -> %s, want 400 BadRequest' % (raw[-34:], r.status))
        r = ctx.api.get('/pki/signers/%s/operations' % sig['id'])
        check(r.status == 200, 'history after invalid UTF-8: status %s' % r.status, r)
        try:
            r.body.decode('utf-8', 'strict')
        except UnicodeDecodeError as e:
            problems.append('GET .../operations now answers with invalid UTF-8 (%s): %r'
                            % (e.reason, r.body[max(0, e.start - 40):e.end + 10]))
        check(not problems, '; '.join(problems))
    add('sign_rejects_invalid_utf8_and_history_stays_utf8', invalid_utf8)

    def big_body(size):
        b = json.dumps(good_body()).encode()
        return b[:-1] + b' ' * (size - len(b)) + b'}'

    def under_limit():
        r = ctx.api.post('/pki/signers/%s/sign' % ec(), raw=big_body(LIMIT - 100))
        expect(r, 200, 'a valid body of %d bytes' % (LIMIT - 100))
    add('sign_accepts_body_just_under_64k', under_limit)

    def over_limit():
        body = big_body(LIMIT + 4096)
        c = RawConn(ctx.srv.url, ctx.srv.ca_file)
        path = '/pki/signers/%s/sign' % ec()
        c.send(c.head('POST', path, ctx.srv.token, len(body)))
        if not c.readable(0.5):  # the server may answer from the headers alone
            try:
                for i in range(0, len(body), 8192):
                    c.send(body[i:i + 8192])
            except OSError:
                pass
        r = c.read_response('POST', path)
        expect_error(r, 413, 'PayloadTooLarge', reason='bodyTooLarge')
        expect(ctx.api.get('/health', token=None), 200, 'server still serves after the 413')
    add('sign_rejects_body_over_64k_with_413', over_limit)

    def unauthenticated():
        expect_error(ctx.api.post('/pki/signers/%s/sign' % ec(), good_body(), token=None), 401, 'Unauthorized')
    add('sign_without_token_is_401', unauthenticated)

    # ---- the order of the checks (docs/api.md: auth, exists, permission, enabled,
    # certificate valid, well-formed, key/algorithm, ...)
    def order():
        p = ctx.people()
        carol = ctx.as_(p['carol']['token'])
        expect_error(carol.post('/pki/signers/%s/sign' % rand_uuid(), good_body()), 404, 'NotFound',
                     'stranger, unknown signer')
        # a signer the caller cannot see is as absent as an unknown one
        expect_error(carol.post('/pki/signers/%s/sign' % ctx.disabled_signer()['id'], good_body()), 404,
                     'NotFound', 'stranger, disabled signer', reason='notFound')
        expect_error(ctx.as_(p['bob']['token']).post('/pki/signers/ops-ec/sign', good_body()), 403,
                     'PermissionDenied', 'auditor', reason='roleRequired')
        bad(ctx.disabled_signer()['id'], good_body(data='***'), 'SignerDisabled', what='disabled + bad base64')
        exp = ctx.make_signer('exp-ec', ctx.expired_cert()['id'])
        bad(exp['id'], good_body(data='***'), 'CertificateExpired', what='expired + bad base64')
        bad(exp['id'], b'{"broken', 'CertificateExpired', what='expired + malformed JSON')
    add('sign_checks_run_in_api_order', order)

    # ---- roles
    def as_member(who, want):
        """want: 200, (403, reason) for a member without the role, or
        (404, reason) for a caller who cannot see the signer."""
        s, p = ctx.ops_signer(), ctx.people()
        cl = ctx.as_(p[who]['token'])
        d = rt.digest('sha256', os.urandom(16))
        r = ctx.sign(cl, s['id'], 'ECDSA_SHA256', d, True)
        if want == 200:
            ctx.verify(ctx.signer_pub(s['id']), 'ECDSA_SHA256', d, True, r)
        else:
            expect_error(r, want[0], {403: 'PermissionDenied', 404: 'NotFound'}[want[0]],
                         reason=want[1])
    add('sign_allows_operator_user', as_member, 'alice', 200)
    add('sign_allows_operator_identity_with_access_token', as_member, 'ci-bot', 200)
    add('sign_denies_auditor', as_member, 'bob', (403, 'roleRequired'))
    add('sign_answers_user_without_membership_404', as_member, 'carol', (404, 'notFound'))
    add('sign_answers_identity_without_membership_404', as_member, 'ci-other', (404, 'notFound'))

    def default_not_digest():
        s = ctx.signer('EC_P256')
        for data in (os.urandom(32), b'\x01'):  # digest-sized, and the 1-byte minimum
            r = ctx.api.post('/pki/signers/%s/sign' % s['id'],
                             {'data': rt.b64(data), 'signingAlgorithm': 'ECDSA_SHA256'})
            ctx.verify(ctx.signer_pub(s['id']), 'ECDSA_SHA256', data, False, r)
    add('sign_is_digest_defaults_to_false_and_accepts_one_byte', default_not_digest)

    def concurrent():
        s = ctx.make_signer('conc-ec', ctx.cert('EC_P256')['id'])
        pub = ctx.signer_pub(s['id'])
        results = [None] * 16

        def worker(i):
            d = rt.digest('sha256', b'%d' % i)
            try:
                results[i] = (d, ctx.sign(ctx.api, s['id'], 'ECDSA_SHA256', d, True))
            except Exception as e:
                results[i] = (d, e)
        ts = [threading.Thread(target=worker, args=(i,)) for i in range(len(results))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        ops = set()
        for d, r in results:
            if isinstance(r, Exception):
                raise Fail('concurrent sign: %s' % r)
            ops.add(ctx.verify(pub, 'ECDSA_SHA256', d, True, r)['operationId'])
        check(len(ops) == len(results), 'operationIds repeat')
        r = ctx.api.get('/pki/signers/%s/operations?limit=100' % s['id'])
        j = expect(r, 200)
        got = {x.get('id') for x in j.get('operations', [])}
        check(got == ops and j.get('totalCount') == len(results),
              'history has %d records (%d match) for %d signatures' % (len(got), len(got & ops), len(ops)), r)
    add('concurrent_signs_all_succeed_and_are_all_recorded', concurrent)

    def last_signed():
        s = ctx.make_signer('lsa-ec', ctx.cert('EC_P256')['id'])
        check(s.get('lastSignedAt') is None, 'lastSignedAt %r before any signing' % s.get('lastSignedAt'))
        before = time.time()
        expect(ctx.sign(ctx.api, s['id'], 'ECDSA_SHA256', b'x', False), 200)
        g = expect(ctx.api.get('/pki/signers/' + s['id']), 200)
        check(is_time(g.get('lastSignedAt')), 'lastSignedAt %r after signing' % g.get('lastSignedAt'))
        check(abs(parse_time(g['lastSignedAt']) - before) < 120, 'lastSignedAt %r not now' % g['lastSignedAt'])
        d = ctx.disabled_signer()
        g = expect(ctx.api.get('/pki/signers/' + d['id']), 200)
        check(g.get('lastSignedAt') is None, 'failed attempts set lastSignedAt %r' % g.get('lastSignedAt'))
    add('signer_last_signed_at_set_by_a_successful_sign_only', last_signed)

    def verifier_sanity():
        # The harness' own check: OpenSSL must refuse a signature over other data.
        s = ctx.signer('EC_P256')
        data = os.urandom(32)
        j = expect(ctx.sign(ctx.api, s['id'], 'ECDSA_SHA256', data, False), 200)
        ok, _ = rt.openssl_verify_data(ctx.signer_pub(s['id']), 'ECDSA_SHA256', data + b'!', rt.unb64(j['signature']))
        check(not ok, 'openssl verified a signature over altered data: the verification helper is broken')
        s = ctx.signer('RSA_2048')
        d = rt.digest('sha256', data)
        j = expect(ctx.sign(ctx.api, s['id'], 'RSASSA_PSS_SHA256', d, True), 200)
        ok, _ = rt.openssl_verify_digest(ctx.signer_pub(s['id']), 'RSASSA_PSS_SHA256', d,
                                         rt.unb64(j['signature']), salt_len=0)
        check(not ok, 'a PSS signature made with the default salt verified with salt length 0')
    add('openssl_verification_rejects_altered_data_and_wrong_salt', verifier_sanity)
