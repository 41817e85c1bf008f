"""Shared pieces of the console's browser suites (tests/console/run-browser-*):
the world (a real rsignd, Debian chromium over the DevTools protocol), signing
in through the form, screenshots, users and signatures made over the API, and
the suite runner that skips every test, counted, without chromium."""

import hashlib
import os
import time
import urllib.parse

import cdp
import rsigntest as rt
from apictx import check, expect

BUILDDIR = os.environ.get('top_builddir') or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
SHOTS = os.path.join(os.path.abspath(BUILDDIR), 'tests', 'console', 'screenshots')


class Ctx:
    srv = None
    admin = None
    browser = None
    users = {}  # name -> (id, token)


def shot(page, name):
    p = page.screenshot(os.path.join(SHOTS, name + '.png'))
    print('# screenshot: %s' % p)


def user(name, admin=False):
    if name not in Ctx.users:
        j = expect(Ctx.admin.post('/principals', {'type': 'user', 'name': name, 'admin': admin}), 201,
                   'create ' + name)
        Ctx.users[name] = (j['id'], j['token'])
    return Ctx.users[name]


def signed_in_page(token, path='/', width=1280, height=800):
    """A fresh browser context (no cookies) signed in through the sign-in
    form, showing path."""
    ctx = Ctx.browser.call('Target.createBrowserContext')['browserContextId']
    t = Ctx.browser.call('Target.createTarget', {'url': 'about:blank', 'browserContextId': ctx})['targetId']
    s = Ctx.browser.call('Target.attachToTarget', {'targetId': t, 'flatten': True})['sessionId']
    page = cdp.Page(Ctx.browser, s, t)
    page.context = ctx
    for m in ('Page.enable', 'Runtime.enable', 'Log.enable'):
        page.call(m)
    page.call('Emulation.setDeviceMetricsOverride',
              {'width': width, 'height': height, 'deviceScaleFactor': 1, 'mobile': width < 600})
    page.goto(Ctx.srv.url + path)
    want = '/signin' + ('?next=' + urllib.parse.quote(path, safe='') if path != '/' else '')
    page.wait_ready(want)
    page.type_into('#token', token)
    page.click('#signin-form button[type=submit]')
    page.wait_ready(path)
    return page


XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def sign(signer, meta, alg='ECDSA_SHA256', token=None):
    body = {'data': rt.b64(hashlib.sha256(os.urandom(8)).digest()), 'signingAlgorithm': alg,
            'isDigest': True, 'clientMetadata': meta}
    cli = Ctx.admin if token is None else Ctx.admin.with_token(token)
    return cli.post('/pki/signers/%s/sign' % signer, body)


def cdp_wait_file(path):
    """Waits for a finished download (Chromium renames its .crdownload)."""
    deadline = time.monotonic() + cdp.WAIT_LIMIT
    while not os.path.exists(path):
        check(time.monotonic() < deadline, 'no download at %s' % path)
        time.sleep(cdp.POLL)
    return True


def run(TESTS):
    """Runs the suite's (name, fn) list as TAP; the exit status."""
    tap = rt.Tap()
    if not cdp.chromium_path():
        tap.plan(len(TESTS))
        for name, _ in TESTS:
            tap.skip(name, 'chromium is not installed (scripts/install-deps installs it)')
        return tap.done()
    tap.plan(len(TESTS))
    try:
        Ctx.srv = rt.DevServer.start()
    except rt.ServerError as e:
        for name, _ in TESTS:
            tap.ok(name, False, 'rsignd did not start: %s' % e)
        return tap.done()
    Ctx.admin = Ctx.srv.client()
    Ctx.browser = cdp.Browser.start()
    try:
        for name, fn in TESTS:
            tap.run(name, fn)
    finally:
        Ctx.browser.close()
        Ctx.srv.stop()
        Ctx.srv.cleanup()
    return tap.done()


