"""The visual-search service over real HTTP: a uvicorn server in a subprocess on a free loopback port, with a tiny
randomly initialised embedder (32 px) over a tiny embedding folder of PNG files."""
import io, json, os, signal, socket, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest

httpx = pytest.importorskip('httpx')
pytest.importorskip('fastapi')
pytest.importorskip('uvicorn')
ROOT = Path(__file__).resolve().parents[1]


def _png(a) -> bytes:
    from PIL import Image
    b = io.BytesIO(); Image.fromarray(a).save(b, format='PNG'); return b.getvalue()


def _image(rng, k) -> np.ndarray:
    "A 32 px image unlike the others: a colour field with a stripe pattern and noise."
    a = np.zeros((32, 32, 3), np.uint8); a[:] = rng.integers(0, 256, 3)
    a[(np.arange(32) * (k % 5 + 1)) % 7 < 3] = rng.integers(0, 256, 3)
    return np.clip(a + rng.integers(0, 40, a.shape), 0, 255).astype(np.uint8)


def make_service_folders(d: Path) -> list:
    "40 images + items.csv + a saved tiny embedder + its embedding folder in `d`; the 42 images (2 never indexed)."
    import pandas as pd
    from vrl_nb.backbones import create_backbone
    from vrl_nb.multitask import embedder_from_backbone, save_embedder
    from vrl_nb.catalog import Catalog, FileImageStore
    from vrl_nb.embed import embed_catalog
    rng = np.random.default_rng(0)
    (d/'img').mkdir()
    imgs = [_image(rng, k) for k in range(42)]
    for k, a in enumerate(imgs[:40]): (d/'img'/f'{k}.png').write_bytes(_png(a))
    items = pd.DataFrame(dict(item_id=[f'it{k:02d}' for k in range(40)], image=[f'{k}.png' for k in range(40)],
                              colour=[['red', 'blue', 'green'][k % 3] for k in range(40)]))
    items.to_csv(d/'items.csv', index=False)
    emb = embedder_from_backbone(create_backbone('test_efficientnet', weights=None, img_size=32))
    save_embedder(emb, d/'embedder')
    embed_catalog(emb, Catalog(items, FileImageStore(d/'img'), ['colour']), d/'embeddings', progress=False)
    return imgs


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    d = tmp_path_factory.mktemp('svc')
    return d, make_service_folders(d)


def _free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


class Server:
    "`vrl_nb.service.serve_main` in a subprocess on 127.0.0.1, ready when /readyz says so."
    def __init__(self, d, *extra, port=None):
        self.port = port or _free_port(); self.url = f'http://127.0.0.1:{self.port}'
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1', OMP_WAIT_POLICY='PASSIVE')
        args = ['--embedder', str(d/'embedder'), '--embeddings', str(d/'embeddings'), '--state', str(d/'state'),
                '--catalog', str(d/'items.csv'), '--image-root', str(d/'img'), '--port', str(self.port),
                '--threads', '1', *extra]
        self.log = open(d/f'server-{self.port}.log', 'w')
        self.p = subprocess.Popen([sys.executable, '-c', 'import sys; from vrl_nb.service import serve_main; '
                                   'serve_main(sys.argv[1:])', *args], env=env, stdout=self.log, stderr=self.log)
        t0 = time.time()
        while time.time() - t0 < 90:
            if self.p.poll() is not None: raise RuntimeError(f'server exited: {(d/f"server-{self.port}.log").read_text()}')
            try:
                if httpx.get(self.url + '/readyz', timeout=1).status_code == 200: return
            except httpx.HTTPError: pass
            time.sleep(0.2)
        self.stop(); raise RuntimeError('server not ready in 90 s')

    def stop(self, sig=signal.SIGKILL):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try: self.p.wait(20)
            except subprocess.TimeoutExpired: self.p.kill(); self.p.wait()
        self.log.close()


def test_service_end_to_end(folders):
    d, imgs = folders
    srv = Server(d, '--max-queue', '3', '--max-body-mb', '0.05')
    try:
        c = httpx.Client(base_url=srv.url, timeout=30)
        # search: raw body and multipart give k ids, the query's own item first, labels when asked
        r = c.post('/v1/search?k=5&fields=colour', content=_png(imgs[7]))
        assert r.status_code == 200, r.text
        res = r.json()['results']
        assert len(res) == 5 and res[0]['id'] == 'it07' and res[0]['colour'] == 'blue', res
        r = c.post('/v1/search?k=3', files={'image': ('q.png', _png(imgs[12]), 'image/png')})
        assert [h['id'] for h in r.json()['results']][:1] == ['it12'] and len(r.json()['results']) == 3
        # similar items from the stored vector: k of them, the item itself left out
        r = c.get('/v1/items/it07/similar?k=4')
        ids = [h['id'] for h in r.json()['results']]
        assert r.status_code == 200 and len(ids) == 4 and 'it07' not in ids, r.text
        assert c.get('/v1/items/nope/similar').status_code == 404
        # a new item is searchable on the next request; a deleted one is gone
        r = c.put('/v1/items/new1', files={'image': ('n.png', _png(imgs[40]), 'image/png')},
                  data={'meta': json.dumps({'colour': 'pink'})})
        assert r.status_code == 201, r.text
        r = c.post('/v1/search?k=3&fields=colour', content=_png(imgs[40])).json()['results']
        assert r[0]['id'] == 'new1' and r[0]['colour'] == 'pink', r
        assert c.delete('/v1/items/it07').status_code == 200
        assert 'it07' not in [h['id'] for h in c.post('/v1/search?k=10', content=_png(imgs[7])).json()['results']]
        assert c.delete('/v1/items/it07').status_code == 404
        assert c.get('/v1/items/new1/image').headers['content-type'] == 'image/jpeg'
        # what it refuses, and why
        r = c.post('/v1/search', content=b'\0' * 60_000)
        assert r.status_code == 413 and 'limit' in r.text, r.text
        r = c.post('/v1/search', content=b'this is not an image at all')
        assert r.status_code == 415 and 'not an image file' in r.json()['error'], r.text
        assert c.post('/v1/search', content=b'').status_code == 400
        assert c.post('/v1/search', content=_png(imgs[1])[:200]).status_code == 422
        from PIL import Image
        b = io.BytesIO(); Image.new('L', (9000, 9000)).save(b, format='PNG')   # 81 Mpx, ~80 kB compressed
        r = c.post('/v1/search', content=b.getvalue(), headers={})
        assert r.status_code == 413, r.text
        assert c.post('/v1/search?k=0', content=_png(imgs[1])).status_code == 422
        # overload: beyond 3 image requests in flight, 503 at once with Retry-After
        import concurrent.futures as cf
        def one(_):
            with httpx.Client(base_url=srv.url, timeout=30) as cc:
                return cc.post('/v1/search?k=3', content=_png(imgs[3]))
        with cf.ThreadPoolExecutor(16) as ex: rs = list(ex.map(one, range(32)))
        codes = [r.status_code for r in rs]
        assert set(codes) <= {200, 503} and 503 in codes and 200 in codes, codes
        assert all(r.headers.get('retry-after') for r in rs if r.status_code == 503)
        # metrics, readiness, the page
        m = c.get('/metrics').text
        for name in ('vrl_requests_total', 'vrl_request_seconds_bucket', 'vrl_batch_size_bucket',
                     'vrl_index_items 40.0', 'vrl_rejected_total{reason="overloaded"}'):
            assert name in m, name
        assert c.get('/readyz').json()['ready'] is True and c.get('/healthz').status_code == 200
        assert 'Visual search' in c.get('/').text
        # an index swap while searching: no failed request
        with cf.ThreadPoolExecutor(2) as ex:
            fut = ex.submit(lambda: httpx.post(srv.url + '/v1/admin/rebuild', timeout=60))
            during = []
            while not fut.done(): during.append(c.post('/v1/search?k=3', content=_png(imgs[5])).status_code)
            assert fut.result().status_code == 200 and fut.result().json()['items'] == 40
        assert during and set(during) == {200}, during
        # the bounded load test: every stage answers 200 or 503 (never a timeout), faults get their 4xx
        from vrl_nb.service import loadtest
        n_items = c.get('/readyz').json()['items']
        r = loadtest(srv.url, _png(imgs[5]), seconds=1, max_requests=60, concurrency=(1, 2, 4), load=(0.5, 1.2),
                     timeout=10, k=3, oversized=100_000, verbose=False)
        stages = [r['single'], *r['sweep'], *r['open'], r['faults']]
        for st in stages:
            assert set(st['codes']) <= {'200', '503'} and st['codes'].get('200'), st
        assert r['single']['codes'] == {'200': r['single']['requests']} and r['capacity_qps'] > 0
        side = r['faults']['side']
        assert set(side['oversized']) == {'413'}, side
        # a non-image is refused: 415 once decoded (checked above), or 503 when the queue is full at admission
        # (on a busy machine every one of them may meet a full queue)
        assert set(side['not_image']) <= {'415', '503'} and sum(side['not_image'].values()) > 0, side
        assert set(side['put']) <= {'201', '503'} and set(side['delete']) <= {'200', '404', '503'}, side
        assert side['swap'] == {'200': 1}, side
        assert c.get('/readyz').json()['items'] == n_items   # it deleted what it added
    finally: srv.stop(signal.SIGKILL)   # killed: nothing flushed at exit helps the next server

    # a restart replays the change log: the added item is there, the deleted one is not
    srv = Server(d)
    try:
        c = httpx.Client(base_url=srv.url, timeout=30)
        assert c.post('/v1/search?k=1', content=_png(imgs[40])).json()['results'][0]['id'] == 'new1'
        assert c.get('/v1/items/it07/similar').status_code == 404
        assert c.get('/readyz').json()['items'] == 40
        # SIGTERM drains: a request whose body is still arriving is answered before the server exits
        body = _png(imgs[9])
        s = socket.create_connection(('127.0.0.1', srv.port))
        s.sendall(f'POST /v1/search?k=2 HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n'
                  f'Content-Length: {len(body)}\r\n\r\n'.encode() + body[:100])
        time.sleep(0.3)
        srv.p.send_signal(signal.SIGTERM); time.sleep(0.5)
        assert srv.p.poll() is None   # still draining
        s.sendall(body[100:]); s.settimeout(20)
        resp = b''
        while b'\r\n\r\n' not in resp or len(resp.split(b'\r\n\r\n', 1)[1]) < 10: resp += s.recv(65536)
        assert resp.startswith(b'HTTP/1.1 200'), resp[:200]
        assert b'"it09"' in resp
        s.close()
        assert srv.p.wait(20) in (0, -signal.SIGTERM)   # uvicorn exits by the signal once drained
    finally: srv.stop()


def test_compaction_survives_kill(folders):
    """Adds and deletes, a compaction, more changes, kill -9, restart: every added item found, every deleted gone;
    then a process killed between writing the snapshot and swapping in the new log: the next start recovers."""
    d, imgs = folders
    state = d/'compact-state'
    rng = np.random.default_rng(7)
    new = {f'n{j}': _image(rng, j + 11) for j in range(4)}
    srv = Server(d, '--state', str(state), '--compact-after', '0')
    try:
        c = httpx.Client(base_url=srv.url, timeout=30)
        for i in ('n0', 'n1', 'n2'): assert c.put(f'/v1/items/{i}', content=_png(new[i])).status_code == 201
        for i in ('it01', 'it02', 'n2'): assert c.delete(f'/v1/items/{i}').status_code == 200
        r = c.post('/v1/admin/compact').json()
        assert (r['seq'], r['records_before'], r['records_after'], r['images_removed']) == (6, 6, 4, 1), r
        assert sorted(p.name for p in state.iterdir()) == ['changes.jsonl', 'changes.lock', 'images', 'snapshot.json']
        assert len((state/'changes.jsonl').read_text().splitlines()) == 1   # the new log: its first line only
        assert c.put('/v1/items/n3', content=_png(new['n3'])).status_code == 201
        assert c.delete('/v1/items/it03').status_code == 200
    finally: srv.stop(signal.SIGKILL)

    def check(srv, present, gone):
        c = httpx.Client(base_url=srv.url, timeout=30)
        for i in present:
            got = c.post('/v1/search?k=1', content=_png(new[i])).json()['results'][0]['id']
            assert got == i, (i, got)
            assert c.get(f'/v1/items/{i}/image').status_code == 200   # its uploaded image was kept
        for i in gone: assert c.get(f'/v1/items/{i}/similar').status_code == 404, i
        return c.get('/readyz').json()

    srv = Server(d, '--state', str(state))
    try:
        r = check(srv, ['n0', 'n1', 'n3'], ['it01', 'it02', 'it03', 'n2'])
        assert (r['items'], r['snapshot'], r['changes']) == (40, 6, 8), r
    finally: srv.stop(signal.SIGKILL)

    # a process that dies (SIGKILL) after the snapshot is written, before the new log replaces the old one
    code = f'''
import os, signal, sys
from vrl_nb.service import SearchService
svc = SearchService({str(d/'embedder')!r}, {str(d/'embeddings')!r}, {str(state)!r}, threads=1)
svc.delete('n1')
svc.log._rotate = lambda after: os.kill(os.getpid(), signal.SIGKILL)
svc.compact()
'''
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    p = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == -signal.SIGKILL, p.stderr
    snap = json.loads((state/'snapshot.json').read_text())
    assert snap['seq'] == 9 and json.loads((state/'changes.jsonl').read_text().splitlines()[0])['after'] == 6
    srv = Server(d, '--state', str(state))
    try:
        r = check(srv, ['n0', 'n3'], ['it01', 'it02', 'it03', 'n1', 'n2'])
        assert (r['items'], r['snapshot'], r['changes']) == (39, 9, 9), r
        c = httpx.Client(base_url=srv.url, timeout=30)
        assert c.put('/v1/items/n1', content=_png(new['n1'])).json()['seq'] == 10   # numbering goes on
    finally: srv.stop(signal.SIGKILL)
    from vrl_nb.service import ChangeLog   # what the next start reads: the snapshot, then only change 10
    log = ChangeLog(state, json.loads((state/'changes.jsonl').read_text().splitlines()[0])['base'])
    assert (log.snap_seq, [r['seq'] for r in log.records], log.last['n1']['op']) == (9, [10], 'put')
    log.close()
