"""A suite shares its work: the generative run evaluates the models the backbones run saved (`models_from`), checked
against its catalog before any kernel starts; run alone it trains its own."""
import io, json, contextlib
from pathlib import Path
import nbformat, pytest
from vrl_nb.lab.reports import SUITES, suite_runs, run_suite, save_model_index, resolve_run_refs
from vrl_nb.lab.cli import main
from vrl_nb.core import load_json

TINY = dict(catalog=None, image_root=None, label_cols=None, id_col=None, n_train=30, n_test=10, size=32)


def fake_backbones_run(d:Path, seed=0) -> Path:
    "A backbones run folder holding one saved (random-init, tiny) embedder and its models.json."
    from vrl_nb.multitask import save_embedder, embedder_from_backbone
    from vrl_nb.backbones import create_backbone
    from vrl_nb.datasets import fashion_mnist_catalog
    cat = fashion_mnist_catalog(n_train=30, n_test=10, size=28, seed=seed)
    save_embedder(embedder_from_backbone(create_backbone('test_resnet', weights=None, img_size=32)), d/'models'/'m')
    save_model_index(d, {'m random-init': dict(folder=d/'models'/'m', kind='random-init')}, dict(TINY, seed=seed), cat, 32)
    return d


def test_suites_link_generative_to_backbones():
    for name in ('quick', 'default', 'full'):
        runs = [r['name'] for r in SUITES[name]['runs']]
        gen = next(r for r in SUITES[name]['runs'] if r['name'] == 'generative')
        assert gen['params']['models_from'] == '@backbones' and runs.index('backbones') < runs.index('generative')
    (r,) = [r for r in suite_runs('quick', only=['generative']) if r['name'] == 'generative']
    assert r['params']['models_from'] == '@backbones'     # resolved when the suite runs, not before


def test_at_reference_resolution():
    ok = [dict(name='backbones', ok=True, run_dir='/runs/backbones-2')]
    assert resolve_run_refs(dict(models_from='@backbones', n=1), ok) == (
        dict(models_from='/runs/backbones-2', n=1), ["models_from = the backbones run's folder, /runs/backbones-2"])
    p, lines = resolve_run_refs(dict(models_from='@backbones'), [dict(name='backbones', ok=False, run_dir='/x')])
    assert p == dict(models_from=None) and 'backbones run failed' in lines[0]
    p, lines = resolve_run_refs(dict(models_from='@backbones'), [])
    assert p == dict(models_from=None) and 'was not run (--only)' in lines[0]


def _mini(path, params, body):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(params); p.metadata['tags'] = ['parameters']
    nb.cells = [p, nbformat.v4.new_code_cell(body)]
    nb.metadata['kernelspec'] = dict(name='vrl_nb', display_name='Python (vrl_nb)', language='python')
    nbformat.write(nb, path)


def test_at_reference_names_an_earlier_run(tmp_path):
    _mini(tmp_path/'g.ipynb', 'out_dir = None\nmodels_from = None', 'pass')
    spec = dict(runs=[dict(name='g', notebook='g.ipynb', params=dict(models_from='@backbones'))])
    with pytest.raises(KeyError, match="'@backbones' names no earlier run of this suite"):
        suite_runs(spec, reports_dir=tmp_path)


def test_mismatched_models_folder_refused_before_any_kernel(tmp_path, capsys):
    d = fake_backbones_run(tmp_path/'backbones', seed=1)
    with pytest.raises(ValueError, match=r"parameter 'models_from': the models in .*backbones were trained on another "
                                         r"catalog: seed 1 there, 0 here"):
        suite_runs('quick', params=dict(models_from=str(d)), only=['generative'])
    assert main(['report', '--suite', 'quick', '--only', 'generative', '--out', str(tmp_path/'out'),
                 '-p', 'models_from', str(d)]) == 2
    assert 'trained on another catalog' in capsys.readouterr().err and not (tmp_path/'out').exists()
    with pytest.raises(FileNotFoundError, match="parameter 'models_from': .* has no models.json"):
        suite_runs('quick', params=dict(models_from=str(tmp_path)), only=['generative'])
    d0 = fake_backbones_run(tmp_path/'b0', seed=0)   # the same catalog: accepted (any n_train: held-out test items)
    (r,) = [r for r in suite_runs('quick', params=dict(models_from=str(d0)), only=['generative'])
            if r['name'] == 'generative']
    assert r['params']['models_from'] == str(d0)


def test_resolved_mismatch_fails_the_run_without_its_kernel(tmp_path):
    "'@b' resolved to a run whose models were trained on another catalog: that run fails before its kernel starts."
    _mini(tmp_path/'b.ipynb', 'out_dir = None\nseed = 1',
          f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
          "from test_suite_sharing import fake_backbones_run\nfrom pathlib import Path\n"
          "from vrl_nb.lab.reports import save_metrics\nfake_backbones_run(Path(out_dir), seed)\nsave_metrics(out_dir, n=1)")
    _mini(tmp_path/'g.ipynb', 'out_dir = None\nmodels_from = None\nseed = 0',
          "from vrl_nb.lab.reports import save_metrics\nsave_metrics(out_dir, used=models_from)")
    spec = dict(runs=[dict(name='b', notebook='b.ipynb'), dict(name='g', notebook='g.ipynb', params=dict(models_from='@b'))])
    log = io.StringIO()
    with contextlib.redirect_stdout(log): res = run_suite(spec, out=tmp_path/'out', reports_dir=tmp_path)
    st = {s['name']: s for s in res['statuses']}
    assert st['b']['ok'] and not st['g']['ok'] and st['g']['run_dir'] is None, st
    assert 'trained on another catalog: seed 1 there, 0 here' in st['g']['error']
    assert not (tmp_path/'out'/'g').exists() and 'g: FAILED before it started' in log.getvalue()
    # the same catalog: the run gets the folder of b, and the run key holds its listing
    spec['runs'][0]['params'] = dict(seed=0)
    res = run_suite(spec, out=tmp_path/'out2', reports_dir=tmp_path, verbose=False)
    g = Path(next(s for s in res['statuses'] if s['name'] == 'g')['run_dir'])
    assert load_json(g/'metrics.json')['used'] == str(tmp_path/'out2'/'b')
    key = load_json(g/'params.json')['run_key']
    assert list(key['files']['models_from']) == [str(tmp_path/'out2'/'b')]


def test_quick_suite_generative_evaluates_the_backbones_models(quick_suite):
    out, r = quick_suite
    assert r.returncode == 0, r.stdout + r.stderr
    idx = json.loads((out/'backbones'/'models.json').read_text())
    bb_rows = [x['model'] for x in json.loads((out/'backbones'/'metrics.json').read_text())['rows']]
    assert sorted(idx['models']) == sorted(bb_rows)           # every model the backbones report scored, saved
    assert {m['kind'] for m in idx['models'].values()} == {'random-init', 'off-the-shelf', 'fine-tuned', 'selected'}
    m = json.loads((out/'generative'/'metrics.json').read_text())
    p = json.loads((out/'generative'/'params.json').read_text())
    assert p['parameters']['models_from'] == m['models_from'] == str(out/'backbones')
    assert m['trained_embedders'] is False and sorted(m['models']) == sorted(bb_rows)
    assert m['judge'] == 'tf_efficientnet_lite0 fine-tuned' and m['faithfulness']
    assert sorted(x['model'] for x in m['rows']) == sorted(bb_rows)
    nb = (out/'generative'/'generative.ipynb').read_text()
    assert 'TrainResult' not in nb and 'no second judge is trained' in nb     # nothing trained but the generator
