"""The rendered docs (issue 8): every notebook in nbs/ becomes a page, no page shows an error, no internal link is broken.

Renders the current nbs/ (stored outputs, no execution) once, in a subprocess (nbdev runs exported/import/show_doc
cells while building API docs; keep that out of pytest's process), into a temporary folder.
"""
import json, os, resource, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
RENDER = ("import json, sys\nfrom vrl_nb.docs import render_docs\n"
          "recs = render_docs('nbs', sys.argv[1], quiet=True)\n"
          "json.dump(recs, open(sys.argv[2], 'w'), default=str)\n")


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('docs')
    dest, out = tmp/'_docs', tmp/'records.json'
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1'}
    t0, c0 = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([sys.executable, '-c', RENDER, str(dest), str(out)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    secs = dict(wall=time.time() - t0, cpu=c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime)
    print(f"docs render: {secs['wall']:.0f}s wall, {secs['cpu']:.0f}s CPU")   # for the log; speed is not asserted here
    assert r.returncode == 0, f'render_docs failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}'
    return dest, json.loads(out.read_text()), secs


def test_every_notebook_has_a_page(site):
    from vrl_nb.docs import doc_notebooks, page_path
    dest, recs, _ = site
    nbs = doc_notebooks(ROOT/'nbs')
    assert (dest/'index.html').is_file() and (dest/'site.css').is_file()
    assert any(p.parent.name == 'reports' for p in nbs), 'report notebooks (nbs/reports/*.ipynb) are rendered too'
    for nb in nbs:
        page = dest/page_path(nb, ROOT/'nbs')
        assert page.is_file(), f'{nb.relative_to(ROOT)} has no page ({page.name})'
        assert '<nav class="sidebar">' in page.read_text(encoding='utf-8')
    assert len(recs) == len(nbs)


def test_sidebar_in_pipeline_order(site):
    from bs4 import BeautifulSoup
    from vrl_nb.docs import doc_notebooks, page_path
    dest, _, _ = site
    nbs = [p for p in doc_notebooks(ROOT/'nbs') if p.stem != 'index']
    soup = BeautifulSoup((dest/'index.html').read_text(encoding='utf-8'), 'html.parser')
    links = [a['href'] for a in soup.select('nav.sidebar > ul > li > a')]
    assert links == [page_path(p, ROOT/'nbs').as_posix() for p in nbs]
    lib = [p.name for p in nbs if p.parent.name == 'nbs']
    assert lib == sorted(lib, key=lambda n: int(n.split('_')[0]) if n[0].isdigit() else 999)


def test_no_error_outputs_and_no_failing_cells(site):
    from vrl_nb.docs import check_site
    dest, recs, _ = site
    problems = [f"{r['rel']}: {p}" for r in recs for p in r['problems']]
    assert not problems, 'notebooks that render with problems (fix the notebook named):\n' + '\n'.join(problems)
    assert check_site(dest)['errors'] == []


def test_no_broken_internal_links(site):
    from vrl_nb.docs import check_site
    dest, _, _ = site
    res = check_site(dest)
    assert res['pages'] >= 4
    assert res['broken_links'] == [], 'relative links that resolve to no file:\n' + '\n'.join(res['broken_links'])


def test_command_entry():
    r = subprocess.run([sys.executable, '-m', 'vrl_nb.docs', '--help'], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and '--execute' in r.stdout and '--dest' in r.stdout
