"""Dev-mode start-up, health, authentication and principals."""

import os
import re

import rsigntest as rt
from apictx import (CREATED, DELETED, UUID_RE, check, expect, expect_error, items, is_time,
                    rand_uuid)

TOKEN_RE = re.compile(r'^rsu_[0-9a-f]{64}$')
ACCESS_RE = re.compile(r'^rsa_[0-9a-f]{64}$')
SECRET_RE = re.compile(r'^rss_[0-9a-f]{64}$')


def register(add, ctx):
    # ---- dev mode
    def dev_prints_exports():
        s = ctx.srv
        check(re.match(r'^https://127\.0\.0\.1:\d+$', s.env.get('RSIGN_URL', '')),
              'RSIGN_URL %r is not https://127.0.0.1:PORT' % s.env.get('RSIGN_URL'))
        check(TOKEN_RE.match(s.env.get('RSIGN_TOKEN', '')), 'RSIGN_TOKEN is not rsu_<64 hex>')
        check(os.path.isfile(s.env.get('RSIGN_CA_FILE', '')), 'RSIGN_CA_FILE does not exist')
        check(os.path.isfile(s.env.get('RSIGN_PKCS11_CONF', '')),
              'RSIGN_PKCS11_CONF missing or not a file: %r' % s.env.get('RSIGN_PKCS11_CONF'))
    add('dev_prints_exports_for_url_token_ca_and_pkcs11_conf', dev_prints_exports)

    def demo_signers():
        want = {'demo-rsa': 'RSA_3072', 'demo-ec': 'EC_P256'}
        for name, kt in want.items():
            j = expect(ctx.api.get('/pki/signers/' + name), 200, name)
            check(j.get('keyAlgorithm') == kt, '%s keyAlgorithm %r != %s' % (name, j.get('keyAlgorithm'), kt))
            check(j.get('status') == 'enabled', '%s is not enabled' % name)
    add('dev_creates_demo_signers_rsa_3072_and_ec_p256', demo_signers)

    def demo_sign(name, alg):
        data = os.urandom(48)
        pub = ctx.signer_pub(name)
        ctx.verify(pub, alg, data, False, ctx.sign(ctx.api, name, alg, data, False))
    add('demo_rsa_signs_verifiable_signature', demo_sign, 'demo-rsa', 'RSASSA_PKCS1_V1_5_SHA256')
    add('demo_ec_signs_verifiable_signature', demo_sign, 'demo-ec', 'ECDSA_SHA256')

    # ---- health, auth
    def health():
        r = ctx.api.get('/health', token=None)
        j = expect(r, 200)
        check(j.get('status') == 'ok', 'status %r != ok' % j.get('status'), r)
        check(isinstance(j.get('version'), str) and j['version'], 'no version', r)
    add('health_ok_without_auth', health)

    def no_token():
        expect_error(ctx.api.get('/pki/signers', token=None), 401, 'Unauthorized', reason='tokenMissing')
    add('request_without_token_is_401_unauthorized', no_token)

    def bad_token():
        expect_error(ctx.api.get('/pki/signers', token='rsu_' + '0' * 64), 401, 'Unauthorized', reason='tokenInvalid')
        expect_error(ctx.api.get('/auth/whoami', token='garbage'), 401, 'Unauthorized', reason='tokenInvalid')
    add('request_with_unknown_token_is_401_unauthorized', bad_token)

    def bad_scheme():
        r = ctx.api.get('/auth/whoami', token=None,
                        headers={'Authorization': 'Basic ' + rt.b64(b'admin:x')})
        expect_error(r, 401, 'Unauthorized')
        r = ctx.api.get('/auth/whoami', token=None, headers={'Authorization': 'Bearer '})
        expect_error(r, 401, 'Unauthorized', 'empty bearer token')
        expect_error(ctx.api.get('/pki/ca', token=None), 401, 'Unauthorized', 'GET /pki/ca without a token')
    add('authorization_other_than_bearer_is_401', bad_scheme)

    def request_id():
        r = ctx.api.get('/health', token=None)
        check(r.header('X-Request-Id'), 'no X-Request-Id on a success', r)
        r2 = ctx.api.get('/pki/signers', token=None)
        check(r2.header('X-Request-Id'), 'no X-Request-Id on an error', r2)
        expect_error(r2, 401, 'Unauthorized')  # also checks reqId == X-Request-Id
        check(r.header('X-Request-Id') != r2.header('X-Request-Id'), 'request ids repeat')
    add('responses_carry_x_request_id_matching_reqid', request_id)

    def unknown_route():
        r = ctx.api.get('/no/such/endpoint')
        expect_error(r, 404, 'NotFound', reason='noEndpoint')
        expect_error(ctx.api.get('/principals/' + rand_uuid()), 404, 'NotFound', 'unknown principal',
                     reason='notFound')
    add('unknown_endpoint_is_404_not_found', unknown_route)

    def whoami():
        j = expect(ctx.api.get('/auth/whoami'), 200)
        check(UUID_RE.match(str(j.get('id'))), 'whoami id %r is not a uuid' % j.get('id'))
        check(j.get('type') == 'user', 'admin type %r != user' % j.get('type'))
        check(j.get('admin') is True, 'admin flag %r' % j.get('admin'))
        check(j.get('name'), 'whoami has no name')
    add('whoami_describes_admin', whoami)

    # ---- principals
    def create_user():
        r = ctx.api.post('/principals', {'type': 'user', 'name': 'pt-user'})
        j = expect(r, CREATED)
        check(UUID_RE.match(str(j.get('id'))), 'id not a uuid', r)
        check(j.get('name') == 'pt-user' and j.get('type') == 'user', 'name/type wrong', r)
        check(TOKEN_RE.match(str(j.get('token'))), 'token %r is not rsu_<64 hex>' % j.get('token'), r)
        check('clientSecret' not in j, 'user got a clientSecret', r)
        g = expect(ctx.api.get('/principals/' + j['id']), 200)
        check('token' not in g and j['token'] not in g.__repr__(), 'GET shows the token again', r)
        w = expect(ctx.as_(j['token']).get('/auth/whoami'), 200, 'whoami as new user')
        check(w.get('id') == j['id'] and w.get('admin') in (False, None),
              'whoami as new user: %r' % w)
    add('admin_creates_user_and_token_is_shown_once', create_user)

    def create_identity():
        r = ctx.api.post('/principals', {'type': 'identity', 'name': 'pt-ident'})
        j = expect(r, CREATED)
        check(j.get('type') == 'identity', 'type wrong', r)
        check(j.get('clientId'), 'no clientId', r)
        check(SECRET_RE.match(str(j.get('clientSecret'))), 'clientSecret is not rss_<64 hex>', r)
        check('token' not in j, 'identity got a user token', r)
        g = expect(ctx.api.get('/principals/' + j['id']), 200)
        check(g.get('clientId') == j['clientId'], 'GET lacks clientId', r)
        check('clientSecret' not in g and j['clientSecret'] not in repr(g), 'GET shows the secret')
        ctx.pt_ident = j
    add('admin_creates_identity_with_client_id_and_secret', create_identity)

    def login():
        j = getattr(ctx, 'pt_ident', None)
        check(j, 'identity from the previous test is missing')
        r = ctx.api.post('/auth/universal-auth/login',
                         {'clientId': j['clientId'], 'clientSecret': j['clientSecret']}, token=None)
        lj = expect(r, 200)
        check(ACCESS_RE.match(str(lj.get('accessToken'))), 'accessToken is not rsa_<64 hex>', r)
        check(lj.get('tokenType') == 'Bearer', 'tokenType %r' % lj.get('tokenType'), r)
        check(isinstance(lj.get('expiresIn'), int) and 0 < lj['expiresIn'] <= 3600,
              'expiresIn %r (default 1 h)' % lj.get('expiresIn'), r)
        w = expect(ctx.as_(lj['accessToken']).get('/auth/whoami'), 200)
        check(w.get('type') == 'identity' and w.get('id') == j['id'], 'whoami %r' % w)
    add('identity_login_returns_bearer_access_token', login)

    def login_bad_secret():
        j = getattr(ctx, 'pt_ident', None)
        check(j, 'identity from the previous test is missing')
        r = ctx.api.post('/auth/universal-auth/login',
                         {'clientId': j['clientId'], 'clientSecret': 'rss_' + '1' * 64}, token=None)
        expect_error(r, 401, 'Unauthorized')
        r = ctx.api.post('/auth/universal-auth/login',
                         {'clientId': rand_uuid(), 'clientSecret': j['clientSecret']}, token=None)
        expect_error(r, 401, 'Unauthorized', 'unknown clientId', reason='invalidCredentials')
    add('login_rejects_bad_secret_and_unknown_client_id', login_bad_secret)

    def login_malformed():
        r = ctx.api.post('/auth/universal-auth/login', raw=b'{"clientId": ', token=None)
        expect_error(r, 400, 'BadRequest')
        r = ctx.api.post('/auth/universal-auth/login', {'clientId': 'x'}, token=None)
        check(r.status in (400, 401), 'missing clientSecret: %s' % r.status, r)
    add('login_rejects_malformed_body', login_malformed)

    def non_admin():
        p = ctx.people()
        r = ctx.as_(p['alice']['token']).post('/principals', {'type': 'user', 'name': 'pt-evil'})
        expect_error(r, 403, 'PermissionDenied')
        r = ctx.as_(p['ci-bot']['token']).post('/principals', {'type': 'identity', 'name': 'pt-evil2'})
        expect_error(r, 403, 'PermissionDenied', 'identity')
    add('non_admin_cannot_create_principals', non_admin)

    def duplicate():
        expect(ctx.api.post('/principals', {'type': 'user', 'name': 'pt-dup'}), CREATED)
        r = ctx.api.post('/principals', {'type': 'user', 'name': 'pt-dup'})
        expect_error(r, 409, 'Conflict')
        r = ctx.api.post('/principals', {'type': 'identity', 'name': 'pt-dup'})
        expect_error(r, 409, 'Conflict', 'identity with a user\'s name', reason='nameTaken')
    add('create_principal_rejects_duplicate_name', duplicate)

    def bad_type():
        expect_error(ctx.api.post('/principals', {'type': 'robot', 'name': 'pt-robot'}), 400, 'BadRequest')
        expect_error(ctx.api.post('/principals', {'type': 'user'}), 400, 'BadRequest', 'no name')
    add('create_principal_rejects_bad_type_and_missing_name', bad_type)

    def admin_flag():
        j = expect(ctx.api.post('/principals', {'type': 'user', 'name': 'pt-admin2', 'admin': True}), CREATED)
        w = expect(ctx.as_(j['token']).get('/auth/whoami'), 200)
        check(w.get('admin') is True, 'admin flag not set: %r' % w)
        expect(ctx.as_(j['token']).post('/principals', {'type': 'user', 'name': 'pt-by-admin2'}), CREATED,
               'second admin creates a user')
        expect_error(ctx.api.post('/principals', {'type': 'user', 'name': 'pt-admin3', 'admin': 'yes'}),
                     400, 'BadRequest', 'admin not a boolean')
    add('admin_flag_creates_an_admin_user', admin_flag)

    def listing():
        ctx.people()
        r = ctx.api.get('/principals')
        names = {p.get('name') for p in items(expect(r, 200), 'principals', r)}
        for n in ('alice', 'bob', 'ci-bot'):
            check(n in names, '%s missing from GET /principals' % n, r)
        check('rsu_' not in r.body.decode() and 'rss_' not in r.body.decode(), 'list shows tokens or secrets', r)
    add('principals_list_includes_created', listing)

    def get_one():
        p = ctx.people()
        by_id = expect(ctx.api.get('/principals/' + p['alice']['id']), 200)
        by_name = expect(ctx.api.get('/principals/alice'), 200, 'by name')
        check(by_id == by_name, 'by id %r != by name %r' % (by_id, by_name))
        check(by_id.get('name') == 'alice' and by_id.get('type') == 'user', 'wrong principal %r' % by_id)
        check(by_id.get('admin') is False, 'admin flag %r' % by_id.get('admin'))
        check(is_time(by_id.get('createdAt')), 'createdAt %r' % by_id.get('createdAt'))
        ident = expect(ctx.api.get('/principals/ci-bot'), 200)
        check(ident.get('clientId') == p['ci-bot']['clientId'], 'identity clientId %r' % ident)
    add('principal_get_by_id_and_by_name', get_one)

    def get_unknown():
        expect_error(ctx.api.get('/principals/' + rand_uuid()), 404, 'NotFound')
    add('principal_get_unknown_is_404', get_unknown)

    def new_token():
        j = expect(ctx.api.post('/principals', {'type': 'user', 'name': 'pt-tokens'}), CREATED)
        r = ctx.api.post('/principals/%s/tokens' % j['id'], {})
        t2 = expect(r, CREATED).get('token')
        check(TOKEN_RE.match(str(t2)) and t2 != j['token'], 'new token %r' % t2, r)
        for t in (j['token'], t2):
            w = expect(ctx.as_(t).get('/auth/whoami'), 200, 'whoami with a token')
            check(w.get('id') == j['id'], 'whoami id %r' % w.get('id'))
        r = ctx.api.post('/principals/%s/tokens' % rand_uuid(), {})
        expect_error(r, 404, 'NotFound', 'token for unknown principal')
    add('new_user_token_works_and_old_token_stays_valid', new_token)

    def token_for_other_needs_admin():
        # another principal is not even visible to a non-admin (access.c)
        p = ctx.people()
        r = ctx.as_(p['alice']['token']).post('/principals/%s/tokens' % p['bob']['id'], {})
        expect_error(r, 404, 'NotFound', reason='notFound')
        r = ctx.as_(p['alice']['token']).get('/principals/%s' % p['bob']['id'])
        expect_error(r, 404, 'NotFound', 'read another principal', reason='notFound')
    add('non_admin_cannot_mint_tokens_for_others', token_for_other_needs_admin)

    def delete_user():
        j = expect(ctx.api.post('/principals', {'type': 'user', 'name': 'pt-gone'}), CREATED)
        expect(ctx.as_(j['token']).get('/auth/whoami'), 200, 'before delete')
        expect(ctx.api.delete('/principals/' + j['id']), DELETED, 'delete')
        expect_error(ctx.as_(j['token']).get('/auth/whoami'), 401, 'Unauthorized', 'after delete')
        expect_error(ctx.api.get('/principals/' + j['id']), 404, 'NotFound', 'GET after delete')
        expect_error(ctx.api.delete('/principals/' + j['id']), 404, 'NotFound', 'delete twice')
    add('deleted_principal_token_is_401', delete_user)

    def delete_identity():
        j = expect(ctx.api.post('/principals', {'type': 'identity', 'name': 'pt-gone-bot'}), CREATED)
        creds = {'clientId': j['clientId'], 'clientSecret': j['clientSecret']}
        at = expect(ctx.api.post('/auth/universal-auth/login', creds, token=None), 200)['accessToken']
        expect(ctx.as_(at).get('/auth/whoami'), 200, 'before delete')
        expect(ctx.api.delete('/principals/' + j['id']), DELETED, 'delete')
        expect_error(ctx.as_(at).get('/auth/whoami'), 401, 'Unauthorized', 'access token after delete')
        expect_error(ctx.api.post('/auth/universal-auth/login', creds, token=None), 401,
                     'Unauthorized', 'login after delete')
    add('deleted_identity_cannot_login_and_its_access_token_is_401', delete_identity)

    def access_token_is_not_a_user_token():
        p = ctx.people()
        r = ctx.as_(p['ci-bot']['clientSecret']).get('/auth/whoami')
        expect_error(r, 401, 'Unauthorized', 'client secret used as bearer token')
    add('client_secret_is_not_a_bearer_token', access_token_is_not_a_user_token)
