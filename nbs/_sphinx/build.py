"""Build the vrl_nb docs site (`make docs`): nbdev's own notebook processing, rendered by Sphinx + myst-nb, no quarto.

1. `nbdev.serve.proc_nbs` processes nbs/*.ipynb exactly as for quarto (front matter, show_doc, links) into
   _proc/_sphinx/_proc, except that hidden/exported cells keep their source (tagged `remove-cell`) so that myst-nb
   can execute the notebooks, and a cell mixing imports with other code only runs its imports while the API docs
   are built (nbdev_docs would run it all; the list is printed).
2. quarto's `#|` cell options become myst-nb cell tags; the front matter becomes the page title; nbdev's links
   to the published site become links between the pages, which Sphinx checks (`-W -n`).
3. Report pages are the executed notebooks of the newest suite run under outputs/ (input folded away).
4. Sphinx builds _docs/ (conf.py next to this file); headless Chromium screenshots go to _docs/screenshots/.

    python nbs/_sphinx/build.py [--execute cache|off|force] [--reports outputs/<suite>] [--no-screenshots]
    python nbs/_sphinx/build.py --readme      # README.md from nbs/index.ipynb
"""
from __future__ import annotations
import argparse, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF = Path(__file__).resolve().parent
BUILD = Path(os.environ.get('VRL_NB_DOCS_BUILD') or ROOT/'_proc'/'_sphinx')   # nbdev's _proc for Sphinx, jupyter-cache, doctrees
SRC = BUILD/'_proc'                       # the Sphinx source folder
DEST = ROOT/'_docs'

# --- 1. nbdev's processing ----------------------------------------------------------------------------------------
def _procs():
    "nbdev's default processors; hidden/exported sources kept, mixed import cells run their imports only"
    import ast
    from nbdev import processors as P
    class exec_show_docs(P.exec_show_docs):
        def __call__(self, cell):
            trees = cell.parsed_() if cell.cell_type == 'code' and cell.source else None
            mixed = (trees and not P._show_docs(trees) and not cell.directives_.keys() & {'export', 'exports', 'exporti', 'exec_doc'}
                     and P._ast_contains(trees, (ast.Import, ast.ImportFrom)) and P._ast_contains(trees, (ast.Expr, ast.Assign)))
            if not mixed or not getattr(self.nb, 'has_docs_', False) or not hasattr(self, 'k'): return super().__call__(cell)
            print(f'  note: {Path(self.nb.path_).name} cell {cell.idx_}: imports mixed with code; only its imports run', flush=True)
            self.k.run_cell('\n'.join(ast.unparse(t) for t in trees if isinstance(t, (ast.Import, ast.ImportFrom))))
    from nbdev.config import get_config
    flags = set(str(get_config().get('tst_flags', '')).split())
    def tag_hidden(cell):     # instead of nbdev's rm_export / hide_, which delete the source (and the directives with it)
        if cell.cell_type != 'code': return
        d = (getattr(cell, 'directives_', None) or {}).keys(); tags = cell.metadata.get('tags', [])
        if d & _HIDDEN: tags = [*tags, 'remove-cell']
        if d & flags: tags = [*tags, 'skip-execution']   # `#| slow` (tst_flags): nbdev_test skips it, so does the docs build
        if tags: cell.metadata['tags'] = list(dict.fromkeys(tags))
    class FilterDefaults(P.FilterDefaults):
        def base_procs(self):
            return [{P.exec_show_docs: exec_show_docs, P.rm_export: tag_hidden}.get(p, p) for p in super().base_procs() if p is not P.hide_]
    return FilterDefaults

def process_notebooks(force=False) -> Path:
    "Run nbdev's `proc_nbs` on nbs/ with its cache in _proc/_sphinx/_proc (nbdev_docs keeps its own _proc)"
    import nbdev.serve
    from nbdev.config import get_config
    cfg = get_config()
    old_path, old_fd, nbs = cfg.config_path, nbdev.serve.FilterDefaults, cfg.path('nbs_path')
    if SRC.exists() and SRC.stat().st_mtime < Path(__file__).stat().st_mtime: force = True   # this file changed
    cfg.config_path, nbdev.serve.FilterDefaults = BUILD, _procs()     # proc_nbs puts its cache at config_path/_proc
    try: return nbdev.serve.proc_nbs(path=str(nbs), n_workers=0, force=force)   # in-process: the processors above apply
    finally: cfg.config_path, nbdev.serve.FilterDefaults = old_path, old_fd

# --- 2. quarto cell options -> myst-nb tags ------------------------------------------------------------------------
_re_opt = re.compile(r'^\s*#\|\s*([\w-]+):?\s*(.*?)\s*$')
_TAGS = {('echo', 'false'): 'remove-input', ('output', 'false'): 'remove-output', ('include', 'false'): 'remove-cell',
         ('eval', 'false'): 'skip-execution', ('code-fold', 'true'): 'hide-input'}
_HIDDEN = {'hide', 'export', 'exporti', 'default_exp'}

def cell_tags(src:str, flags=()) -> tuple[list, str]:
    "The myst-nb tags for the leading `#|` options of a code cell's `src`, and the source without them"
    lines, tags = src.splitlines(), []
    while lines and (m := _re_opt.match(lines[0])):
        k, v = m.group(1), (m.group(2) or '').strip('"\'').lower()
        tags += [t for t in [_TAGS.get((k, v)), 'remove-cell' if k in _HIDDEN else None,
                             'skip-execution' if k in flags else None] if t]
        lines.pop(0)
    body = '\n'.join(lines)
    if re.match(r'^show_doc\(', body): tags.append('skip-execution')            # nbdev wrote its output already
    if 'nbdev_export()' in body.replace('nbdev.nbdev_export()', 'nbdev_export()'): tags += ['remove-cell', 'skip-execution']
    return list(dict.fromkeys(tags)), body

def _site_links(cfg):
    "regex matching nbdev's links to the published site, and the page each `x.html` comes from"
    host, base = str(cfg.get('doc_host', '')).rstrip('/'), str(cfg.get('doc_baseurl', '')).strip('/')
    prefix = f'{host}/{base}/' if base else f'{host}/'
    return re.compile(re.escape(prefix) + r'([\w./-]*?)\.html(#[^)\s"\']+)?')

def _frontmatter(src:str) -> dict:
    import yaml
    return yaml.safe_load(src.strip().strip('-')) or {}

def _anchor(a:str) -> str:
    "MyST's id for a heading whose pandoc id is `a` (show_doc's `Catalog.targets` -> `catalogtargets`)"
    return re.sub(r'[^\w\- ]', '', a.lower()).replace(' ', '-')

_re_hr = re.compile(r'^---\s*$\n?', re.MULTILINE)

_re_head = re.compile(r'^#{1,6}\s+(.+?)\s*$', re.MULTILINE)

def _anchors(nb:dict) -> set:
    "The ids MyST gives the headings of `nb` (markdown cells and show_doc outputs)"
    texts = [''.join(c.get('source', '')) for c in nb['cells'] if c['cell_type'] == 'markdown']
    texts += [''.join(o['data']['text/markdown']) for c in nb['cells'] for o in c.get('outputs', []) if 'text/markdown' in o.get('data', {})]
    return {_anchor(re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', h)) for t in texts for h in _re_head.findall(t)}

def translate(nb:dict, pages:dict, link_re, flags=(), fold_inputs=False, anchors=None) -> dict:
    "A processed notebook as myst-nb reads it: tags from `#|` options, a title from the front matter, links between pages"
    def _link(m):   # nbdev links every name its index knows; a method without its own show_doc goes to its class
        page = pages.get(m.group(1))
        if page is None: return m.group(0)
        a, known = _anchor(m.group(2)[1:]) if m.group(2) else '', (anchors or {}).get(m.group(1), set())
        if a and a not in known: a = next((x for x in (_anchor(m.group(2)[1:].split('.')[0]),) if x in known), '')
        return page + (f'#{a}' if a else '')
    relink = lambda s: link_re.sub(_link, s)
    cells = []
    for i, c in enumerate(nb['cells']):
        src = ''.join(c.get('source', ''))
        if c['cell_type'] == 'raw' and src.startswith('---'):
            fm = _frontmatter(src)
            md = f"# {fm.get('title', '')}\n\n" + (f"> {fm['description']}\n" if fm.get('description') else '')
            c = dict(cell_type='markdown', metadata={}, source=md)
        elif c['cell_type'] == 'markdown': c['source'] = relink(src)
        elif c['cell_type'] == 'code':
            tags, body = cell_tags(src, flags)
            if fold_inputs and 'remove-input' not in tags: tags.append('hide-input')
            c['metadata'] = {**c.get('metadata', {}), 'tags': sorted(set(c.get('metadata', {}).get('tags', [])) | set(tags))}
            c['source'] = body
            for o in c.get('outputs', []):   # show_doc's markdown: links, and no `---` rule (a transition inside a cell)
                if 'text/markdown' in o.get('data', {}):
                    o['data']['text/markdown'] = _re_hr.sub('', relink(''.join(o['data']['text/markdown'])))
        c['id'] = f'cell-{i}'
        cells.append(c)
    nb['cells'], nb['nbformat'], nb['nbformat_minor'] = cells, 4, 5
    return nb

def _write_if_changed(path:Path, nb:dict):
    s = json.dumps(nb, indent=1, ensure_ascii=False) + '\n'
    if not path.exists() or path.read_text(encoding='utf-8') != s: path.write_text(s, encoding='utf-8')

def _title(nb:dict, default:str) -> str:
    for c in nb['cells']:
        m = re.match(r'#\s+(.+)', ''.join(c.get('source', '')).strip()) if c['cell_type'] == 'markdown' else None
        if m: return m.group(1).strip()
    return default

def library_order(names) -> list:
    "Library notebooks in pipeline order: by their number (08a, 08b, ... by name within 08), then unnumbered ones by name"
    key = lambda n: (0, int(m.group(1)), n) if (m := re.match(r'^(\d+)', n)) else (1, 0, n)
    return sorted(names, key=key)

def newest_suite_run(outputs=ROOT/'outputs') -> Path|None:
    "The suite folder under `outputs` whose complete summary run is the newest"
    runs = [d for d in outputs.glob('*/summary*') if (d/'DONE').exists() and (d/'summary.ipynb').exists()]
    return max(runs, key=lambda d: (d/'DONE').stat().st_mtime).parent if runs else None

def _latest_run(suite:Path, name:str) -> Path|None:
    "The newest complete run folder of report `name` (`name`, `name-2`, ...) in `suite`"
    runs = [d for d in suite.glob(f'{name}*') if re.fullmatch(rf'{re.escape(name)}(-\d+)?', d.name) and (d/'DONE').exists()
            and (d/f'{name}.ipynb').exists()]
    return max(runs, key=lambda d: (d/'DONE').stat().st_mtime) if runs else None

def _report_note(run:Path|None, name:str) -> dict:
    if run is None: txt = (f'No run of this report was found under `outputs/`, so no results are shown: run `make report` '
                           f'(or `vrl_nb report --suite quick`) and build the docs again.')
    else:
        p = json.loads((run/'params.json').read_text()) if (run/'params.json').exists() else {}
        params = {k: v for k, v in p.get('parameters', {}).items() if k != 'out_dir'}
        txt = (f'Results of the run `{run.relative_to(ROOT) if run.is_relative_to(ROOT) else run}` '
               f"({p.get('provenance', {}).get('time', '')}; parameters {json.dumps(params) if params else 'as below'}); "
               f'the code of each cell is folded away under "Show code cell source".')
    return dict(cell_type='markdown', metadata={}, source=f'```{{note}}\n{txt}\n```')

def stage_sources(reports=None) -> dict:
    "Translate the processed notebooks in place, copy the report runs, write the toctree; returns the page lists"
    from nbdev.config import get_config
    cfg = get_config()
    nbs = cfg.path('nbs_path')
    flags = str(cfg.get('tst_flags', '')).split()
    lib = library_order([p.stem for p in SRC.glob('*.ipynb') if p.stem != 'index'
                         and (nbs/p.name).exists()])              # (a deleted notebook leaves a stale copy behind)
    for p in SRC.glob('*.ipynb'):
        if p.stem != 'index' and p.stem not in lib: p.unlink()
    pages = {}
    for n in lib:
        fm = json.loads((SRC/f'{n}.ipynb').read_text())['cells'][0]
        out = _frontmatter(''.join(fm['source'])).get('output-file', f'{n}.html') if fm['cell_type'] == 'raw' else f'{n}.html'
        pages[out[:-5]] = n
    link_re = _site_links(cfg)
    relpages = lambda pre: {k: f'{pre}{v}.ipynb' for k, v in {**pages, 'index': 'index'}.items()}
    titles, nbs_ = {}, {n: json.loads((SRC/f'{n}.ipynb').read_text()) for n in ['index', *lib]}
    anchors = {k: _anchors(nbs_[v]) for k, v in {**pages, 'index': 'index'}.items()}
    for n in ['index', *lib]:
        p = SRC/f'{n}.ipynb'
        nb = translate(nbs_[n], relpages(''), link_re, flags, anchors=anchors)
        titles[n] = _title(nb, n)
        if n == 'index': index_nb = nb
        else: _write_if_changed(p, nb)
    # reports: the executed notebooks of a suite run
    suite = Path(reports) if reports else newest_suite_run()
    rdir = SRC/'reports'; rdir.mkdir(exist_ok=True)
    names = sorted((p.stem for p in (nbs/'reports').glob('*.ipynb')), key=lambda n: (n == 'summary', n))
    for p in rdir.glob('*.ipynb'):
        if p.stem not in names: p.unlink()
    used = {}
    for n in names:
        run = _latest_run(suite, n) if suite else None
        nb = json.loads(((run/f'{n}.ipynb') if run else nbs/'reports'/f'{n}.ipynb').read_text())
        nb = translate(nb, relpages('../'), link_re, fold_inputs=True, anchors=anchors)
        nb['cells'].insert(1, _report_note(run, n))
        titles[f'reports/{n}'] = _title(nb, n)
        _write_if_changed(rdir/f'{n}.ipynb', nb)
        used[n] = str(run) if run else None
    toc = lambda cap, docs: f'```{{toctree}}\n:caption: {cap}\n:hidden:\n\n' + '\n'.join(docs) + '\n```'
    index_nb['cells'].append(dict(cell_type='markdown', metadata={}, source='\n\n'.join(
        [toc('Library', [f"{n.split('_')[0]} · {titles[n]} <{n}>" if re.match(r'\d+[a-z]?_', n) else n for n in lib]),
         toc('Reports', [f'reports/{n}' for n in names])])))
    _write_if_changed(SRC/'index.ipynb', index_nb)
    return dict(library=lib, reports=names, titles=titles, report_runs=used, suite=str(suite) if suite else None)

# --- 4. Sphinx, screenshots ----------------------------------------------------------------------------------------
def sphinx_build(dest=DEST, execute='cache', strict=True) -> int:
    "Sphinx HTML build of SRC (`-W -n`: warnings, incl. broken cross-references, fail it), copied to `dest`"
    env = {**os.environ, 'VRL_NB_DOCS_EXECUTE': execute, 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1'}
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-c', str(CONF), '-d', str(BUILD/'doctrees'), '-q',
           *(['-W', '-n', '--keep-going'] if strict else []), str(SRC), str(BUILD/'html')]
    rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode    # (myst-nb keeps its files next to the output folder)
    if rc == 0:
        if Path(dest).exists(): shutil.rmtree(dest)
        shutil.copytree(BUILD/'html', dest, ignore=shutil.ignore_patterns('.buildinfo', '.doctrees'))
    return rc

def chromium() -> str|None:
    return shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')

def browse(page:Path, screenshot:Path|None=None, width=1400, height=1800, wait_ms=3000) -> str:
    "Open `page` (a file or file:// URL with a query) in headless Chromium: its DOM after scripts ran, and a screenshot"
    exe = chromium()
    if exe is None: raise FileNotFoundError('no chromium: `apt-get install -y chromium` (make docs does it as root)')
    url = page if isinstance(page, str) else page.resolve().as_uri()
    base = [exe, '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--allow-file-access-from-files',
            f'--virtual-time-budget={wait_ms}', f'--window-size={width},{height}']
    if screenshot is not None:
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(base + [f'--screenshot={screenshot}', url], capture_output=True, timeout=120, check=True)
    return subprocess.run(base + ['--dump-dom', url], capture_output=True, text=True, timeout=120, check=True).stdout

def screenshots(dest=DEST) -> list:
    shots = [(dest/'index.html', dest/'screenshots'/'index.png'), (dest/'reports'/'summary.html', dest/'screenshots'/'summary.png')]
    for page, png in shots: browse(page, png)
    return [png for _, png in shots]

def run_quick_suite() -> Path:
    "Run the quick report suite (tiny settings, a few minutes) so the report pages have results to show"
    print('no complete report suite run under outputs/: running `vrl_nb report --suite quick` for the report pages', flush=True)
    subprocess.run([str(Path(sys.executable).parent/'vrl_nb'), 'report', '--suite', 'quick'], cwd=ROOT, check=True,
                   env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    return newest_suite_run()

def build(dest=DEST, execute='cache', reports=None, shots=True, force=False, strict=True, quick_if_none=False) -> dict:
    t0 = time.time()
    dest = Path(dest)
    if reports is None and quick_if_none and newest_suite_run() is None: reports = run_quick_suite()
    process_notebooks(force)
    t1 = time.time()
    info = stage_sources(reports)
    print(f'nbdev proc_nbs + staging: {t1 - t0:.0f}s + {time.time() - t1:.0f}s; reports from {info["suite"]}', flush=True)
    t2 = time.time()
    rc = sphinx_build(dest, execute, strict)
    info.update(rc=rc, dest=str(dest), seconds=dict(process=round(t1 - t0, 1), sphinx=round(time.time() - t2, 1)))
    print(f'sphinx ({execute=}): {time.time() - t2:.0f}s -> {dest/"index.html"} (exit {rc})', flush=True)
    if rc == 0 and shots:
        if chromium(): info['screenshots'] = [str(p) for p in screenshots(dest)]; print('screenshots:', *info['screenshots'])
        else: print('no chromium: screenshots skipped')
    info['seconds']['total'] = round(time.time() - t0, 1)
    return info

# --- README -------------------------------------------------------------------------------------------------------
_README_BANNER = '<!-- generated from nbs/index.ipynb by `make readme`: edit the notebook, not this file -->\n\n'

def readme_from_index(nbs_path=ROOT/'nbs') -> str:
    "The README text generated from `nbs_path/index.ipynb`: its markdown, and its code cells unless hidden"
    nb = json.loads((Path(nbs_path)/'index.ipynb').read_text(encoding='utf-8'))
    parts = []
    for c in nb['cells']:
        src = ''.join(c['source']).strip()
        if not src: continue
        if c['cell_type'] == 'markdown': parts.append(src)
        elif c['cell_type'] == 'code' and not any(l.strip() in ('#| hide', '#|hide', '#| echo: false') for l in src.splitlines()):
            code = '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip()
            parts.append('```python\n' + code + '\n```')
            # what the cell printed when it was run (the notebook keeps it), shown under the code
            text = ''.join(''.join(o.get('text', '')) for o in c.get('outputs', []) if o.get('name') == 'stdout').rstrip()
            if text: parts.append('```\n' + text + '\n```')
    return _README_BANNER + '\n\n'.join(parts) + '\n'

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--execute', default='cache', choices=['cache', 'off', 'force', 'auto'], help="myst-nb's nb_execution_mode")
    ap.add_argument('--reports', default=None, help='suite folder whose runs are the report pages (default: newest under outputs/)')
    ap.add_argument('--dest', default=str(DEST))
    ap.add_argument('--force', action='store_true', help='reprocess every notebook')
    ap.add_argument('--no-screenshots', action='store_true')
    ap.add_argument('--quick-suite-if-none', action='store_true', help='run the quick suite first if outputs/ has no suite run')
    ap.add_argument('--readme', action='store_true', help='only write README.md from nbs/index.ipynb')
    a = ap.parse_args(argv)
    os.chdir(ROOT)                        # nbdev finds settings.ini from here
    if a.readme:
        (ROOT/'README.md').write_text(readme_from_index(), encoding='utf-8'); print(ROOT/'README.md'); return 0
    return build(a.dest, a.execute, a.reports, not a.no_screenshots, a.force, quick_if_none=a.quick_suite_if_none)['rc']

if __name__ == '__main__': sys.exit(main())
