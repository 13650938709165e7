"Fixtures shared by test files: the quick report suite runs once per session (report tests and the docs' report pages)."
import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='session')
def quick_suite(tmp_path_factory):
    "`vrl_nb report --suite quick` into a temporary folder, as a user runs it: (folder, CompletedProcess)"
    out = tmp_path_factory.mktemp('quick')
    r = subprocess.run([str(Path(sys.executable).parent/'vrl_nb'), 'report', '--suite', 'quick', '--out', str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    return out, r
