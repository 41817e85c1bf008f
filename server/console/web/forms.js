// The admin forms' shared parts (policies.js, keys.js): a labelled field
// with a sentence explaining it and a slot for its error, the API's error
// put beside the field its message names (or beside the form), the shell
// quoting of the rsignctl command shown beside each button, and reading a
// file input as text. Values are inserted as text only (h()).
import { api } from './api.js';
import { h } from './app.js';

// A labelled control: the label, the control, a sentence saying what the
// value means, and an empty error slot (#err-NAME) the API's error fills.
export function field(name, label, control, help) {
  control.id = control.id || 'fld-' + name;
  control.setAttribute('aria-describedby', 'help-' + name + ' err-' + name);
  return h('div', { class: 'field', 'data-field': name },
    h('label', { for: control.id }, label, control),
    h('p', { class: 'muted', id: 'help-' + name }, help),
    h('p', { class: 'field-error', id: 'err-' + name, 'aria-live': 'polite' }));
}

// Which field an API error is about: reason-to-field first (a message that
// names no field, e.g. nameTaken), else the field name that occurs first in
// the message (the API's messages name the JSON field they refuse).
function fieldOf(e, names, byReason) {
  if (byReason && byReason[e.reason]) return byReason[e.reason];
  const msg = e.apiMessage || '';
  let best = null, at = Infinity;
  for (const [n, words] of Object.entries(names)) {
    for (const w of words) {
      const m = new RegExp('(^|[^A-Za-z])' + w + '([^A-Za-z]|$)').exec(msg);
      if (m && m.index < at) { at = m.index; best = n; }
    }
  }
  return best;
}

// Clears every error slot of the form, then shows e ("reason: message")
// beside the field it names, or in the form's own slot. names: field ->
// the words the API's messages call it by.
export function showFormError(form, formSlot, e, names, byReason) {
  for (const s of form.querySelectorAll('.field-error')) { s.textContent = ''; s.className = 'field-error'; }
  formSlot.textContent = '';
  formSlot.className = '';
  if (!e) return;
  const text = e.reason ? e.reason + ': ' + e.apiMessage : String(e);
  const name = e.reason ? fieldOf(e, names, byReason) : null;
  const slot = (name && form.querySelector('#err-' + name)) || formSlot;
  slot.className = (slot === formSlot ? '' : 'field-error ') + 'error';
  slot.setAttribute('role', 'alert');
  slot.textContent = text;
  const ctl = name && form.querySelector('[data-field="' + name + '"] input, [data-field="' + name + '"] textarea');
  if (ctl) ctl.setAttribute('aria-invalid', 'true');
}

// One word for a POSIX shell: as is when it needs no quoting.
export function sh(s) {
  s = String(s);
  return /^[A-Za-z0-9._@:/=+,-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'";
}

// A whole number from a text/number input: undefined when empty, NaN
// kept as the text so the API judges it (and says why).
export function numberOf(input) {
  const v = input.value.trim();
  if (v === '') return undefined;
  return /^-?\d+$/.test(v) ? Number(v) : v;
}

// Every item of a paged list (the API gives at most 100 a page).
export async function allOf(path, key) {
  const out = [];
  for (let offset = 0; ; offset += 100) {
    const j = await api('GET', path + (path.includes('?') ? '&' : '?') + 'limit=100&offset=' + offset);
    out.push(...j[key]);
    if (!j[key].length || out.length >= j.totalCount) return out;
  }
}

// The form's submit: runs fn, shows its error beside the field or form.
export function onSubmit(form, formSlot, names, byReason, fn) {
  const button = form.querySelector('button[type=submit]');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showFormError(form, formSlot, null);
    for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
    button.disabled = true;
    try {
      await fn();
    } catch (e) {
      showFormError(form, formSlot, e, names, byReason);
    } finally {
      button.disabled = false;
    }
  });
}

// Reads a chosen file into a textarea (a PEM pasted or picked).
export function fileInto(id, label, textarea) {
  const input = h('input', { id, type: 'file', accept: '.pem,.crt,.cer,application/x-pem-file,text/plain' });
  input.addEventListener('change', async () => {
    const f = input.files && input.files[0];
    if (f) textarea.value = await f.text();
    textarea.dispatchEvent(new Event('input', { bubbles: true }));
  });
  return h('label', { for: id }, label, input);
}
