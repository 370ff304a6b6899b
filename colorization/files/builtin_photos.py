"""The built-in photos: colour photos that ship with scikit-image, the project's offline demo data.

`TRAIN_PHOTOS` make the built-in training set (`colorization.data.sample`); `TEST_PHOTOS` are held
out of it, for testing and as the web page's examples.
"""

from __future__ import annotations

import numpy as np

TRAIN_PHOTOS = ("astronaut", "coffee", "motorcycle_left", "hubble_deep_field", "immunohistochemistry", "retina")
TEST_PHOTOS = ("chelsea", "rocket")


def load_photo(name: str) -> np.ndarray:
    """One of scikit-image's bundled photos as uint8 (H, W, 3) sRGB (``camera`` is gray: (H, W))."""
    import skimage.data

    if name == "motorcycle_left":
        return skimage.data.stereo_motorcycle()[0]
    return getattr(skimage.data, name)()
