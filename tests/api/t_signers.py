"""Signers: create, names, lookups, listing, update, retirement (DELETE),
shared certificates, public key and certificate endpoints, members and
visibility (a signer the caller cannot see is 404, like one that does not
exist)."""

import os

import rsigntest as rt
from apictx import (CREATED, DELETED, UUID_RE, check, expect, expect_error, is_time, items,
                    pem_blocks, rand_uuid, same_pem)


def register(add, ctx):
    def cert_id(kt='RSA_2048'):
        return ctx.cert(kt)['id']

    def create_object():
        c = ctx.cert('RSA_2048')
        r = ctx.api.post('/pki/signers', {'name': 'sg-basic', 'description': 'basic signer',
                                          'certificateId': c['id']})
        j = expect(r, CREATED)
        check(UUID_RE.match(str(j.get('id'))), 'id %r' % j.get('id'), r)
        want = {'name': 'sg-basic', 'description': 'basic signer', 'status': 'enabled',
                'certificateId': c['id'], 'policyId': None, 'keyAlgorithm': 'RSA_2048',
                'certificateNotAfter': c.get('notAfter'), 'lastSignedAt': None}
        for f, v in want.items():
            check(f in j and j[f] == v, '%s is %r, want %r' % (f, j.get(f, '(absent)'), v), r)
        check(is_time(j.get('createdAt')), 'createdAt %r' % j.get('createdAt'), r)
        check(j.get('canSign') is True, 'canSign %r for the admin' % j.get('canSign'), r)
    add('signer_create_returns_signer_object', create_object)

    def name_rejected(name, why):
        r = ctx.api.post('/pki/signers', {'name': name, 'certificateId': cert_id()})
        expect_error(r, 400, 'BadRequest', '%s name %r' % (why, name))
    for test, name in (('uppercase', 'Sg-Upper'), ('leading_dash', '-sg-dash'), ('65_chars', 'a' * 65),
                       ('empty', ''), ('underscore', 'sg_under'), ('space', 'sg space'),
                       ('dot', 'sg.dot'), ('non_ascii', 'sg-\u00e9')):
        add('signer_name_rejects_%s' % test, name_rejected, name, test)

    def name_accepted(name):
        r = ctx.api.post('/pki/signers', {'name': name, 'certificateId': cert_id()})
        j = expect(r, CREATED)
        check(j.get('name') == name, 'name %r' % j.get('name'), r)
    add('signer_name_accepts_64_chars', name_accepted, 'a' + 'b' * 62 + '9')
    add('signer_name_accepts_leading_digit_and_single_char', lambda: (name_accepted('9-lives'), name_accepted('z')))

    def no_name_field():
        expect_error(ctx.api.post('/pki/signers', {'certificateId': cert_id()}), 400, 'BadRequest')
        expect_error(ctx.api.post('/pki/signers', {'name': 123, 'certificateId': cert_id()}), 400,
                     'BadRequest', 'numeric name')
    add('signer_create_rejects_missing_or_non_string_name', no_name_field)

    def dup():
        ctx.signer('RSA_2048')
        r = ctx.api.post('/pki/signers', {'name': 'mx-rsa-2048', 'certificateId': cert_id('EC_P256')})
        expect_error(r, 409, 'Conflict')
    add('signer_create_rejects_duplicate_name', dup)

    def unknown_cert():
        # certificateId is a body field: docs/api.md's table puts bad fields under
        # 400 BadRequest; 404 is for unknown ids in the path.
        r = ctx.api.post('/pki/signers', {'name': 'sg-nocert', 'certificateId': rand_uuid()})
        expect_error(r, 400, 'BadRequest', 'unknown certificateId')
        r = ctx.api.post('/pki/signers', {'name': 'sg-nocert'})
        expect_error(r, 400, 'BadRequest', 'missing certificateId')
    add('signer_create_rejects_unknown_or_missing_certificate', unknown_cert)

    def unknown_policy():
        r = ctx.api.post('/pki/signers', {'name': 'sg-nopolicy', 'certificateId': cert_id(),
                                          'policyId': rand_uuid()})
        expect_error(r, 400, 'BadRequest', 'unknown policyId')
    add('signer_create_rejects_unknown_policy', unknown_policy)

    def admin_only():
        p = ctx.people()
        r = ctx.as_(p['alice']['token']).post('/pki/signers', {'name': 'sg-alice', 'certificateId': cert_id()})
        expect_error(r, 403, 'PermissionDenied')
    add('signer_create_requires_admin', admin_only)

    def get_both():
        s = ctx.signer('RSA_2048')
        a = expect(ctx.api.get('/pki/signers/' + s['id']), 200, 'by id')
        b = expect(ctx.api.get('/pki/signers/mx-rsa-2048'), 200, 'by name')
        check(a.get('id') == s['id'] == b.get('id'), 'ids differ: %r %r' % (a.get('id'), b.get('id')))
        check(a == b, 'by id %r != by name %r' % (a, b))
    add('signer_get_by_id_and_by_name', get_both)

    def get_unknown():
        expect_error(ctx.api.get('/pki/signers/' + rand_uuid()), 404, 'NotFound', 'unknown id')
        expect_error(ctx.api.get('/pki/signers/no-such-signer'), 404, 'NotFound', 'unknown name')
    add('signer_get_unknown_is_404', get_unknown)

    def paging():
        names = ['pgx-%d' % i for i in range(5)]
        for n in names:
            ctx.make_signer(n, cert_id('EC_P256'), 'paging')
        seen = []
        for off in (0, 2, 4):
            r = ctx.api.get('/pki/signers?offset=%d&limit=2&search=pgx-' % off)
            j = expect(r, 200)
            page = items(j, 'signers', r)
            check(j.get('totalCount') == 5, 'totalCount %r, want 5' % j.get('totalCount'), r)
            check(len(page) == (2 if off < 4 else 1), 'offset %d: %d items' % (off, len(page)), r)
            seen += [x.get('name') for x in page]
        check(sorted(seen) == names, 'pages gave %r' % seen)
        r = ctx.api.get('/pki/signers?search=pgx-3')
        check([x.get('name') for x in items(expect(r, 200), 'signers', r)] == ['pgx-3'], 'search pgx-3', r)
        r = ctx.api.get('/pki/signers?search=no-such-thing-at-all')
        j = expect(r, 200)
        check(items(j, 'signers', r) == [] and j.get('totalCount') == 0, 'empty search', r)
        r = ctx.api.get('/pki/signers')
        j = expect(r, 200)
        check(len(items(j, 'signers', r)) == min(20, j.get('totalCount', -1)), 'default limit is not 20', r)
        check(j.get('totalCount', 0) >= 7, 'totalCount %r' % j.get('totalCount'), r)
    add('signer_list_pages_with_search_and_total_count', paging)

    def list_limits():
        expect(ctx.api.get('/pki/signers?limit=100'), 200, 'limit=100')
        for q in ('limit=101', 'limit=-1', 'offset=-1', 'limit=abc', 'offset=x'):
            expect_error(ctx.api.get('/pki/signers?' + q), 400, 'BadRequest', q)
    add('signer_list_rejects_limit_over_100_and_bad_paging', list_limits)

    def patch():
        s = ctx.make_signer('sg-patch', cert_id('EC_P256'), 'before')
        r = ctx.api.patch('/pki/signers/' + s['id'], {'description': 'after'})
        j = expect(r, 200)
        check(j.get('description') == 'after' and j.get('status') == 'enabled', 'PATCH result %r' % j, r)
        r = ctx.api.patch('/pki/signers/sg-patch', {'status': 'disabled'})
        j = expect(r, 200, 'disable by name')
        check(j.get('status') == 'disabled' and j.get('description') == 'after', 'PATCH result %r' % j, r)
        g = expect(ctx.api.get('/pki/signers/' + s['id']), 200)
        check(g.get('status') == 'disabled' and g.get('description') == 'after', 'GET after PATCH %r' % g)
        expect_error(ctx.sign(ctx.api, s['id'], 'ECDSA_SHA256', b'x', False), 400, 'SignerDisabled')
        j = expect(ctx.api.patch('/pki/signers/' + s['id'], {'status': 'enabled'}), 200, 're-enable')
        check(j.get('status') == 'enabled', 'not re-enabled')
        expect(ctx.sign(ctx.api, s['id'], 'ECDSA_SHA256', b'x', False), 200, 'sign after re-enable')
    add('signer_patch_updates_description_and_status', patch)

    def rebind():
        # The reference's FAQ: before expiry, issue a new certificate and
        # update the signer's certificate binding.
        s = ctx.make_signer('sg-rebind', ctx.expired_cert()['id'])
        expect_error(ctx.sign(ctx.api, s['id'], 'ECDSA_SHA256', b'x', False), 400, 'CertificateExpired', 'before')
        c = ctx.cert('EC_P384')
        r = ctx.api.patch('/pki/signers/' + s['id'], {'certificateId': c['id']})
        j = expect(r, 200, 'PATCH certificateId')
        check(j.get('certificateId') == c['id'] and j.get('keyAlgorithm') == 'EC_P384'
              and j.get('certificateNotAfter') == c.get('notAfter'), 'after rebinding: %r' % j, r)
        data = os.urandom(50)
        ctx.verify(rt.openssl_pubkey_pem_from_cert(c['certificatePem']), 'ECDSA_SHA384', data, False,
                   ctx.sign(ctx.api, s['id'], 'ECDSA_SHA384', data, False))
        r = ctx.api.patch('/pki/signers/' + s['id'], {'certificateId': rand_uuid()})
        expect_error(r, 400, 'BadRequest', 'PATCH to an unknown certificate')
    add('signer_patch_rebinds_certificate', rebind)

    def patch_bad():
        s = ctx.make_signer('sg-patch-bad', cert_id('EC_P256'))
        for body in ({'status': 'paused'}, {'status': 1}, {'description': 7}, {'name': 'Bad Name'}):
            expect_error(ctx.api.patch('/pki/signers/' + s['id'], body), 400, 'BadRequest', repr(body))
        expect_error(ctx.api.patch('/pki/signers/' + s['id'], raw=b'{oops'), 400, 'BadRequest', 'bad JSON')
        expect_error(ctx.api.patch('/pki/signers/' + rand_uuid(), {'description': 'x'}), 404, 'NotFound')
        r = ctx.as_(ctx.people()['alice']['token']).patch('/pki/signers/' + ctx.ops_signer()['id'],
                                                           {'description': 'operator edit'})
        expect_error(r, 403, 'PermissionDenied', 'operator PATCH', reason='adminRequired')
    add('signer_patch_rejects_bad_fields_unknown_signer_and_non_admin', patch_bad)

    def delete():
        s = ctx.make_signer('sg-delete', cert_id('EC_P256'))
        j = expect(ctx.api.delete('/pki/signers/' + s['id']), DELETED, 'delete')
        check(j.get('status') == 'retired' and j.get('retiredAt') and j.get('canSign') is False,
              'DELETE answered %r' % j)
        g = expect(ctx.api.get('/pki/signers/' + s['id']), 200, 'GET by id after delete')
        check(g.get('status') == 'retired' and g.get('name') == 'sg-delete', 'retired signer %r' % g)
        expect_error(ctx.api.get('/pki/signers/sg-delete'), 404, 'NotFound', 'GET by name after delete')
        expect_error(ctx.sign(ctx.api, s['id'], 'ECDSA_SHA256', b'x', False), 404, 'NotFound', 'sign')
        expect_error(ctx.api.post('/pki/signers/%s/requests' % s['id'], {'justification': 'x'}), 404,
                     'NotFound', 'request approval')
        expect_error(ctx.api.delete('/pki/signers/' + s['id']), 409, 'Conflict', 'delete twice',
                     reason='stateConflict')
        expect_error(ctx.api.patch('/pki/signers/' + s['id'], {'description': 'x'}), 409, 'Conflict',
                     'PATCH a retired signer', reason='stateConflict')
        expect(ctx.api.get('/pki/certificates/' + cert_id('EC_P256')), 200, 'certificate survives')
        live = [x['id'] for x in items(expect(ctx.api.get('/pki/signers?limit=100&search=sg-delete'), 200),
                                       'signers')]
        gone = [x['id'] for x in items(expect(ctx.api.get('/pki/signers?status=retired&search=sg-delete'),
                                              200), 'signers')]
        check(s['id'] not in live and s['id'] in gone, 'listed %r, retired %r' % (live, gone))
        n = expect(ctx.api.post('/pki/signers', {'name': 'sg-delete', 'certificateId': cert_id('EC_P256')}),
                   CREATED, 'a new signer takes the retired name')
        check(n.get('id') != s['id'], 'the new signer has the retired id')
        check(expect(ctx.api.get('/pki/signers/sg-delete'), 200).get('id') == n['id'],
              'the name names the new signer')
        expect_error(ctx.api.get('/pki/signers?status=gone'), 400, 'BadRequest', 'bad status',
                     reason='invalidQuery')
    add('signer_delete_retires_it_and_frees_its_name', delete)

    def delete_admin_only():
        r = ctx.as_(ctx.people()['alice']['token']).delete('/pki/signers/' + ctx.ops_signer()['id'])
        expect_error(r, 403, 'PermissionDenied')
    add('signer_delete_requires_admin', delete_admin_only)

    def shared():
        c = ctx.cert('RSA_3072')
        a = ctx.make_signer('share-a', c['id'])
        b = ctx.make_signer('share-b', c['id'])
        pub = rt.openssl_pubkey_pem_from_cert(c['certificatePem'])
        for s in (a, b):
            data = os.urandom(40)
            j = ctx.verify(pub, 'RSASSA_PSS_SHA256', data, False,
                           ctx.sign(ctx.api, s['id'], 'RSASSA_PSS_SHA256', data, False), kt='RSA_3072')
            check(j.get('signerId') == s['id'], 'signerId %r != %r' % (j.get('signerId'), s['id']))
    add('two_signers_on_one_certificate_both_sign', shared)

    def public_key():
        for kt in rt.KEY_ALGS:
            s = ctx.signer(kt)
            r = ctx.api.get('/pki/signers/%s/public-key' % s['id'])
            j = expect(r, 200, kt)
            check(j.get('keyAlgorithm') == kt, '%s keyAlgorithm %r' % (kt, j.get('keyAlgorithm')), r)
            cert_pub = rt.openssl_pubkey_pem_from_cert(ctx.cert(kt)['certificatePem'])
            check(rt.unb64(j.get('publicKey') or '') == rt.openssl_pubkey_der_from_pem(cert_pub),
                  '%s: publicKey differs from the certificate\'s key' % kt, r)
        expect_error(ctx.api.get('/pki/signers/%s/public-key' % rand_uuid()), 404, 'NotFound')
    add('signer_public_key_matches_certificate_key', public_key)

    def certificate():
        s, c = ctx.signer('EC_P384'), ctx.cert('EC_P384')
        r = ctx.api.get('/pki/signers/%s/certificate' % s['id'])
        j = expect(r, 200)
        check(same_pem(j.get('certificatePem'), c['certificatePem']), 'certificatePem differs', r)
        chain = pem_blocks(j.get('chainPem'))
        check(chain and same_pem(chain[0], ctx.ca_pem()), 'chainPem does not hold the built-in CA', r)
        ca, leaf = rt.scratch_file(j['chainPem'], '.pem'), rt.scratch_file(j['certificatePem'], '.pem')
        p = rt.openssl(['verify', '-CAfile', ca, leaf], check=False)
        check(p.returncode == 0, 'chain does not verify the certificate: %s' % p.stderr.decode())
        expect_error(ctx.api.get('/pki/signers/%s/certificate' % rand_uuid()), 404, 'NotFound')
    add('signer_certificate_returns_cert_and_chain', certificate)

    # ---- members and visibility
    def members():
        s = ctx.ops_signer()
        r = ctx.api.get('/pki/signers/%s/members' % s['id'])
        ms = items(expect(r, 200), 'members', r)
        got = {(m.get('principalName'), m.get('role')) for m in ms}
        for want in (('alice', 'operator'), ('bob', 'auditor'), ('ci-bot', 'operator')):
            check(want in got, '%r missing from members %r' % (want, got), r)
        p = ctx.people()
        check(all(UUID_RE.match(str(m.get('principalId'))) for m in ms), 'principalId not uuids', r)
        check({m['principalId'] for m in ms} >= {p['alice']['id'], p['bob']['id']}, 'ids wrong', r)
    add('signer_members_add_operator_and_auditor', members)

    def members_bad():
        s, p = ctx.ops_signer(), ctx.people()
        r = ctx.api.post('/pki/signers/%s/members' % s['id'], {'principalId': p['carol']['id'], 'role': 'owner'})
        expect_error(r, 400, 'BadRequest', 'role owner')
        r = ctx.api.post('/pki/signers/%s/members' % s['id'], {'principalId': rand_uuid(), 'role': 'operator'})
        expect_error(r, 400, 'BadRequest', 'unknown principalId (a body field)')
        r = ctx.api.post('/pki/signers/%s/members' % rand_uuid(), {'principalId': p['carol']['id'], 'role': 'operator'})
        expect_error(r, 404, 'NotFound', 'unknown signer')
        r = ctx.as_(p['alice']['token']).post('/pki/signers/%s/members' % s['id'],
                                              {'principalId': p['carol']['id'], 'role': 'operator'})
        expect_error(r, 403, 'PermissionDenied', 'operator adds a member')
    add('signer_members_reject_bad_role_unknown_principal_and_non_admin', members_bad)

    def member_removed():
        s, p = ctx.ops_signer(), ctx.people()
        ctx.member(s['id'], 'dave', 'operator')
        dave = ctx.as_(p['dave']['token'])
        expect(ctx.sign(dave, s['id'], 'ECDSA_SHA256', b'dave', False), 200, 'dave as operator')
        expect(ctx.api.delete('/pki/signers/%s/members/%s' % (s['id'], p['dave']['id'])), DELETED, 'remove')
        expect_error(ctx.sign(dave, s['id'], 'ECDSA_SHA256', b'dave', False), 404, 'NotFound',
                     'dave after removal (no longer sees the signer)', reason='notFound')
        r = ctx.api.delete('/pki/signers/%s/members/%s' % (s['id'], p['dave']['id']))
        expect_error(r, 404, 'NotFound', 'remove twice')
    add('removed_member_can_no_longer_sign', member_removed)

    def visibility():
        s, p = ctx.ops_signer(), ctx.people()
        alice, bob, carol = (ctx.as_(p[n]['token']) for n in ('alice', 'bob', 'carol'))
        r = alice.get('/pki/signers?limit=100')
        j = expect(r, 200, 'alice')
        names = {x.get('name') for x in items(j, 'signers', r)}
        check('ops-ec' in names, 'operator does not see ops-ec', r)
        check('mx-rsa-2048' not in names and 'demo-ec' not in names, 'operator sees foreign signers', r)
        check(j.get('totalCount') == len(names), 'totalCount %r counts invisible signers' % j.get('totalCount'), r)
        r = carol.get('/pki/signers')
        j = expect(r, 200, 'carol')
        check(items(j, 'signers', r) == [] and j.get('totalCount') == 0, 'stranger sees signers', r)
        expect(bob.get('/pki/signers/ops-ec'), 200, 'auditor reads the signer')
        # a stranger cannot tell ops-ec from a signer that does not exist
        for path in ('/pki/signers/ops-ec', '/pki/signers/%s/public-key' % s['id'],
                     '/pki/signers/%s/certificate' % s['id'], '/pki/signers/ops-ec/members',
                     '/pki/signers/ops-ec/operations'):
            j = expect_error(carol.get(path), 404, 'NotFound', 'stranger GET ' + path, reason='notFound')
            u = expect_error(carol.get(path.replace('ops-ec', 'no-such-signer').replace(s['id'], 'no-such-signer')),
                             404, 'NotFound', 'stranger GET an unknown signer', reason='notFound')
            check(j['message'].replace('ops-ec', 'X').replace(s['id'], 'X') ==
                  u['message'].replace('no-such-signer', 'X'),
                  'the messages tell them apart: %r / %r' % (j['message'], u['message']))
    add('signers_visible_only_to_members_and_admins_others_get_404', visibility)

    def can_sign():
        p = ctx.people()
        ctx.ops_signer()
        a = expect(ctx.as_(p['alice']['token']).get('/pki/signers/ops-ec'), 200, 'alice')
        b = expect(ctx.as_(p['bob']['token']).get('/pki/signers/ops-ec'), 200, 'bob')
        check(a.get('canSign') is True, 'operator canSign %r' % a.get('canSign'))
        check(b.get('canSign') is False, 'auditor canSign %r' % b.get('canSign'))
        r = ctx.as_(p['bob']['token']).get('/pki/signers?canSign=true')
        check('ops-ec' not in {x.get('name') for x in items(expect(r, 200), 'signers', r)},
              'auditor gets ops-ec with canSign=true', r)
        r = ctx.as_(p['ci-bot']['token']).get('/pki/signers?canSign=true')
        check('ops-ec' in {x.get('name') for x in items(expect(r, 200), 'signers', r)},
              'operator identity lacks ops-ec with canSign=true', r)
    add('signer_can_sign_flag_and_filter_follow_role', can_sign)

    def ctl_retired():
        sg = ctx.make_signer('sg-ctl-retire', cert_id('EC_P256'))

        def ctl(*args):
            p = ctx.ctl(*args)
            check(p.returncode == 0, 'rsignctl %s exited %d: %s' % (' '.join(args), p.returncode,
                                                                    p.stderr.decode()[-300:]))
            return p.stdout.decode()
        out = ctl('signer', 'delete', sg['id'])
        check('retired' in out, 'rsignctl signer delete said %r' % out)
        check(sg['id'] in ctl('signer', 'list', '--status', 'retired', '--search', 'sg-ctl'),
              'rsignctl signer list --status retired does not list it')
        check(sg['id'] not in ctl('signer', 'list', '--search', 'sg-ctl'),
              'rsignctl signer list lists a retired signer')
    add('rsignctl_signer_delete_retires_and_list_status_shows_it', ctl_retired)
