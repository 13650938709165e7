"The quick report suite end to end under papermill, through the `vrl_nb` command, as a user runs it."
import json, os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
VRL = str(Path(sys.executable).parent/'vrl_nb')


def run(*args, timeout=900, cwd=ROOT):
    env = {**os.environ, 'HF_HUB_OFFLINE': '1'}
    return subprocess.run([VRL, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope='module')
def quick(quick_suite):
    return quick_suite     # tests/conftest.py: run once per session (the docs test renders its reports too)


def test_quick_suite_runs_end_to_end(quick):
    out, r = quick
    assert r.returncode == 0, r.stdout + r.stderr
    inv = json.loads((out/'last-quick-invocation.json').read_text())
    assert inv['failed'] == 0
    for st in inv['statuses']:
        d = Path(st['run_dir'])
        for f in ('metrics.json', 'params.json', 'DONE', st['notebook'], Path(st['notebook']).with_suffix('.html').name):
            assert (d/f).exists(), f'{d/f} missing'
        assert list((d/'figures').glob('*.png')), f'{d} has no figures'
        p = json.loads((d/'params.json').read_text())
        assert p['provenance']['packages']['torch'] == '2.14.1'
    assert 'summary:' in r.stdout and '[1/' in r.stdout      # progress and where the summary is


def test_quick_suite_metrics_are_sane(quick):
    out, _ = quick
    for name, n_rows in (('backbones', 4), ('objectives', 3), ('efficiency', 3), ('generative', 4)):
        rows = json.loads((out/name/'metrics.json').read_text())['rows']
        assert len(rows) == n_rows, (name, rows)
    rows = {r['model']: r for r in json.loads((out/'backbones'/'metrics.json').read_text())['rows']}
    sel = [m for m in rows if m.startswith('tf_efficientnet_lite0 selected (')]   # chosen on the validation split
    assert len(sel) == 1 and set(rows) - set(sel) == {'tf_efficientnet_lite0 random-init', 'tf_efficientnet_lite0 off-the-shelf',
                                                      'tf_efficientnet_lite0 fine-tuned'}, rows
    assert json.loads((out/'backbones'/'selection.json').read_text())['chosen'] in sel[0]
    assert rows['tf_efficientnet_lite0 random-init']['weights'] == 'from scratch'
    for r in rows.values():
        assert r['weights'] in ('offline-pretrained (ImageNet-1k)', 'from scratch', 'hub-pretrained') or r['weights'].startswith('file:')
        for k in ('sbi_r@1', 'similar_p@10', 'attr_p@10'):
            assert 0 <= r[k] <= 1, (k, r)
    assert 0 <= rows['tf_efficientnet_lite0 fine-tuned']['acc_fine_category'] <= 1
    assert 'acc_fine_category' not in rows['tf_efficientnet_lite0 off-the-shelf']   # no heads, no accuracy


def test_resume_skips_done_runs(quick):
    out, _ = quick
    r = run('report', '--suite', 'quick', '--out', str(out), '--resume')
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'skipped (--resume)' in r.stdout
    assert (out/'summary-2').is_dir() and not (out/'backbones-2').exists()   # never overwritten, done run skipped
    assert not any((out/f'{n}-2').exists() for n in ('objectives', 'efficiency', 'generative'))


def test_failing_run_is_reported_and_others_complete(tmp_path):
    (tmp_path/'bad.csv').write_text('item_id,label\n1,a\n2,b\n')            # a table the report cannot use
    r = run('report', '--suite', 'quick', '--out', str(tmp_path/'out'), '--only', 'backbones', '-p', 'catalog', str(tmp_path/'bad.csv'))
    assert r.returncode == 1, r.stdout + r.stderr
    assert 'FAILED' in r.stdout and 'bad.csv has none of the default label columns' in r.stdout
    err = json.loads((tmp_path/'out'/'backbones'/'error.json').read_text())
    assert "bad.csv has none of the default label columns" in err['error'] and err['failed_cell'] is not None
    assert (tmp_path/'out'/'backbones'/'backbones.ipynb').exists()            # the partial notebook is kept
    assert not (tmp_path/'out'/'summary').exists()                            # every run failed: nothing to summarise
    assert "nothing to summarise, every run failed (['backbones'])" in r.stdout


def test_missing_table_is_refused_before_any_kernel(tmp_path):
    (tmp_path/'sub').mkdir()
    r = run('report', '--suite', 'quick', '--out', str(tmp_path/'out'), '-p', 'catalog', 'missing.csv', cwd=tmp_path/'sub')
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"parameter 'catalog': missing.csv does not exist (relative paths are read from {tmp_path/'sub'})" in r.stderr
    assert not (tmp_path/'out').exists() or not any((tmp_path/'out').iterdir())   # no run folder, no kernel


def test_bad_backbone_and_type_are_refused_before_any_kernel(tmp_path):
    r = run('report', '--suite', 'quick', '--out', str(tmp_path), '--only', 'backbones', '-p', 'backbones', '["no_such_net:none"]')
    assert r.returncode == 2 and "'no_such_net' is not a timm architecture" in r.stderr, r.stdout + r.stderr
    r = run('report', '--suite', 'quick', '--out', str(tmp_path), '-p', 'size', 'abc')
    assert r.returncode == 2 and "parameter 'size'" in r.stderr, r.stdout + r.stderr
    assert not any(tmp_path.iterdir())                                        # no run folder, no kernel


def test_unknown_parameter_is_refused(tmp_path):
    r = run('report', '--suite', 'quick', '--out', str(tmp_path), '-p', 'no_such_param', '1')
    assert r.returncode == 2 and 'no_such_param' in r.stderr


@pytest.mark.parametrize('nb', sorted((ROOT/'nbs'/'reports').glob('*.ipynb')), ids=lambda p: p.stem)
def test_help_notebook_lists_every_parameter(nb):
    "`papermill --help-notebook` skips any parameter line with a second '=' (e.g. in its comment); none may be lost."
    import ast, nbformat, papermill as pm
    cell = next(c for c in nbformat.read(nb, as_version=4).cells if 'parameters' in c.metadata.get('tags', []))
    assigned = [t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign) for t in node.targets]
    listed = pm.inspect_notebook(str(nb))
    assert assigned and set(assigned) == set(listed), f'{nb.name}: not listed by papermill: {set(assigned) - set(listed)}'
    assert all(listed[n]['help'] for n in listed), f'{nb.name}: parameters without a help comment: {[n for n in listed if not listed[n]["help"]]}'


def test_backbones_report_on_a_users_catalog_from_an_installed_package(tmp_path):
    """A user's own catalog (JPEG files + a CSV: own id column, two label columns, no split, one missing image), run with a
    non-editable install of vrl_nb from a folder outside the repository, as `vrl_nb report` without --out."""
    import numpy as np, pandas as pd
    from PIL import Image
    from vrl_nb.datasets import fashion_mnist_catalog
    fm = fashion_mnist_catalog(n_train=120, n_test=0, size=32, seed=0)
    (tmp_path/'images'/'shop').mkdir(parents=True)
    arr, rows = fm.images_array(size=32), []
    for i, r in fm.items.reset_index(drop=True).iterrows():
        Image.fromarray(arr[i]).save(tmp_path/'images'/'shop'/f'{i}.jpg', quality=90)
        rows.append(dict(sku=f'SKU-{i}', image=f'shop/{i}.jpg', category=r['category'], colour=r['colour'], title=r['title']))
    rows.append(dict(sku='SKU-GONE', image='shop/gone.jpg', category='tops', colour='red', title='red shirt'))
    pd.DataFrame(rows).to_csv(tmp_path/'items.csv', index=False)
    site, work, cli, env = installed_package(tmp_path)
    r = subprocess.run([*cli, 'report', '--suite', 'quick', '--only', 'backbones', '-p', 'catalog', str(tmp_path/'items.csv'),
                        '-p', 'image_root', str(tmp_path/'images'), '-p', 'id_col', 'sku'], cwd=work, capture_output=True,
                       text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    d = work/'outputs'/'quick'/'backbones'                                       # ./outputs/<suite> of the folder it ran in
    assert json.loads((d/'params.json').read_text())['notebook'].startswith(str(site/'vrl_nb'/'report_notebooks'))
    data = json.loads((d/'data.json').read_text())
    assert (data['catalog_name'], data['tasks']) == ('items.csv', ['category', 'colour'])
    assert pd.read_csv(d/'quarantine.csv')['item_id'].tolist() == ['SKU-GONE']      # reported, not silently dropped
    rows = {m['model']: m for m in json.loads((d/'metrics.json').read_text())['rows']}
    ft = rows['tf_efficientnet_lite0 fine-tuned']
    assert 0 <= ft['acc_category'] <= 1 and 0 <= ft['acc_colour'] <= 1 and 'acc_fine_category' not in ft
    assert 0 <= ft['similar_p@10'] <= 1 and 0 <= ft['sbi_r@1'] <= 1                  # similar = same category and colour
    assert (d/'figures'/f"confusion-{data['key_task']}.png").exists()
    assert 'used whole' in (d/'backbones.ipynb').read_text()                       # the report says what it ran on


def installed_package(tmp_path):
    "A non-editable install (a wheel, into a --target folder) run from a folder outside the repository: the notebooks come with the package."
    import zipfile
    wheel_dir, site, work = tmp_path/'wheel', tmp_path/'site', tmp_path/'elsewhere'
    b = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w', str(wheel_dir), str(ROOT)],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert b.returncode == 0, b.stdout + b.stderr
    wheel = next(wheel_dir.glob('vrl_nb-*.whl'))
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith('vrl_nb/report_notebooks/')}
    assert {f'vrl_nb/report_notebooks/{p.name}' for p in (ROOT/'nbs'/'reports').glob('*.ipynb')} == shipped
    i = subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--target', str(site), str(wheel)],
                       capture_output=True, text=True, timeout=600)
    assert i.returncode == 0, i.stdout + i.stderr
    work.mkdir(); env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'PYTHONPATH': str(site)}
    cli = [sys.executable, '-c', 'import sys; from vrl_nb.lab.cli import main; sys.exit(main())']
    w = subprocess.run([*cli, 'params', 'backbones'], cwd=work, capture_output=True, text=True, timeout=300, env=env)
    assert w.returncode == 0 and 'catalog' in w.stdout, w.stdout + w.stderr
    return site, work, cli, env
