__version__ = "0.1.0"
# Importing vrl_nb switches the Hugging Face hubs offline unless VRL_NB_ONLINE=1 (see vrl_nb.core).
from . import core as _core  # noqa: F401
