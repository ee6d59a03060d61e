"""One module per family; importing this package registers every family."""
from . import gaussian, gmm, kde, vae, realnvp, gan  # noqa: F401
