# Sphinx configuration of the vrl_nb docs (read by nbs/_sphinx/build.py; `make docs`). The sources are the notebooks
# nbdev's `proc_nbs` wrote to _proc/_sphinx/_proc, with quarto's `#|` cell options turned into myst-nb cell tags.
import os
from configparser import ConfigParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_ini = ConfigParser(delimiters=['=']); _ini.read(ROOT/'settings.ini', encoding='utf-8'); _cfg = _ini['DEFAULT']

project, author, copyright = _cfg['title'], _cfg['author'], _cfg['copyright']
release = version = _cfg['version']
extensions = ['myst_nb']
root_doc = 'index'
exclude_patterns = ['**.ipynb_checkpoints', '_*']

# notebooks: execute only what changed (jupyter-cache), stop on a failing cell, never wait forever
nb_execution_mode = os.environ.get('VRL_NB_DOCS_EXECUTE', 'cache')
nb_execution_cache_path = str(Path(os.environ.get('VRL_NB_DOCS_BUILD') or ROOT/'_proc'/'_sphinx')/'jupyter_cache')
nb_execution_timeout = 900                      # seconds per cell
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_excludepatterns = ['reports/*']    # report pages are executed runs of `vrl_nb report` (papermill)
nb_merge_streams = True
nb_render_markdown_format = 'myst'              # show_doc's markdown (signature, doc, links) is parsed as MyST
myst_heading_anchors = 4
myst_enable_extensions = ['attrs_inline']     # show_doc's `[source](...){target="_blank" style=...}`

html_theme = 'sphinx_book_theme'
html_title = _cfg['title']
html_theme_options = dict(show_toc_level=2, home_page_in_toc=True, use_download_button=False,
                          use_fullscreen_button=False, navigation_with_keys=False)
html_copy_source = False
html_show_sourcelink = False

nitpicky = True
suppress_warnings = []
