"""The docs site (issue 17): Sphinx + myst-nb build of nbdev's processed notebooks, checked in headless Chromium.

Builds the site once (nbs/_sphinx/build.py, `--execute off`: library pages show nbdev's API docs and code, report pages
the executed notebooks of the quick suite run that tests/conftest.py shares with test_report_suite.py) into a temporary
folder, then opens pages in Debian's chromium and asserts on the DOM it rendered (`--dump-dom`, scripts run).
Set VRL_NB_DOCS_REPORTS=<suite folder> to render an existing run instead of running the quick suite.
"""
import importlib.util, json, os, re, shutil, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location('vrl_nb_docs_build', ROOT/'nbs'/'_sphinx'/'build.py')
build = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(build)


@pytest.fixture(scope='module')
def report_suite(request):
    if os.environ.get('VRL_NB_DOCS_REPORTS'): return Path(os.environ['VRL_NB_DOCS_REPORTS'])
    out, r = request.getfixturevalue('quick_suite')
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return out


@pytest.fixture(scope='module')
def site(tmp_path_factory, report_suite):
    if build.chromium() is None: pytest.fail('chromium is missing: `make chromium` (apt-get install -y chromium) installs it')
    tmp = tmp_path_factory.mktemp('docs')
    env = {**os.environ, 'VRL_NB_DOCS_BUILD': str(tmp/'build'), 'HF_HUB_OFFLINE': '1'}
    t0 = time.time()
    r = subprocess.run([sys.executable, str(ROOT/'nbs'/'_sphinx'/'build.py'), '--execute', 'off', '--reports', str(report_suite),
                        '--dest', str(tmp/'_docs')], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    print(f'docs build (execution off, screenshots included): {time.time() - t0:.0f}s')
    assert r.returncode == 0, f'docs build failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}'
    return tmp/'_docs', tmp/'build'


def _sidebar(dom):
    "(caption, [hrefs]) of the sidebar's toctree sections, in order"
    nav = dom[dom.index('bd-docs-nav'):]
    nav = nav[:nav.index('</nav>')]
    parts = re.split(r'<p aria-level="2" class="caption" role="heading"><span class="caption-text">([^<]+)</span></p>', nav)
    return [(cap, re.findall(r'class="reference internal" href="([^"#]+)"', body)) for cap, body in zip(parts[1::2], parts[2::2])]


def test_cell_options_become_tags():
    tags, src = build.cell_tags('#| echo: false\n#| output: asis\nshow_doc(f)')
    assert set(tags) == {'remove-input', 'skip-execution'} and src == 'show_doc(f)'
    assert build.cell_tags('#| slow\nx = 1', flags=['slow'])[0] == ['skip-execution']
    assert build.cell_tags('#|hide\nimport x')[0] == ['remove-cell']
    assert build.cell_tags('#| include: false\n1')[0] == ['remove-cell']
    assert build.cell_tags("#| eval: false\n#| output: false\n1")[0] == ['skip-execution', 'remove-output']
    assert build.cell_tags('x = 1  # no options') == ([], 'x = 1  # no options')


def test_slow_cells_are_not_executed_by_the_docs(site):
    "nbdev's processing drops the `#| slow` directive: its cells must still reach Sphinx tagged skip-execution"
    nb = json.loads((site[1]/'_proc'/'05_train.ipynb').read_text())
    cell = next(c for c in nb['cells'] if 'lite = train_multitask(cat' in ''.join(c['source']))
    assert 'skip-execution' in cell['metadata']['tags'], cell['metadata']
    quick = next(c for c in nb['cells'] if c['cell_type'] == 'code' and 'skip-execution' not in c['metadata'].get('tags', [])
                 and 'remove-cell' not in c['metadata'].get('tags', []))
    assert quick   # ordinary cells still run


def test_sidebar_lists_every_notebook_in_pipeline_order(site):
    dest, _ = site
    secs = dict(_sidebar(build.browse(dest/'index.html')))
    lib = [p.stem for p in (ROOT/'nbs').glob('*.ipynb') if p.stem != 'index']
    numbered = sorted((n for n in lib if re.match(r'\d+[a-z]?_', n)), key=lambda n: (int(re.match(r'\d+', n).group()), n))
    assert secs['Library'] == [f'{n}.html' for n in build.library_order(lib)]
    assert secs['Library'][:len(numbered)] == [f'{n}.html' for n in numbered]
    reports = {f'reports/{p.stem}.html' for p in (ROOT/'nbs'/'reports').glob('*.ipynb')}
    assert set(secs['Reports']) == reports and secs['Reports'][-1] == 'reports/summary.html'


def test_api_page_shows_signature_and_doc(site):
    from vrl_nb.embed import embed_catalog
    dest, _ = site
    dom = build.browse(dest/'06_embed.html')
    m = re.search(r'id="embed_catalog".*?</div>\s*</div>', dom, re.S) or re.search(r'id="embed-catalog".*?</div>\s*</div>', dom, re.S)
    assert m, 'no show_doc heading for embed_catalog'
    i = dom.index(m.group(0))
    block = re.sub(r'<[^>]+>', '', dom[i:i + 6000])
    assert re.search(r'embed_catalog\s*\(\s*embedder', block), 'no signature under the heading'
    first = embed_catalog.__doc__.split('`')[0].strip()[:30]
    assert first in block.replace('\n', ' '), f'doc {first!r} not shown'


def test_report_pages_show_figures_and_results(site):
    dest, _ = site
    for name, n_min in (('summary', 2), ('backbones', 2)):
        dom = build.browse(dest/'reports'/f'{name}.html')
        imgs = re.findall(r'<img[^>]+src="([^"]+\.png)"', dom)
        assert len(imgs) >= n_min, f'{name}: {len(imgs)} figures'
        assert all((dest/'reports'/src).is_file() for src in imgs), 'a figure file is missing'
        assert 'Traceback' not in dom and 'No run of this report' not in dom
    assert '<table' in build.browse(dest/'reports'/'summary.html')


def test_search_finds_embed_catalog(site):
    dest, _ = site
    dom = build.browse((dest/'search.html').resolve().as_uri() + '?q=embed_catalog', wait_ms=8000)
    res = dom[dom.index('id="search-results"'):]
    assert re.search(r'href="[^"]*06_embed\.html', res), 'search did not find embed_catalog on the embed page'


def test_screenshots_left_for_a_person(site):
    dest, _ = site
    for png in ('index.png', 'summary.png'):
        p = dest/'screenshots'/png
        assert p.is_file() and p.stat().st_size > 20_000 and p.read_bytes()[:4] == b'\x89PNG'


def test_broken_internal_link_fails_the_build(site):
    dest, bld = site
    p = bld/'_proc'/'index.ipynb'
    good = p.read_text()
    nb = json.loads(good)
    nb['cells'].insert(1, dict(cell_type='markdown', id='broken', metadata={}, source='[a typo](00_core.ipynb#no-such-function)'))
    p.write_text(json.dumps(nb))
    old = build.BUILD, build.SRC, os.environ.get('VRL_NB_DOCS_BUILD')
    build.BUILD, build.SRC, os.environ['VRL_NB_DOCS_BUILD'] = bld, bld/'_proc', str(bld)
    try: assert build.sphinx_build(bld/'html-broken', execute='off') != 0, 'a link to a missing anchor did not fail the build'
    finally:
        p.write_text(good)
        build.BUILD, build.SRC = old[:2]
        if old[2] is None: os.environ.pop('VRL_NB_DOCS_BUILD')
        else: os.environ['VRL_NB_DOCS_BUILD'] = old[2]
