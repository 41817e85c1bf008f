// The certificate fields the signer page shows (subject, issuer, serial,
// validity, SHA-256 fingerprint), read from the PEM the API returns with a
// minimal DER reader: no library, nothing evaluated, text out only.

function pemToDer(pem) {
  const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(pem || '');
  if (!m) throw new Error('no certificate in the PEM');
  const bin = atob(m[1].replace(/\s+/g, ''));
  const der = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) der[i] = bin.charCodeAt(i);
  return der;
}

// One TLV at off: {tag, start (of content), end}.
function tlv(der, off) {
  if (off + 2 > der.length) throw new Error('truncated DER');
  const tag = der[off];
  let len = der[off + 1];
  let p = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n < 1 || n > 4 || p + n > der.length) throw new Error('bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[p + i];
    p += n;
  }
  if (p + len > der.length) throw new Error('truncated DER');
  return { tag, start: p, end: p + len };
}

function children(der, t) {
  const out = [];
  for (let p = t.start; p < t.end;) {
    const c = tlv(der, p);
    out.push(c);
    p = c.end;
  }
  return out;
}

const OIDS = { '2.5.4.3': 'CN', '2.5.4.6': 'C', '2.5.4.7': 'L', '2.5.4.8': 'ST', '2.5.4.10': 'O',
  '2.5.4.11': 'OU', '1.2.840.113549.1.9.1': 'emailAddress', '2.5.4.5': 'serialNumber' };

function oid(der, t) {
  const b = der.subarray(t.start, t.end);
  const parts = [Math.floor(b[0] / 40), b[0] % 40];
  let v = 0;
  for (let i = 1; i < b.length; i++) {
    v = v * 128 + (b[i] & 0x7f);
    if (!(b[i] & 0x80)) { parts.push(v); v = 0; }
  }
  return parts.join('.');
}

function text(der, t) {
  return new TextDecoder(t.tag === 0x1e ? 'utf-16be' : 'utf-8').decode(der.subarray(t.start, t.end));
}

function name(der, t) {
  return children(der, t).map((set) => children(der, set).map((atv) => {
    const [o, v] = children(der, atv);
    const k = oid(der, o);
    return (OIDS[k] || k) + '=' + text(der, v);
  }).join('+')).join(', ');
}

function time(der, t) {
  let s = text(der, t);
  if (t.tag === 0x17) s = (Number(s.slice(0, 2)) < 50 ? '20' : '19') + s;
  return `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)} ${s.slice(8, 10)}:${s.slice(10, 12)}:${s.slice(12, 14)} UTC`;
}

function hex(bytes, sep) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0').toUpperCase()).join(sep || '');
}

// {subject, issuer, serial, notBefore, notAfter, sha256}
export async function certFields(pem) {
  const der = pemToDer(pem);
  const cert = tlv(der, 0);
  const tbs = children(der, children(der, cert)[0]);
  const i = tbs[0].tag === 0xa0 ? 1 : 0; // [0] version
  const serial = tbs[i];
  const validity = children(der, tbs[i + 3]);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', der.subarray(0, cert.end)));
  return {
    serial: hex(der.subarray(serial.start, serial.end)).replace(/^00(?=.)/, ''),
    issuer: name(der, tbs[i + 2]),
    notBefore: time(der, validity[0]),
    notAfter: time(der, validity[1]),
    subject: name(der, tbs[i + 4]),
    sha256: hex(digest, ':'),
  };
}
