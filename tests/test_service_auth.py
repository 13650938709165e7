"""The admin token over real HTTP (a uvicorn server process, as in `test_service.py`): changes need
`Authorization: Bearer <token>`, searches stay open, the load test sends the token it is given; and a service bound
beyond loopback without a token refuses to start."""
import os, subprocess, sys
import pytest

httpx = pytest.importorskip('httpx')
pytest.importorskip('fastapi')
pytest.importorskip('uvicorn')
from test_service import ROOT, Server, _png, make_service_folders  # noqa: E402


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    d = tmp_path_factory.mktemp('auth')
    return d, make_service_folders(d)


def test_changes_need_the_admin_token(folders, tmp_path, monkeypatch):
    from vrl_nb.service import loadtest
    d, imgs = folders
    monkeypatch.delenv('VRL_NB_ADMIN_TOKEN', raising=False)
    (tmp_path/'token').write_text('s3cret-token\n')
    srv = Server(d, '--admin-token-file', str(tmp_path/'token'), '--state', str(tmp_path/'state'))
    try:
        c, ok = httpx.Client(base_url=srv.url, timeout=30), {'Authorization': 'Bearer s3cret-token'}
        r = c.put('/v1/items/new1', content=_png(imgs[40]))
        assert r.status_code == 401 and r.headers['www-authenticate'] == 'Bearer', r.text
        assert "'Authorization: Bearer <token>'" in r.json()['error'], r.text
        assert c.put('/v1/items/new1', content=_png(imgs[40]), headers={'Authorization': 'Bearer s3cret'}).status_code == 401
        assert c.put('/v1/items/new1', content=_png(imgs[40]), headers={'Authorization': 's3cret-token'}).status_code == 401
        assert [c.delete('/v1/items/it07').status_code, c.post('/v1/admin/rebuild').status_code,
                c.post('/v1/admin/compact').status_code] == [401] * 3
        assert c.get('/readyz').json()['changes'] == 0   # nothing was changed
        # searches, similar items and thumbnails stay open
        assert c.post('/v1/search?k=1', content=_png(imgs[7])).json()['results'][0]['id'] == 'it07'
        assert c.get('/v1/items/it07/similar?k=2').status_code == 200
        assert c.get('/v1/items/it07/image').status_code == 200
        # with the token
        assert c.put('/v1/items/new1', content=_png(imgs[40]), headers=ok).status_code == 201
        assert c.delete('/v1/items/it07', headers=ok).status_code == 200
        assert c.post('/v1/admin/rebuild', headers=ok).json()['items'] == 40
        # the load test's faults stage: its adds, deletes and swap are refused without the token, taken with it
        kw = dict(stages=('faults',), seconds=1, max_requests=30, concurrency=(2,), k=3, oversized=100_000,
                  verbose=False)
        side = loadtest(srv.url, _png(imgs[5]), **kw)['faults']['side']
        assert set(side['put']) <= {'401', '503'} and '401' in side['put'] and side['swap'] == {'401': 1}, side
        side = loadtest(srv.url, _png(imgs[5]), admin_token='s3cret-token', **kw)['faults']['side']
        assert set(side['put']) <= {'201', '503'} and side['swap'] == {'200': 1}, side
    finally: srv.stop()
    # the token from the environment instead of a file
    monkeypatch.setenv('VRL_NB_ADMIN_TOKEN', 'from-env')
    srv = Server(d, '--state', str(tmp_path/'state'))
    try:
        c = httpx.Client(base_url=srv.url, timeout=30)
        assert c.delete('/v1/items/new1').status_code == 401
        assert c.delete('/v1/items/new1', headers={'Authorization': 'Bearer from-env'}).status_code == 200
    finally: srv.stop()


def test_beyond_loopback_without_a_token_refuses_to_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != 'VRL_NB_ADMIN_TOKEN'}
    env['PYTHONPATH'] = str(ROOT)
    code = 'import sys; from vrl_nb.service import serve_main; serve_main(sys.argv[1:])'
    r = subprocess.run([sys.executable, '-c', code, '--embedder', str(tmp_path/'no-model'), '--embeddings',
                        str(tmp_path/'no-embeddings'), '--host', '0.0.0.0', '--port', '1'],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, (r.returncode, r.stderr)
    msg = r.stderr
    assert 'not started' in msg and 'reachable beyond this machine' in msg, msg
    assert '--admin-token-file' in msg and 'VRL_NB_ADMIN_TOKEN' in msg and '--insecure-writes' in msg, msg
