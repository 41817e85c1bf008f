"""Credentials and authenticated rows (issue 10, items 8 and 9), against a
real rsignd with a real SoftHSM2 token.

Item 8: a principal's tokens are listed (metadata only, never the secret or
its hash), named, given an expiry, revoked (refused at once) and show their
last use; an identity rotates its client secret with or without an overlap;
the number of API tokens a principal holds is capped
(max_tokens_per_principal, on a `rsignd serve` of its own); every change is
in the audit log.

Item 9, the reproduction: rows written into the live server's database
behind its back (Python's sqlite3, beside the server's WAL writer) give no
power. A token row inserted by hand, a token row moved to another principal,
a principal flipped to admin, a membership or an approver inserted by hand:
each is refused (401, no role, not an approver) and one ERROR line of the
server's log names the table and the row."""

import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import time

import pgtest
import rsigntest as rt
import t_edges
from apictx import CREATED, check, expect, expect_error, is_time, items, rand_uuid

SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so'
WAIT = 120  # seconds: only a server that never expires a token takes this long


def db_path(ctx):
    return os.path.join(ctx.srv.state_dir, 'rsign.db')


def write_db(ctx, *statements):
    """Runs statements (sql, params) in one transaction on the live database
    (SQLite, or the server's PostgreSQL database under tests/lib/with-pg)."""
    if ctx.srv.database:
        pgtest.execute(ctx.srv.database, statements)
        return
    db = sqlite3.connect(db_path(ctx), timeout=60)
    try:
        with db:
            for sql, params in statements:
                db.execute(sql, params)
    finally:
        db.close()


def read_db(ctx, sql, params=()):
    if ctx.srv.database:
        return pgtest.rows(ctx.srv.database, sql, params)
    db = sqlite3.connect('file:%s?mode=ro' % db_path(ctx), uri=True, timeout=60)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def new_user(ctx, name, admin=False):
    j = expect(ctx.api.post('/principals', {'type': 'user', 'name': name, 'admin': admin}),
               CREATED, 'create ' + name)
    return j


def new_identity(ctx, name):
    return expect(ctx.api.post('/principals', {'type': 'identity', 'name': name}), CREATED,
                  'create ' + name)


def mac_refused_logged(ctx, table, row):
    """The server's log holds the ERROR line refusing row of table."""
    pat = re.compile(r'ERROR: store: %s row %s (fails its MAC|has no valid MAC)'
                     % (re.escape(table), re.escape(row)))
    log = ctx.srv.log_tail(100000)
    check(pat.search(log), 'no ERROR line refusing %s row %s in the log; tail:\n%s'
          % (table, row, ctx.srv.log_tail(5)))


def login(cl, client_id, secret):
    return cl.post('/auth/universal-auth/login', {'clientId': client_id, 'clientSecret': secret},
                   token=None)


def audit_actions(ctx, object_id, limit=100):
    j = expect(ctx.api.get('/audit-log?limit=%d' % limit), 200, 'audit log')
    return [(e.get('action'), e.get('detail')) for e in items(j, 'events')
            if e.get('objectId') == object_id]


def register(add, ctx):
    # ---------------------------------------------------------------- item 8

    def list_shows_metadata_only():
        u = new_user(ctx, 'tk-meta')
        me = ctx.as_(u['token'])
        made = expect(me.post('/principals/%s/tokens' % u['id'],
                              {'name': 'laptop', 'expiresIn': 3600}), CREATED, 'named token')
        info = made.get('tokenInfo') or {}
        check(made.get('token', '').startswith('rsu_') and info.get('name') == 'laptop' and
              is_time(info.get('expiresAt')) and info.get('kind') == 'api' and
              info.get('lastUsedAt') is None, 'create answered %r' % made)
        r = me.get('/principals/%s/tokens' % u['id'])
        v = items(expect(r, 200, 'list own tokens'), 'tokens', r)
        check(r.json.get('totalCount') == 2 and len(v) == 2, 'two tokens expected: %r' % r.json, r)
        hashes = {hashlib.sha256(t.encode()).hexdigest() for t in (u['token'], made['token'])}
        for t in v:
            check(set(t) == {'id', 'name', 'kind', 'createdAt', 'expiresAt', 'lastUsedAt'},
                  'token fields %r' % sorted(t), r)
            for val in t.values():
                check(not (isinstance(val, str) and (val.startswith('rsu_') or val in hashes)),
                      'a token or its hash is listed: %r' % t, r)
        check(any(t['id'] == info.get('id') and t['name'] == 'laptop' for t in v),
              'the named token is not listed: %r' % v, r)
        # the stable id is not the hash
        rows = read_db(ctx, 'SELECT id, hash FROM tokens WHERE principal_id = ?', (u['id'],))
        check(len(rows) == 2 and all(i != h for i, h in rows), 'token ids %r' % rows)
    add('tokens_list_shows_metadata_only', list_shows_metadata_only)

    def last_use_shown():
        u = new_user(ctx, 'tk-lastuse')
        me = ctx.as_(u['token'])
        before = int(time.time())
        expect(me.get('/auth/whoami'), 200, 'use the token')
        v = items(expect(me.get('/principals/%s/tokens' % u['id']), 200), 'tokens')
        check(len(v) == 1 and is_time(v[0].get('lastUsedAt')),
              'lastUsedAt after a use: %r' % v)
        from apictx import parse_time
        check(parse_time(v[0]['lastUsedAt']) >= before - 1, 'lastUsedAt %r is before the use at %d'
              % (v[0]['lastUsedAt'], before))
    add('tokens_show_last_use', last_use_shown)

    def revoke_is_immediate():
        u = new_user(ctx, 'tk-revoke')
        me = ctx.as_(u['token'])
        extra = expect(me.post('/principals/%s/tokens' % u['id'], {}), CREATED, 'second token')
        other = ctx.as_(extra['token'])
        expect(other.get('/auth/whoami'), 200, 'the second token works (and is cached)')
        tid = extra['tokenInfo']['id']
        r = me.delete('/principals/%s/tokens/%s' % (u['id'], tid))
        j = expect(r, 200, 'revoke own token')
        check(j == {'principalId': u['id'], 'tokenId': tid}, 'revoke answered %r' % j, r)
        expect_error(other.get('/auth/whoami'), 401, 'Unauthorized', 'a revoked token, at once',
                     reason='tokenInvalid')
        expect(me.get('/auth/whoami'), 200, 'the first token still works')
        expect_error(me.delete('/principals/%s/tokens/%s' % (u['id'], tid)), 404, 'NotFound',
                     'revoking it twice', reason='notFound')
        v = items(expect(me.get('/principals/%s/tokens' % u['id']), 200), 'tokens')
        check([t['id'] for t in v] != [] and tid not in [t['id'] for t in v],
              'the revoked token is still listed: %r' % v)
        acts = audit_actions(ctx, u['id'])
        check(('token.revoke', {'tokenId': tid}) in acts, 'no token.revoke entry: %r' % acts)
    add('tokens_revoke_takes_effect_at_once', revoke_is_immediate)

    def revoke_other_principals_token_404():
        a = new_user(ctx, 'tk-a')
        b = new_user(ctx, 'tk-b')
        tid = items(expect(ctx.api.get('/principals/%s/tokens' % b['id']), 200), 'tokens')[0]['id']
        expect_error(ctx.as_(a['token']).delete('/principals/%s/tokens/%s' % (b['id'], tid)), 404,
                     'NotFound', "a user revoking another's token", reason='notFound')
        # a token id under the wrong principal is not found either (admin)
        expect_error(ctx.api.delete('/principals/%s/tokens/%s' % (a['id'], tid)), 404, 'NotFound',
                     "b's token under a's path", reason='notFound')
        expect(ctx.as_(b['token']).get('/auth/whoami'), 200, "b's token still works")
    add('tokens_revoke_other_principals_token_404', revoke_other_principals_token_404)

    def expiry_validation():
        u = new_user(ctx, 'tk-expiry')
        me = ctx.as_(u['token'])
        path = '/principals/%s/tokens' % u['id']
        for body, what in (({'expiresIn': 0}, 'expiresIn 0'),
                           ({'expiresIn': 'soon'}, 'expiresIn a string'),
                           ({'expiresAt': '2000-01-01T00:00:00Z'}, 'expiresAt in the past'),
                           ({'expiresAt': 'tomorrow'}, 'expiresAt not a time'),
                           ({'expiresIn': 60, 'expiresAt': '2999-01-01T00:00:00Z'}, 'both'),
                           ({'name': 'x' * 65}, 'a name of 65 bytes')):
            expect_error(me.post(path, body), 400, 'BadRequest', what, reason='invalidField')
        # an identity gets no API token
        bot = new_identity(ctx, 'tk-expiry-bot')
        expect_error(ctx.api.post('/principals/%s/tokens' % bot['id'], {}), 400, 'BadRequest',
                     'an API token for an identity', reason='invalidField')
    add('tokens_expiry_and_name_validated', expiry_validation)

    def expired_token_refused():
        u = new_user(ctx, 'tk-expires')
        j = expect(ctx.api.post('/principals/%s/tokens' % u['id'], {'expiresIn': 1}), CREATED,
                   'a token of one second')
        cl = ctx.as_(j['token'])
        deadline = time.monotonic() + WAIT
        while True:
            r = cl.get('/auth/whoami')
            if r.status != 200:
                break
            if time.monotonic() > deadline:
                raise rt.Fail('a token with expiresIn 1 still works after %d s' % WAIT)
            time.sleep(0.2)
        expect_error(r, 401, 'Unauthorized', 'the token past its expiry', reason='tokenInvalid')
        v = items(expect(ctx.api.get('/principals/%s/tokens' % u['id']), 200), 'tokens')
        check(j['tokenInfo']['id'] not in [t['id'] for t in v], 'an expired token is listed')
    add('tokens_expired_token_refused', expired_token_refused)

    def token_create_audited():
        u = new_user(ctx, 'tk-audit')
        j = expect(ctx.api.post('/principals/%s/tokens' % u['id'], {'name': 'ci'}), CREATED)
        acts = audit_actions(ctx, u['id'])
        want = [d for a, d in acts if a == 'principal.token']
        check(want and want[0].get('tokenId') == j['tokenInfo']['id'] and
              want[0].get('tokenName') == 'ci' and want[0].get('kind') == 'api',
              'principal.token entries %r' % want)
    add('tokens_create_audited', token_create_audited)

    def rotate_without_overlap():
        bot = new_identity(ctx, 'tk-rot0')
        cl = ctx.as_(None)
        expect(login(cl, bot['clientId'], bot['clientSecret']), 200, 'login with the first secret')
        r = ctx.api.post('/principals/%s/secrets/rotate' % bot['id'], {})
        j = expect(r, CREATED, 'rotate, no overlap')
        check(j.get('clientSecret', '').startswith('rss_') and j.get('clientId') == bot['clientId']
              and j.get('previousSecretsExpireAt') is None, 'rotate answered %r' % j, r)
        expect_error(login(cl, bot['clientId'], bot['clientSecret']), 401, 'Unauthorized',
                     'the old secret after a rotation without overlap',
                     reason='invalidCredentials')
        expect(login(cl, bot['clientId'], j['clientSecret']), 200, 'login with the new secret')
        v = items(expect(ctx.api.get('/principals/%s/secrets' % bot['id']), 200), 'secrets')
        check(len(v) == 1 and v[0].get('id') == j['secretInfo']['id'] and
              set(v[0]) == {'id', 'clientId', 'createdAt', 'expiresAt'},
              'secrets after the rotation: %r' % v)
        acts = [a for a, _ in audit_actions(ctx, bot['id'])]
        check('secret.rotate' in acts, 'no secret.rotate entry: %r' % acts)
    add('secrets_rotate_without_overlap_revokes_at_once', rotate_without_overlap)

    def rotate_with_overlap():
        bot = new_identity(ctx, 'tk-rot1')
        j = expect(ctx.api.post('/principals/%s/secrets/rotate' % bot['id'],
                                {'overlapSeconds': 3600}), CREATED, 'rotate, overlap 1 h')
        check(is_time(j.get('previousSecretsExpireAt')), 'rotate answered %r' % j)
        cl = ctx.as_(None)
        expect(login(cl, bot['clientId'], bot['clientSecret']), 200, 'the old secret in the overlap')
        me = expect(login(cl, bot['clientId'], j['clientSecret']), 200, 'the new secret')
        v = items(expect(ctx.api.get('/principals/%s/secrets' % bot['id']), 200), 'secrets')
        check(len(v) == 2 and v[0].get('expiresAt') == j['previousSecretsExpireAt'] and
              v[1].get('expiresAt') is None, 'secrets in the overlap: %r' % v)
        # the identity rotates its own secret, overlap 0: both older ones end
        own = ctx.as_(me['accessToken'])
        k = expect(own.post('/principals/%s/secrets/rotate' % bot['id'], {'overlapSeconds': 0}),
                   CREATED, 'the identity rotates its own secret')
        for old in (bot['clientSecret'], j['clientSecret']):
            expect_error(login(cl, bot['clientId'], old), 401, 'Unauthorized',
                         'an older secret after a rotation without overlap',
                         reason='invalidCredentials')
        expect(login(cl, bot['clientId'], k['clientSecret']), 200, 'the newest secret')
    add('secrets_rotate_with_overlap_keeps_old_secret', rotate_with_overlap)

    def rotate_refusals():
        u = new_user(ctx, 'tk-rot-user')
        bot = new_identity(ctx, 'tk-rot-bot')
        expect_error(ctx.api.post('/principals/%s/secrets/rotate' % u['id'], {}), 400, 'BadRequest',
                     'rotating a user', reason='invalidField')
        expect_error(ctx.api.post('/principals/%s/secrets/rotate' % bot['id'],
                                  {'overlapSeconds': -1}), 400, 'BadRequest',
                     'a negative overlap', reason='invalidField')
        expect_error(ctx.as_(u['token']).post('/principals/%s/secrets/rotate' % bot['id'], {}),
                     404, 'NotFound', "a user rotating an identity's secret", reason='notFound')
        expect(login(ctx.as_(None), bot['clientId'], bot['clientSecret']), 200,
               'the refused rotations changed nothing')
    add('secrets_rotate_refusals', rotate_refusals)

    def token_cap():
        e = t_edges.state_e(ctx).serve({'max_tokens_per_principal': 3})
        adm = rt.Client(e.url, e.ca_file, e.token)
        u = expect(adm.post('/principals', {'type': 'user', 'name': 'tk-cap-' + rand_uuid()[:8]}),
                   CREATED, 'a user on server E')  # its first token: 1 of 3
        path = '/principals/%s/tokens' % u['id']
        made = [expect(adm.post(path, {}), CREATED, 'token %d of 3' % (i + 2)) for i in range(2)]
        r = adm.post(path, {})
        expect_error(r, 409, 'Conflict', 'a fourth token past max_tokens_per_principal = 3',
                     reason='tooManyTokens')
        check(len(items(expect(adm.get(path), 200), 'tokens')) == 3, 'the refused token was stored')
        # an access token of a login is not counted
        bot = expect(adm.post('/principals', {'type': 'identity', 'name': 'tk-capbot-' + rand_uuid()[:8]}),
                     CREATED)
        for _ in range(4):
            expect(login(adm, bot['clientId'], bot['clientSecret']), 200, 'logins are not capped')
        tid = made[0]['tokenInfo']['id']
        expect(adm.delete('%s/%s' % (path, tid)), 200, 'revoke one')
        expect(adm.post(path, {}), CREATED, 'a token again once one was revoked')
    add('tokens_capped_per_principal', token_cap)

    # ---------------------------------------------------------------- item 9

    def inserted_token_refused():
        """The issue's reproduction: the SHA-256 of a secret of our own,
        inserted into the tokens table for the admin."""
        admin_id = expect(ctx.api.get('/auth/whoami'), 200)['id']
        tok = 'rsu_' + secrets.token_hex(32)
        tid = rand_uuid()
        write_db(ctx, ('INSERT INTO tokens (hash, principal_id, kind, expires_at, created_at, id)'
                       " VALUES (?, ?, 'api', 0, ?, ?)",
                       (hashlib.sha256(tok.encode()).hexdigest(), admin_id, int(time.time()), tid)))
        expect_error(ctx.as_(tok).get('/principals'), 401, 'Unauthorized',
                     'a token row inserted with sqlite3', reason='tokenInvalid')
        mac_refused_logged(ctx, 'tokens', tid)
        # with a MAC copied from another row it fails all the same
        mac = read_db(ctx, 'SELECT mac FROM tokens WHERE principal_id = ? AND mac IS NOT NULL'
                      ' LIMIT 1', (admin_id,))[0][0]
        write_db(ctx, ('UPDATE tokens SET mac = ? WHERE id = ?', (mac, tid)))
        expect_error(ctx.as_(tok).get('/principals'), 401, 'Unauthorized',
                     'an inserted token row with a MAC copied from another',
                     reason='tokenInvalid')
        write_db(ctx, ('DELETE FROM tokens WHERE id = ?', (tid,)))  # leave no forged row
    add('mac_inserted_token_row_refused', inserted_token_refused)

    def moved_token_refused():
        """A user's own token row moved to the admin (principal_id swapped)."""
        admin_id = expect(ctx.api.get('/auth/whoami'), 200)['id']
        u = new_user(ctx, 'tk-swap')
        tid = items(expect(ctx.api.get('/principals/%s/tokens' % u['id']), 200), 'tokens')[0]['id']
        write_db(ctx, ('UPDATE tokens SET principal_id = ? WHERE id = ?', (admin_id, tid)))
        expect_error(ctx.as_(u['token']).get('/principals'), 401, 'Unauthorized',
                     'a token row moved to another principal', reason='tokenInvalid')
        mac_refused_logged(ctx, 'tokens', tid)
        write_db(ctx, ('UPDATE tokens SET principal_id = ? WHERE id = ?', (u['id'], tid)))
        expect(ctx.as_(u['token']).get('/auth/whoami'), 200, 'the row put back passes again')
    add('mac_token_row_moved_to_admin_refused', moved_token_refused)

    def admin_flag_refused():
        u = new_user(ctx, 'tk-flip')
        write_db(ctx, ('UPDATE principals SET admin = 1 WHERE id = ?', (u['id'],)))
        expect_error(ctx.as_(u['token']).get('/principals'), 401, 'Unauthorized',
                     'a principal flipped to admin with sqlite3', reason='tokenInvalid')
        mac_refused_logged(ctx, 'principals', u['id'])
        r = ctx.api.get('/principals/%s' % u['id'])
        expect_error(r, 404, 'NotFound', 'the tampered principal, read by an admin',
                     reason='notFound')
        # put back: the same row passes again
        write_db(ctx, ('UPDATE principals SET admin = 0 WHERE id = ?', (u['id'],)))
        expect(ctx.as_(u['token']).get('/auth/whoami'), 200, 'the row as rsignd wrote it')
    add('mac_principal_flipped_to_admin_refused', admin_flag_refused)

    def metrics_flag_refused():
        """The metrics role set with sqlite3/psql: the MAC covers it."""
        u = new_user(ctx, 'tk-metrics-flip')
        write_db(ctx, ('UPDATE principals SET metrics = 1 WHERE id = ?', (u['id'],)))
        expect_error(ctx.as_(u['token']).get('/metrics'), 401, 'Unauthorized',
                     'a principal given the metrics role with sqlite3', reason='tokenInvalid')
        mac_refused_logged(ctx, 'principals', u['id'])
        write_db(ctx, ('UPDATE principals SET metrics = 0 WHERE id = ?', (u['id'],)))
        expect_error(ctx.as_(u['token']).get('/metrics'), 403, 'PermissionDenied',
                     'the row put back: no role', reason='metricsRequired')
    add('mac_principal_given_the_metrics_role_refused', metrics_flag_refused)

    def metrics_role_sealed():
        """A principal created with the role reads /metrics; taking the role
        away behind rsignd's back breaks its MAC (the field is sealed)."""
        u = expect(ctx.api.post('/principals', {'type': 'user', 'name': 'tk-scraper',
                                                'metrics': True}), CREATED, 'a scraper')
        check(u.get('metrics') is True and u.get('admin') is False, 'created as %r' % u)
        r = ctx.as_(u['token']).get('/metrics')
        check(r.status == 200 and b'rsign_sign_total' in r.body, 'the scraper reads /metrics: %d'
              % r.status, r)
        write_db(ctx, ('UPDATE principals SET metrics = 0 WHERE id = ?', (u['id'],)))
        # the token is in the 1 s read cache: wait until the row is read again
        deadline = time.monotonic() + 60
        while True:
            r = ctx.as_(u['token']).get('/auth/whoami')
            if r.status != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        expect_error(r, 401, 'Unauthorized', 'the role taken away with sqlite3',
                     reason='tokenInvalid')
        mac_refused_logged(ctx, 'principals', u['id'])
        write_db(ctx, ('UPDATE principals SET metrics = 1 WHERE id = ?', (u['id'],)))
    add('mac_metrics_role_is_sealed', metrics_role_sealed)

    def membership_refused():
        u = new_user(ctx, 'tk-member')
        s = ctx.signer('EC_P256')
        write_db(ctx, ("INSERT INTO members (signer_id, principal_id, role) VALUES (?, ?, 'operator')",
                       (s['id'], u['id'])))
        r = ctx.sign(ctx.as_(u['token']), s['id'], 'ECDSA_SHA256', b'forged member', False)
        expect_error(r, 404, 'NotFound', 'signing with a membership inserted with sqlite3',
                     reason='notFound')
        mac_refused_logged(ctx, 'members', '%s/%s' % (s['id'], u['id']))
        m = items(expect(ctx.api.get('/pki/signers/%s/members' % s['id']), 200), 'members')
        check(u['id'] not in [x.get('principalId') for x in m], 'the forged member is listed')
        write_db(ctx, ('DELETE FROM members WHERE signer_id = ? AND principal_id = ?',
                       (s['id'], u['id'])))
    add('mac_inserted_membership_gives_no_role', membership_refused)

    def approver_refused():
        u = new_user(ctx, 'tk-appr')
        real = new_user(ctx, 'tk-appr-real')
        p = expect(ctx.api.post('/pki/signing-policies', {
            'name': 'tk-policy', 'approvers': [real['id']], 'requiredApprovals': 1,
            'constraints': {'maxSignings': 1}}), CREATED, 'a policy')
        write_db(ctx, ('INSERT INTO policy_approvers (policy_id, principal_id, pos)'
                       ' VALUES (?, ?, 5)', (p['id'], u['id'])))
        g = expect(ctx.api.get('/pki/signing-policies/%s' % p['id']), 200, 'read the policy')
        check(g.get('approvers') == [real['id']], 'approvers %r' % g.get('approvers'))
        mac_refused_logged(ctx, 'policy_approvers', '%s/%s' % (p['id'], u['id']))
        write_db(ctx, ('UPDATE policies SET required_approvals = 5 WHERE id = ?', (p['id'],)))
        expect_error(ctx.api.get('/pki/signing-policies/%s' % p['id']), 404, 'NotFound',
                     'a policy changed with sqlite3', reason='notFound')
        mac_refused_logged(ctx, 'policies', p['id'])
        write_db(ctx, ('UPDATE policies SET required_approvals = 1 WHERE id = ?', (p['id'],)),
                 ('DELETE FROM policy_approvers WHERE policy_id = ? AND principal_id = ?',
                  (p['id'], u['id'])))
        expect(ctx.api.get('/pki/signing-policies/%s' % p['id']), 200, 'the policy put back')
    add('mac_inserted_approver_and_changed_policy_refused', approver_refused)

    def macs_stored():
        rows = read_db(ctx, 'SELECT count(*) FROM principals WHERE mac IS NULL OR length(mac) <> 64')
        check(rows[0][0] == 0, '%d principals without a MAC' % rows[0][0])
    add('mac_every_principal_written_with_a_mac', macs_stored)

    # ---------------------------------------------------------------- rsignctl

    def ctl_round_trip():
        def ctl(*args, want=0):
            p = ctx.ctl('--json', *args)
            check(p.returncode == want, 'rsignctl %s exited %d: %s'
                  % (' '.join(args), p.returncode, p.stderr.decode()[-300:]))
            return json.loads(p.stdout.decode()) if want == 0 else None
        u = new_user(ctx, 'tk-ctl')
        made = ctl('token', 'create', 'tk-ctl', '--name', 'from-ctl', '--expires-in', '3600')
        info = made.get('tokenInfo') or {}
        check(made.get('token', '').startswith('rsu_') and info.get('name') == 'from-ctl' and
              is_time(info.get('expiresAt')), 'rsignctl token create printed %r' % made)
        expect(ctx.as_(made['token']).get('/auth/whoami'), 200, 'the token rsignctl made works')
        listed = ctl('token', 'list', 'tk-ctl')
        ids = [t.get('id') for t in listed.get('tokens', [])]
        check(info.get('id') in ids and len(ids) == 2, 'rsignctl token list printed %r' % listed)
        ctl('token', 'revoke', u['id'], info['id'])
        expect_error(ctx.as_(made['token']).get('/auth/whoami'), 401, 'Unauthorized',
                     'a token rsignctl revoked', reason='tokenInvalid')
        p = ctx.ctl('token', 'create', 'tk-ctl', '--expires-in', '60', '--expires-at',
                    '2999-01-01T00:00:00Z')
        check(p.returncode != 0, 'rsignctl token create took both --expires-in and --expires-at')
        bot = new_identity(ctx, 'tk-ctl-bot')
        rot = ctl('principal', 'rotate-secret', 'tk-ctl-bot', '--overlap', '600')
        check(rot.get('clientSecret', '').startswith('rss_') and
              is_time(rot.get('previousSecretsExpireAt')), 'rotate-secret printed %r' % rot)
        cl = ctx.as_(None)
        for secret in (bot['clientSecret'], rot['clientSecret']):
            expect(login(cl, bot['clientId'], secret), 200, 'both secrets in the overlap')
        sec = ctl('principal', 'secrets', 'tk-ctl-bot')
        check(len(sec.get('secrets', [])) == 2, 'rsignctl principal secrets printed %r' % sec)
        # the table form shows no secret either
        p = ctx.ctl('token', 'list', 'tk-ctl')
        out = p.stdout.decode()
        check(p.returncode == 0 and 'LAST USED' in out and 'rsu_' not in out,
              'rsignctl token list table: %r' % out[-300:])
    add('rsignctl_token_and_secret_round_trip', ctl_round_trip)

    # ---------------------------------------------------------------- item 9, the upgrade

    def existing_database_sealed_once():
        """A database from before the row MACs (every mac NULL) and a token
        without the key: the first start creates the key and seals the rows;
        a row that loses its MAC later is never sealed again."""
        if not shutil.which('pkcs11-tool'):
            raise rt.Skip('pkcs11-tool is not installed (package opensc)')
        dev = rt.DevServer.start(prefix='rsign-tokens-upgrade-')
        try:
            check(dev.stop(30) == 0, 'rsignd dev did not stop cleanly')
            db = os.path.join(dev.state_dir, 'rsign.db')

            def sql(*statements):
                if dev.database:
                    pgtest.execute(dev.database, [(q, ()) for q in statements])
                    return
                c = sqlite3.connect(db, timeout=60)
                try:
                    with c:
                        for s in statements:
                            c.execute(s)
                finally:
                    c.close()
            sql(*('UPDATE %s SET mac = NULL' % t for t in
                  ('principals', 'tokens', 'secrets', 'members', 'policies', 'policy_approvers')))
            with open(os.path.join(dev.state_dir, 'pin')) as f:
                pin = f.read().strip()
            env = dict(os.environ, SOFTHSM2_CONF=os.path.join(dev.state_dir, 'softhsm2.conf'))
            p = subprocess.run(['pkcs11-tool', '--module', SOFTHSM, '--token-label', 'rsign-dev',
                                '--login', '--pin', pin, '--delete-object', '--type', 'secrkey',
                                '--label', 'rsign-row-mac'], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            check(p.returncode == 0, 'pkcs11-tool could not delete the key: %s'
                  % p.stdout.decode()[-300:])
            s = t_edges.Serve(dev, {})
            try:
                m = re.search(r'row MAC key rsign-row-mac created in the token; (\d+) existing rows? '
                              r'sealed', s.log())
                check(m and int(m.group(1)) >= 2, 'no sealing at the first start:\n%s' % s.log_tail())
                adm = rt.Client(s.url, s.ca_file, s.token)
                who = expect(adm.get('/auth/whoami'), 200, 'the admin after sealing')
                expect(adm.get('/pki/signers/demo-ec/members'), 200, 'the signers after sealing')
            finally:
                s.stop()
            sql("UPDATE principals SET mac = NULL WHERE id = '%s'" % who['id'])
            s = t_edges.Serve(dev, {})
            try:
                check('existing row' not in s.log(), 'the second start sealed rows again')
                expect_error(rt.Client(s.url, s.ca_file, s.token).get('/auth/whoami'), 401,
                             'Unauthorized', 'the admin whose MAC was removed after sealing',
                             reason='tokenInvalid')
                check(re.search(r'ERROR: store: principals row %s has no valid MAC' % who['id'],
                                s.log()), 'no ERROR line for the unsealed row:\n%s' % s.log_tail())
            finally:
                s.stop()
        finally:
            dev.cleanup()
    add('mac_existing_database_sealed_once_at_first_start', existing_database_sealed_once)
