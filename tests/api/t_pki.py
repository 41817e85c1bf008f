"""Keys in the token, CSRs, issued and imported certificates."""

import base64
import os
import re
import subprocess
import time

import rsigntest as rt
from apictx import (CREATED, UUID_RE, check, expect, expect_error, is_time, items, parse_time,
                    rand_uuid, same_pem, slug)

EXT_CA_SUBJ = '/CN=rsign test external CA/O=rsign tests'


def _codesign_purpose_supported():
    p = subprocess.run(['openssl', 'verify', '-purpose', 'codesign', '/dev/null'],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return b'Invalid purpose' not in p.stderr + p.stdout


def register(add, ctx):
    def w(name):
        return os.path.join(ctx.srv.work_dir, name)

    # ---- keys
    def key_create(kt):
        k = ctx.key(kt)
        check(UUID_RE.match(str(k.get('id'))), 'id %r not a uuid' % k.get('id'))
        check(k.get('name') == 'k-' + slug(kt), 'name %r' % k.get('name'))
        check(k.get('keyAlgorithm') == kt, 'keyAlgorithm %r' % k.get('keyAlgorithm'))
        pem = rt.openssl_pubkey_pem_from_spki(k.get('publicKey') or '')
        kind = rt.pubkey_kind(pem)
        if kt.startswith('RSA'):
            check(kind == ('rsa', rt.key_bits(kt)), 'public key is %r, want RSA %d' % (kind, rt.key_bits(kt)))
        else:
            check(kind == ('ec', rt.key_curve(kt)), 'public key is %r, want %s' % (kind, rt.key_curve(kt)))
    for kt in rt.KEY_ALGS:
        add('key_create_%s_publickey_parses_with_right_size' % slug(kt).replace('-', '_'), key_create, kt)

    def key_get():
        k = ctx.key('EC_P256')
        a = expect(ctx.api.get('/pki/keys/' + k['id']), 200, 'by id')
        b = expect(ctx.api.get('/pki/keys/' + k['name']), 200, 'by name')
        check(a == b, 'by id %r != by name %r' % (a, b))
        check(a.get('publicKey') == k['publicKey'] and a.get('keyAlgorithm') == 'EC_P256', 'key %r' % a)
        check(is_time(a.get('createdAt')), 'createdAt %r' % a.get('createdAt'))
        r = ctx.api.get('/pki/keys')
        ids = {x.get('id') for x in items(expect(r, 200), 'keys', r)}
        check(k['id'] in ids, 'key missing from GET /pki/keys', r)
        expect_error(ctx.api.get('/pki/keys/' + rand_uuid()), 404, 'NotFound', 'unknown key')
    add('key_get_by_id_and_name_and_list', key_get)

    def key_bad_alg():
        for alg in ('RSA_1024', 'EC_P192', 'rsa_2048', ''):
            r = ctx.api.post('/pki/keys', {'name': 'k-bad-' + (alg.lower() or 'empty').replace('_', '-'),
                                           'keyAlgorithm': alg})
            expect_error(r, 400, 'BadRequest', 'keyAlgorithm %r' % alg)
        expect_error(ctx.api.post('/pki/keys', {'keyAlgorithm': 'EC_P256'}), 400, 'BadRequest', 'no name')
    add('key_create_rejects_unknown_algorithm_and_missing_name', key_bad_alg)

    def key_dup():
        k = ctx.key('EC_P256')
        r = ctx.api.post('/pki/keys', {'name': k['name'], 'keyAlgorithm': 'EC_P256'})
        expect_error(r, 409, 'Conflict')
    add('key_create_rejects_duplicate_name', key_dup)

    def key_admin_only():
        p = ctx.people()
        r = ctx.as_(p['alice']['token']).post('/pki/keys', {'name': 'k-alice', 'keyAlgorithm': 'EC_P256'})
        expect_error(r, 403, 'PermissionDenied')
    add('key_create_requires_admin', key_admin_only)

    # ---- CSR
    def csr(kt):
        k = ctx.key(kt)
        r = ctx.api.post('/pki/keys/%s/csr' % k['id'], {'subject': 'CN=rsign csr %s,O=rsign tests' % slug(kt)})
        j = expect(r, CREATED)
        pem = j.get('csrPem') or ''
        check('BEGIN CERTIFICATE REQUEST' in pem, 'no csrPem', r)
        p = rt.openssl(['req', '-verify', '-noout', '-subject'], input=pem.encode(), check=False)
        out = (p.stdout + p.stderr).decode('utf-8', 'replace')
        check(p.returncode == 0 and re.search(r'verify OK', out, re.I), 'openssl req -verify: %s' % out)
        check('rsign csr %s' % slug(kt) in out, 'CSR subject lacks the CN: %s' % out)
        pub = rt.openssl(['req', '-noout', '-pubkey'], input=pem.encode()).stdout.decode()
        check(rt.openssl_pubkey_der_from_pem(pub) == rt.unb64(k['publicKey']),
              'CSR public key differs from the key\'s publicKey')
    add('csr_rsa_verifies_and_carries_the_key', csr, 'RSA_2048')
    add('csr_ec_verifies_and_carries_the_key', csr, 'EC_P384')

    def csr_errors():
        expect_error(ctx.api.post('/pki/keys/%s/csr' % rand_uuid(), {'subject': 'CN=x'}), 404, 'NotFound')
        k = ctx.key('EC_P256')
        expect_error(ctx.api.post('/pki/keys/%s/csr' % k['id'], {'subject': 'no equals sign'}),
                     400, 'BadRequest', 'malformed subject')
        expect_error(ctx.api.post('/pki/keys/%s/csr' % k['id'], {}), 400, 'BadRequest', 'no subject')
    add('csr_rejects_unknown_key_and_malformed_subject', csr_errors)

    # ---- issued certificates
    def issued_object():
        k, c = ctx.key('RSA_2048'), ctx.cert('RSA_2048')
        check(UUID_RE.match(str(c.get('id'))), 'id %r' % c.get('id'))
        check(c.get('keyId') == k['id'], 'keyId %r != %r' % (c.get('keyId'), k['id']))
        check(c.get('commonName') == 'rsign api test rsa-2048', 'commonName %r' % c.get('commonName'))
        check(c.get('keyAlgorithm') == 'RSA_2048', 'keyAlgorithm %r' % c.get('keyAlgorithm'))
        check(is_time(c.get('notBefore')) and is_time(c.get('notAfter')), 'notBefore/notAfter not RFC 3339')
        days = (parse_time(c['notAfter']) - parse_time(c['notBefore'])) / 86400.0
        check(29 <= days <= 31, 'validity is %.2f days, asked 30' % days)
        check(abs(parse_time(c['notBefore']) - time.time()) < 86400 + 600, 'notBefore not about now')
        serial = rt.openssl(['x509', '-noout', '-serial'], input=c.get('certificatePem', '').encode()
                            ).stdout.decode().strip().split('=')[-1]
        check(str(c.get('serialNumber', '')).upper().lstrip('0') == serial.upper().lstrip('0'),
              'serialNumber %r != certificate serial %s' % (c.get('serialNumber'), serial))
        check(same_pem(c.get('chainPem'), ctx.ca_pem()), 'chainPem is not the built-in CA')
        g = expect(ctx.api.get('/pki/certificates/' + c['id']), 200, 'GET by id')
        check(g == c, 'GET differs from the issue response: %r' % g)
        r = ctx.api.get('/pki/certificates')
        check(c['id'] in {x.get('id') for x in items(expect(r, 200), 'certificates', r)},
              'certificate missing from the list', r)
        expect_error(ctx.api.get('/pki/certificates/' + rand_uuid()), 404, 'NotFound', 'unknown id')
    add('certificate_issue_returns_certificate_object', issued_object)

    def issued_eku():
        for kt in ('RSA_2048', 'EC_P256'):
            pem = ctx.cert(kt)['certificatePem'].encode()
            ext = rt.openssl(['x509', '-noout', '-ext', 'extendedKeyUsage,basicConstraints,keyUsage'],
                             input=pem).stdout.decode()
            check('Code Signing' in ext, '%s: no codeSigning EKU: %s' % (kt, ext))
            check('CA:TRUE' not in ext, '%s: leaf is a CA: %s' % (kt, ext))
            check('Digital Signature' in ext, '%s: keyUsage lacks digitalSignature: %s' % (kt, ext))
    add('certificate_issued_has_codesigning_eku', issued_eku)

    def issued_verifies():
        ca = rt.scratch_file(ctx.ca_pem(), '.pem')
        purpose = ['-purpose', 'codesign'] if _codesign_purpose_supported() else []
        for kt in rt.KEY_ALGS:
            leaf = rt.scratch_file(ctx.cert(kt)['certificatePem'], '.pem')
            p = rt.openssl(['verify', '-CAfile', ca] + purpose + [leaf], check=False)
            out = (p.stdout + p.stderr).decode()
            check(p.returncode == 0 and ': OK' in out, '%s: openssl verify: %s' % (kt, out))
    add('certificate_issued_verifies_against_built_in_ca', issued_verifies)

    def issued_key_matches():
        for kt in rt.KEY_ALGS:
            pub = rt.openssl_pubkey_pem_from_cert(ctx.cert(kt)['certificatePem'])
            check(rt.openssl_pubkey_der_from_pem(pub) == rt.unb64(ctx.key(kt)['publicKey']),
                  '%s: certificate key differs from the token key' % kt)
            check(ctx.cert(kt).get('keyAlgorithm') == kt, '%s: keyAlgorithm %r' % (kt, ctx.cert(kt).get('keyAlgorithm')))
    add('certificate_issued_for_each_key_type_carries_that_key', issued_key_matches)

    def issue_errors():
        # keyId names no key: docs/api.md's table puts a bad body field under 400
        # BadRequest (404 is for an unknown id in the path).
        r = ctx.api.post('/pki/certificates/issue', {'keyId': rand_uuid(), 'commonName': 'x', 'ttlDays': 1})
        expect_error(r, 400, 'BadRequest', 'unknown keyId')
        k = ctx.key('EC_P256')
        for ttl in (0, -5, 'ten', 1.5):
            r = ctx.api.post('/pki/certificates/issue', {'keyId': k['id'], 'commonName': 'x', 'ttlDays': ttl})
            expect_error(r, 400, 'BadRequest', 'ttlDays %r' % (ttl,))
        r = ctx.api.post('/pki/certificates/issue', {'keyId': k['id'], 'commonName': 'x', 'ttlDays': 1,
                                                     'notBefore': 'yesterday'})
        expect_error(r, 400, 'BadRequest', 'notBefore not RFC 3339')
        r = ctx.api.post('/pki/certificates/issue', {'keyId': k['id'], 'commonName': 'x', 'ttlDays': 1,
                                                     'notBefore': '2030-01-02T00:00:00Z',
                                                     'notAfter': '2030-01-01T00:00:00Z'})
        expect_error(r, 400, 'BadRequest', 'notAfter before notBefore')
    add('certificate_issue_rejects_unknown_key_and_bad_validity', issue_errors)

    def issue_admin_only():
        p = ctx.people()
        r = ctx.as_(p['alice']['token']).post('/pki/certificates/issue',
                                              {'keyId': ctx.key('EC_P256')['id'], 'commonName': 'x', 'ttlDays': 1})
        expect_error(r, 403, 'PermissionDenied')
    add('certificate_issue_requires_admin', issue_admin_only)

    def issue_backdated():
        c = ctx.expired_cert()
        check(c.get('notBefore') == '2020-01-01T00:00:00Z' and c.get('notAfter') == '2021-01-01T00:00:00Z',
              'validity %r..%r, asked 2020-01-01..2021-01-01' % (c.get('notBefore'), c.get('notAfter')))
        dates = rt.openssl(['x509', '-noout', '-dates'], input=c['certificatePem'].encode()).stdout.decode()
        check('Jan  1 00:00:00 2021 GMT' in dates, 'certificate dates: %s' % dates)
    add('certificate_issue_honours_not_before_and_not_after', issue_backdated)

    # ---- import from an outside CA
    def ext_ca():
        def make():
            key, crt = w('extca.key'), w('extca.pem')
            rt.openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                        '-keyout', key, '-out', crt, '-days', '30', '-subj', EXT_CA_SUBJ,
                        '-addext', 'basicConstraints=critical,CA:TRUE',
                        '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
            return key, crt
        return ctx.fixture('ext-ca', make)

    def ext_sign(csr_pem, name, eku):
        """Signs csr_pem with the outside CA; eku None = no EKU extension."""
        cakey, cacrt = ext_ca()
        cnf = w(name + '.cnf')
        with open(cnf, 'w') as f:
            f.write('[v3]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n'
                    'subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n')
            if eku:
                f.write('extendedKeyUsage=%s\n' % eku)
        csr = rt.scratch_file(csr_pem, '.csr')
        out = w(name + '.pem')
        rt.openssl(['x509', '-req', '-in', csr, '-CA', cacrt, '-CAkey', cakey, '-set_serial',
                    '0x' + os.urandom(8).hex(), '-days', '20', '-extfile', cnf, '-extensions', 'v3',
                    '-out', out])
        return open(out).read()

    def import_key():
        def make():
            r = ctx.api.post('/pki/keys', {'name': 'k-import', 'keyAlgorithm': 'EC_P256'})
            k = expect(r, CREATED, 'create k-import')
            r = ctx.api.post('/pki/keys/%s/csr' % k['id'], {'subject': 'CN=rsign-import-ok,O=rsign tests'})
            return k, expect(r, CREATED, 'CSR for k-import')['csrPem']
        return ctx.fixture('import-key', make)

    def ca_text():
        return open(ext_ca()[1]).read()

    def imp(cert_pem, chain=True):
        body = {'certificatePem': cert_pem}
        if chain:
            body['chainPem'] = ca_text()
        return ctx.api.post('/pki/certificates', body)

    def import_ok():
        def make():
            k, csr_pem = import_key()
            leaf = ext_sign(csr_pem, 'leaf-ok', 'codeSigning')
            r = imp(leaf)
            j = expect(r, CREATED, 'import')
            return k, leaf, j
        return ctx.fixture('imported', make)

    def import_accepts():
        k, leaf, j = import_ok()
        check(UUID_RE.match(str(j.get('id'))), 'id %r' % j.get('id'))
        check(j.get('keyId') == k['id'], 'keyId %r != k-import %r' % (j.get('keyId'), k['id']))
        check(j.get('commonName') == 'rsign-import-ok', 'commonName %r' % j.get('commonName'))
        check(j.get('keyAlgorithm') == 'EC_P256', 'keyAlgorithm %r' % j.get('keyAlgorithm'))
        check(same_pem(j.get('certificatePem'), leaf), 'certificatePem is not the imported one')
        check(same_pem(j.get('chainPem'), ca_text()), 'chainPem is not the given chain')
        check(is_time(j.get('notAfter')), 'notAfter %r' % j.get('notAfter'))
    add('certificate_import_accepts_code_signing_cert_from_outside_ca', import_accepts)

    def imported_signs():
        k, leaf, j = import_ok()
        s = ctx.make_signer('imported-ec', j['id'])
        data = os.urandom(64)
        pub = rt.openssl_pubkey_pem_from_cert(leaf)
        ctx.verify(pub, 'ECDSA_SHA256', data, False, ctx.sign(ctx.api, s['id'], 'ECDSA_SHA256', data, False))
    add('imported_certificate_signer_signs', imported_signs)

    def import_garbage():
        for pem in ('not a certificate',
                    '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
                    ''):
            expect_error(ctx.api.post('/pki/certificates', {'certificatePem': pem}), 400, 'BadRequest',
                         'certificatePem %r' % pem[:30])
        expect_error(ctx.api.post('/pki/certificates', {}), 400, 'BadRequest', 'no certificatePem')
        _, csr_pem = import_key()
        leaf = ext_sign(csr_pem, 'leaf-junkchain', 'codeSigning')
        expect_error(ctx.api.post('/pki/certificates', {'certificatePem': leaf, 'chainPem': 'junk'}),
                     400, 'BadRequest', 'garbage chainPem')
    add('certificate_import_rejects_garbage_pem', import_garbage)

    def import_no_codesign():
        _, csr_pem = import_key()
        expect_error(imp(ext_sign(csr_pem, 'leaf-tls', 'serverAuth,clientAuth')), 400, 'BadRequest')
    add('certificate_import_rejects_cert_without_codesigning_eku', import_no_codesign)

    def import_no_eku():
        _, csr_pem = import_key()
        expect_error(imp(ext_sign(csr_pem, 'leaf-noeku', None)), 400, 'BadRequest')
    add('certificate_import_rejects_cert_with_no_eku_extension', import_no_eku)

    def import_foreign_key():
        key, csr = w('foreign.key'), w('foreign.csr')
        rt.openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                    '-keyout', key, '-out', csr, '-subj', '/CN=rsign-import-foreign'])
        expect_error(imp(ext_sign(open(csr).read(), 'leaf-foreign', 'codeSigning')), 400, 'BadRequest')
    add('certificate_import_rejects_key_not_in_token', import_foreign_key)

    def pem_of(der):
        b = base64.b64encode(der).decode()
        return '-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n' % '\n'.join(
            b[i:i + 64] for i in range(0, len(b), 64))

    def der_of(pem):
        body = re.search(r'-----BEGIN CERTIFICATE-----(.*?)-----END', pem, re.S).group(1)
        return base64.b64decode(''.join(body.split()))

    def import_corrupted():
        _, leaf, _ = import_ok()
        body = ''.join(re.search(r'-----BEGIN CERTIFICATE-----(.*?)-----END', leaf, re.S).group(1).split())
        failures = []
        for pos in (len(body) // 3, len(body) // 2, (2 * len(body)) // 3):
            c = body[pos]
            flipped = body[:pos] + ('B' if c != 'B' else 'C') + body[pos + 1:]
            pem = '-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n' % '\n'.join(
                flipped[i:i + 64] for i in range(0, len(flipped), 64))
            r = imp(pem)
            if r.status != 400 or (r.json or {}).get('error') != 'BadRequest':
                failures.append('byte at base64 offset %d: %s' % (pos, r.describe(200)))
        check(not failures, 'tampered certificate accepted: ' + '; '.join(failures))
    add('certificate_import_rejects_certificate_with_flipped_base64', import_corrupted)

    def import_tampered():
        # Same DER structure, one subject letter changed: it still parses, has
        # the EKU and the token's key, so only the signature check catches it.
        _, leaf, _ = import_ok()
        der = der_of(leaf)
        check(der.count(b'rsign-import-ok') == 1, 'CN not found once in the DER')
        bad = pem_of(der.replace(b'rsign-import-ok', b'rsign-import-oK'))
        p = rt.openssl(['x509', '-noout', '-subject'], input=bad.encode(), check=False)
        check(p.returncode == 0, 'tampered certificate does not even parse locally')
        expect_error(imp(bad), 400, 'BadRequest', 'tampered subject, outside CA as chainPem')
    add('certificate_import_rejects_tampered_certificate', import_tampered)

    def import_wrong_chain():
        _, csr_pem = import_key()
        leaf = ext_sign(csr_pem, 'leaf-wrongchain', 'codeSigning')
        r = ctx.api.post('/pki/certificates', {'certificatePem': leaf, 'chainPem': ctx.ca_pem()})
        expect_error(r, 400, 'BadRequest', 'chainPem is a CA that did not sign the certificate')
    add('certificate_import_rejects_chain_that_did_not_sign_it', import_wrong_chain)

    def import_admin_only():
        _, leaf, _ = import_ok()
        r = ctx.as_(ctx.people()['alice']['token']).post('/pki/certificates', {'certificatePem': leaf})
        expect_error(r, 403, 'PermissionDenied')
    add('certificate_import_requires_admin', import_admin_only)

    # ---- paging on the other lists (docs/api.md: offset defaults to 0, limit
    # to 20, at most 100; other values are 400 BadRequest)
    def other_lists():
        ctx.people()
        for kt in rt.KEY_ALGS:
            ctx.cert(kt)
        problems = []
        for path, key in (('/principals', 'principals'), ('/pki/keys', 'keys'),
                          ('/pki/certificates', 'certificates')):
            full = expect(ctx.api.get(path + '?limit=100'), 200, path)
            total = full.get('totalCount')
            every = items(full, key)
            if total != len(every):
                problems.append('%s?limit=100: totalCount %r, %d items' % (path, total, len(every)))
            r = ctx.api.get(path + '?offset=1&limit=2')
            page = items(expect(r, 200, path), key, r)
            if [x.get('id') for x in page] != [x.get('id') for x in every[1:3]]:
                problems.append('%s?offset=1&limit=2 gave %d items, not items 2-3 of the list'
                                % (path, len(page)))
            for q in ('limit=101', 'limit=abc', 'offset=-1'):
                r = ctx.api.get(path + '?' + q)
                if r.status != 400:
                    problems.append('%s?%s -> %s, want 400' % (path, q, r.status))
        check(not problems, '; '.join(problems))
    add('principal_key_and_certificate_lists_page_with_offset_and_limit', other_lists)
