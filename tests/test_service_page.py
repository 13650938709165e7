"""The service's page (`GET /`) in headless Chromium against a real uvicorn server on 127.0.0.1: an image is
dropped on the page's drop zone (a `drop` event carrying the file, dispatched through the DevTools protocol) and
the page shows k result thumbnails with their ids and scores. A screenshot is kept in the test's folder."""
import base64, json, os, shutil, subprocess, time
import pytest

httpx = pytest.importorskip('httpx')
ws_sync = pytest.importorskip('websockets.sync.client')   # installed with uvicorn[standard]
from test_service import Server, _free_port, _png, folders  # noqa: F401  (the fixture is shared)


class Tab:
    "One Chromium page driven over the DevTools protocol (a websocket on 127.0.0.1)."
    def __init__(self, ws): self.ws, self.n = ws, 0
    def call(self, method, **params):
        self.n += 1; self.ws.send(json.dumps(dict(id=self.n, method=method, params=params)))
        while True:
            m = json.loads(self.ws.recv(timeout=30))
            if m.get('id') == self.n:
                if 'error' in m: raise RuntimeError(f'{method}: {m["error"]}')
                return m['result']
    def js(self, expr, await_promise=False):
        r = self.call('Runtime.evaluate', expression=expr, returnByValue=True, awaitPromise=await_promise)
        if 'exceptionDetails' in r: raise RuntimeError(f'{expr[:80]}: {r["exceptionDetails"]}')
        return r['result'].get('value')
    def wait(self, expr, timeout=20):
        t0 = time.time()
        while time.time() - t0 < timeout:
            v = self.js(expr)
            if v: return v
            time.sleep(0.1)
        raise AssertionError(f'not true within {timeout} s: {expr}')


@pytest.fixture
def chromium(tmp_path):
    exe = shutil.which('chromium')
    if exe is None: pytest.fail('chromium is missing: `make chromium` (apt-get install -y chromium) installs it')
    port = _free_port()
    p = subprocess.Popen([exe, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
                          f'--user-data-dir={tmp_path/"profile"}', '--remote-debugging-address=127.0.0.1',
                          f'--remote-debugging-port={port}', '--window-size=1200,900', 'about:blank'],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t0 = time.time()
        while True:
            try:
                pages = httpx.get(f'http://127.0.0.1:{port}/json/list', timeout=2).json(); break
            except httpx.HTTPError:
                if time.time() - t0 > 30 or p.poll() is not None: raise
                time.sleep(0.2)
        url = next(t['webSocketDebuggerUrl'] for t in pages if t['type'] == 'page')
        with ws_sync.connect(url, max_size=1 << 26) as ws: yield Tab(ws)
    finally:
        p.terminate()
        try: p.wait(10)
        except subprocess.TimeoutExpired: p.kill(); p.wait()


DROP = """(async () => {
  const bytes = Uint8Array.from(atob('%s'), c => c.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], 'query.png', {type: 'image/png'}));
  const zone = document.getElementById('drop');
  zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
  const over = zone.classList.contains('over');
  zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
  return over;
})()"""


def test_page_drop_image_shows_k_results(folders, chromium, tmp_path):
    d, imgs = folders
    srv = Server(d, '--state', str(tmp_path/'state'))
    try:
        tab, k = chromium, 5
        tab.call('Page.enable')
        tab.call('Page.navigate', url=srv.url + '/')
        tab.wait("document.readyState === 'complete' && document.getElementById('ids').children.length === 40")
        assert tab.js("document.getElementById('status').textContent") == '40 items indexed'
        tab.js(f"document.getElementById('k').value = {k}")
        assert tab.js(DROP % base64.b64encode(_png(imgs[7])).decode(), await_promise=True) is True
        n = tab.wait(f"document.querySelectorAll('#grid figure.hit').length === {k} && "
                     "[...document.querySelectorAll('#grid figure.hit img')].every(i => i.complete && "
                     "i.naturalWidth > 0) && document.querySelectorAll('#grid figure.hit').length")
        assert n == k
        hits = tab.js("[...document.querySelectorAll('#grid figure.hit')].map(f => [f.dataset.id, "
                      "+f.dataset.score, f.querySelector('figcaption').textContent, "
                      "f.querySelector('img').getAttribute('src'), f.querySelector('img').naturalWidth])")
        ids = [h[0] for h in hits]; scores = [h[1] for h in hits]
        assert ids[0] == 'it07' and len(set(ids)) == k, hits   # the dropped image's own item first
        assert scores == sorted(scores, reverse=True) and scores[0] > 0.99, scores
        for i, s, cap, src, w in hits:
            assert src == f'/v1/items/{i}/image' and w > 0, (i, src, w)       # a loaded thumbnail
            assert cap.startswith(f'{i}  {s:.3f}') and cap.split()[-1] in ('red', 'blue', 'green'), cap
        assert tab.js("document.querySelector('#query img').naturalWidth") == 32   # the dropped image shown
        assert tab.js("document.getElementById('status').textContent").startswith(f'{k} results in ')
        shot = base64.b64decode(tab.call('Page.captureScreenshot', format='png')['data'])
        (tmp_path/'page.png').write_bytes(shot)
        if os.environ.get('VRL_NB_SCREENSHOT'): (tmp_path/'page.png').replace(os.environ['VRL_NB_SCREENSHOT'])
        assert shot[:8] == b'\x89PNG\r\n\x1a\n' and len(shot) > 10_000
        # a result clicked: the page shows that item's similar items (the item itself left out)
        tab.js("document.querySelectorAll('#grid figure.hit')[1].click()")
        second = ids[1]
        tab.wait(f"document.getElementById('item').value === '{second}' && "
                 f"document.querySelectorAll('#grid figure.hit').length === {k} && "
                 f"![...document.querySelectorAll('#grid figure.hit')].some(f => f.dataset.id === '{second}')")
    finally: srv.stop()
