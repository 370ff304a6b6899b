"""A local web page to colorize photos and steer SIGGRAPH17 with colour hints (``colorize-demo --models DIR``).

`catalog` finds the colorizers in a folder and the built-in example photos, `uploads` reads
uploaded files safely, `palette` turns a model's class head into suggested colours, and `server`
is the HTTP app around `colorization.colorize.colorize_image`; the page itself is `static/`.
"""

DEFAULT_MAX_MEGAPIXELS = 50.0
"""The largest photo the page accepts by default (``--max-megapixels``)."""
