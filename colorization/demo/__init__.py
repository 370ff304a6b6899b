"""A local web page to colorize photos and short films, and steer SIGGRAPH17 with colour hints
(``colorize-demo --models DIR``).

`catalog` finds the colorizers in a folder and the built-in example photos, `uploads` reads
uploaded files safely, `palette` turns a model's class head into suggested colours, `films` keeps
uploaded clips and colorizes them in the background, and `server` is the HTTP app around
`colorization.colorize.colorize_image` and `colorize_video`; the page itself is `static/`.
"""

from colorization.colorize import DEFAULT_MAX_MEGAPIXELS  # the page takes what the command takes

__all__ = ["DEFAULT_MAX_FILM_SECONDS", "DEFAULT_MAX_MEGAPIXELS"]
DEFAULT_MAX_FILM_SECONDS = 30.0
"""The longest clip the page takes by default (``--max-film-seconds``): colorizing costs a network run per frame."""
