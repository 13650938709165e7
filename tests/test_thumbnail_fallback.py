"Training data when the thumbnail cache cannot be written: the DataLoaders fall back to the files, same batches."
import errno, os
import numpy as np, pandas as pd, pytest
from PIL import Image
import vrl_nb.catalog as catalog
from vrl_nb.catalog import Catalog, FileImageStore


@pytest.fixture
def files_catalog(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path/'img').mkdir()
    for k in range(8):
        Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(tmp_path/f'img/{k}.png')
    items = pd.DataFrame(dict(item_id=[f'i{k}' for k in range(8)], image=[f'img/{k}.png' for k in range(8)],
                              colour=['r', 'g'] * 4, split=['train'] * 4 + ['valid'] * 4))
    return Catalog(items, FileImageStore(tmp_path), ['colour'])


def _valid_batch(cat, **kw):
    from vrl_nb.dataloaders import catalog_dls
    dls = catalog_dls(cat, size=16, bs=4, progress=False, **kw)
    x, y = dls.valid.one_batch()
    return dls, x.cpu().numpy(), y.cpu().numpy()


@pytest.mark.parametrize('how', ['read-only', 'disk full'])
def test_unwritable_cache_trains_on_the_files(files_catalog, tmp_path, monkeypatch, how):
    _, x_files, y_files = _valid_batch(files_catalog, image_cache=False)
    cached, x_cache, _ = _valid_batch(files_catalog, image_cache=tmp_path/'ok')
    assert cached.image_cache is not None
    np.testing.assert_array_equal(x_cache, x_files)
    if how == 'read-only':
        def refuse(path, shape): raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        monkeypatch.setattr(catalog, '_reserved_npy', refuse)
    else:
        def full(fd, offset, n): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        monkeypatch.setattr(os, 'posix_fallocate', full)
    folder = tmp_path/'cache'
    with pytest.warns(UserWarning, match='decoded from their files instead') as w:
        dls, x, y = _valid_batch(files_catalog, image_cache=folder)
    msg = str(w[0].message)
    assert str(folder) in msg and 'VRL_NB_CACHE' in msg and 'image_cache=False' in msg
    assert ('the disk is full' if how == 'disk full' else 'cannot be written') in msg
    assert dls.image_cache is None                      # said where the images came from: the files
    np.testing.assert_array_equal(x, x_files); np.testing.assert_array_equal(y, y_files)
    assert list(folder.iterdir()) == []                 # no temporary file left behind
