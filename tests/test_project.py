"Project-level checks: the layout, settings and conventions other tools rely on."
import configparser, json, re, subprocess, sys
from pathlib import Path
import nbformat, pytest

ROOT = Path(__file__).resolve().parents[1]


def cfg():
    c = configparser.ConfigParser(delimiters=['=']); c.read(ROOT/'settings.ini'); return c['DEFAULT']


def test_top_level_layout():
    for p in ['nbs', 'vrl_nb', 'settings.ini', 'setup.py', 'tests', 'README.md', 'outputs', 'Makefile', '.ci/run', '.gitignore']:
        assert (ROOT/p).exists(), f'{p} is missing from the project root'


def test_settings_keep_papermill_tags_and_pins():
    c = cfg()
    assert c['lib_name'] == 'vrl_nb'
    assert 'tags' in c['allowed_cell_metadata_keys'].split(), 'nbdev_clean would strip the papermill parameters tag'
    reqs = c['requirements'].split() + c['dev_requirements'].split()
    for pin in ['torch==2.14.1', 'torchvision==0.29.1', 'nbdev==2.4.7', 'fastcore==1.8.18', 'execnb==0.1.16', 'fastai==2.8.7']:
        assert pin in reqs, f'{pin} must be pinned in settings.ini'
    assert all('==' in r for r in c['requirements'].split()), 'every runtime requirement is pinned'


def test_ci_runs_make_test():
    assert 'make test' in (ROOT/'.ci/run').read_text()
    assert '\ntest:' in (ROOT/'Makefile').read_text()


def test_notebooks_numbered_and_exported():
    nbs = sorted(p.name for p in (ROOT/'nbs').glob('[0-9][0-9]*_*.ipynb'))
    assert nbs[:3] == ['00_core.ipynb', '01_catalog.ipynb', '02_datasets.ipynb']
    for name in nbs:
        nb = nbformat.read(ROOT/'nbs'/name, 4)
        src = '\n'.join(c.source for c in nb.cells if c.cell_type == 'code')
        m = re.search(r'#\|\s*default_exp\s+(\S+)', src)
        assert m, f'{name} has no default_exp'
        mod = m.group(1).replace('.', '/')
        assert (ROOT/'vrl_nb'/f'{mod}.py').exists(), f'{name} exports {m.group(1)} but vrl_nb/{mod}.py is missing'
        assert nb.cells[0].cell_type == 'markdown', f'{name} should open with a title and prose'


def test_earlier_stages_never_import_later_ones():
    order = {}
    for p in (ROOT/'nbs').glob('[0-9][0-9]*_*.ipynb'):
        nb = nbformat.read(p, 4)
        m = re.search(r'#\|\s*default_exp\s+(\S+)', '\n'.join(c.source for c in nb.cells))
        if m: order[m.group(1)] = p.name.split('_')[0]   # '03', '08a', ...: sorts as the stages do
    for mod, n in order.items():
        src = (ROOT/'vrl_nb'/f"{mod.replace('.', '/')}.py").read_text()
        for other in re.findall(r'(?:from|import)\s+vrl_nb\.([\w.]+?)(?=\s|$|,)', src):
            if other in order:
                assert order[other] <= n, f'vrl_nb.{mod} (stage {n}) imports the later stage vrl_nb.{other} ({order[other]})'


def test_report_notebooks_have_parameters_cell():
    reports = sorted((ROOT/'nbs/reports').glob('*.ipynb'))
    assert reports, 'no report notebooks'
    for p in reports:
        nb = nbformat.read(p, 4)
        tagged = [c for c in nb.cells if 'parameters' in c.get('metadata', {}).get('tags', [])]
        assert len(tagged) == 1, f'{p.name} must have exactly one parameters-tagged cell, has {len(tagged)}'
        assert 'out_dir' in tagged[0].source, f'{p.name}: its parameters cell must declare out_dir'


def test_offline_on_import():
    out = subprocess.run([sys.executable, '-c', 'import os; os.environ.pop("HF_HUB_OFFLINE", None); import vrl_nb, os; '
                          'print(os.environ["HF_HUB_OFFLINE"])'], capture_output=True, text=True, env={'PATH': '/usr/bin:/bin'})
    assert out.stdout.strip() == '1', out.stderr


def test_readme_is_generated_from_index():
    import importlib.util    # the docs tooling lives in nbs/_sphinx/build.py, outside the runtime package
    spec = importlib.util.spec_from_file_location('vrl_nb_docs_build', ROOT/'nbs'/'_sphinx'/'build.py')
    docs = importlib.util.module_from_spec(spec); spec.loader.exec_module(docs); readme_from_index = docs.readme_from_index
    assert (ROOT/'README.md').read_text() == readme_from_index(ROOT/'nbs'), \
        'README.md is out of step with nbs/index.ipynb: run `make readme` and commit'
