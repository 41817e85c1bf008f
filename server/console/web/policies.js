// The policies pages: the list with each policy's constraints in words
// (/policies), and the admin's create and edit forms (/policies/new,
// /policies/{id}/edit). Create is one POST; edit is one PATCH of the
// fields changed. The rsignctl command doing the same is shown beside the
// button and follows the form; the API's error is shown beside the field
// its message names, or beside the form.
import { api, query } from './api.js';
import { h, navigate, state } from './app.js';
import { allOf, field, numberOf, onSubmit, sh } from './forms.js';
import { PAGE, action, cmd, pager, table } from './pages.js';

// A policy's constraints in words.
function policyWords(p) {
  const c = p.constraints || {};
  const parts = [`${p.requiredApprovals} approval${p.requiredApprovals === 1 ? '' : 's'} needed`];
  parts.push(c.maxSignings == null ? 'any number of signatures per grant' : `at most ${c.maxSignings} signature${c.maxSignings === 1 ? '' : 's'} per grant`);
  parts.push(c.maxWindowDuration == null ? 'no time limit' : `within ${c.maxWindowDuration} s of the approval`);
  parts.push(`requests wait ${p.requestTtl} s`);
  parts.push(p.bypassForMachineIdentities ? 'machine identities sign without approval' : 'machine identities need approval too');
  return parts.join('; ');
}

async function policies(params) {
  const offset = Number(params.get('offset') || 0);
  const j = await api('GET', '/pki/signing-policies' + query({ offset, limit: PAGE }));
  const reload = () => navigate(location.pathname + location.search, true);
  return [
    h('h1', {}, 'Policies'),
    state.me.admin ? h('p', { id: 'new-policy' }, h('a', { href: '/policies/new' }, 'New policy'),
      cmd('rsignctl policy create --name NAME --approver USER --required 1 --max-signings N')) : null,
    h('div', { id: 'policies' }, table(['Name', 'Constraints', 'Approvers', ''], j.policies.map((p) => h('tr', { 'data-name': p.name },
      h('td', {}, p.name), h('td', { class: 'wrap words' }, policyWords(p)),
      h('td', {}, p.approvers ? String(p.approvers.length) : '—'),
      h('td', {}, state.me.admin ? [h('a', { href: `/policies/${encodeURIComponent(p.id)}/edit`, class: 'edit' }, 'Edit'), ' ',
        action('Delete', async () => {
          await api('DELETE', '/pki/signing-policies/' + encodeURIComponent(p.id));
        }, { secondary: true, after: reload }), cmd(`rsignctl policy delete ${p.name}`)] : ''))), 'No policies.')),
    pager(params, j.totalCount),
  ];
}

// The words the API's messages use for each form field (forms.js maps an
// error to the first of them its message names).
const NAMES = {
  name: ['name'], approvers: ['approvers?'], requiredApprovals: ['requiredApprovals'],
  constraints: ['constraints'], maxSignings: ['maxSignings'], maxWindowDuration: ['maxWindowDuration'],
  requestTtl: ['requestTtl'], bypassForMachineIdentities: ['bypassForMachineIdentities'],
};
const BY_REASON = { nameTaken: 'name' };

// The form's values as the API takes them (undefined: left empty).
function readForm(f) {
  return {
    name: f.name.value.trim(),
    approvers: f.approvers.filter((c) => c.checked).map((c) => c.value),
    requiredApprovals: numberOf(f.requiredApprovals),
    maxSignings: numberOf(f.maxSignings),
    maxWindowDuration: numberOf(f.maxWindowDuration),
    requestTtl: numberOf(f.requestTtl),
    bypassForMachineIdentities: f.bypass.checked,
  };
}

function constraintsOf(v) {
  const c = {};
  if (v.maxSignings !== undefined) c.maxSignings = v.maxSignings;
  if (v.maxWindowDuration !== undefined) c.maxWindowDuration = v.maxWindowDuration;
  return c;
}

function sameSet(a, b) {
  return a.length === b.length && a.every((x) => b.includes(x));
}

// Create: every field given. Edit: only those that differ from the policy.
function bodyOf(v, old) {
  if (!old) {
    const b = { name: v.name, approvers: v.approvers, constraints: constraintsOf(v),
      bypassForMachineIdentities: v.bypassForMachineIdentities };
    if (v.requiredApprovals !== undefined) b.requiredApprovals = v.requiredApprovals;
    if (v.requestTtl !== undefined) b.requestTtl = v.requestTtl;
    return b;
  }
  const b = {};
  const oc = old.constraints || {};
  if (v.name !== old.name) b.name = v.name;
  if (!sameSet(v.approvers, old.approvers || [])) b.approvers = v.approvers;
  if (v.requiredApprovals !== old.requiredApprovals) b.requiredApprovals = v.requiredApprovals === undefined ? null : v.requiredApprovals;
  if ((v.maxSignings ?? null) !== (oc.maxSignings ?? null) || (v.maxWindowDuration ?? null) !== (oc.maxWindowDuration ?? null))
    b.constraints = constraintsOf(v);
  if (v.requestTtl !== old.requestTtl) b.requestTtl = v.requestTtl === undefined ? null : v.requestTtl;
  if (v.bypassForMachineIdentities !== old.bypassForMachineIdentities) b.bypassForMachineIdentities = v.bypassForMachineIdentities;
  return b;
}

// The rsignctl command sending the same body (approvers by name).
function commandOf(b, old, nameOf) {
  const w = old ? ['rsignctl', 'policy', 'update', sh(old.name)] : ['rsignctl', 'policy', 'create'];
  const notes = [];
  if (b.name !== undefined) w.push('--name', sh(b.name));
  for (const id of b.approvers || []) w.push('--approver', sh(nameOf(id)));
  if (b.requiredApprovals !== undefined) w.push('--required', sh(b.requiredApprovals));
  else if (!old) w.push('--required', '1');
  if (b.constraints) {
    if (b.constraints.maxSignings !== undefined) w.push('--max-signings', sh(b.constraints.maxSignings));
    if (b.constraints.maxWindowDuration !== undefined) w.push('--max-window', sh(b.constraints.maxWindowDuration));
    const oc = (old && old.constraints) || {};
    if (old && ((oc.maxSignings != null && b.constraints.maxSignings === undefined) ||
        (oc.maxWindowDuration != null && b.constraints.maxWindowDuration === undefined)))
      notes.push('rsignctl keeps a constraint it is not given: to remove one, PATCH the policy\'s constraints as a whole');
  }
  if (b.requestTtl !== undefined) w.push('--request-ttl', sh(b.requestTtl));
  if (b.bypassForMachineIdentities === true) w.push('--bypass-identities');
  if (b.bypassForMachineIdentities === false && old) w.push('--no-bypass-identities');
  return [w.join(' '), notes];
}

async function policyForm(params, id) {
  if (!state.me.admin) {
    return [h('h1', {}, 'Policies'), h('p', { class: 'error', role: 'alert' }, 'Only admins create and change policies.')];
  }
  const old = id ? await api('GET', '/pki/signing-policies/' + encodeURIComponent(id)) : null;
  const principals = await allOf('/principals', 'principals');
  const names = new Map(principals.map((p) => [p.id, p.name]));
  const nameOf = (pid) => names.get(pid) || pid;
  // users who may approve, and whoever approves now (even if since disabled)
  const choices = principals.filter((p) => (p.type === 'user' && !p.disabled) || (old && old.approvers.includes(p.id)));
  const oc = (old && old.constraints) || {};
  const num = (name, v) => h('input', { name, type: 'text', inputmode: 'numeric', size: 12, value: v == null ? '' : String(v) });
  const f = {
    name: h('input', { name: 'name', value: old ? old.name : '', autocomplete: 'off', spellcheck: 'false' }),
    approvers: choices.map((p) => h('input', { type: 'checkbox', name: 'approvers', value: p.id, id: 'approver-' + p.name,
      checked: !!(old && old.approvers.includes(p.id)) })),
    requiredApprovals: num('requiredApprovals', old ? old.requiredApprovals : 1),
    maxSignings: num('maxSignings', oc.maxSignings),
    maxWindowDuration: num('maxWindowDuration', oc.maxWindowDuration),
    requestTtl: num('requestTtl', old ? old.requestTtl : 86400),
    bypass: h('input', { type: 'checkbox', name: 'bypassForMachineIdentities', checked: !!(old && old.bypassForMachineIdentities) }),
  };
  const approverBoxes = h('fieldset', { class: 'field', 'data-field': 'approvers', id: 'fld-approvers',
    'aria-describedby': 'help-approvers err-approvers' },
  h('legend', {}, 'Approvers'),
  choices.length ? choices.map((p, i) => h('label', { for: f.approvers[i].id, class: 'check' }, f.approvers[i],
    ' ', p.name, p.disabled ? ' (disabled)' : '')) : h('p', { class: 'muted' }, 'No enabled users: create one on the People page.'),
  h('p', { class: 'muted', id: 'help-approvers' },
    'The users who may approve a request to sign (1 to 32). A machine identity or a disabled user cannot approve.'),
  h('p', { class: 'field-error', id: 'err-approvers', 'aria-live': 'polite' }));
  const formErr = h('p', { id: 'policy-form-error', 'aria-live': 'polite' });
  const command = h('code', { class: 'cmd', id: 'policy-command' });
  const commandNote = h('p', { class: 'muted', id: 'policy-command-note' });
  const submit = h('button', { type: 'submit' }, old ? 'Save changes' : 'Create policy');
  const form = h('form', { id: 'policy-form', novalidate: true },
    field('name', 'Name', f.name, 'Lower-case letters, digits and dashes, starting with a letter or digit (at most 64); signers name the policy by it.'),
    approverBoxes,
    field('requiredApprovals', 'Approvals needed', f.requiredApprovals,
      'How many of the approvers must approve before a grant is made: 1 up to the number of approvers. The requester never approves their own request.'),
    h('fieldset', { class: 'field', 'data-field': 'constraints' }, h('legend', {}, 'What one grant allows (one or both)'),
      field('maxSignings', 'Signatures per grant', f.maxSignings,
        'An approved request allows at most this many signatures (1 to 1000000000). Empty: no count limit.'),
      field('maxWindowDuration', 'Time window (seconds)', f.maxWindowDuration,
        'An approved request allows signing for this many seconds after the approval (1 to 315360000, e.g. 3600 for an hour). Empty: no time limit.'),
      h('p', { class: 'muted', id: 'help-constraints' }, 'Give a signature count, a time window or both: a grant needs a limit.'),
      h('p', { class: 'field-error', id: 'err-constraints', 'aria-live': 'polite' })),
    field('requestTtl', 'Request waits (seconds)', f.requestTtl,
      'How long a request waits for decisions before it expires (1 to 31536000; 86400 is one day).'),
    field('bypassForMachineIdentities', 'Machine identities sign without approval', f.bypass,
      'When ticked, machine identities (CI pipelines) that are members of the signer sign without a request; users still need approval.'),
    h('p', {}, submit, ' ', formErr), command, commandNote);
  const update = () => {
    const v = readForm(f);
    const [c, notes] = commandOf(bodyOf(v, old), old, nameOf);
    command.textContent = c;
    commandNote.textContent = notes.join(' ');
  };
  form.addEventListener('input', update);
  form.addEventListener('change', update);
  update();
  onSubmit(form, formErr, NAMES, BY_REASON, async () => {
    const body = bodyOf(readForm(f), old);
    if (old && !Object.keys(body).length) {
      formErr.className = 'notice';
      formErr.textContent = 'Nothing changed.';
      return;
    }
    const p = old ? await api('PATCH', '/pki/signing-policies/' + encodeURIComponent(old.id), body)
      : await api('POST', '/pki/signing-policies', body);
    navigate('/policies?saved=' + encodeURIComponent(p.name));
  });
  const parts = [h('h1', {}, old ? ['Edit policy ', old.name] : 'New policy')];
  if (old) {
    parts.push(h('p', { class: 'muted' }, 'Changing the approvers, the approvals needed or what a grant allows cancels the ',
      'requests waiting under this policy and narrows its active grants to the new limits.'));
  }
  parts.push(form, h('p', {}, h('a', { href: '/policies' }, 'Back to the policies')));
  return parts;
}

async function savedPolicies(params) {
  const nodes = await policies(params);
  const saved = params.get('saved');
  if (saved) nodes.splice(1, 0, h('p', { class: 'notice', id: 'saved', role: 'status' }, 'Saved policy ', saved, '.'));
  return nodes;
}

export const POLICY_PAGES = [
  { re: /^\/policies$/, title: 'Policies', render: savedPolicies },
  { re: /^\/policies\/new$/, title: 'New policy', render: (params) => policyForm(params, null) },
  { re: /^\/policies\/([^/]+)\/edit$/, title: 'Edit policy', render: policyForm },
];
