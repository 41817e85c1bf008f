// The console's pages. Each is {re, title, render(params, ...pathArgs)}:
// render returns the nodes of the page; lists keep their filters and page
// in the URL (a pasted link shows the same list). Every action is one API
// call, shown beside its button as the rsignctl command that does the same,
// and a failure shows the API's reason and message beside it.
import { api, query } from './api.js';
import { h, navigate, state } from './app.js';
import { dailyChart } from './chart.js';
import { certFields } from './x509.js';

const PAGE = 20;

function when(t) { return t ? t.replace('T', ' ').replace('Z', ' UTC') : '—'; }
function statusCell(s) { return h('td', { class: 'status-' + s }, s); }
function showError(box, e) {
  box.className = 'error';
  box.setAttribute('role', 'alert');
  box.textContent = e.reason ? e.reason + ': ' + e.apiMessage : String(e);
}
function cmd(text) { return h('code', { class: 'cmd' }, text); }

function table(cols, rows, empty) {
  if (!rows.length) return h('p', { class: 'muted' }, empty || 'None.');
  return h('table', {}, h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows));
}

// Filters and paging kept in the URL: form fields named like the query.
// A field's third element is its options (a select) or the attributes of
// its text input.
function filters(params, fields) {
  const form = h('form', { class: 'filters', role: 'search' },
    fields.map(([name, label, options]) => {
      const id = 'f-' + name;
      const v = params.get(name) || '';
      const input = Array.isArray(options)
        ? h('select', { id, name }, options.map(([val, text]) => h('option', { value: val, selected: val === v }, text)))
        : h('input', Object.assign({ id, name, value: v }, options || {}));
      return h('label', { for: id }, label, input);
    }),
    h('button', { type: 'submit', class: 'secondary' }, 'Filter'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) q.set(k, v);
    navigate(location.pathname + (q.toString() ? '?' + q : ''));
  });
  return form;
}

function pager(params, total) {
  const offset = Number(params.get('offset') || 0);
  const link = (o, text) => {
    const q = new URLSearchParams(params);
    if (o) q.set('offset', o); else q.delete('offset');
    return h('a', { href: location.pathname + (q.toString() ? '?' + q : '') }, text);
  };
  return h('div', { class: 'pager' },
    offset > 0 ? link(Math.max(0, offset - PAGE), '← Newer') : null,
    h('span', { class: 'muted' }, total ? `${offset + 1}–${Math.min(offset + PAGE, total)} of ${total}` : '0 of 0'),
    offset + PAGE < total ? link(offset + PAGE, 'Older →') : null);
}

// A button that makes one API call; its error (the API's reason) or
// success shows beside it.
function action(label, fn, opts) {
  const out = h('span', { 'aria-live': 'polite' });
  const b = h('button', { type: 'button', class: opts && opts.secondary ? 'secondary' : false }, label);
  b.addEventListener('click', async () => {
    out.className = '';
    out.textContent = '';
    b.disabled = true;
    try {
      await fn();
      out.className = 'notice';
      out.textContent = 'Done.';
      if (opts && opts.after) opts.after();
    } catch (e) {
      showError(out, e);
    } finally {
      b.disabled = false;
    }
  });
  return h('span', {}, b, ' ', out);
}

// ---- requests ----------------------------------------------------------

const policyCache = new Map();
async function policyOf(id) {
  if (!id) return null;
  if (!policyCache.has(id)) {
    policyCache.set(id, api('GET', '/pki/signing-policies/' + encodeURIComponent(id)).catch(() => null));
  }
  return policyCache.get(id);
}

// Pending requests the caller may decide: listed as an approver of their
// policy, not their requester (the server checks it again on the call).
async function inbox() {
  const j = await api('GET', '/pki/signing-requests' + query({ status: 'pending', limit: 100 }));
  const out = [];
  for (const r of j.requests) {
    if (r.requesterId === state.me.id) continue;
    const p = await policyOf(r.policyId);
    if (p && p.approvers.includes(state.me.id)) out.push(r);
  }
  return out;
}

const signerNames = new Map();
async function signerName(id) {
  if (!signerNames.has(id)) {
    signerNames.set(id, api('GET', '/pki/signers/' + encodeURIComponent(id)).then((s) => s.name, () => id));
  }
  return signerNames.get(id);
}

async function requestRows(list) {
  const rows = [];
  for (const r of list) {
    rows.push(h('tr', { 'data-id': r.id },
      h('td', {}, h('a', { href: '/requests/' + r.id }, r.id.slice(0, 8))),
      h('td', {}, r.signerName || await signerName(r.signerId)),
      h('td', {}, r.requesterName),
      h('td', { class: 'wrap' }, r.justification),
      statusCell(r.status),
      h('td', {}, String(r.approvals)),
      h('td', {}, when(r.createdAt))));
  }
  return rows;
}
const REQ_COLS = ['Request', 'Signer', 'Opened by', 'Justification', 'Status', 'Approvals', 'Opened'];

async function overview() {
  const mine = await inbox();
  const signers = await api('GET', '/pki/signers' + query({ limit: 100 }));
  const soon = Date.now() + 30 * 86400 * 1000;
  const expiring = signers.signers.filter((s) => s.certificateNotAfter && Date.parse(s.certificateNotAfter) < soon);
  const daily = await api('GET', '/pki/operations/daily?days=30');
  const names = new Map(signers.signers.map((s) => [s.id, s.name]));
  for (const c of daily.counts) if (!names.has(c.signerId)) names.set(c.signerId, await signerName(c.signerId));
  const chart = dailyChart(daily, names);
  return [
    h('h1', {}, 'Overview'),
    h('h2', {}, 'Waiting for my approval'),
    h('div', { id: 'inbox' }, table(REQ_COLS, await requestRows(mine), 'No request waits for you.')),
    h('h2', {}, 'Certificates expiring within 30 days'),
    h('div', { id: 'expiring' }, table(['Signer', 'Status', 'Certificate expires'], expiring.map((s) => h('tr', {},
      h('td', {}, h('a', { href: '/signers/' + encodeURIComponent(s.name) }, s.name)),
      statusCell(s.status), h('td', {}, when(s.certificateNotAfter)))), 'None.')),
    h('h2', {}, 'Signatures per day, last 30 days'),
    h('div', { class: 'chart', id: 'chart' }, chart.svg, chart.legend),
  ];
}

async function requests(params) {
  const view = params.get('view') || 'inbox';
  const status = params.get('status') || '';
  const offset = Number(params.get('offset') || 0);
  let list, total;
  if (view === 'inbox') {
    list = await inbox();
    total = list.length;
    list = list.slice(offset, offset + PAGE);
  } else {
    // the API has no requester filter: my requests are picked from what I see
    const j = await api('GET', '/pki/signing-requests' + query({ status, limit: 100 }));
    const all = view === 'mine' ? j.requests.filter((r) => r.requesterId === state.me.id) : j.requests;
    total = all.length;
    list = all.slice(offset, offset + PAGE);
  }
  return [
    h('h1', {}, 'Requests'),
    filters(params, [
      ['view', 'Show', [['inbox', 'Waiting for my approval'], ['mine', 'Opened by me'], ['all', 'All I may see']]],
      ['status', 'Status', [['', 'any'], ['pending', 'pending'], ['approved', 'approved'], ['rejected', 'rejected'],
        ['cancelled', 'cancelled'], ['expired', 'expired']]],
    ]),
    h('div', { id: 'requests' }, table(REQ_COLS, await requestRows(list), 'No requests.')),
    pager(params, total),
  ];
}

async function requestDetail(params, id) {
  const r = await api('GET', '/pki/signing-requests/' + encodeURIComponent(id));
  const sname = r.signerName || await signerName(r.signerId);
  const comment = h('textarea', { id: 'comment', name: 'comment', maxlength: 1024 });
  const decide = (verb) => async () => {
    const body = comment.value ? { comment: comment.value } : {};
    await api('POST', `/pki/signing-requests/${encodeURIComponent(r.id)}/${verb}`, body);
  };
  const reload = () => navigate(location.pathname, true);
  const parts = [
    h('h1', {}, 'Request ', h('code', {}, r.id)),
    h('dl', { class: 'fields', id: 'request' },
      h('dt', {}, 'Signer'), h('dd', {}, h('a', { href: '/signers/' + encodeURIComponent(sname) }, sname)),
      h('dt', {}, 'Opened by'), h('dd', { id: 'requester' }, r.requesterName),
      h('dt', {}, 'Justification'), h('dd', { id: 'justification' }, r.justification),
      h('dt', {}, 'Status'), h('dd', { id: 'status', class: 'status-' + r.status }, r.status),
      h('dt', {}, 'Approvals'), h('dd', {}, String(r.approvals)),
      h('dt', {}, 'Signings asked'), h('dd', {}, r.requestedSignings == null ? 'no limit' : String(r.requestedSignings)),
      h('dt', {}, 'Window asked'), h('dd', {}, r.requestedWindowDuration == null ? 'no limit' : r.requestedWindowDuration + ' s'),
      h('dt', {}, 'Opened'), h('dd', {}, when(r.createdAt)),
      h('dt', {}, 'Expires'), h('dd', {}, when(r.expiresAt)),
      h('dt', {}, 'Grant'), h('dd', { id: 'grant' }, r.grantId || '—')),
    h('h2', {}, 'Decisions so far'),
    h('div', { id: 'decisions' }, table(['Approver', 'Decision', 'Comment', 'When'], r.decisions.map((d) => h('tr', {},
      h('td', {}, d.approverName), statusCell(d.decision === 'approve' ? 'approved' : 'rejected'),
      h('td', { class: 'wrap' }, d.comment || ''), h('td', {}, when(d.createdAt)))), 'None yet.')),
  ];
  if (r.status === 'pending') {
    parts.push(h('h2', {}, 'Decide'),
      h('label', { for: 'comment' }, 'Comment (optional)', comment),
      h('p', { id: 'approve' }, action('Approve', decide('approve'), { after: reload }),
        cmd(`rsignctl request approve ${r.id} --comment '…'`)),
      h('p', { id: 'reject' }, action('Reject', decide('reject'), { secondary: true, after: reload }),
        cmd(`rsignctl request reject ${r.id} --comment '…'`)));
    if (r.requesterId === state.me.id || state.me.admin) {
      parts.push(h('p', { id: 'cancel' }, action('Cancel request', async () => {
        await api('POST', `/pki/signing-requests/${encodeURIComponent(r.id)}/cancel`);
      }, { secondary: true, after: reload }), cmd(`rsignctl request cancel ${r.id}`)));
    }
  }
  return parts;
}

// ---- signers -------------------------------------------------------------

async function signers(params) {
  const offset = Number(params.get('offset') || 0);
  const j = await api('GET', '/pki/signers' + query({ search: params.get('search'), status: params.get('status'),
    offset, limit: PAGE }));
  return [
    h('h1', {}, 'Signers'),
    filters(params, [['search', 'Name contains'], ['status', 'Status', [['', 'live'], ['enabled', 'enabled'],
      ['disabled', 'disabled'], ['retired', 'retired'], ['any', 'any']]]]),
    h('div', { id: 'signers' }, table(['Name', 'Status', 'Key algorithm', 'Certificate expires', 'Last signed', 'Description'],
      j.signers.map((s) => h('tr', {},
        h('td', {}, h('a', { href: '/signers/' + encodeURIComponent(s.id) }, s.name)), statusCell(s.status),
        h('td', {}, s.keyAlgorithm), h('td', {}, when(s.certificateNotAfter)), h('td', {}, when(s.lastSignedAt)),
        h('td', { class: 'wrap' }, s.description))), 'No signers.')),
    pager(params, j.totalCount),
  ];
}

function download(name, text, label) {
  const a = h('a', { href: URL.createObjectURL(new Blob([text], { type: 'application/x-pem-file' })), download: name }, label);
  return a;
}

async function certificateSection(s) {
  let c;
  try {
    c = await api('GET', `/pki/signers/${encodeURIComponent(s.id)}/certificate`);
  } catch (e) {
    return [h('p', { class: 'error' }, e.reason + ': ' + e.apiMessage)];
  }
  let f = null, err = null;
  try { f = await certFields(c.certificatePem); } catch (e) { err = e.message; }
  return [
    f ? h('dl', { class: 'fields', id: 'certificate' },
      h('dt', {}, 'Subject'), h('dd', { id: 'cert-subject' }, f.subject),
      h('dt', {}, 'Issuer'), h('dd', { id: 'cert-issuer' }, f.issuer),
      h('dt', {}, 'Serial'), h('dd', { id: 'cert-serial' }, f.serial),
      h('dt', {}, 'Valid from'), h('dd', {}, f.notBefore),
      h('dt', {}, 'Valid until'), h('dd', { id: 'cert-not-after' }, f.notAfter),
      h('dt', {}, 'SHA-256 fingerprint'), h('dd', { id: 'cert-sha256' }, h('code', {}, f.sha256)))
      : h('p', { class: 'error' }, 'cannot read the certificate: ' + err),
    h('p', { id: 'downloads' }, download(s.name + '.pem', c.certificatePem, 'Download certificate (PEM)'),
      c.chainPem ? [' · ', download(s.name + '-chain.pem', c.chainPem, 'Download chain (PEM)')] : null),
    cmd(`rsignctl signer cert ${s.name}`),
  ];
}

// The time filters of the history and the audit log: RFC 3339 text, sent
// to the API as typed (the API judges it and says why when it is not).
const TIME_FIELDS = [
  ['from', 'From (RFC 3339, included)', { placeholder: '2026-01-31T00:00:00Z', size: 22 }],
  ['to', 'To (RFC 3339, not included)', { placeholder: '2026-02-01T00:00:00Z', size: 22 }],
];
const ALGORITHMS = ['RSASSA_PKCS1_V1_5_SHA256', 'RSASSA_PKCS1_V1_5_SHA384', 'RSASSA_PKCS1_V1_5_SHA512',
  'RSASSA_PSS_SHA256', 'RSASSA_PSS_SHA384', 'RSASSA_PSS_SHA512', 'ECDSA_SHA256', 'ECDSA_SHA384', 'ECDSA_SHA512'];

// A filtered list: the filter form, then the API's rows (list(j)) or, on a
// refused filter, the API's reason and message beside the form.
async function filteredList(params, fields, path, names, list) {
  const q = { offset: params.get('offset'), limit: PAGE };
  for (const n of names) q[n] = params.get(n);
  const form = filters(params, fields);
  const err = h('p', { id: 'filter-error' });
  form.append(err);
  try {
    const j = await api('GET', path + query(q));
    return [form, ...list(j)];
  } catch (e) {
    if (e.status !== 400) throw e;
    showError(err, e);
    return [form];
  }
}

async function signerDetail(params, id) {
  const s = await api('GET', '/pki/signers/' + encodeURIComponent(id));
  let members = [];
  try { members = (await api('GET', `/pki/signers/${encodeURIComponent(s.id)}/members`)).members; } catch (e) { members = []; }
  let policy = null;
  if (s.policyId) { try { policy = await api('GET', '/pki/signing-policies/' + s.policyId); } catch (e) { policy = null; } }
  const reload = () => navigate(location.pathname + location.search, true);
  const sid = encodeURIComponent(s.id);
  const admin = state.me.admin && s.status !== 'retired';
  const parts = [
    h('h1', {}, 'Signer ', s.name),
    h('dl', { class: 'fields', id: 'signer' },
      h('dt', {}, 'Status'), h('dd', { id: 'signer-status', class: 'status-' + s.status }, s.status),
      h('dt', {}, 'Description'), h('dd', { id: 'description' }, s.description),
      h('dt', {}, 'Key algorithm'), h('dd', {}, s.keyAlgorithm),
      h('dt', {}, 'Certificate expires'), h('dd', {}, when(s.certificateNotAfter)),
      h('dt', {}, 'Policy'), h('dd', { id: 'policy' }, !s.policyId ? 'none: signs without approval'
        : h('a', { href: '/policies' }, policy ? policy.name : s.policyId)),
      h('dt', {}, 'Last signed'), h('dd', {}, when(s.lastSignedAt))),
  ];
  if (admin) {
    const enable = s.status !== 'enabled';
    parts.push(h('p', { id: 'toggle' }, action(enable ? 'Enable' : 'Disable', async () => {
      await api('PATCH', '/pki/signers/' + sid, { status: enable ? 'enabled' : 'disabled' });
    }, { secondary: !enable, after: reload }), cmd(`rsignctl signer update ${s.name} --${enable ? 'enable' : 'disable'}`)));
  }
  parts.push(h('h2', {}, 'Certificate'), ...(await certificateSection(s)));
  parts.push(h('h2', {}, 'Members'),
    h('div', { id: 'members' }, table(['Principal', 'Role', ''], members.map((m) => h('tr', { 'data-principal': m.principalName },
      h('td', {}, m.principalName), h('td', {}, m.role),
      h('td', {}, admin || state.me.admin ? action('Remove', async () => {
        await api('DELETE', `/pki/signers/${sid}/members/${encodeURIComponent(m.principalId)}`);
      }, { secondary: true, after: reload }) : ''))), 'No members.')));
  if (state.me.admin) {
    const who = h('input', { id: 'member-principal', name: 'principal', required: true });
    const role = h('select', { id: 'member-role', name: 'role' }, h('option', { value: 'operator' }, 'operator'),
      h('option', { value: 'auditor' }, 'auditor'));
    parts.push(h('div', { class: 'filters', id: 'add-member' },
      h('label', { for: 'member-principal' }, 'Principal (name or id)', who),
      h('label', { for: 'member-role' }, 'Role', role),
      action('Add member', async () => {
        await api('POST', `/pki/signers/${sid}/members`, { principalId: who.value.trim(), role: role.value });
      }, { after: reload }),
      cmd(`rsignctl signer member add ${s.name} --principal NAME --role operator|auditor`)));
  }
  parts.push(h('h2', {}, 'Signing history'), ...(await filteredList(params, [
    ['status', 'Status', [['', 'any'], ['success', 'success'], ['denied', 'denied'], ['failed', 'failed']]],
    ['actor', 'Actor (name or id)', { size: 16 }],
    ['algorithm', 'Algorithm', [['', 'any'], ...ALGORITHMS.map((a) => [a, a])]],
    ...TIME_FIELDS,
  ], `/pki/signers/${sid}/operations`, ['status', 'actor', 'algorithm', 'from', 'to'], (ops) => [
    h('div', { id: 'history' }, table(['When', 'Status', 'Algorithm', 'Actor', 'Approval', 'Error', 'Client metadata'],
      ops.operations.map((o) => h('tr', { 'data-id': o.id },
        h('td', {}, when(o.createdAt)), statusCell(o.status), h('td', {}, o.signingAlgorithm),
        h('td', {}, o.actorName), h('td', {}, o.approval), h('td', {}, o.errorCode || ''),
        h('td', { class: 'wrap metadata' }, JSON.stringify(o.clientMetadata || {})))), 'No signatures match.')),
    pager(params, ops.totalCount),
    cmd(`rsignctl history ${s.name} [--status S] [--actor P] [--algorithm ALG] [--since TIME] [--until TIME]`),
  ])));
  return parts;
}

// ---- grants, people, audit -------------------------------------------------

async function grants(params) {
  const offset = Number(params.get('offset') || 0);
  const j = await api('GET', '/pki/grants' + query({ status: params.get('status'), signerId: params.get('signer'),
    offset, limit: PAGE }));
  const reload = () => navigate(location.pathname + location.search, true);
  const rows = [];
  for (const g of j.grants) {
    rows.push(h('tr', { 'data-id': g.id },
      h('td', {}, h('code', {}, g.id.slice(0, 8))), h('td', {}, await signerName(g.signerId)),
      statusCell(g.status),
      h('td', {}, g.maxSignings == null ? `${g.usedSignings} / no limit` : `${g.usedSignings} / ${g.maxSignings}`),
      h('td', {}, when(g.expiresAt)), h('td', {}, g.requestId ? h('a', { href: '/requests/' + g.requestId }, 'request') : ''),
      h('td', {}, g.status === 'active' ? [action('Revoke', async () => {
        await api('POST', `/pki/grants/${encodeURIComponent(g.id)}/revoke`);
      }, { secondary: true, after: reload }), cmd(`rsignctl grant revoke ${g.id}`)] : '')));
  }
  return [
    h('h1', {}, 'Grants'),
    filters(params, [['status', 'Status', [['', 'any'], ['active', 'active'], ['expired', 'expired'], ['revoked', 'revoked']]],
      ['signer', 'Signer (name or id)']]),
    h('div', { id: 'grants' }, table(['Grant', 'Signer', 'Status', 'Used', 'Expires', 'From', ''], rows, 'No grants.')),
    pager(params, j.totalCount),
  ];
}

async function people(params) {
  const offset = Number(params.get('offset') || 0);
  const j = await api('GET', '/principals' + query({ offset, limit: PAGE }));
  const reload = () => navigate(location.pathname + location.search, true);
  const name = h('input', { id: 'new-name', name: 'name', required: true });
  const type = h('select', { id: 'new-type', name: 'type' }, h('option', { value: 'user' }, 'user'),
    h('option', { value: 'identity' }, 'machine identity'));
  const adm = h('input', { id: 'new-admin', name: 'admin', type: 'checkbox' });
  const shown = h('div', { id: 'secret-once' });
  const create = action('Create', async () => {
    const r = await api('POST', '/principals', { type: type.value, name: name.value.trim(), admin: adm.checked });
    const secret = r.token || r.clientSecret;
    const field = h('input', { id: 'secret-value', readonly: true, value: secret, size: 70, 'aria-label': 'The new secret' });
    const copy = h('button', { type: 'button', id: 'copy-secret' }, 'Copy');
    const copied = h('span', { 'aria-live': 'polite' });
    copy.addEventListener('click', async () => {
      try { await navigator.clipboard.writeText(field.value); copied.textContent = ' Copied.'; } catch (e) {
        field.select(); copied.textContent = ' Select and copy it by hand.';
      }
    });
    const hide = h('button', { type: 'button', class: 'secondary', id: 'secret-done' }, 'Done: I stored it');
    hide.addEventListener('click', () => { shown.replaceChildren(); reload(); });
    shown.replaceChildren(h('p', { class: 'notice' }, `${r.name}: ${r.token ? 'API token' : 'client secret (clientId ' + r.clientId + ')'}, shown once:`),
      h('p', {}, field, ' ', copy, copied), h('p', {}, hide));
    name.value = '';
  });
  return [
    h('h1', {}, 'People and machine identities'),
    h('div', { class: 'filters', id: 'create-principal' },
      h('label', { for: 'new-name' }, 'Name', name), h('label', { for: 'new-type' }, 'Type', type),
      h('label', { for: 'new-admin' }, 'Admin', adm), create,
      cmd('rsignctl principal create --type user|identity --name NAME [--admin]')),
    shown,
    h('div', { id: 'people' }, table(['Name', 'Type', 'Admin', 'Status', 'Created', ''], j.principals.map((p) => h('tr', { 'data-name': p.name },
      h('td', {}, p.name), h('td', {}, p.type), h('td', {}, p.admin ? 'yes' : ''),
      statusCell(p.disabled ? 'disabled' : 'enabled'), h('td', {}, when(p.createdAt)),
      h('td', {}, p.id === state.me.id ? '' : [action(p.disabled ? 'Enable' : 'Disable', async () => {
        await api('PATCH', '/principals/' + encodeURIComponent(p.id), { disabled: !p.disabled });
      }, { secondary: !p.disabled, after: reload }), cmd(`rsignctl principal ${p.disabled ? 'enable' : 'disable'} ${p.name}`)]))),
    'No principals.')),
    pager(params, j.totalCount),
  ];
}

async function audit(params) {
  return [
    h('h1', {}, 'Audit log'),
    h('p', { class: 'muted' }, 'Newest first.'),
    ...(await filteredList(params, [
      ['actor', 'Actor (name or id)', { size: 16 }],
      ['action', 'Action', { placeholder: 'policy.create', size: 16 }],
      ...TIME_FIELDS,
    ], '/audit-log', ['actor', 'action', 'from', 'to'], (j) => [
      h('div', { id: 'audit' }, table(['#', 'When', 'Actor', 'Action', 'Object', 'Detail'], j.events.map((e) => h('tr', { 'data-seq': String(e.seq) },
        h('td', {}, String(e.seq)), h('td', {}, when(e.createdAt)), h('td', {}, e.actorName), h('td', {}, e.action),
        h('td', {}, e.objectType + ' ' + (e.objectId || '').slice(0, 8)),
        h('td', { class: 'wrap' }, JSON.stringify(e.detail || {})))), 'No events match.')),
      pager(params, j.totalCount),
      cmd('rsignctl audit [--actor P] [--action A] [--since TIME] [--until TIME]'),
    ])),
  ];
}

export const PAGES = [
  { re: /^\/$/, title: 'Overview', render: overview },
  { re: /^\/requests$/, title: 'Requests', render: requests },
  { re: /^\/requests\/([^/]+)$/, title: 'Request', render: requestDetail },
  { re: /^\/signers$/, title: 'Signers', render: signers },
  { re: /^\/signers\/([^/]+)$/, title: 'Signer', render: signerDetail },
  { re: /^\/grants$/, title: 'Grants', render: grants },
  { re: /^\/people$/, title: 'People', render: people },
  { re: /^\/audit$/, title: 'Audit log', render: audit },
];

// Shared with the admin pages (policies.js, keys.js).
export { PAGE, when, statusCell, showError, cmd, table, pager, action };
