"""The role matrix of server/api/access.c against a real rsignd: one table,
role x endpoint -> expected status and reason, run by one loop that reports
every cell as its own test (access_<role>_<endpoint>). List cells also check
what the list holds and its totalCount (the SQL filters of the store must
say what access.c says), paged and unpaged. A signer the caller cannot see
(no role, not an approver of its current policy) answers 404 exactly like
one that does not exist; policies show their approvers only to admins and
the approvers.

Roles: admin; operator and auditor (members of both matrix signers);
approver (a user listed in the policy of the held signer, no member);
nonmember (a user with no relation); disabled (an operator of both signers
whom an admin disabled); expired (an access token of server B, past its
--access-token-ttl, awaited by polling)."""

import time

import t_lifecycle
from apictx import CREATED, check, expect, expect_error, items, rand_uuid
from rsigntest import Fail

ROLES = ('admin', 'operator', 'auditor', 'approver', 'nonmember', 'disabled', 'expired')

R403 = (403, 'roleRequired')
A403 = (403, 'adminRequired')
N403 = (403, 'notApprover')
N404 = (404, 'notFound')

# endpoint -> {role: status or (status, reason)}; disabled and expired are
# the same for every endpoint (EVERYWHERE below).
MATRIX = {
    # on ax-free (no policy: the approver of ax-held's policy does not see it)
    'sign':            {'admin': 200, 'operator': 200, 'auditor': R403, 'approver': N404,
                        'nonmember': N404},
    'history':         {'admin': 200, 'operator': 200, 'auditor': 200, 'approver': N404,
                        'nonmember': N404},
    # on ax-held (its approver sees it)
    'signer_get':      {'admin': 200, 'operator': 200, 'auditor': 200, 'approver': R403,
                        'nonmember': N404},
    # the operator signs with its grant g1, the admin has none
    'held_sign':       {'admin': (403, 'approvalRequired'), 'operator': 200,
                        'auditor': R403, 'approver': R403, 'nonmember': N404},
    'requests_list':   {'admin': 200, 'operator': 200, 'auditor': 200, 'approver': 200,
                        'nonmember': 200},
    'requests_get':    {'admin': 200, 'operator': 200, 'auditor': 200, 'approver': 200,
                        'nonmember': N404},
    'requests_create': {'admin': 201, 'operator': 201, 'auditor': R403, 'approver': R403,
                        'nonmember': N404},
    'grants_list':     {'admin': 200, 'operator': 200, 'auditor': 200, 'approver': 200,
                        'nonmember': 200},
    'grants_revoke':   {'admin': 200, 'operator': N403, 'auditor': N403, 'approver': 200,
                        'nonmember': N404},
    'approve':         {'admin': N403, 'operator': N403, 'auditor': N403, 'approver': 200,
                        'nonmember': N404},
    'policies_list':   {'admin': 200, 'operator': 200, 'auditor': 200, 'approver': 200,
                        'nonmember': 200},
    'policies_get':    {'admin': 200, 'operator': 200, 'auditor': 200, 'approver': 200,
                        'nonmember': N404},
    'policies_create': {'admin': 201, 'operator': A403, 'auditor': A403, 'approver': A403,
                        'nonmember': A403},
    'members_list':    {'admin': 200, 'operator': 200, 'auditor': 200, 'approver': R403,
                        'nonmember': N404},
    'members_add':     {'admin': 201, 'operator': A403, 'auditor': A403, 'approver': A403,
                        'nonmember': A403},
    'signers_list':    {'admin': 200, 'operator': 200, 'auditor': 200, 'approver': 200,
                        'nonmember': 200},
    'audit_log':       {'admin': 200, 'operator': A403, 'auditor': A403, 'approver': A403,
                        'nonmember': A403},
    # credentials (issue 10, item 8): of oneself, or of ax-extra / ax-credbot
    'tokens_list_own':     {'admin': 200, 'operator': 200, 'auditor': 200, 'approver': 200,
                            'nonmember': 200},
    'tokens_revoke_own':   {'admin': 200, 'operator': 200, 'auditor': 200, 'approver': 200,
                            'nonmember': 200},
    'tokens_list_other':   {'admin': 200, 'operator': N404, 'auditor': N404, 'approver': N404,
                            'nonmember': N404},
    'tokens_create_other': {'admin': 201, 'operator': N404, 'auditor': N404, 'approver': N404,
                            'nonmember': N404},
    'tokens_revoke_other': {'admin': 200, 'operator': N404, 'auditor': N404, 'approver': N404,
                            'nonmember': N404},
    'secrets_list_other':  {'admin': 200, 'operator': N404, 'auditor': N404, 'approver': N404,
                            'nonmember': N404},
    'secrets_rotate_other': {'admin': 201, 'operator': N404, 'auditor': N404, 'approver': N404,
                             'nonmember': N404},
}
EVERYWHERE = {'disabled': (401, 'principalDisabled'), 'expired': (401, 'tokenInvalid')}

# who sees the held signer's requests and grants, and its policy
SEES_SIGNER_WORK = ('admin', 'operator', 'auditor', 'approver')


class World:
    """The matrix's principals, signers, policy, one approved request (r1)
    and its grant (g1), made once on server A with the admin's token."""

    def __init__(self, ctx):
        self.ctx = ctx
        api = ctx.api
        self.people = {'admin': {'id': expect(api.get('/auth/whoami'), 200)['id'],
                                 'token': ctx.srv.token}}
        for role in ('operator', 'auditor', 'approver', 'nonmember', 'disabled', 'extra'):
            j = expect(api.post('/principals', {'type': 'user', 'name': 'ax-' + role}), CREATED,
                       'create ax-' + role)
            self.people[role] = {'id': j['id'], 'token': j['token']}
        self.policy = expect(api.post('/pki/signing-policies', {
            'name': 'ax-policy', 'approvers': [self.id('approver')], 'requiredApprovals': 1,
            'constraints': {'maxSignings': 5}, 'requestTtl': 3600}), CREATED, 'create ax-policy')
        cert = ctx.cert('EC_P256')
        self.free = expect(api.post('/pki/signers', {'name': 'ax-free', 'certificateId': cert['id']}),
                           CREATED, 'create ax-free')
        self.held = expect(api.post('/pki/signers', {'name': 'ax-held', 'certificateId': cert['id'],
                                                     'policyId': self.policy['id']}),
                           CREATED, 'create ax-held')
        for s in (self.free, self.held):
            for who, role in (('operator', 'operator'), ('auditor', 'auditor'),
                              ('disabled', 'operator')):
                expect(api.post('/pki/signers/%s/members' % s['id'],
                                {'principalId': self.id(who), 'role': role}), CREATED,
                       'add ax-%s to %s' % (who, s['name']))
        self.pub = ctx.signer_pub(self.free['id'])
        self.r1 = self.new_request()
        self.g1 = self.approve(self.r1)

    def id(self, role):
        return self.people[role]['id']

    def as_(self, role):
        return self.ctx.as_(self.people[role]['token'])

    def new_request(self):
        r = self.as_('operator').post('/pki/signers/%s/requests' % self.held['id'],
                                      {'justification': 'role matrix'})
        return expect(r, CREATED, 'operator requests approval')['id']

    def approve(self, rid):
        j = expect(self.as_('approver').post('/pki/signing-requests/%s/approve' % rid, {}), 200,
                   'approver approves')
        check(j.get('grantId'), 'an approval of one required gave no grant: %r' % j)
        return j['grantId']


def world(ctx):
    return ctx.fixture('access-world', lambda: World(ctx))


def disabled_client(ctx):
    """ax-disabled's client, once an admin disabled it (a fixture of its
    own: the other cells do not depend on disabling working)."""
    def make():
        w = world(ctx)
        r = ctx.api.patch('/principals/%s' % w.id('disabled'), {'disabled': True})
        j = expect(r, 200, 'disable ax-disabled')
        check(j.get('disabled') is True, 'PATCH answered disabled=%r' % j.get('disabled'), r)
        return w.as_('disabled')
    return ctx.fixture('access-disabled', make)


def expired_client(ctx):
    """An access token of server B that has expired: polls whoami until the
    server refuses it (access tokens live --access-token-ttl seconds)."""
    def make():
        token = t_lifecycle.b_login(ctx)['login']['accessToken']
        b = ctx.srv_b()
        cl = b.client(token)
        while True:
            r = cl.get('/auth/whoami')
            if r.status != 200:
                break
            if not b.alive():
                raise Fail('server B died while waiting for the token to expire')
            time.sleep(0.2)
        expect_error(r, 401, 'Unauthorized', 'whoami once the access token expired',
                     reason='tokenInvalid')
        return cl
    return ctx.fixture('access-expired', make)


def client(ctx, role):
    if role == 'disabled':
        return disabled_client(ctx)
    if role == 'expired':
        return expired_client(ctx)
    return world(ctx).as_(role)


# ---------------------------------------------------------------- endpoints
# Each: (w, cl, role) -> (response, check of a success body or None).

def ep_sign(w, cl, role):
    data = b'role matrix ' + role.encode()
    r = w.ctx.sign(cl, w.free['id'], 'ECDSA_SHA256', data, False)
    return r, lambda: w.ctx.verify(w.pub, 'ECDSA_SHA256', data, False, r)


def ep_signer_get(w, cl, role):
    r = cl.get('/pki/signers/%s' % w.held['id'])
    return r, lambda: check(r.json.get('id') == w.held['id'], 'got %r' % r.json, r)


def ep_held_sign(w, cl, role):
    data = b'held ' + role.encode()
    r = w.ctx.sign(cl, w.held['id'], 'ECDSA_SHA256', data, False)

    def body():
        w.ctx.verify(w.pub, 'ECDSA_SHA256', data, False, r)
        check(r.json.get('grantId') == w.g1, 'signed under grant %r, not g1' % r.json.get('grantId'), r)
    return r, body


def ep_history(w, cl, role):
    r = cl.get('/pki/signers/%s/operations' % w.free['id'])
    return r, lambda: check(isinstance(r.json.get('totalCount'), int) and
                            isinstance(r.json.get('operations'), list), 'no history list', r)


def listed(w, cl, path, key, r_full=None):
    """The ids of a list at path (limit 100) and its totalCount; also checks
    that a page of one says the same totalCount."""
    sep = '&' if '?' in path else '?'
    r = r_full or cl.get(path + sep + 'limit=100')
    j = expect(r, 200, 'GET ' + path)
    v = items(j, key, r)
    check(j.get('totalCount') == len(v), 'totalCount %r for %d items (limit 100)'
          % (j.get('totalCount'), len(v)), r)
    p = cl.get(path + sep + 'limit=1')
    pj = expect(p, 200, 'GET %s limit=1' % path)
    check(len(items(pj, key, p)) == min(1, len(v)) and pj.get('totalCount') == len(v),
          'a page of 1 holds %d items, totalCount %r; unpaged %d'
          % (len(items(pj, key, p)), pj.get('totalCount'), len(v)), p)
    return [x.get('id') for x in v]


def same_as_admin(w, role, cl, path, key, must_hold):
    """role sees what the admin sees (all of it, holding must_hold), or
    nothing when access.c says it sees nothing."""
    mine = listed(w, cl, path, key)
    if role in SEES_SIGNER_WORK:
        theirs = listed(w, w.as_('admin'), path, key)
        check(must_hold in mine, '%s does not see %s in %s' % (role, must_hold, path))
        check(sorted(mine) == sorted(theirs), '%s sees %d of %d items in %s'
              % (role, len(mine), len(theirs), path))
    else:
        check(mine == [], '%s sees %d items in %s, none expected' % (role, len(mine), path))


def ep_requests_list(w, cl, role):
    path = '/pki/signing-requests?signerId=%s' % w.held['id']
    r = cl.get(path + '&limit=100')
    return r, lambda: same_as_admin(w, role, cl, path, 'requests', w.r1)


def ep_requests_get(w, cl, role):
    r = cl.get('/pki/signing-requests/%s' % w.r1)
    return r, lambda: check(r.json.get('id') == w.r1, 'got request %r' % r.json.get('id'), r)


def ep_requests_create(w, cl, role):
    r = cl.post('/pki/signers/%s/requests' % w.held['id'], {'justification': 'matrix ' + role})
    return r, lambda: check(r.json.get('status') == 'pending', 'new request %r' % r.json, r)


def ep_grants_list(w, cl, role):
    path = '/pki/grants?signerId=%s' % w.held['id']
    r = cl.get(path + '&limit=100')
    return r, lambda: same_as_admin(w, role, cl, path, 'grants', w.g1)


def ep_grants_revoke(w, cl, role):
    gid = w.approve(w.new_request())  # a fresh grant per cell
    r = cl.post('/pki/grants/%s/revoke' % gid, {})
    return r, lambda: check(r.json.get('status') == 'revoked', 'revoke answered %r' % r.json, r)


def ep_approve(w, cl, role):
    rid = w.new_request()  # a fresh pending request per cell
    r = cl.post('/pki/signing-requests/%s/approve' % rid, {})
    return r, lambda: check(r.json.get('status') == 'approved' and r.json.get('grantId'),
                            'approve answered %r' % r.json, r)


# who sees a policy's approvers: admins and the approvers themselves
SEES_APPROVERS = ('admin', 'approver')


def approvers_shown(w, role, p, resp):
    if role in SEES_APPROVERS:
        check(p.get('approvers') == [w.id('approver')], '%s sees approvers %r'
              % (role, p.get('approvers')), resp)
    else:
        check('approvers' not in p, '%s sees the approvers %r' % (role, p.get('approvers')), resp)


def ep_policies_list(w, cl, role):
    r = cl.get('/pki/signing-policies?limit=100')

    def body():
        mine = listed(w, cl, '/pki/signing-policies', 'policies', r)
        for p in items(r.json, 'policies', r):
            if p.get('id') == w.policy['id']:
                approvers_shown(w, role, p, r)
        if role == 'admin':
            check(w.policy['id'] in mine, 'the admin does not see ax-policy')
        elif role in SEES_SIGNER_WORK:
            check(mine == [w.policy['id']], '%s sees policies %r, only ax-policy expected'
                  % (role, mine))
        else:
            check(mine == [], '%s sees policies %r, none expected' % (role, mine))
    return r, body


def ep_policies_get(w, cl, role):
    r = cl.get('/pki/signing-policies/%s' % w.policy['id'])

    def body():
        check(r.json.get('id') == w.policy['id'], 'got %r' % r.json.get('id'), r)
        approvers_shown(w, role, r.json, r)
    return r, body


def ep_policies_create(w, cl, role):
    r = cl.post('/pki/signing-policies', {'name': 'ax-new-' + role, 'approvers': [w.id('approver')],
                                          'requiredApprovals': 1, 'constraints': {'maxSignings': 1}})
    return r, lambda: check(r.json.get('name') == 'ax-new-' + role, 'created %r' % r.json, r)


def ep_members_list(w, cl, role):
    r = cl.get('/pki/signers/%s/members' % w.held['id'])

    def body():
        ids = {m.get('principalId') for m in items(r.json, 'members', r)}
        check({w.id('operator'), w.id('auditor')} <= ids, 'members %r' % ids, r)
    return r, body


def ep_members_add(w, cl, role):
    r = cl.post('/pki/signers/%s/members' % w.free['id'],
                {'principalId': w.id('extra'), 'role': 'auditor'})
    return r, lambda: check(r.json.get('principalId') == w.id('extra'), 'added %r' % r.json, r)


def ep_signers_list(w, cl, role):
    r = cl.get('/pki/signers?limit=100')

    def body():
        v = items(r.json, 'signers', r)
        listed(w, cl, '/pki/signers', 'signers', r)
        names = {s.get('name'): s.get('canSign') for s in v}
        if role == 'admin':
            check({'ax-free', 'ax-held'} <= set(names), 'the admin sees %r' % sorted(names))
        elif role in ('operator', 'auditor'):
            want = role == 'operator'
            check(names == {'ax-free': want, 'ax-held': want},
                  '%s sees {name: canSign} %r' % (role, names))
        else:
            check(names == {}, '%s sees signers %r, none expected' % (role, sorted(names)))
    return r, body


def ep_audit_log(w, cl, role):
    r = cl.get('/audit-log?limit=5')
    return r, lambda: check(isinstance(r.json.get('events'), list) and r.json.get('totalCount', 0) > 0,
                            'audit log %r' % r.json, r)


def self_id(w, role):
    """The caller's principal id (expired: server B's identity is unknown
    here; any id will do, the token is refused first)."""
    return w.id(role) if role in w.people else w.id('extra')


def fresh_token(w, principal_id, name):
    """A new API token of principal_id, made by the admin: its id."""
    j = expect(w.ctx.api.post('/principals/%s/tokens' % principal_id, {'name': name}), CREATED,
               'admin makes a token ' + name)
    return j['tokenInfo']['id']


def matrix_bot(w):
    def make():
        return expect(w.ctx.api.post('/principals', {'type': 'identity', 'name': 'ax-credbot'}),
                      CREATED, 'create ax-credbot')
    return w.ctx.fixture('access-credbot', make)


def ep_tokens_list_own(w, cl, role):
    r = cl.get('/principals/%s/tokens' % self_id(w, role))
    return r, lambda: check(isinstance(r.json.get('tokens'), list) and r.json.get('totalCount', 0) >= 1,
                            'own tokens %r' % r.json, r)


def ep_tokens_revoke_own(w, cl, role):
    me = self_id(w, role)
    tid = fresh_token(w, me, 'revoke-own-' + role) if role in w.people else rand_uuid()
    r = cl.delete('/principals/%s/tokens/%s' % (me, tid))
    return r, lambda: check(r.json.get('tokenId') == tid, 'revoke answered %r' % r.json, r)


def ep_tokens_list_other(w, cl, role):
    r = cl.get('/principals/%s/tokens' % w.id('extra'))
    return r, lambda: check(r.json.get('totalCount', 0) >= 1, 'tokens of ax-extra %r' % r.json, r)


def ep_tokens_create_other(w, cl, role):
    r = cl.post('/principals/%s/tokens' % w.id('extra'), {'name': 'by-' + role})
    return r, lambda: check(r.json.get('token', '').startswith('rsu_') and
                            (r.json.get('tokenInfo') or {}).get('name') == 'by-' + role,
                            'created %r' % r.json, r)


def ep_tokens_revoke_other(w, cl, role):
    tid = fresh_token(w, w.id('extra'), 'revoke-other-' + role)
    r = cl.delete('/principals/%s/tokens/%s' % (w.id('extra'), tid))
    return r, lambda: check(r.json.get('tokenId') == tid, 'revoke answered %r' % r.json, r)


def ep_secrets_list_other(w, cl, role):
    r = cl.get('/principals/%s/secrets' % matrix_bot(w)['id'])
    return r, lambda: check(r.json.get('totalCount', 0) >= 1, 'secrets of ax-credbot %r' % r.json, r)


def ep_secrets_rotate_other(w, cl, role):
    r = cl.post('/principals/%s/secrets/rotate' % matrix_bot(w)['id'], {'overlapSeconds': 60})
    return r, lambda: check(r.json.get('clientSecret', '').startswith('rss_'),
                            'rotate answered %r' % r.json, r)


ENDPOINTS = {
    'tokens_list_own': ep_tokens_list_own, 'tokens_revoke_own': ep_tokens_revoke_own,
    'tokens_list_other': ep_tokens_list_other, 'tokens_create_other': ep_tokens_create_other,
    'tokens_revoke_other': ep_tokens_revoke_other, 'secrets_list_other': ep_secrets_list_other,
    'secrets_rotate_other': ep_secrets_rotate_other,
    'sign': ep_sign, 'history': ep_history, 'signer_get': ep_signer_get,
    'held_sign': ep_held_sign, 'requests_list': ep_requests_list,
    'requests_get': ep_requests_get, 'requests_create': ep_requests_create,
    'grants_list': ep_grants_list, 'grants_revoke': ep_grants_revoke, 'approve': ep_approve,
    'policies_list': ep_policies_list, 'policies_get': ep_policies_get,
    'policies_create': ep_policies_create, 'members_list': ep_members_list,
    'members_add': ep_members_add, 'signers_list': ep_signers_list, 'audit_log': ep_audit_log,
}

ERROR_WORDS = {401: 'Unauthorized', 403: 'PermissionDenied', 404: 'NotFound'}
REASON_WORDS = {'approvalRequired': 'ApprovalRequired'}


def run_cell(ctx, role, endpoint, want):
    w = world(ctx)
    cl = client(ctx, role)
    status, reason = want if isinstance(want, tuple) else (want, None)
    r, body = ENDPOINTS[endpoint](w, cl, role)
    if reason is None:
        expect(r, status, '%s %s' % (role, endpoint))
        body()
    else:
        expect_error(r, status, REASON_WORDS.get(reason, ERROR_WORDS[status]), '%s %s' % (role, endpoint),
                     reason=reason)


def cells():
    """The table, row by row: (role, endpoint, expected)."""
    for endpoint, row in MATRIX.items():
        for role in ROLES:
            yield role, endpoint, row.get(role) or EVERYWHERE[role]


def register(add, ctx):
    for role, endpoint, want in cells():
        add('access_%s_%s' % (role, endpoint), run_cell, ctx, role, endpoint, want)

    # ---- "own": a requester who is no longer a member sees only its own
    def former_member_sees_only_own():
        w = world(ctx)
        api = ctx.api
        j = expect(api.post('/principals', {'type': 'user', 'name': 'ax-former'}), CREATED)
        me = ctx.as_(j['token'])
        expect(api.post('/pki/signers/%s/members' % w.held['id'],
                        {'principalId': j['id'], 'role': 'operator'}), CREATED, 'add ax-former')
        rid = expect(me.post('/pki/signers/%s/requests' % w.held['id'], {'justification': 'own'}),
                     CREATED, 'ax-former requests')['id']
        gid = w.approve(rid)
        expect(api.delete('/pki/signers/%s/members/%s' % (w.held['id'], j['id'])), 200,
               'remove ax-former')
        path = '/pki/signing-requests?signerId=%s' % w.held['id']
        check(listed(w, me, path, 'requests') == [rid], 'a former member lists other requests')
        check(listed(w, me, '/pki/grants?signerId=%s' % w.held['id'], 'grants') == [gid],
              'a former member lists other grants')
        expect(me.get('/pki/signing-requests/%s' % rid), 200, 'get its own request')
        expect_error(me.get('/pki/signing-requests/%s' % w.r1), 404, 'NotFound',
                     "get another's request", reason='notFound')
        expect_error(me.post('/pki/grants/%s/revoke' % gid, {}), 403, 'PermissionDenied',
                     'revoke its own grant', reason='notApprover')
        check(listed(w, me, '/pki/signing-policies', 'policies') == [],
              'a former member still sees the policy')
        expect_error(me.get('/pki/signing-policies/%s' % w.policy['id']), 404, 'NotFound',
                     'get the policy', reason='notFound')
    add('access_former_member_sees_only_its_own_requests_and_grants', former_member_sees_only_own)

    # ---- disabled principals, beyond the matrix
    def disable_identity():
        api = ctx.api
        j = expect(api.post('/principals', {'type': 'identity', 'name': 'ax-bot'}), CREATED)
        creds = {'clientId': j['clientId'], 'clientSecret': j['clientSecret']}
        tok = expect(api.post('/auth/universal-auth/login', creds, token=None), 200)['accessToken']
        expect(ctx.as_(tok).get('/auth/whoami'), 200, 'access token before disabling')
        d = expect(api.patch('/principals/%s' % j['id'], {'disabled': True}), 200, 'disable')
        check(d.get('disabled') is True, 'PATCH answered %r' % d)
        expect_error(ctx.as_(tok).get('/auth/whoami'), 401, 'Unauthorized',
                     'access token once disabled', reason='principalDisabled')
        expect_error(api.post('/auth/universal-auth/login', creds, token=None), 401, 'Unauthorized',
                     'login once disabled', reason='principalDisabled')
        g = expect(api.get('/principals/%s' % j['id']), 200)
        check(g.get('disabled') is True, 'GET shows disabled=%r' % g.get('disabled'))
        e = expect(api.patch('/principals/%s' % j['id'], {'disabled': False}), 200, 'enable')
        check(e.get('disabled') is False, 'PATCH answered %r' % e)
        expect(ctx.as_(tok).get('/auth/whoami'), 200, 'the same access token once enabled')
        expect(api.post('/auth/universal-auth/login', creds, token=None), 200, 'login once enabled')
    add('disabled_identity_token_and_login_refused_until_enabled', disable_identity)

    def disable_rules():
        api = ctx.api
        me = expect(api.get('/auth/whoami'), 200)
        expect_error(api.patch('/principals/%s' % me['id'], {'disabled': True}), 409, 'Conflict',
                     'an admin disables itself', reason='selfDisable')
        w = world(ctx)
        expect_error(w.as_('operator').patch('/principals/%s' % w.id('extra'), {'disabled': True}),
                     403, 'PermissionDenied', 'a non-admin disables', reason='adminRequired')
        for bad in ({}, {'disabled': 'yes'}, {'disabled': None}):
            expect_error(api.patch('/principals/%s' % w.id('extra'), bad), 400, 'BadRequest',
                         'PATCH %r' % bad)
        expect_error(api.patch('/principals/%s' % rand_uuid(), {'disabled': True}), 404, 'NotFound',
                     'disable an unknown principal')
    add('disable_refuses_self_non_admin_and_bad_bodies', disable_rules)

    def principal_list_pages():
        api = ctx.api
        expect(api.post('/principals', {'type': 'user', 'name': 'ax-page'}), CREATED)
        full = expect(api.get('/principals?limit=100'), 200)
        total = full.get('totalCount')
        check(isinstance(total, int) and total == len(full['principals']) and total >= 2,
              'totalCount %r for %d principals' % (total, len(full['principals'])))
        names = [p['name'] for p in full['principals']]
        page = expect(api.get('/principals?offset=1&limit=1'), 200)
        check(page.get('totalCount') == total and [p['name'] for p in page['principals']] == names[1:2],
              'page offset=1 limit=1: %r of %r' % (page, names[:3]))
        check(all(isinstance(p.get('disabled'), bool) for p in full['principals']),
              'a principal without a boolean disabled')
    add('principal_list_pages_in_sql_with_total', principal_list_pages)

    def ctl_disable_enable():
        j = expect(ctx.api.post('/principals', {'type': 'user', 'name': 'ax-ctl'}), CREATED)
        for verb, want in (('disable', True), ('enable', False)):
            p = ctx.ctl('principal', verb, 'ax-ctl')
            check(p.returncode == 0, 'rsignctl principal %s exited %d: %s'
                  % (verb, p.returncode, p.stderr.decode('utf-8', 'replace')[-300:]))
            g = expect(ctx.api.get('/principals/%s' % j['id']), 200)
            check(g.get('disabled') is want, 'after rsignctl principal %s: disabled=%r'
                  % (verb, g.get('disabled')))
            r = ctx.as_(j['token']).get('/auth/whoami')
            if want:
                expect_error(r, 401, 'Unauthorized', 'token of a disabled user',
                             reason='principalDisabled')
            else:
                expect(r, 200, 'token of an enabled user')
    add('rsignctl_principal_disable_and_enable', ctl_disable_enable)
