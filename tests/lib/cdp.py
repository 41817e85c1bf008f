"""A headless Chromium driven over the DevTools protocol through a pipe
(--remote-debugging-pipe: NUL-terminated JSON messages on the browser's fds
3 and 4), for the console's browser tests (tests/console/). Standard
library only: no npm package, no WebSocket client, nothing to install but
Debian's chromium.

    b = Browser.start()                  # None when chromium is absent
    page = b.new_page()
    page.goto(url); page.wait_js('document.body.dataset.ready === "/"')
    page.js('document.title'); page.screenshot(path)
    b.close()

Every wait polls the page (an event, not a fixed sleep) and gives up, as a
failure, only after WAIT_LIMIT seconds: a page that never gets there."""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

WAIT_LIMIT = 120  # seconds: only a page that never gets there takes this long
POLL = 0.05


class CdpError(Exception):
    pass


def chromium_path():
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        p = shutil.which(name)
        if p:
            return p
    return None


class Browser:
    def __init__(self):
        self.proc = None
        self.dir = None
        self.next_id = 0
        self.lock = threading.Lock()
        self.replies = {}
        self.cond = threading.Condition(self.lock)
        self.events = []  # (sessionId, method, params), every event, in order
        self.dead = None

    @classmethod
    def start(cls, extra_args=()):
        exe = chromium_path()
        if not exe:
            return None
        self = cls()
        self.dir = tempfile.mkdtemp(prefix='rsign-chromium-')
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def fds():
            a, b = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [exe, '--headless=new', '--remote-debugging-pipe', '--user-data-dir=' + self.dir,
                '--no-first-run', '--no-default-browser-check', '--disable-gpu',
                '--disable-extensions', '--disable-background-networking', '--disable-sync',
                '--disable-dev-shm-usage', '--ignore-certificate-errors',
                '--window-size=1280,800'] + list(extra_args)
        if os.geteuid() == 0:
            args.append('--no-sandbox')  # Chromium's sandbox refuses to run as root
        self.log = open(os.path.join(self.dir, 'chromium.log'), 'wb')
        self.proc = subprocess.Popen(args + ['about:blank'], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, preexec_fn=fds,
                                     pass_fds=(3, 4), start_new_session=True)
        os.close(to_child_r)
        os.close(from_child_w)
        threading.Thread(target=self._reader, daemon=True).start()
        self.call('Target.setDiscoverTargets', {'discover': True})
        return self

    def _reader(self):
        buf = b''
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b''
            if not chunk:
                with self.cond:
                    self.dead = 'chromium closed its pipe'
                    self.cond.notify_all()
                return
            buf += chunk
            while b'\0' in buf:
                msg, buf = buf.split(b'\0', 1)
                m = json.loads(msg.decode('utf-8'))
                with self.cond:
                    if 'id' in m:
                        self.replies[m['id']] = m
                    else:
                        self.events.append((m.get('sessionId'), m.get('method'), m.get('params')))
                    self.cond.notify_all()

    def call(self, method, params=None, session=None):
        with self.cond:
            self.next_id += 1
            mid = self.next_id
        msg = {'id': mid, 'method': method, 'params': params or {}}
        if session:
            msg['sessionId'] = session
        data = json.dumps(msg).encode('utf-8') + b'\0'
        while data:
            n = os.write(self._to_child, data)
            data = data[n:]
        deadline = time.monotonic() + WAIT_LIMIT
        with self.cond:
            while mid not in self.replies:
                if self.dead:
                    raise CdpError('%s: %s' % (method, self.dead))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CdpError('%s: no answer within %d s' % (method, WAIT_LIMIT))
                self.cond.wait(left)
            m = self.replies.pop(mid)
        if 'error' in m:
            raise CdpError('%s: %s' % (method, m['error'].get('message')))
        return m.get('result', {})

    def new_page(self, width=1280, height=800):
        t = self.call('Target.createTarget', {'url': 'about:blank'})['targetId']
        s = self.call('Target.attachToTarget', {'targetId': t, 'flatten': True})['sessionId']
        p = Page(self, s, t)
        for m in ('Page.enable', 'Runtime.enable', 'Log.enable'):
            p.call(m)
        p.call('Emulation.setDeviceMetricsOverride',
               {'width': width, 'height': height, 'deviceScaleFactor': 1, 'mobile': width < 600})
        return p

    def close(self):
        if self.proc and self.proc.poll() is None:
            try:
                self.call('Browser.close')
            except CdpError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Page:
    def __init__(self, browser, session, target):
        self.b = browser
        self.session = session
        self.target = target

    def call(self, method, params=None):
        return self.b.call(method, params, self.session)

    def events(self, method):
        with self.b.cond:
            return [p for s, m, p in self.b.events if s == self.session and m == method]

    def goto(self, url):
        r = self.call('Page.navigate', {'url': url})
        if r.get('errorText'):
            raise CdpError('navigate %s: %s' % (url, r['errorText']))

    def js(self, expr, await_promise=True):
        """The value of a JavaScript expression (JSON-serialisable)."""
        r = self.call('Runtime.evaluate', {'expression': expr, 'returnByValue': True,
                                           'awaitPromise': await_promise})
        if r.get('exceptionDetails'):
            d = r['exceptionDetails']
            raise CdpError('js %r: %s' % (expr[:80], (d.get('exception') or {}).get('description')
                                          or d.get('text')))
        return r['result'].get('value')

    def wait_js(self, expr, what=None):
        """Polls until expr is truthy; its value. CdpError after WAIT_LIMIT."""
        deadline = time.monotonic() + WAIT_LIMIT
        while True:
            try:
                v = self.js(expr)
            except CdpError:
                v = None  # the page is between documents
            if v:
                return v
            if time.monotonic() > deadline:
                raise CdpError('%s: not within %d s' % (what or expr, WAIT_LIMIT))
            time.sleep(POLL)

    def wait_ready(self, path):
        """Waits for the console to have rendered path (app.js sets
        document.body.dataset.ready to the path and query it rendered)."""
        return self.wait_js('document.body && document.body.dataset.ready === %s' % json.dumps(path),
                            'page ' + path + ' rendered')

    def type_into(self, selector, text):
        """Focuses the field and types text as keyboard input."""
        self.js('document.querySelector(%s).focus()' % json.dumps(selector))
        self.call('Input.insertText', {'text': text})

    def click(self, selector):
        """A real mouse click at the middle of the element."""
        box = self.js('(() => { const e = document.querySelector(%s); e.scrollIntoView({block: "center"});'
                      ' const r = e.getBoundingClientRect();'
                      ' return [r.left + r.width / 2, r.top + r.height / 2]; })()' % json.dumps(selector))
        for t in ('mousePressed', 'mouseReleased'):
            self.call('Input.dispatchMouseEvent', {'type': t, 'x': box[0], 'y': box[1],
                                                   'button': 'left', 'clickCount': 1})

    KEYS = {'Tab': ('Tab', 9, ''), 'Enter': ('Enter', 13, '\r'), 'Space': (' ', 32, ' ')}

    def press(self, key, shift=False):
        """One key as the keyboard sends it (keyDown, then keyUp): Tab,
        Enter or Space; shift holds Shift (Shift+Tab)."""
        name, code, text = self.KEYS[key]
        ev = {'key': name, 'code': key, 'windowsVirtualKeyCode': code, 'nativeVirtualKeyCode': code,
              'modifiers': 8 if shift else 0}
        self.call('Input.dispatchKeyEvent', dict(ev, type='keyDown' if text else 'rawKeyDown', text=text))
        self.call('Input.dispatchKeyEvent', dict(ev, type='keyUp'))

    def text(self, selector):
        return self.js('(() => { const e = document.querySelector(%s); return e ? e.textContent : null; })()'
                       % json.dumps(selector))

    def screenshot(self, path):
        d = self.call('Page.captureScreenshot', {'format': 'png'})['data']
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(base64.b64decode(d))
        return path

    def console_errors(self):
        """Uncaught exceptions and console.error calls seen so far."""
        out = [p['exceptionDetails'].get('text', '') + ' ' +
               str((p['exceptionDetails'].get('exception') or {}).get('description', ''))
               for p in self.events('Runtime.exceptionThrown')]
        out += [' '.join(str(a.get('value', a.get('description', ''))) for a in p.get('args', []))
                for p in self.events('Runtime.consoleAPICalled') if p.get('type') == 'error']
        out += [p['entry'].get('text', '') for p in self.events('Log.entryAdded')
                if p['entry'].get('level') == 'error']
        return out
