// The rsign console's shell: routing by URL (every page has a stable link),
// the sign-in page, the navigation and sign-out. Values from the API are
// inserted as text only (h() makes text nodes; nothing here sets innerHTML).
import { api, whenSignedOut } from './api.js';
import { KEY_PAGES } from './keys.js';
import { PAGES } from './pages.js';
import { POLICY_PAGES } from './policies.js';

// h('a', {href: '/x', onclick: fn}, 'text', node, [more]) -> element
export function h(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  const add = (c) => {
    if (c === undefined || c === null || c === false) return;
    if (Array.isArray(c)) c.forEach(add);
    else if (c instanceof Node) e.appendChild(c);
    else e.appendChild(document.createTextNode(String(c)));
  };
  children.forEach(add);
  return e;
}

export const state = { me: null };

const NAV = [
  ['/', 'Overview'], ['/requests', 'Requests'], ['/signers', 'Signers'], ['/grants', 'Grants'],
  ['/policies', 'Policies'], ['/people', 'People', true], ['/keys', 'Keys', true],
  ['/certificates', 'Certificates', true], ['/audit', 'Audit log', true],
];

export function navigate(url, replace) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render();
}

// Links inside the page move without reloading it.
document.addEventListener('click', (ev) => {
  const a = ev.target.closest && ev.target.closest('a[href]');
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || a.hasAttribute('download')) return;
  ev.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', () => render());

function signinUrl() {
  const next = location.pathname + location.search;
  return '/signin' + (next && next !== '/' && !next.startsWith('/signin') ? '?next=' + encodeURIComponent(next) : '');
}

whenSignedOut(() => {
  state.me = null;
  if (location.pathname !== '/signin') navigate(signinUrl(), true);
});

function signinPage(main) {
  document.getElementById('top').hidden = true;
  const err = h('p', { id: 'signin-error', class: 'error', role: 'alert' });
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off',
    required: true, spellcheck: 'false', 'aria-describedby': 'signin-error' });
  const form = h('form', { class: 'signin', id: 'signin-form' },
    h('h1', {}, 'Sign in to rsign'),
    h('p', { class: 'muted' }, 'Paste your API token (rsu_…). It is exchanged for a session and not kept by this page.'),
    h('label', { for: 'token' }, 'API token', input),
    err,
    h('p', {}, h('button', { type: 'submit' }, 'Sign in')),
    h('p', { class: 'muted' }, 'Machine identities cannot sign in here.'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    const token = input.value.trim();
    try {
      const j = await api('POST', '/auth/console/login', { token });
      input.value = '';
      state.me = j.principal;
      const next = new URLSearchParams(location.search).get('next');
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', true);
    } catch (e) {
      input.value = '';
      err.textContent = e.reason ? e.reason + ': ' + e.apiMessage : String(e);
    }
  });
  main.replaceChildren(form);
  input.focus();
  document.body.dataset.ready = location.pathname + location.search;
}

function shell() {
  const top = document.getElementById('top');
  top.hidden = false;
  const nav = document.getElementById('nav');
  nav.replaceChildren(...NAV.filter(([, , admin]) => !admin || state.me.admin).map(([href, label]) => {
    const here = href === '/' ? location.pathname === '/' : location.pathname.startsWith(href);
    return h('a', { href, 'aria-current': here ? 'page' : false }, label);
  }));
  document.getElementById('me').textContent = state.me.name + (state.me.admin ? ' (admin)' : '');
}

document.getElementById('signout').addEventListener('click', async () => {
  try { await api('POST', '/auth/console/logout'); } catch (e) { /* gone already */ }
  state.me = null;
  navigate('/signin', true);
});

// The route table, exported so that the browser suites visit every page it
// holds (tests/console/run-browser-a11y), pages added later included.
export const ROUTES = [...PAGES, ...POLICY_PAGES, ...KEY_PAGES];

function route(path) {
  for (const p of ROUTES) {
    const m = p.re.exec(path);
    if (m) return { page: p, args: m.slice(1).map(decodeURIComponent) };
  }
  return null;
}

let renders = 0;
export async function render() {
  const main = document.getElementById('main');
  const mine = ++renders;
  if (location.pathname === '/signin') return signinPage(main);
  if (!state.me) {
    try {
      state.me = await api('GET', '/auth/whoami');
    } catch (e) {
      if (e.status !== 401) main.replaceChildren(h('p', { class: 'error', role: 'alert' }, e.reason + ': ' + e.apiMessage));
      return;
    }
  }
  shell();
  const r = route(location.pathname);
  if (!r) {
    main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, 'No console page at ', location.pathname));
    document.body.dataset.ready = location.pathname + location.search;
    return;
  }
  document.title = r.page.title + ' · rsign';
  main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  const params = new URLSearchParams(location.search);
  try {
    const nodes = await r.page.render(params, ...r.args);
    if (mine === renders) main.replaceChildren(...[].concat(nodes));
  } catch (e) {
    if (mine === renders && e.status !== 401)
      main.replaceChildren(h('h1', {}, r.page.title), h('p', { class: 'error', role: 'alert' }, e.reason ? e.reason + ': ' + e.apiMessage : String(e)));
  }
  document.body.dataset.ready = location.pathname + location.search;
}

render();
