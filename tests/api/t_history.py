"""Signing history: every attempt past authentication on a signer the caller
can see is recorded with docs/api.md's fields, newest first, paged, filtered
by status, actor, algorithm and time (and the audit log by actor, action and
time); who may read it. Attempts on signers the caller cannot see are
not recorded (only counted, in the server's log), clientMetadata only from
admins and members, and denied records go after history_denied_retention."""

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import time
import urllib.parse

import pgtest

import rsigntest as rt
from apictx import (CREATED, UUID_RE, check, expect, expect_error, is_time, items, parse_time,
                    rand_uuid)

FIELDS = ('id', 'signerId', 'status', 'signingAlgorithm', 'dataHash', 'isDigest', 'actorType',
          'actorId', 'actorName', 'grantId', 'clientMetadata', 'sourceIp', 'errorCode', 'createdAt')


def register(add, ctx):
    def hist_signer():
        def make():
            s = ctx.make_signer('hist-ec', ctx.cert('EC_P256')['id'], 'history')
            ctx.member(s['id'], 'alice', 'operator')
            ctx.member(s['id'], 'bob', 'auditor')
            ctx.member(s['id'], 'ci-bot', 'operator')
            return s
        return ctx.fixture('hist-signer', make)

    def scenario():
        """Seven recorded attempts; two on a signer the caller cannot see and
        two unauthenticated ones, none recorded; oldest first."""
        def make():
            s, p = hist_signer(), ctx.people()
            path = '/pki/signers/%s/sign' % s['id']
            att = []

            def go(who, status, error, alg, data, is_digest, meta=None, raw_data=None, http=200):
                body = {'data': raw_data if raw_data is not None else rt.b64(data),
                        'signingAlgorithm': alg, 'isDigest': is_digest}
                if meta is not None:
                    body['clientMetadata'] = meta
                t0 = time.time()
                r = ctx.as_(p[who]['token']).post(path, body)
                t1 = time.time()
                if status == 'success':
                    j = expect(r, 200, 'attempt %d (%s)' % (len(att) + 1, who))
                    op = j.get('operationId')
                else:
                    expect_error(r, http, error, 'attempt %d (%s)' % (len(att) + 1, who))
                    op = None
                if status == 'unseen':
                    return
                att.append({'who': who, 'actorType': p[who]['type'], 'actorId': p[who]['id'],
                            'actorName': who if who != 'admin' else p['admin']['name'],
                            'status': status, 'errorCode': error, 'alg': alg, 'data': data,
                            'isDigest': is_digest, 'meta': meta, 'op': op, 't0': t0, 't1': t1})

            d1 = os.urandom(40)
            go('admin', 'success', None, 'ECDSA_SHA256', d1, False, {'tool': 'run-api-tests', 'hostname': 'build-1'})
            go('alice', 'success', None, 'ECDSA_SHA384', rt.digest('sha384', os.urandom(9)), True)
            go('ci-bot', 'success', None, 'ECDSA_SHA512', os.urandom(128), False, {'job': '42'})
            go('carol', 'unseen', 'NotFound', 'ECDSA_SHA256', rt.digest('sha256', b'c'), True, http=404)
            go('ci-other', 'unseen', 'NotFound', 'ECDSA_SHA256', rt.digest('sha256', b'o'), True, http=404)
            go('bob', 'denied', 'PermissionDenied', 'ECDSA_SHA256', rt.digest('sha256', b'b'), True, http=403)
            go('admin', 'failed', 'BadRequest', 'ECDSA_SHA256', None, False, raw_data='***', http=400)
            go('admin', 'failed', 'BadRequest', 'ECDSA_SHA256', os.urandom(48), True, http=400)
            go('admin', 'failed', 'BadRequest', 'RSASSA_PSS_SHA256', rt.digest('sha256', b'r'), True, http=400)
            # never recorded: no token, unknown token
            body = {'data': rt.b64(b'x'), 'signingAlgorithm': 'ECDSA_SHA256'}
            expect_error(ctx.api.post(path, body, token=None), 401, 'Unauthorized', 'no token')
            expect_error(ctx.api.post(path, body, token='rsu_' + 'f' * 64), 401, 'Unauthorized', 'bad token')
            r = ctx.api.get('/pki/signers/%s/operations?limit=100' % s['id'])
            j = expect(r, 200, 'GET operations')
            return s, att, j, items(j, 'operations', r)
        return ctx.fixture('history-scenario', make)

    def pair(a, rec):
        """Checks one record against the attempt that made it."""
        who = '%s attempt by %s' % (a['status'], a['who'])
        s = hist_signer()
        missing = [f for f in FIELDS if f not in rec]
        check(not missing, '%s: record lacks %s: %r' % (who, missing, rec))
        check(UUID_RE.match(str(rec['id'])), '%s: id %r' % (who, rec['id']))
        if a['op']:
            check(rec['id'] == a['op'], '%s: id %r != operationId %r' % (who, rec['id'], a['op']))
        want = {'signerId': s['id'], 'status': a['status'], 'actorType': a['actorType'],
                'actorId': a['actorId'], 'actorName': a['actorName'], 'errorCode': a['errorCode'],
                'sourceIp': '127.0.0.1', 'grantId': None}
        if a['status'] != 'denied':
            want['signingAlgorithm'] = a['alg']
            want['isDigest'] = a['isDigest']
        if a['status'] == 'success':
            want['dataHash'] = hashlib.sha256(a['data']).hexdigest()
            want['clientMetadata'] = a['meta']
        for f, v in want.items():
            got = rec.get(f)
            if f == 'clientMetadata' and v is None and got == {}:
                continue
            check(got == v, '%s: %s is %r, want %r' % (who, f, got, v))
        if a['status'] == 'failed' and a['data'] is not None and rec.get('dataHash') is not None:
            check(rec['dataHash'] == hashlib.sha256(a['data']).hexdigest(),
                  '%s: dataHash %r is not SHA-256 of the decoded data' % (who, rec['dataHash']))
        check(is_time(rec['createdAt']), '%s: createdAt %r' % (who, rec['createdAt']))
        t = parse_time(rec['createdAt'])
        check(a['t0'] - 2 <= t <= a['t1'] + 2, '%s: createdAt %s not at the time of the call' % (who, rec['createdAt']))

    def every_attempt():
        s, att, j, recs = scenario()
        check(j.get('totalCount') == len(att), 'totalCount %r, want %d' % (j.get('totalCount'), len(att)))
        check(len(recs) == len(att), '%d records, want %d: %r' % (len(recs), len(att),
                                                                 [(r.get('status'), r.get('actorName')) for r in recs]))
    add('history_records_every_attempt_past_authentication', every_attempt)

    def newest_first():
        s, att, j, recs = scenario()
        got = [(r.get('status'), r.get('actorName'), r.get('errorCode')) for r in recs]
        want = [(a['status'], a['actorName'], a['errorCode']) for a in reversed(att)]
        check(got == want, 'order %r, want %r' % (got, want))
        times = [parse_time(r['createdAt']) for r in recs if is_time(r.get('createdAt'))]
        check(times == sorted(times, reverse=True), 'createdAt not descending')
    add('history_lists_newest_first', newest_first)

    def by_attempt(indices):
        s, att, j, recs = scenario()
        check(len(recs) == len(att), 'record count %d != %d attempts' % (len(recs), len(att)))
        for i in indices:
            pair(att[i], recs[len(att) - 1 - i])

    add('history_success_record_has_all_api_fields', by_attempt, [0])
    add('history_records_operator_user_and_identity_actors', by_attempt, [1, 2])
    add('history_records_denied_attempts', by_attempt, [3])
    add('history_records_failed_attempts_with_error_code', by_attempt, [4, 5, 6])

    def unauth_omitted():
        s, att, j, recs = scenario()
        names = {r.get('actorName') for r in recs}
        check(None not in names and '' not in names, 'a record without an actor: %r' % recs)
        check(len(recs) == 7, 'unauthenticated or unseen attempts recorded? %d records' % len(recs))
    add('history_omits_unauthenticated_attempts', unauth_omitted)

    def paging():
        s, att, j, recs = scenario()
        ids = []
        for off, n in ((0, 4), (4, 3), (7, 0)):
            r = ctx.api.get('/pki/signers/%s/operations?offset=%d&limit=4' % (s['id'], off))
            pj = expect(r, 200)
            page = items(pj, 'operations', r)
            check(len(page) == n, 'offset %d: %d records, want %d' % (off, len(page), n), r)
            check(pj.get('totalCount') == 7, 'offset %d: totalCount %r' % (off, pj.get('totalCount')), r)
            ids += [x.get('id') for x in page]
        check(ids == [x.get('id') for x in recs], 'pages do not add up to the full list')
    add('history_pages_with_offset_and_limit', paging)

    def status_filter():
        s, att, j, recs = scenario()
        for st, want in (('success', 3), ('denied', 1), ('failed', 3)):
            r = ctx.api.get('/pki/signers/%s/operations?status=%s' % (s['id'], st))
            fj = expect(r, 200, st)
            got = items(fj, 'operations', r)
            check(len(got) == want and all(x.get('status') == st for x in got),
                  'status=%s gave %r' % (st, [x.get('status') for x in got]), r)
            check(fj.get('totalCount') == want, 'status=%s totalCount %r' % (st, fj.get('totalCount')), r)
    add('history_filters_by_status', status_filter)

    def bad_query():
        s = hist_signer()
        for q in ('status=bogus', 'limit=101', 'offset=-1', 'limit=x'):
            expect_error(ctx.api.get('/pki/signers/%s/operations?%s' % (s['id'], q)), 400, 'BadRequest', q)
    add('history_rejects_bad_status_filter_and_paging', bad_query)

    def auditor():
        s, att, j, recs = scenario()
        r = ctx.as_(ctx.people()['bob']['token']).get('/pki/signers/hist-ec/operations')
        check(len(items(expect(r, 200), 'operations', r)) == 7, 'auditor sees a different list', r)
    add('history_readable_by_auditor', auditor)

    def fmt(t):
        return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(t))

    def matches(row, f):
        """A history record or audit entry as the API should filter it."""
        t = parse_time(row['createdAt'])
        alg = row.get('signingAlgorithm', '').replace('_SHA_', '_SHA')
        return ((f.get('actor') is None or f['actor'] in (row['actorId'], row['actorName'])) and
                all(f.get(k) is None or row[k] == f[k] for k in ('status', 'action')) and
                (f.get('algorithm') is None or alg == f['algorithm'].replace('_SHA_', '_SHA')) and
                (f.get('from') is None or t >= parse_time(f['from'])) and
                (f.get('to') is None or t < parse_time(f['to'])))

    def filtered(path, key, query):
        """Every page of path?query, 7 at a time; the rows and each page's
        totalCount (all equal)."""
        rows, totals = [], set()
        while True:
            q = urllib.parse.urlencode(dict(query, offset=len(rows), limit=7))
            r = ctx.api.get('%s?%s' % (path, q))
            j = expect(r, 200, q)
            page = items(j, key, r)
            totals.add(j.get('totalCount'))
            rows += page
            if len(page) < 7:
                return rows, totals

    def history_filters():
        """actor (id or name), algorithm (either spelling), from/to and
        status alone and combined: the rows are those of the full list that
        match, totalCount their number, over several pages."""
        s, att, j, recs = scenario()
        p = ctx.people()
        times = sorted({parse_time(x['createdAt']) for x in recs})
        mid = times[len(times) // 2]

        def want(f):
            return [x['id'] for x in recs if matches(x, f)]
        cases = [{'actor': p['admin']['name']},
                 {'actor': p['alice']['id']}, {'actor': 'ci-bot'},
                 {'algorithm': 'ECDSA_SHA256'}, {'algorithm': 'ECDSA_SHA_384'},
                 {'algorithm': 'RSASSA_PSS_SHA256'},
                 {'actor': p['admin']['id'], 'status': 'failed'},
                 {'actor': p['admin']['id'], 'algorithm': 'ECDSA_SHA256', 'status': 'success'},
                 {'from': fmt(mid)}, {'to': fmt(mid)}, {'from': fmt(times[0]), 'to': fmt(times[-1] + 1)},
                 {'status': 'failed', 'from': fmt(mid)}, {'actor': 'nobody-of-that-name'}]
        nonempty = 0
        for f in cases:
            rows, totals = filtered('/pki/signers/%s/operations' % s['id'], 'operations', f)
            w = want(f)
            check([x['id'] for x in rows] == w, '%r: %r, want %r' % (f, [x['id'] for x in rows], w))
            check(totals == {len(w)}, '%r: totalCount %r, want %d' % (f, totals, len(w)))
            nonempty += bool(w)
        check(nonempty >= 10, 'only %d cases matched rows' % nonempty)
    add('history_filters_by_actor_algorithm_and_time_with_status', history_filters)

    def time_forms():
        """A fraction rounds up (created times are whole seconds) and an
        offset is honoured: each form selects what its UTC second does."""
        s, att, j, recs = scenario()
        path = '/pki/signers/%s/operations' % s['id']
        t = parse_time(recs[len(recs) // 2]['createdAt'])
        base, _ = filtered(path, 'operations', {'from': fmt(t)})
        after, _ = filtered(path, 'operations', {'from': fmt(t + 1)})
        frac, _ = filtered(path, 'operations', {'from': fmt(t)[:-1] + '.250Z'})
        check(frac == after and len(base) > len(after), 'from=%s.250Z: %d rows, want %d'
              % (fmt(t)[:-1], len(frac), len(after)))
        off = time.strftime('%Y-%m-%dT%H:%M:%S+02:00', time.gmtime(t + 7200))
        offs, _ = filtered(path, 'operations', {'from': off})
        check(offs == base, 'from=%s: %d rows, want %d' % (off, len(offs), len(base)))
    add('history_time_filters_take_fractions_and_offsets', time_forms)

    def bad_filters():
        s = hist_signer()
        for path in ('/pki/signers/%s/operations' % s['id'], '/audit-log'):
            for q, word in (('from=yesterday', 'from'), ('to=2026-13-01T00:00:00Z', 'to'),
                            ('from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', 'before'),
                            ('from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z', 'before'),
                            ('to=2026-01-01T00:00:00+25:00', 'to'), ('actor=', 'actor'),
                            ('actor=' + 'x' * 256, 'actor'), ('actor=a%0Ab', 'actor')):
                e = expect_error(ctx.api.get('%s?%s' % (path, q)), 400, 'BadRequest', q,
                                 reason='invalidQuery')
                check(word in e['message'], '%s %s: message %r does not name %r' % (path, q, e['message'], word))
        for q in ('algorithm=ECDSA_SHA1', 'algorithm=', 'algorithm=<b>'):
            e = expect_error(ctx.api.get('/pki/signers/%s/operations?%s' % (s['id'], q)), 400,
                             'BadRequest', q, reason='invalidQuery')
            check('algorithm' in e['message'], '%s: message %r' % (q, e['message']))
        for q in ('action=', 'action=policy', 'action=Policy.create', 'action=a.b.c', 'action=' + 'a.' + 'b' * 40):
            e = expect_error(ctx.api.get('/audit-log?' + q), 400, 'BadRequest', q, reason='invalidQuery')
            check('action' in e['message'], '%s: message %r' % (q, e['message']))
    add('history_and_audit_filters_refuse_bad_values_with_a_reason', bad_filters)

    def audit_filters():
        """GET /audit-log: actor (id or name), action and from/to, alone and
        combined, match the whole log's entries (paged, totalCount)."""
        scenario()
        p = ctx.people()
        every, _ = filtered('/audit-log', 'events', {})
        check(len(every) > 5, 'the audit log has %d entries' % len(every))
        times = sorted({parse_time(e['createdAt']) for e in every})
        mid = times[len(times) // 2]
        actions = sorted({e['action'] for e in every})

        def want(f):
            return [e['seq'] for e in every if matches(e, f)]
        cases = [{'actor': p['admin']['id']}, {'actor': p['admin']['name']},
                 {'action': 'member.set'}, {'action': actions[0]}, {'action': 'no.such_action'},
                 {'from': fmt(mid)}, {'to': fmt(mid)},
                 {'actor': p['admin']['id'], 'action': 'member.set', 'from': fmt(times[0])}]
        nonempty = 0
        for f in cases:
            # keys made in the background may add entries meanwhile: the
            # log read before and after the filtered one must be the same
            for _ in range(20):
                rows, totals = filtered('/audit-log', 'events', f)
                again, _ = filtered('/audit-log', 'events', {})
                if [e['seq'] for e in again] == [e['seq'] for e in every]:
                    break
                every[:] = again
            else:
                raise rt.Fail('the audit log kept changing under %r' % f)
            w = want(f)
            got = [e['seq'] for e in rows]
            check(got == w, '%r: %r, want %r' % (f, got, w))
            check(totals == {len(w)}, '%r: totalCount %r, want %d' % (f, totals, len(w)))
            nonempty += bool(got)
        check(nonempty >= 6, 'only %d cases matched rows' % nonempty)
    add('audit_log_filters_by_actor_action_and_time', audit_filters)

    def ctl_filters():
        """rsignctl history --actor --algorithm --status --since --until and
        rsignctl audit --actor --action --since --until send the API's
        filters: --json gives the API's rows; a bad time exits non-zero with
        the server's reason."""
        s, att, j, recs = scenario()
        p = ctx.people()
        t = sorted(parse_time(x['createdAt']) for x in recs)
        hist = [(['--actor', 'alice'], {'actor': 'alice'}),
                (['--algorithm', 'ECDSA_SHA256', '--status', 'failed'],
                 {'algorithm': 'ECDSA_SHA256', 'status': 'failed'}),
                (['--since', fmt(t[len(t) // 2]), '--until', fmt(t[-1] + 1), '--actor', p['admin']['id']],
                 {'from': fmt(t[len(t) // 2]), 'to': fmt(t[-1] + 1), 'actor': p['admin']['id']})]
        for args, f in hist:
            cp = ctx.ctl('history', s['id'], '--json', '--limit', '100', *args)
            check(cp.returncode == 0, 'rsignctl history %r exited %d: %s' % (args, cp.returncode, cp.stderr[-300:]))
            got = [x['id'] for x in json.loads(cp.stdout)['operations']]
            want = [x['id'] for x in recs if matches(x, f)]
            check(got == want and want, 'rsignctl history %r: %r, want %r' % (args, got, want))
        for args, f in ((['--action', 'member.set', '--actor', p['admin']['name']],
                         {'action': 'member.set', 'actor': p['admin']['name']}),
                        (['--since', 'OLDEST'], {'from': 'OLDEST'})):
            if f.get('from') == 'OLDEST':  # the newest entry the first case found
                args, f = ['--since', oldest], {'from': oldest}
            api, _ = filtered('/audit-log', 'events', f)
            cp = ctx.ctl('audit', '--json', '--limit', '100', *args)
            check(cp.returncode == 0, 'rsignctl audit %r exited %d: %s' % (args, cp.returncode, cp.stderr[-300:]))
            got = [e['seq'] for e in json.loads(cp.stdout)['events']]
            want = [e['seq'] for e in api]
            oldest = api[0]['createdAt'] if api else fmt(t[0])
            # entries made in between are newer: the API's rows end the list
            check(want and got[-len(want):] == want, 'rsignctl audit %r: %r, want %r' % (args, got, want))
        for cmd in (['history', s['id']], ['audit']):
            cp = ctx.ctl(*(cmd + ['--since', 'yesterday']))
            check(cp.returncode != 0 and b'from must be an RFC 3339 time' in cp.stderr,
                  'rsignctl %s --since yesterday: exit %d, stderr %r' % (cmd[0], cp.returncode, cp.stderr[-300:]))
    add('rsignctl_history_and_audit_filters', ctl_filters)

    def stranger():
        s, p = hist_signer(), ctx.people()
        for who in ('carol', 'ci-other'):
            expect_error(ctx.as_(p[who]['token']).get('/pki/signers/%s/operations' % s['id']), 404,
                         'NotFound', who, reason='notFound')
        expect_error(ctx.api.get('/pki/signers/%s/operations' % s['id'], token=None), 401, 'Unauthorized')
        expect_error(ctx.api.get('/pki/signers/%s/operations' % rand_uuid()), 404, 'NotFound', 'unknown signer')
    add('history_of_a_signer_a_stranger_cannot_see_is_404_like_an_unknown_one', stranger)

    def disabled_expired():
        d = ctx.disabled_signer()
        e = ctx.make_signer('exp-ec', ctx.expired_cert()['id'])
        body = {'data': rt.b64(rt.digest('sha256', b'h')), 'signingAlgorithm': 'ECDSA_SHA256', 'isDigest': True}
        for s, code in ((d, 'SignerDisabled'), (e, 'CertificateExpired')):
            expect_error(ctx.api.post('/pki/signers/%s/sign' % s['id'], body), 400, code)
            r = ctx.api.get('/pki/signers/%s/operations?limit=1' % s['id'])
            recs = items(expect(r, 200), 'operations', r)
            check(recs and recs[0].get('status') == 'failed' and recs[0].get('errorCode') == code,
                  '%s: newest record %r' % (s['name'], recs[:1]), r)
    add('history_records_signer_disabled_and_certificate_expired', disabled_expired)

    def as_given():
        s = ctx.make_signer('meta-ec', ctx.cert('EC_P256')['id'])
        problems = []
        for meta in ({'\u043a\u043b\u044e\u0447': '\u0437\u043d\u0430\u0447\u0435\u043d\u0438\u0435 \u2713',
                      'emoji': '\U0001F600', 'quote': 'a"b\\c\n\t'},
                     {'k': 'a\u0000b'}, {'k\u0000a': '1', 'k\u0000b': '2'}, {'': ''}):
            r = ctx.sign(ctx.api, s['id'], 'ECDSA_SHA256', b'meta', False, clientMetadata=meta)
            if r.status == 400 and (r.json or {}).get('error') == 'BadRequest':
                continue  # refusing what cannot be stored as given is fine
            j = expect(r, 200, 'clientMetadata %r' % meta)
            h = ctx.api.get('/pki/signers/%s/operations?limit=1' % s['id'])
            rec = items(expect(h, 200), 'operations', h)
            check(rec and rec[0].get('id') == j['operationId'], 'newest record is not the operation', h)
            if rec[0].get('clientMetadata') != meta:
                problems.append('sent %r, accepted (200), history has %r' % (meta, rec[0].get('clientMetadata')))
        check(not problems, '; '.join(problems))
    add('history_stores_client_metadata_exactly_as_given', as_given)

    def committed():
        s = ctx.make_signer('commit-ec', ctx.cert('EC_P256')['id'])
        for i in range(8):
            j = expect(ctx.sign(ctx.api, s['id'], 'ECDSA_SHA256', b'%d' % i, False), 200)
            r = ctx.api.get('/pki/signers/%s/operations?limit=1' % s['id'])
            recs = items(expect(r, 200), 'operations', r)
            check(recs and recs[0].get('id') == j['operationId'],
                  'round %d: newest record is not the operation just returned' % i, r)
    add('history_record_exists_when_sign_returns', committed)

    # ---- no disk fill from outside (issue 10, item 6)
    def rows_in_db():
        """Every history record the server has, read from its database
        (a reader beside the server's writer: WAL, or PostgreSQL)."""
        if ctx.srv.database:
            return int(pgtest.query(ctx.srv.database, 'SELECT count(*) FROM operations'))
        db = sqlite3.connect('file:%s?mode=ro' % os.path.join(ctx.srv.state_dir, 'rsign.db'),
                             uri=True, timeout=30)
        try:
            return db.execute('SELECT count(*) FROM operations').fetchone()[0]
        finally:
            db.close()

    def unseen_logged():
        """The largest count of the server's "attempts on signers that do
        not exist or that the caller cannot see" log lines, 0 when none."""
        counts = [int(m) for m in UNSEEN_RE.findall(ctx.srv.log_tail(100000))]
        return max(counts) if counts else 0

    def disk_fill():
        s = hist_signer()
        # two principals of their own: the attempts below get them blocked
        fillers = []
        for name in ('hx-fill-user', 'hx-fill-other'):
            j = expect(ctx.api.post('/principals', {'type': 'user', 'name': name}), CREATED, name)
            fillers.append(ctx.as_(j['token']))
        meta = {('k%02d' % i) + 'x' * 252: 'v' * 256 for i in range(16)}  # 16 x 256 characters
        before, logged = rows_in_db(), unseen_logged()
        # a line at every power of two: 2 * logged attempts more pass the next one
        n = max(64, 2 * logged)
        tries = [0, 0]
        limited = 0
        for i in range(n):
            who = i % 2
            tries[who] += 1
            target = s['id'] if i % 4 < 2 else 'no-such-signer-%d' % i
            r = ctx.sign(fillers[who], target, 'ECDSA_SHA256', b'fill %d' % i, False,
                         clientMetadata=meta)
            if tries[who] <= MAX_AUTH_FAILURES:
                expect_error(r, 404, 'NotFound', 'attempt %d on %s' % (i, target), reason='notFound')
            else:  # the principal is blocked: 429 with Retry-After, still no record
                expect_error(r, 429, 'RateLimitExceeded', 'attempt %d on %s' % (i, target),
                             reason='rateLimited')
                check(int(r.headers.get('Retry-After') or 0) >= 1,
                      'attempt %d: 429 without Retry-After' % i, r)
                limited += 1
        check(limited == n - 2 * MAX_AUTH_FAILURES, '%d of %d attempts were 429, expected %d'
              % (limited, n, n - 2 * MAX_AUTH_FAILURES))
        check(rows_in_db() == before, '%d attempts on unknown or unseen signers wrote %d history records'
              % (n, rows_in_db() - before))
        check(unseen_logged() > logged, 'the count of unseen attempts did not move in the log '
              '(was %d): %s' % (logged, ctx.srv.log_tail(5)))
    add('history_attempts_on_signers_the_caller_cannot_see_write_nothing_are_counted_and_limited', disk_fill)

    def metadata_members_only():
        def make():
            appr = expect(ctx.api.post('/principals', {'type': 'user', 'name': 'hx-approver'}), CREATED)
            pol = expect(ctx.api.post('/pki/signing-policies', {
                'name': 'hx-policy', 'approvers': [appr['id']], 'requiredApprovals': 1,
                'constraints': {'maxSignings': 1}}), CREATED, 'policy')
            sg = expect(ctx.api.post('/pki/signers', {'name': 'hx-meta', 'certificateId': ctx.cert('EC_P256')['id'],
                                                      'policyId': pol['id']}), CREATED, 'signer')
            ctx.member(sg['id'], 'bob', 'auditor')
            return sg, appr
        sg, appr = ctx.fixture('hx-meta', make)
        meta = {'tool': 'history test'}
        for who, token in (('approver (no member)', appr['token']), ('auditor', ctx.people()['bob']['token'])):
            r = ctx.sign(ctx.as_(token), sg['id'], 'ECDSA_SHA256', b'm', False, clientMetadata=meta)
            expect_error(r, 403, 'PermissionDenied', who, reason='roleRequired')
        r = ctx.api.get('/pki/signers/%s/operations?limit=2' % sg['id'])
        recs = items(expect(r, 200), 'operations', r)
        check([x.get('actorName') for x in recs] == ['bob', 'hx-approver'], 'records %r' % recs, r)
        check(recs[0].get('clientMetadata') == meta, 'the auditor\'s metadata was not kept: %r' % recs[0], r)
        check(recs[1].get('clientMetadata') == {}, 'a non-member\'s metadata was kept: %r' % recs[1], r)
    add('history_keeps_client_metadata_of_admins_and_members_only', metadata_members_only)

    def retired_readable():
        s = ctx.make_signer('hx-retired', ctx.cert('EC_P256')['id'])
        ctx.member(s['id'], 'bob', 'auditor')
        ctx.member(s['id'], 'alice', 'operator')
        j = expect(ctx.sign(ctx.as_(ctx.people()['alice']['token']), s['id'], 'ECDSA_SHA256', b'r', False), 200)
        expect(ctx.api.delete('/pki/signers/' + s['id']), 200, 'retire')
        for who, cl in (('admin', ctx.api), ('auditor', ctx.as_(ctx.people()['bob']['token']))):
            r = cl.get('/pki/signers/%s/operations' % s['id'])
            recs = items(expect(r, 200, '%s reads the retired signer\'s history' % who), 'operations', r)
            check([x.get('id') for x in recs] == [j['operationId']], '%s sees %r' % (who, recs), r)
        expect_error(ctx.as_(ctx.people()['carol']['token']).get('/pki/signers/%s/operations' % s['id']),
                     404, 'NotFound', 'a stranger', reason='notFound')
        ev = [e for e in items(expect(ctx.api.get('/audit-log?limit=100'), 200), 'events')
              if e.get('objectId') == s['id'] and e.get('action') == 'signer.retire']
        check(len(ev) == 1, 'signer.retire audited %d times' % len(ev))
    add('history_of_a_retired_signer_stays_readable_by_admins_and_auditors', retired_readable)

    def retention():
        """A server of its own (rsignd serve with history_denied_retention =
        2): denied records older than 2 s go as new records are written,
        successes and failures stay."""
        srv = rt.DevServer.start(prefix='rsign-retention-')
        serve = None
        try:
            token, ca = srv.token, srv.ca_file
            check(srv.stop(30) == 0, 'rsignd dev did not stop cleanly')
            conf = os.path.join(srv.work_dir, 'rsignd.conf')
            with open(os.path.join(srv.state_dir, 'rsignd.conf')) as f:
                lines = [l for l in f if not l.startswith('listen')]
            with open(conf, 'w') as f:
                f.writelines(lines + ['listen = 127.0.0.1:0\n', 'history_denied_retention = 2\n'])
            os.chmod(conf, 0o600)
            serve = Serve(conf, os.path.join(srv.work_dir, 'serve.log'))
            api = rt.Client(serve.wait_url(60), ca, token)
            aud = expect(api.post('/principals', {'type': 'user', 'name': 'ret-auditor'}), CREATED)
            expect(api.post('/pki/signers/demo-ec/members', {'principalId': aud['id'], 'role': 'auditor'}),
                   CREATED)
            auditor = rt.Client(api.url, ca, aud['token'])

            def sign(cl, data, what, status):
                r = cl.post('/pki/signers/demo-ec/sign', {'data': data, 'signingAlgorithm': 'ECDSA_SHA256'})
                check(r.status == status, '%s: status %d' % (what, r.status), r)
                return r
            sign(api, rt.b64(b'ok'), 'admin signs', 200)
            sign(api, '***', 'admin, bad base64', 400)
            sign(auditor, rt.b64(b'no'), 'auditor', 403)

            def records():
                r = api.get('/pki/signers/demo-ec/operations?limit=100')
                return items(expect(r, 200), 'operations', r)
            first = [x for x in records() if x.get('status') == 'denied']
            check(len(first) == 1, 'denied records %r' % first)
            deadline = time.monotonic() + 120  # ends a hang only
            while any(x['id'] == first[0]['id'] for x in records()):
                check(time.monotonic() < deadline, 'the denied record outlived its retention by 2 minutes')
                time.sleep(0.5)
                sign(auditor, rt.b64(b'again'), 'auditor again', 403)
            recs = records()
            check(sorted(x.get('status') for x in recs if x.get('status') != 'denied') == ['failed', 'success'],
                  'a success or failure went with the denied records: %r' % recs)
            check(any(x.get('status') == 'denied' for x in recs), 'the newest denied record went too')
            newest = max(parse_time(x['createdAt']) for x in recs if x.get('status') == 'denied')
            check(all(parse_time(x['createdAt']) >= newest - 3 for x in recs if x.get('status') == 'denied'),
                  'denied records older than the retention remain: %r' % recs)
        finally:
            if serve:
                serve.stop()
            srv.cleanup()
    add('history_denied_retention_purges_denied_records_only', retention)


UNSEEN_RE = re.compile(r'sign: (\d+) attempts? on signers that do not exist')
MAX_AUTH_FAILURES = 10  # rsignd's default max_auth_failures: unseen attempts a principal has a window


class Serve:
    """`rsignd serve -c CONF` with its log in log_path; the URL comes from
    its "serving HTTPS on ... port N" line."""

    def __init__(self, conf, log_path):
        self.log_path = log_path
        self.log = open(log_path, 'wb')
        self.proc = subprocess.Popen([os.path.join(rt.top_builddir(), 'rsignd'), 'serve', '-c', conf],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)

    def wait_url(self, limit):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with open(self.log_path, 'rb') as f:
                m = re.search(rb'serving HTTPS on \S+ port (\d+)', f.read())
            if m:
                return 'https://127.0.0.1:%d' % int(m.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        with open(self.log_path, 'rb') as f:
            raise rt.Fail('rsignd serve did not start: %s' % f.read()[-600:].decode('utf-8', 'replace'))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
