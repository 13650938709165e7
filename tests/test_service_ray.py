"""The service on Ray Serve: two replicas deployed by `vrl_nb serve --ray` (a subprocess, which starts a local Ray
cluster) inside a network namespace of its own (`unshare -n`: Ray's daemons listen on every interface, so nothing
outside this machine, and nothing else on it, can reach them). The test re-runs this file as a script in that
namespace and asserts on the JSON it prints: the smoke test of `test_service.py` (search, a live add and delete,
refusals), every change seen by both replicas on the next request, health, back-pressure (503 at once beyond the
queue), and a clean stop on SIGTERM."""
import json, os, re, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _smoke(workdir: Path) -> dict:
    "Runs inside the namespace: build a tiny catalog, deploy 2 replicas from the command line, exercise them."
    import signal
    sys.path.insert(0, str(Path(__file__).parent))
    from test_service import make_service_folders
    d = workdir; imgs = make_service_folders(d)
    out, t0, url = {}, time.time(), 'http://127.0.0.1:8123'
    log = open(d/'serve-ray.log', 'w')
    p = subprocess.Popen([sys.executable, '-c', 'import sys; from vrl_nb.service import serve_main; serve_main(sys.argv[1:])',
                          '--ray', '--replicas', '2', '--max-ongoing-requests', '2', '--max-queued-requests', '2',
                          '--port', '8123', '--embedder', str(d/'embedder'), '--embeddings', str(d/'embeddings'),
                          '--state', str(d/'state'), '--catalog', str(d/'items.csv'), '--image-root', str(d/'img')],
                         stdout=log, stderr=subprocess.STDOUT)
    said = lambda: (d/'serve-ray.log').read_text()
    try:
        while 'serving on' not in said():   # printed once the deployment is up
            if p.poll() is not None or time.time() - t0 > 180:
                raise RuntimeError(f'vrl_nb serve --ray did not come up ({p.poll()}): {said()[-3000:]}')
            time.sleep(0.3)
        out['deploy_s'] = round(time.time() - t0, 1)
        line = next(x for x in said().splitlines() if x.startswith('serving on'))
        out['status'] = re.search(r'application (\w+)', line).group(1)
        out['replicas'] = json.loads(re.search(r'replicas (\{.*?\})', line).group(1))
        _exercise(url, imgs, out)
    finally:
        if p.poll() is None: p.send_signal(signal.SIGTERM)   # the command shuts Serve and its cluster down
        try: out['exit'] = p.wait(90)
        except subprocess.TimeoutExpired: p.kill(); out['exit'] = 'killed after 90 s'
        log.close()
    out['stopped'] = said().strip().splitlines()[-1]
    out['total_s'] = round(time.time() - t0, 1)
    return out


def _exercise(url: str, imgs: list, out: dict):
    "The smoke test against the deployment at `url`: what it saw goes into `out`."
    import concurrent.futures as cf
    import httpx
    from test_service import _png
    c = httpx.Client(base_url=url, timeout=60)
    seen = lambda: {c.get('/readyz').json()['process'] for _ in range(40)}
    out['processes'] = len(seen())

    def top(img, k=3):
        return [h['id'] for h in c.post(f'/v1/search?k={k}&fields=colour', content=_png(img)).json()['results']]
    r = c.post('/v1/search?k=5&fields=colour', content=_png(imgs[7])).json()['results']
    out['search'] = [r[0]['id'], r[0]['colour'], len(r)]
    out['similar'] = [h['id'] for h in c.get('/v1/items/it07/similar?k=4').json()['results']]
    # a change made through one replica is seen by every later request, whichever replica answers it
    out['put'] = c.put('/v1/items/new1', content=_png(imgs[40])).status_code
    out['after_put'] = sorted({top(imgs[40], 1)[0] for _ in range(20)})
    out['delete'] = c.delete('/v1/items/it07').status_code
    out['after_delete'] = sorted({str('it07' in top(imgs[7], 10)) for _ in range(20)})
    out['delete_again'] = [c.delete('/v1/items/it07').status_code for _ in range(4)]
    out['items'] = sorted({c.get('/readyz').json()['items'] for _ in range(20)})
    out['compact'] = c.post('/v1/admin/compact').json()['records_after']
    out['after_compact'] = sorted({(top(imgs[40], 1)[0], str('it07' in top(imgs[7], 10))) for _ in range(20)})
    out['refused'] = [c.post('/v1/search', content=b'not an image').status_code,
                      c.post('/v1/search?k=0', content=_png(imgs[1])).status_code]
    # back-pressure: far more requests at once than 2 replicas x (2 running + 2 queued)
    def one(_):
        with httpx.Client(base_url=url, timeout=60) as cc: return cc.post('/v1/search?k=3', content=_png(imgs[3]))
    with cf.ThreadPoolExecutor(32) as ex: rs = list(ex.map(one, range(64)))
    out['burst'] = {str(s): [r.status_code for r in rs].count(s) for s in {r.status_code for r in rs}}
    out['burst_top'] = sorted({r.json()['results'][0]['id'] for r in rs if r.status_code == 200})


def test_two_replicas_on_ray(tmp_path):
    pytest.importorskip('ray.serve')
    pytest.importorskip('httpx')
    probe = subprocess.run(['unshare', '-n', 'sh', '-c', 'ip link set lo up'], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f'a network namespace of its own (unshare -n) is not permitted here: {probe.stderr.strip()}; '
                    "Ray's daemons would listen on every interface, so this test does not run without one")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1', OMP_WAIT_POLICY='PASSIVE',
               RAY_USAGE_STATS_ENABLED='0', RAY_DEDUP_LOGS='0')
    t0 = time.time()
    p = subprocess.run(['unshare', '-n', 'sh', '-c', f'ip link set lo up && exec "{sys.executable}" "{__file__}" '
                        f'"{tmp_path}"'], env=env, capture_output=True, text=True, timeout=240)
    line = [x for x in p.stdout.splitlines() if x.startswith('RESULT ')]
    assert p.returncode == 0 and line, (p.returncode, p.stdout[-3000:], p.stderr[-5000:])
    r = json.loads(line[-1][7:])
    print(json.dumps(r), f'wall {time.time() - t0:.1f} s')
    assert r['status'] == 'RUNNING' and r['replicas'] == {'RUNNING': 2}, r
    assert r['processes'] == 2, r                    # both replicas answered
    assert r['search'] == ['it07', 'blue', 5] and len(r['similar']) == 4 and 'it07' not in r['similar'], r
    assert r['put'] == 201 and r['after_put'] == ['new1'], r           # every replica found the new item
    assert r['delete'] == 200 and r['after_delete'] == ['False'], r    # no replica found the deleted one
    assert r['delete_again'] == [404] * 4 and r['items'] == [40], r
    assert r['compact'] == 2 and r['after_compact'] == [['new1', 'False']], r
    assert r['refused'] == [415, 422], r
    assert set(r['burst']) == {'200', '503'} and r['burst']['200'] >= 8, r   # back-pressure: 503 at once
    assert r['burst_top'] == ['it03'], r
    assert r['exit'] == 0 and r['stopped'] == 'stopped', r                 # a clean stop on SIGTERM
    assert r['exit'] == 0 and r['stopped'] == 'stopped', r                 # a clean stop on SIGTERM


if __name__ == '__main__':
    print('RESULT ' + json.dumps(_smoke(Path(sys.argv[1]))), flush=True)
