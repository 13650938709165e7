"""The service report (`vrl_nb report --suite service`) at tiny settings, through the `vrl_nb` command as a user runs
it: its metrics.json holds the numbers as structure, and `vrl_nb results` puts its bench.md into BENCHMARKS.md."""
import json, os, subprocess, sys
from pathlib import Path
import pytest

pytest.importorskip('fastapi')
pytest.importorskip('uvicorn')
pytest.importorskip('httpx')
ROOT = Path(__file__).resolve().parents[1]
VRL = str(Path(sys.executable).parent/'vrl_nb')
TINY = dict(n_items=60, size=32, seconds=1, max_requests=80, concurrency=[1, 4], load=[1.2], forward_seconds=0.3,
            single_calls=20, restart_changes=3, max_queue=8, index_sizes=[2000], index_queries={},
            client_compare=['aiohttp'], client_reps=1)


def test_service_report_tiny(tmp_path):
    out = tmp_path/'service'
    cmd = [VRL, 'report', '--suite', 'service', '--out', str(out), '--no-calibration']
    for k, v in TINY.items(): cmd += ['-p', k, json.dumps(v)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    run = out/'service'
    m = json.loads((run/'metrics.json').read_text())
    for key in ('goals', 'reference_forward', 'imagesearch', 'loadtest', 'knee_ratio', 'single_ratio', 'overload',
                'restart', 'index', 'machine', 'setup'):
        assert key in m, key
    assert isinstance(m['knee_ratio'], float) and m['knee_ratio'] > 0 and m['single_ratio'] > 0, m['goals']
    assert m['machine']['isa'] and m['setup']['client']['closed_loop'] in ('hey', 'aiohttp', 'httpx')
    assert [s['concurrency'] for s in m['loadtest']['sweep']] == [1, 4] and m['overload']['load'] == 1.2
    assert all(isinstance(v, (int, float)) for st in m['loadtest']['sweep'] for v in st['cpu_ms_per_request'].values())
    rs = m['restart']['after_restart']
    assert (rs['found'], rs['gone'], rs['items']) == (3, 3, 60), rs   # 3 added, 3 removed, found after a restart
    assert m['restart']['under_load']['failed'] == 0, m['restart']
    assert {row['n'] for row in m['index']} == {2000} and len(m['index']) == 5
    assert [c['client'] for c in m['client_compare']] == ['aiohttp'] and m['client_compare'][0]['client_cpu_ms'] > 0
    assert (run/'bench.md').exists() and list((run/'figures').glob('*.png'))
    from vrl_nb.lab.results import write_results_docs
    _, bench = write_results_docs([f'{out}=The service'], tmp_path)
    text = bench.read_text()
    assert '## The service' in text and '### service' in text, text[:2000]
    assert 'knee throughput / reference forward' in text and '| IVF1,Flat' in text, text
