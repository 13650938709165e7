"Project-level checks: the layout, settings and conventions other tools rely on."
import configparser, json, os, re, subprocess, sys
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
        for other in _vrl_imports(mod):
            if other in order:
                assert order[other] <= n, f'vrl_nb.{mod} (stage {n}) imports the later stage vrl_nb.{other} ({order[other]})'
    # the check reads the exported modules, whose imports nbdev made relative: it must see them
    assert 'core' in _vrl_imports('catalog') and 'backbones' in _vrl_imports('embed')


def _vrl_imports(mod:str) -> set:
    "The vrl_nb modules `vrl_nb.<mod>` imports, absolute or relative, anywhere in its source (e.g. {'core', 'catalog'})."
    import ast
    path = ROOT/'vrl_nb'/f"{mod.replace('.', '/')}.py"; pkg = ['vrl_nb', *mod.split('.')[:-1]]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = pkg[:len(pkg) - node.level + 1] if node.level else []
            name = '.'.join([*base, *(node.module.split('.') if node.module else [])])
            names = [name] if node.module else [f'{name}.{a.name}' for a in node.names]
        elif isinstance(node, ast.Import): names = [a.name for a in node.names]
        else: continue
        out |= {x[len('vrl_nb.'):] for x in names if x.startswith('vrl_nb.')}
    return out



def _library_modules() -> list:
    "The importable library's modules: vrl_nb/*.py and vrl_nb/generative/*.py, as `_vrl_imports` names them."
    files = [*(ROOT/'vrl_nb').glob('*.py'), *(ROOT/'vrl_nb'/'generative').glob('*.py')]
    return sorted('.'.join(p.relative_to(ROOT/'vrl_nb').with_suffix('').parts) for p in files)


def test_library_never_imports_the_lab():
    "The report runner, suites and benchmark harnesses live in vrl_nb.lab; no library module imports them."
    mods = _library_modules()
    assert {'core', 'catalog', 'retrieval', 'distributed', 'generative.pipeline'} <= set(mods), mods
    bad = {m: sorted(x for x in _vrl_imports(m) if x == 'lab' or x.startswith('lab.')) for m in mods}
    bad = {m: v for m, v in bad.items() if v}
    assert not bad, f'library modules import the lab (move that code into vrl_nb.lab): {bad}'
    exists = lambda m: (ROOT/'vrl_nb'/f"{m.replace('.', '/')}.py").exists() or (ROOT/'vrl_nb'/m.replace('.', '/')).is_dir()
    gone = {m: sorted(x for x in _vrl_imports(m) if not exists(x)) for m in mods}
    gone = {m: v for m, v in gone.items() if v}
    assert not gone, f'library modules import vrl_nb modules that do not exist (moved to vrl_nb.lab?): {gone}'
    # the check sees a relative import of the lab as well as an absolute one
    assert 'lab.reports' in _vrl_imports('lab.benchmarks') and 'lab.reports' in _vrl_imports('lab.results')


def test_front_door_modules_exist():
    "Every module `import vrl_nb as vn` offers as an attribute (`vn.retrieval`, ...) is a module of the package."
    import vrl_nb
    missing = [m for m in vrl_nb._MODULES if not (ROOT/'vrl_nb'/f'{m}.py').exists() and not (ROOT/'vrl_nb'/m).is_dir()]
    assert not missing, f'vrl_nb._MODULES names modules that do not exist: {missing}'


def test_report_notebooks_have_parameters_cell():
    reports = sorted((ROOT/'nbs/reports').glob('*.ipynb'))
    assert reports, 'no report notebooks'
    for p in reports:
        nb = nbformat.read(p, 4)
        tagged = [c for c in nb.cells if 'parameters' in c.get('metadata', {}).get('tags', [])]
        assert len(tagged) == 1, f'{p.name} must have exactly one parameters-tagged cell, has {len(tagged)}'
        assert 'out_dir' in tagged[0].source, f'{p.name}: its parameters cell must declare out_dir'


def test_offline_by_default_without_touching_the_environment():
    "vrl_nb is offline unless VRL_NB_ONLINE=1, and importing it leaves the hub variables of the process alone (#13)."
    code = ('import os, vrl_nb.core as c, vrl_nb.backbones as b; '
            'print([os.environ.get(v) for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")], c.is_offline()); '
            'import time; t = time.time()\n'
            'try: b.create_backbone("tf_efficientnet_lite0", weights="hub")\n'
            'except Exception as e: print(type(e).__name__, "how to pass" in str(e) or "weights=" in str(e), time.time() - t < 10)')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env={'PATH': '/usr/bin:/bin'})
    lines = out.stdout.strip().splitlines()
    assert lines[0] == '[None, None, None] True', (out.stdout, out.stderr)
    assert lines[1].split()[1:] == ['True', 'True'], (out.stdout, out.stderr)   # refused at once, saying what to pass
    online = subprocess.run([sys.executable, '-c', 'import vrl_nb.core as c; print(c.is_offline())'], capture_output=True,
                            text=True, env={'PATH': '/usr/bin:/bin', 'VRL_NB_ONLINE': '1'})
    assert online.stdout.strip() == 'False', online.stderr


def test_local_loads_need_no_hub_variables():
    "Without HF_HUB_OFFLINE in the environment, vrl_nb's loaders still load local folders (local files only) and leave it unset."
    code = ('import os; from vrl_nb.generative.pipeline import load_text_encoder; tok, enc = load_text_encoder(); '
            'print(type(enc).__name__, os.environ.get("HF_HUB_OFFLINE"))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300,
                         env={'PATH': '/usr/bin:/bin', 'HOME': os.environ.get('HOME', '/root')})
    assert out.stdout.strip().splitlines()[-1] == 'BertModel None', (out.stdout, out.stderr[-2000:])


def test_readme_is_generated_from_index():
    import importlib.util    # the docs tooling lives in nbs/_sphinx/build.py, outside the runtime package
    spec = importlib.util.spec_from_file_location('vrl_nb_docs_build', ROOT/'nbs'/'_sphinx'/'build.py')
    docs = importlib.util.module_from_spec(spec); spec.loader.exec_module(docs); readme_from_index = docs.readme_from_index
    assert (ROOT/'README.md').read_text() == readme_from_index(ROOT/'nbs'), \
        'README.md is out of step with nbs/index.ipynb: run `make readme` and commit'


def test_no_function_hands_back_more_than_three_values():
    "State that needs four or more values travels as an object (a dataclass, a run), not as a tuple to unpack"
    import ast
    offenders = []
    for p in sorted((ROOT/'vrl_nb').rglob('*.py')):
        if p.name == '_modidx.py': continue
        for fn in ast.walk(ast.parse(p.read_text())):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)): continue
            for r in ast.walk(fn):
                if isinstance(r, ast.Return) and isinstance(r.value, ast.Tuple) and len(r.value.elts) > 3:
                    offenders.append(f'{p.relative_to(ROOT)}:{fn.name} returns {len(r.value.elts)} values')
    assert not offenders, offenders
