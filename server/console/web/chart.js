// The overview's chart, drawn here as SVG (no library): signatures per day
// per signer over the window GET /pki/operations/daily covers, successes
// stacked by signer, denied and failed attempts as bars of their own beside
// them. Every bar carries its numbers (data-*) and a <title> as text.

const NS = 'http://www.w3.org/2000/svg';
const PALETTE = ['#1f5fbf', '#2a9d8f', '#8e44ad', '#e9a400', '#6c757d', '#d35400', '#16a085', '#34495e'];
const DENIED = '#a4161a';
const FAILED = '#555';

function svg(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// daily: the API's answer; names: signerId -> name. Returns {svg, legend}.
export function dailyChart(daily, names) {
  const days = [];
  const start = Date.parse(daily.from + 'T00:00:00Z');
  for (let i = 0; i < daily.days; i++) days.push(new Date(start + i * 86400000).toISOString().slice(0, 10));
  const signers = [...new Set(daily.counts.map((c) => c.signerId))].sort((a, b) =>
    (names.get(a) || a).localeCompare(names.get(b) || b));
  const color = new Map(signers.map((s, i) => [s, PALETTE[i % PALETTE.length]]));
  const byDay = new Map(days.map((d) => [d, []]));
  for (const c of daily.counts) if (byDay.has(c.date)) byDay.get(c.date).push(c);
  let max = 1;
  for (const list of byDay.values()) {
    max = Math.max(max, list.reduce((a, c) => a + c.success, 0), list.reduce((a, c) => a + c.denied, 0),
      list.reduce((a, c) => a + c.failed, 0));
  }
  const W = 900, H = 260, L = 40, B = 30, T = 10;
  const slot = (W - L - 10) / days.length;
  const bar = Math.max(2, slot / 4);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', id: 'daily-chart',
    'aria-label': `Signatures per day over ${daily.days} days` });
  root.appendChild(svg('line', { x1: L, y1: y(0), x2: W - 10, y2: y(0), stroke: '#999' }));
  for (const v of [0, Math.ceil(max / 2), max]) {
    root.appendChild(svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', 'font-size': 11 }, String(v)));
  }
  days.forEach((d, i) => {
    const x0 = L + i * slot + (slot - 3 * bar) / 2;
    if (i % 5 === 0 || i === days.length - 1) {
      root.appendChild(svg('text', { x: x0 + bar, y: H - 10, 'font-size': 10, 'text-anchor': 'middle' }, d.slice(5)));
    }
    let acc = 0;
    for (const c of byDay.get(d)) {
      if (!c.success) continue;
      const r = svg('rect', { x: x0, y: y(acc + c.success), width: bar, height: y(acc) - y(acc + c.success),
        fill: color.get(c.signerId), 'data-date': d, 'data-signer': names.get(c.signerId) || c.signerId,
        'data-status': 'success', 'data-count': c.success });
      r.appendChild(svg('title', {}, `${d} ${names.get(c.signerId) || c.signerId}: ${c.success} signed`));
      root.appendChild(r);
      acc += c.success;
    }
    [['denied', DENIED, 1], ['failed', FAILED, 2]].forEach(([st, fill, k]) => {
      const n = byDay.get(d).reduce((a, c) => a + c[st], 0);
      if (!n) return;
      const r = svg('rect', { x: x0 + k * bar, y: y(n), width: bar, height: y(0) - y(n), fill,
        'data-date': d, 'data-status': st, 'data-count': n });
      r.appendChild(svg('title', {}, `${d}: ${n} ${st}`));
      root.appendChild(r);
    });
  });
  const legend = document.createElement('div');
  legend.className = 'legend';
  const item = (fill, label) => {
    const s = document.createElement('span');
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = fill;
    s.append(sw, document.createTextNode(label));
    legend.appendChild(s);
  };
  signers.forEach((s) => item(color.get(s), (names.get(s) || s) + ' (signed)'));
  item(DENIED, 'denied');
  item(FAILED, 'failed');
  return { svg: root, legend };
}
