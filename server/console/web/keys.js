// The admin's keys and certificates pages: keys listed and created in the
// token (/keys), a key with its certificates and the form issuing one from
// the built-in CA (/keys/{id}), certificates listed and imported with their
// chain, pasted or from a file (/certificates), and one certificate's
// fields and PEM (/certificates/{id}). The API refuses all of it to
// non-admins; the navigation hides it from them. Each form shows the
// rsignctl command doing the same and the API's error beside the field or
// the form.
import { api, query } from './api.js';
import { h, navigate, state } from './app.js';
import { allOf, field, fileInto, numberOf, onSubmit, sh } from './forms.js';
import { PAGE, cmd, pager, table, when } from './pages.js';
import { certFields } from './x509.js';

const KEY_ALGS = [
  ['EC_P256', 'EC P-256 (fast, small signatures; Authenticode, JAR, most tools)'],
  ['EC_P384', 'EC P-384'], ['EC_P521', 'EC P-521'],
  ['RSA_2048', 'RSA 2048'], ['RSA_3072', 'RSA 3072 (widest support)'], ['RSA_4096', 'RSA 4096'],
];
const PROFILES = [['codeSigning', 'code signing (extended key usage codeSigning)'],
  ['tsa', 'time-stamp authority (extended key usage timeStamping only, critical)']];

function adminOnly(title) {
  return [h('h1', {}, title), h('p', { class: 'error', role: 'alert' }, 'Only admins manage keys and certificates.')];
}

function select(name, options, v) {
  return h('select', { name }, options.map(([val, text]) => h('option', { value: val, selected: val === v }, text)));
}

// A form with its submit button, the error slot beside it and the command.
function formOf(id, fields, label, command) {
  const err = h('p', { id: id + '-error', 'aria-live': 'polite' });
  const form = h('form', { id, novalidate: true }, fields, h('p', {}, h('button', { type: 'submit' }, label), ' ', err), command);
  return [form, err];
}

// ---- keys --------------------------------------------------------------

async function keys(params) {
  if (!state.me.admin) return adminOnly('Keys');
  const offset = Number(params.get('offset') || 0);
  const j = await api('GET', '/pki/keys' + query({ offset, limit: PAGE }));
  const name = h('input', { name: 'name', autocomplete: 'off', spellcheck: 'false' });
  const alg = select('keyAlgorithm', KEY_ALGS, 'EC_P256');
  const command = h('code', { class: 'cmd', id: 'key-command' });
  const [form, err] = formOf('key-form', [
    field('name', 'Name', name, 'Letters, digits and - _ . (1 to 64), starting with a letter or digit; the key\'s label in the token.'),
    field('keyAlgorithm', 'Algorithm', alg, 'The key pair is generated inside the token; its private key never leaves it and only signs.'),
  ], 'Create key', command);
  const update = () => { command.textContent = `rsignctl key create --name ${sh(name.value.trim() || 'NAME')} --alg ${alg.value}`; };
  form.addEventListener('input', update);
  form.addEventListener('change', update);
  update();
  onSubmit(form, err, { name: ['name'], keyAlgorithm: ['keyAlgorithm'] }, { nameTaken: 'name' }, async () => {
    const k = await api('POST', '/pki/keys', { name: name.value.trim(), keyAlgorithm: alg.value });
    navigate('/keys/' + encodeURIComponent(k.id));
  });
  return [
    h('h1', {}, 'Keys'),
    h('p', {}, h('a', { href: '/certificates' }, 'Certificates'), ' · ', cmd('rsignctl key list')),
    h('div', { id: 'keys' }, table(['Name', 'Algorithm', 'Created', 'Id'], j.keys.map((k) => h('tr', { 'data-name': k.name },
      h('td', {}, h('a', { href: '/keys/' + encodeURIComponent(k.id) }, k.name)), h('td', {}, k.keyAlgorithm),
      h('td', {}, when(k.createdAt)), h('td', {}, h('code', {}, k.id)))), 'No keys.')),
    pager(params, j.totalCount),
    h('h2', {}, 'Create a key'),
    form,
  ];
}

function certRows(list) {
  return list.map((c) => h('tr', { 'data-id': c.id },
    h('td', {}, h('a', { href: '/certificates/' + encodeURIComponent(c.id) }, c.commonName)),
    h('td', {}, c.serialNumber), h('td', {}, c.keyAlgorithm), h('td', {}, when(c.notBefore)), h('td', {}, when(c.notAfter))));
}
const CERT_COLS = ['Common name', 'Serial', 'Key algorithm', 'Valid from', 'Valid until'];

async function keyDetail(params, id) {
  if (!state.me.admin) return adminOnly('Key');
  const k = await api('GET', '/pki/keys/' + encodeURIComponent(id));
  const certs = (await allOf('/pki/certificates', 'certificates')).filter((c) => c.keyId === k.id);
  const isCa = k.name === 'rsign-ca';
  const parts = [
    h('h1', {}, 'Key ', k.name),
    h('dl', { class: 'fields', id: 'key' },
      h('dt', {}, 'Id'), h('dd', {}, h('code', {}, k.id)),
      h('dt', {}, 'Algorithm'), h('dd', { id: 'key-alg' }, k.keyAlgorithm),
      h('dt', {}, 'Created'), h('dd', {}, when(k.createdAt)),
      h('dt', {}, 'Public key (base64 DER)'), h('dd', { class: 'wrap' }, h('code', {}, k.publicKey))),
    cmd(`rsignctl key get ${sh(k.name)}`),
    h('h2', {}, 'Certificates for this key'),
    h('div', { id: 'key-certificates' }, table(CERT_COLS, certRows(certs), 'None yet.')),
  ];
  if (isCa) {
    parts.push(h('p', { class: 'muted' }, 'This is the built-in CA\'s own key: it issues certificates and is not issued one.'));
    return parts;
  }
  const cn = h('input', { name: 'commonName', autocomplete: 'off', maxlength: 64 });
  const days = h('input', { name: 'ttlDays', type: 'text', inputmode: 'numeric', size: 8, value: '365' });
  const nb = h('input', { name: 'notBefore', placeholder: '2026-01-01T00:00:00Z', size: 24 });
  const na = h('input', { name: 'notAfter', placeholder: '2027-01-01T00:00:00Z', size: 24 });
  const profile = select('profile', PROFILES, 'codeSigning');
  const command = h('code', { class: 'cmd', id: 'issue-command' });
  const [form, err] = formOf('issue-form', [
    field('commonName', 'Subject common name', cn, 'The CN of the certificate\'s subject (1 to 64 characters), e.g. "Example Corp Release Signing"; signing tools show it.'),
    field('ttlDays', 'Validity (days)', days, 'The certificate is valid from 5 minutes ago for this many days (1 to 3650); it may not outlive the built-in CA.'),
    field('notBefore', 'Valid from (optional)', nb, 'An RFC 3339 time overriding the start, e.g. to back-date for a test.'),
    field('notAfter', 'Valid until (optional)', na, 'An RFC 3339 time overriding the end; it must be after the start.'),
    field('profile', 'Profile', profile, 'Code signing for signers; time-stamp authority for a TSA certificate.'),
  ], 'Issue certificate', command);
  const body = () => {
    const b = { keyId: k.id, commonName: cn.value };
    const d = numberOf(days);
    if (d !== undefined) b.ttlDays = d;
    if (nb.value.trim()) b.notBefore = nb.value.trim();
    if (na.value.trim()) b.notAfter = na.value.trim();
    if (profile.value !== 'codeSigning') b.profile = profile.value;
    return b;
  };
  const update = () => {
    const b = body();
    command.textContent = ['rsignctl cert issue --key', sh(k.name), '--cn', sh(b.commonName || 'NAME'),
      b.ttlDays !== undefined ? '--days ' + sh(b.ttlDays) : '', b.notBefore ? '--not-before ' + sh(b.notBefore) : '',
      b.notAfter ? '--not-after ' + sh(b.notAfter) : '', b.profile ? '--profile ' + b.profile : ''].filter(Boolean).join(' ');
  };
  form.addEventListener('input', update);
  form.addEventListener('change', update);
  update();
  onSubmit(form, err, { commonName: ['commonName'], ttlDays: ['ttlDays'], notBefore: ['notBefore'], notAfter: ['notAfter'],
    profile: ['profile'] }, null, async () => {
    const c = await api('POST', '/pki/certificates/issue', body());
    navigate('/certificates/' + encodeURIComponent(c.id));
  });
  parts.push(h('h2', {}, 'Issue a certificate from the built-in CA'), form);
  return parts;
}

// ---- certificates ------------------------------------------------------

async function certificates(params) {
  if (!state.me.admin) return adminOnly('Certificates');
  const offset = Number(params.get('offset') || 0);
  const j = await api('GET', '/pki/certificates' + query({ offset, limit: PAGE }));
  const pem = h('textarea', { name: 'certificatePem', rows: 8, spellcheck: 'false', placeholder: '-----BEGIN CERTIFICATE-----' });
  const chain = h('textarea', { name: 'chainPem', rows: 8, spellcheck: 'false', placeholder: '-----BEGIN CERTIFICATE----- (issuer first)' });
  const profile = select('profile', PROFILES, 'codeSigning');
  const command = h('code', { class: 'cmd', id: 'import-command' });
  const [form, err] = formOf('import-form', [
    field('certificatePem', 'Certificate (PEM)', pem, 'Exactly one certificate for a key already in rsign\'s token, with the codeSigning extended key usage. Paste it or pick a file.'),
    fileInto('certificate-file', 'or a file', pem),
    field('chainPem', 'Chain (PEM, optional)', chain, 'The issuing CA certificates, the certificate\'s issuer first (at most 16); it is served with the certificate to signing tools.'),
    fileInto('chain-file', 'or a file', chain),
    field('profile', 'Profile', profile, 'Code signing for signers; time-stamp authority for a TSA certificate.'),
  ], 'Import certificate', command);
  const update = () => {
    command.textContent = 'rsignctl cert import --cert CERT.pem' + (chain.value.trim() ? ' --chain CHAIN.pem' : '') +
      (profile.value !== 'codeSigning' ? ' --profile ' + profile.value : '');
  };
  form.addEventListener('input', update);
  form.addEventListener('change', update);
  update();
  onSubmit(form, err, { certificatePem: ['certificatePem'], chainPem: ['chainPem'], profile: ['profile'] }, null, async () => {
    const b = { certificatePem: pem.value };
    if (chain.value.trim()) b.chainPem = chain.value;
    if (profile.value !== 'codeSigning') b.profile = profile.value;
    const c = await api('POST', '/pki/certificates', b);
    navigate('/certificates/' + encodeURIComponent(c.id));
  });
  return [
    h('h1', {}, 'Certificates'),
    h('p', {}, h('a', { href: '/keys' }, 'Keys'), ' · ', cmd('rsignctl cert list')),
    h('div', { id: 'certificates' }, table(CERT_COLS, certRows(j.certificates), 'No certificates.')),
    pager(params, j.totalCount),
    h('h2', {}, 'Import a certificate and its chain'),
    form,
  ];
}

function download(name, text, label) {
  return h('a', { href: URL.createObjectURL(new Blob([text], { type: 'application/x-pem-file' })), download: name }, label);
}

async function certificateDetail(params, id) {
  if (!state.me.admin) return adminOnly('Certificate');
  const c = await api('GET', '/pki/certificates/' + encodeURIComponent(id));
  let key = null;
  try { key = await api('GET', '/pki/keys/' + encodeURIComponent(c.keyId)); } catch (e) { key = null; }
  let f = null, bad = null;
  try { f = await certFields(c.certificatePem); } catch (e) { bad = e.message; }
  return [
    h('h1', {}, 'Certificate ', c.commonName),
    h('dl', { class: 'fields', id: 'certificate' },
      h('dt', {}, 'Id'), h('dd', {}, h('code', { id: 'cert-id' }, c.id)),
      h('dt', {}, 'Common name'), h('dd', { id: 'cert-cn' }, c.commonName),
      h('dt', {}, 'Subject'), h('dd', { id: 'cert-subject' }, f ? f.subject : '—'),
      h('dt', {}, 'Issuer'), h('dd', { id: 'cert-issuer' }, f ? f.issuer : '—'),
      h('dt', {}, 'Serial'), h('dd', { id: 'cert-serial' }, c.serialNumber),
      h('dt', {}, 'Valid from'), h('dd', {}, when(c.notBefore)),
      h('dt', {}, 'Valid until'), h('dd', { id: 'cert-not-after' }, when(c.notAfter)),
      h('dt', {}, 'SHA-256 fingerprint'), h('dd', { id: 'cert-sha256' }, f ? h('code', {}, f.sha256) : '—'),
      h('dt', {}, 'Key'), h('dd', { id: 'cert-key' }, key ? h('a', { href: '/keys/' + encodeURIComponent(key.id) }, key.name) : c.keyId),
      h('dt', {}, 'Key algorithm'), h('dd', {}, c.keyAlgorithm),
      h('dt', {}, 'Chain'), h('dd', { id: 'cert-chain' }, c.chainPem ? `${(c.chainPem.match(/-----BEGIN CERTIFICATE-----/g) || []).length} certificate(s)` : 'none')),
    bad ? h('p', { class: 'error' }, 'cannot read the certificate: ' + bad) : null,
    h('p', { id: 'downloads' }, download(c.id + '.pem', c.certificatePem, 'Download certificate (PEM)'),
      c.chainPem ? [' · ', download(c.id + '-chain.pem', c.chainPem, 'Download chain (PEM)')] : null),
    cmd(`rsignctl cert get ${c.id} --pem`),
    h('p', { class: 'muted' }, 'A signer uses it once created with it: ', h('code', {}, `rsignctl signer create --name NAME --cert ${c.id}`)),
  ];
}

export const KEY_PAGES = [
  { re: /^\/keys$/, title: 'Keys', render: keys },
  { re: /^\/keys\/([^/]+)$/, title: 'Key', render: keyDetail },
  { re: /^\/certificates$/, title: 'Certificates', render: certificates },
  { re: /^\/certificates\/([^/]+)$/, title: 'Certificate', render: certificateDetail },
];
