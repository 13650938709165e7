"""What a report run needs, checked before any kernel starts (the runner's `check_inputs`), the run key's files, and
a relative `--out`. No heavy report runs here: the checks are called through `suite_runs` (which starts no kernel)
and the runner through tiny notebooks written on the fly."""
import io, os, contextlib
from pathlib import Path
import nbformat, pandas as pd, pytest
from vrl_nb.lab.reports import suite_runs, check_inputs, run_key, run_key_changes, run_suite, report_catalog
from vrl_nb.lab.cli import main
from vrl_nb.core import load_json

QUICK_GEN = dict(n_train=200, n_test=40, seed=0)   # the quick suite's generative run: its embedded catalog


def gen_runs(**params):
    "The quick suite's generative run with `params`: every check before a kernel, and the notes it would print."
    (r,) = [r for r in suite_runs('quick', params=params, only=['generative']) if r['name'] == 'generative']
    return r


@pytest.fixture(scope='module')
def fm_ids():
    cat = report_catalog(None, size=28, **QUICK_GEN)
    return cat.split_('test').items['item_id'].tolist(), cat.split_('train').items['item_id'].tolist()


def write_log(path, rows, cols=('query_text', 'language', 'clicked_item_ids')):
    pd.DataFrame(rows, columns=list(cols)).to_csv(path, index=False)
    return str(path)


# --- M4: a folder for a table, an empty query_text: refused before any kernel, naming parameter, file, row and fix
def test_catalog_folder_is_refused_before_any_kernel(tmp_path, capsys):
    (tmp_path/'shop').mkdir(); (tmp_path/'shop'/'items.csv').write_text('item_id,image,category\n1,a.jpg,x\n')
    with pytest.raises(ValueError, match=r"parameter 'catalog': .*shop is a folder; name the items table file itself, "
                                         r"e.g. -p catalog .*shop/items.csv \(tables there: \['items.csv'\]\)"):
        suite_runs('quick', params=dict(catalog=str(tmp_path/'shop')), only=['backbones'])
    assert main(['report', '--suite', 'quick', '--out', str(tmp_path/'out'), '-p', 'catalog', str(tmp_path/'shop')]) == 2
    assert 'is a folder' in capsys.readouterr().err and not (tmp_path/'out').exists()       # no run folder, no kernel
    with pytest.raises(ValueError, match="parameter 'queries': .* is a folder; name the query log file itself"):
        gen_runs(queries=str(tmp_path/'shop'))
    (tmp_path/'items.json').write_text('{}')
    with pytest.raises(ValueError, match=r"parameter 'catalog': .*items.json is not a table vrl_nb reads \(.json\)"):
        suite_runs('quick', params=dict(catalog=str(tmp_path/'items.json')), only=['backbones'])


def test_catalog_columns_and_image_root_are_checked_before_any_kernel(tmp_path):
    (tmp_path/'items.csv').write_text('item_id,image,category\n1,a.jpg,x\n')
    with pytest.raises(KeyError, match=r"parameter 'id_col': column 'sku' is not in items.csv; its columns: "
                                       r"\['item_id', 'image', 'category'\]"):
        suite_runs('quick', params=dict(catalog=str(tmp_path/'items.csv'), id_col='sku'), only=['backbones'])
    with pytest.raises(ValueError, match="parameter 'image_root': .*items.csv is not a folder"):
        suite_runs('quick', params=dict(catalog=str(tmp_path/'items.csv'), image_root=str(tmp_path/'items.csv')),
                   only=['backbones'])


def test_empty_query_text_is_refused_before_any_kernel(tmp_path, fm_ids):
    log = write_log(tmp_path/'log.csv', [('red dress', 'en', fm_ids[0][0]), ('', 'en', fm_ids[0][1])])
    with pytest.raises(ValueError, match=r"parameter 'queries': query log log.csv: line\(s\) \[3\] have an empty "
                                         "query_text; fill or drop them"):
        gen_runs(queries=log)


# --- case 10: clicked ids checked against the catalog's evaluated split
def test_clicked_ids_none_of_which_is_in_the_catalog_are_refused(tmp_path, fm_ids):
    log = write_log(tmp_path/'log.csv', [('red dress', 'en', i.upper()) for i in fm_ids[0][:5]])
    with pytest.raises(ValueError) as e: gen_runs(queries=log)
    msg = str(e.value)
    assert msg.startswith("parameter 'queries': query log log.csv: none of its 5 clicked ids is in the catalog's test "
                          "split (the items the report searches)"), msg
    assert f"5 exist nowhere in the catalog (fashion-mnist) (e.g. {[i.upper() for i in fm_ids[0][:3]]}" in msg, msg
    assert f"differ from an id in the catalog (fashion-mnist) only in letter case (e.g. '{fm_ids[0][0].upper()}' vs '{fm_ids[0][0]}')" in msg


def test_clicked_ids_of_a_users_table_zero_padding(tmp_path):
    pd.DataFrame(dict(item_id=[f'p{i:03d}' for i in range(30)], image=[f'{i}.jpg' for i in range(30)],
                      category=['a', 'b'] * 15, title='red dress', split=['train'] * 20 + ['test'] * 10)
                 ).to_csv(tmp_path/'items.csv', index=False)
    log = write_log(tmp_path/'log.csv', [('red dress', 'en', 'p26|p27'), ('red dress', 'en', 'p28')])
    with pytest.raises(ValueError, match=r"3 exist nowhere in the catalog \(items.csv\).*only in zero-padding "
                                         r"\(e.g. 'p26' vs 'p026'\)"):
        gen_runs(catalog=str(tmp_path/'items.csv'), queries=log)
    # every clicked id in the training split: in the catalog, but not searched; told apart from ids that are nowhere
    log = write_log(tmp_path/'log.csv', [('red dress', 'en', 'p001|p002')])
    with pytest.raises(ValueError, match=r"none of its 2 clicked ids is in the catalog's test split .*: 2 are elsewhere in "
                                         r"the catalog \(items.csv\) \(e.g. \['p001', 'p002'\]\)"):
        gen_runs(catalog=str(tmp_path/'items.csv'), queries=log)


def test_clicked_ids_partly_unknown_are_reported_with_their_share(tmp_path, fm_ids):
    test, train = fm_ids
    log = write_log(tmp_path/'log.csv', [('red dress', 'en', f'{test[0]}|{test[1]}'), ('blue bag', 'en', train[0]),
                                         ('black coat', 'en', 'nope-1')])
    note = gen_runs(queries=log)['notes'][-1]
    for part in (f"parameter 'queries': query log log.csv: 2 of its 4 clicked ids (50%) are not in the catalog's test "
                 f"split (the items the report searches): 1 is elsewhere in the catalog (fashion-mnist) (e.g. "
                 f"['{train[0]}']); 1 exists nowhere in the catalog (fashion-mnist) (e.g. ['nope-1']; "
                 "the ids in the catalog (fashion-mnist) look like ['fmnist-test-",
                 "They count as missed; 2 queries have no clicked item left there"):
        assert part in note, note


# --- case 11: a log of clicks alone is taken (what is skipped is said); one with nothing to score is refused
def test_minimal_query_log_is_taken_and_its_skips_are_said(tmp_path, fm_ids):
    log = write_log(tmp_path/'log.csv', [('red dress', 'en', fm_ids[0][0]), ('robe rouge', 'fr', fm_ids[0][1])])
    r = gen_runs(queries=log)
    assert r['notes'] == ["query log log.csv has no labels of the catalog's tasks ['category', 'fine_category', "
                          "'colour']: attribute precision@k and the faithfulness check are skipped; its clicked items "
                          "are scored"], r['notes']
    assert gen_runs(queries=log, faith_tasks=[])['params']['faith_tasks'] == []
    with pytest.raises(ValueError, match=r"parameter 'faith_tasks': \['shape'\] are not label tasks of the catalog"):
        gen_runs(queries=log, faith_tasks=['shape'])
    log = write_log(tmp_path/'log2.csv', [('red dress', 'en')], cols=('query_text', 'language'))
    with pytest.raises(ValueError, match=r"query log log2.csv has neither clicked ids nor labels of the catalog's "
                                         r"tasks .*nothing to score"):
        with pytest.warns(UserWarning, match='no clicked_item_ids column'): gen_runs(queries=log)
    log = write_log(tmp_path/'log3.csv', [('red dress', 'en', 'red')], cols=('query_text', 'language', 'colour'))
    with pytest.warns(UserWarning): r = gen_runs(queries=log, faith_tasks=['colour', 'category'])
    assert r['notes'] == ["query log log3.csv has no labels for faith_tasks ['category']: the faithfulness check "
                          "judges ['colour'] only"], r['notes']


def test_word_table_is_read_before_any_kernel(tmp_path):
    (tmp_path/'w.json').write_text('{"de": ["Ordner"]}')
    with pytest.raises(ValueError, match=r"parameter 'word_table': word table .*w.json: \['de'\] must map"):
        check_inputs(dict(word_table=str(tmp_path/'w.json')))
    with pytest.raises(FileNotFoundError, match="parameter 'word_table': word table icon does not exist"):
        check_inputs(dict(word_table='icon'))
    check_inputs(dict(word_table='icons'))


# --- case 12: the run key holds the content of every file a parameter names
def mini_report(path, params="out_dir = None\nqueries = None\nx = 1"):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(params); p.metadata['tags'] = ['parameters']
    nb.cells = [p, nbformat.v4.new_code_cell(
        "from vrl_nb.lab.reports import save_metrics, report_dir\nimport pandas as pd\n"
        "save_metrics(report_dir(out_dir), n=len(pd.read_csv(queries)), x=x)")]
    nb.metadata['kernelspec'] = dict(name='vrl_nb', display_name='Python (vrl_nb)', language='python')
    nbformat.write(nb, path)
    return path


def test_run_key_changes_when_a_named_file_changes_in_place(tmp_path):
    nb = mini_report(tmp_path/'r.ipynb')
    log, wt = tmp_path/'log.csv', tmp_path/'words.json'
    log.write_text('query_text,language,clicked_item_ids\nred dress,en,a\n'); wt.write_text('{"de": {"red": "rot"}}')
    w = tmp_path/'weights'; w.mkdir(); (w/'b0.safetensors').write_bytes(b'0')
    params = dict(queries=str(log), word_table=str(wt), backbones=[f'efficientnet_b0:{w/"b0.safetensors"}'], x=1)
    k1 = run_key(nb, params)
    st = log.stat()
    log.write_text('query_text,language,clicked_item_ids\nred dress,en,b\n')   # same size, same mtime: new content
    os.utime(log, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert run_key_changes(k1, run_key(nb, params)) == [f'queries: the content of {log} changed']
    wt.write_text('{"de": {"red": "rot", "dress": "Kleid"}}'); (w/'b0.safetensors').write_bytes(b'1')
    assert run_key_changes(k1, run_key(nb, params)) == [
        f'backbones: the content of {w/"b0.safetensors"} changed', f'queries: the content of {log} changed',
        f'word_table: the content of {wt} changed']
    assert run_key_changes(run_key(nb, params), run_key(nb, params)) == []
    assert 'a run from an older vrl_nb' in run_key_changes({k: v for k, v in k1.items() if k != 'files'}, k1)[0]


# --- cases 12 and 13 through the runner: a relative --out, then --resume after the query log changed in place
def test_relative_out_and_resume_after_the_log_changed(tmp_path, monkeypatch):
    (tmp_path/'reps').mkdir(); mini_report(tmp_path/'reps'/'r.ipynb')
    log = tmp_path/'log.csv'; log.write_text('query_text,language,clicked_item_ids\nred dress,en,a\n')
    spec = dict(name='t', runs=[dict(name='a', notebook='r.ipynb', params=dict(queries=str(log)))])
    monkeypatch.chdir(tmp_path)
    res = run_suite(spec, out='relrun', reports_dir=tmp_path/'reps', verbose=False)
    assert res['failed'] == 0, res['statuses']
    assert res['root'] == str(tmp_path/'relrun') and load_json(tmp_path/'relrun'/'a'/'metrics.json') == {'n': 1, 'x': 1}
    assert not (tmp_path/'reps'/'relrun').exists()                     # nothing written beside the notebooks
    log.write_text('query_text,language,clicked_item_ids\nred dress,en,a\nblue bag,en,b\n')
    out = io.StringIO()
    with contextlib.redirect_stdout(out): res = run_suite(spec, out='relrun', reports_dir=tmp_path/'reps', resume=True)
    assert Path(res['statuses'][0]['run_dir']) == tmp_path/'relrun'/'a-2', out.getvalue()
    assert f'not reused (--resume): queries: the content of {log} changed' in out.getvalue(), out.getvalue()
    assert load_json(tmp_path/'relrun'/'a-2'/'metrics.json') == {'n': 2, 'x': 1}
