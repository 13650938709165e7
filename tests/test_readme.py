"""The README is the way in: short, and its quickstart runs as written in a fresh process with one import."""
import os, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quickstart() -> str:
    text = (ROOT/'README.md').read_text()
    sec = text[text.index('## Quickstart'):]
    return re.search(r'```python\n(.*?)\n```', sec, re.S).group(1)


def test_readme_is_short():
    words = len((ROOT/'README.md').read_text().split())
    assert words <= 1300, f'README.md has {words} words: keep it a front page (measurements go to RESULTS.md)'


def test_quickstart_needs_one_import():
    imports = [l for l in _quickstart().splitlines() if re.match(r'\s*(import|from)\s', l)]
    assert imports == ['import vrl_nb as vn'], imports


def test_quickstart_runs_verbatim(tmp_path):
    "The README's quickstart block, character for character, in a new interpreter in an empty folder"
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'PYTHONWARNINGS': 'default'}
    r = subprocess.run([sys.executable, '-c', _quickstart()], cwd=tmp_path, capture_output=True, text=True,
                       timeout=900, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    out = r.stdout
    assert 'off-the-shelf' in out and 'fine-tuned' in out and 'similar items P@10' in out, out
    # the scores it prints are numbers with their intervals, and fine-tuning beats the trunk it started from
    row = next(l for l in out.splitlines() if l.startswith('similar items P@10'))
    ots, ft = [float(v) for v in re.findall(r'(\d\.\d{3}) \[', row)]
    assert ft > ots, row
    assert (tmp_path/'quickstart'/'model'/'config.json').exists()
    assert (tmp_path/'quickstart'/'embeddings'/'meta.json').exists()
    # no warning the project causes reaches the user
    noisy = [l for l in r.stderr.splitlines() if 'Warning' in l and 'vrl_nb' in l or 'jit.script' in l]
    assert not noisy, noisy
