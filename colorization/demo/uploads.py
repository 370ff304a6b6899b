"""Uploaded photos: decoded strictly (a bad file is one message, never a crashed server) and kept a while.

An upload goes through the decoder every reader of photos uses (`colorization.files.photos`), in
the order that costs least: its bytes, then its header (format and pixel count, before any
decoding), then the full decode (a truncated or corrupt file fails here). The stored photo is
upright (EXIF orientation applied) and in one of the decoder's canonical modes.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

from PIL import Image

from colorization.demo import DEFAULT_MAX_MEGAPIXELS
from colorization.errors import DataError
from colorization.files.photos import (
    EXPECTED_FORMATS,
    Photo,
    UnreadablePhotoError,
    check_megapixels,
    load_image,
    open_image,
    photo_from_image,
    to_eight_bit,
)

BYTES_PER_PIXEL_LIMIT = 8
"""An upload may hold up to this many bytes per allowed pixel (16-bit RGBA, uncompressed), plus a margin."""
PHOTOS_KEPT = 4
"""How many uploaded photos the server keeps in memory; older ones must be uploaded again."""
PREVIEW_SIDE = 1280
"""Longest side of the copy the page shows and recolours while hints are edited; downloads use the full photo."""


def max_upload_bytes(max_megapixels: float) -> int:
    """The largest request body accepted for an upload of at most `max_megapixels`."""
    return int(max_megapixels * 1e6 * BYTES_PER_PIXEL_LIMIT) + (1 << 20)


def open_upload(data: bytes, name: str, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> Image.Image:
    """An uploaded file's bytes decoded: its first frame, upright; `DataError` naming `name` otherwise."""
    if not data:
        raise DataError(f"{name}: the file is empty; expected {EXPECTED_FORMATS}")
    try:
        with open_image(io.BytesIO(data), name) as image:
            check_megapixels(name, image.size, max_megapixels, "this server")
            return load_image(image, name)
    except UnreadablePhotoError as error:  # the uploader knows it is an image they sent: say what is wrong with it
        raise DataError(f"{name}: {error.reason}") from None


@dataclass
class StoredPhoto:
    """An uploaded photo as decoded (upright), and the copy the page works on (made on first use).

    Photos larger than `preview_side` are shown and recoloured at that size while hints are
    edited, so a recolour costs about the same for any photo; the download is colorized from
    `image` itself. Hints always refer to the full upright photo's pixels (`size`).
    """

    image: Image.Image
    name: str
    preview_side: int = PREVIEW_SIDE
    _preview: Image.Image | None = field(default=None, repr=False)
    _preview_photo: Photo | None = field(default=None, repr=False)
    _preview_png: bytes | None = field(default=None, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) as displayed (EXIF orientation applied): the frame hints refer to."""
        return self.image.size

    @property
    def preview(self) -> Image.Image:
        """The photo, its longer side at most `preview_side` (the photo itself when smaller)."""
        if self._preview is None:
            preview = self.image
            if max(preview.size) > self.preview_side:
                scale = self.preview_side / max(preview.size)
                size = (max(1, round(preview.width * scale)), max(1, round(preview.height * scale)))
                preview = preview.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
            self._preview = preview
        return self._preview

    @property
    def scale(self) -> tuple[float, float]:
        """Preview pixels per photo pixel across and down ((1, 1) when the photo is shown whole)."""
        width, height = self.size
        return self.preview.width / width, self.preview.height / height

    @property
    def preview_photo(self) -> Photo:
        """The preview's L, as the colorize code reads it."""
        if self._preview_photo is None:
            self._preview_photo = photo_from_image(self.preview)
        return self._preview_photo

    def preview_png(self) -> bytes:
        """The preview as a PNG any browser shows (TIFF is not one they do)."""
        if self._preview_png is None:
            buffer = io.BytesIO()
            # 16-bit and float gray shown as the 8-bit gray the data readers see; the other modes are PNG's own
            to_eight_bit(self.preview).save(buffer, format="PNG", compress_level=1)
            self._preview_png = buffer.getvalue()
        return self._preview_png


class PhotoStore:
    """The last `kept` uploads by id; the oldest are forgotten first."""

    def __init__(self, kept: int = PHOTOS_KEPT, preview_side: int = PREVIEW_SIDE) -> None:
        self.kept, self.preview_side = kept, preview_side
        self._photos: OrderedDict[str, StoredPhoto] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, image: Image.Image, name: str) -> tuple[str, StoredPhoto]:
        stored = StoredPhoto(image, name, self.preview_side)
        key = uuid.uuid4().hex
        with self._lock:
            self._photos[key] = stored
            while len(self._photos) > self.kept:
                self._photos.popitem(last=False)
        return key, stored

    def get(self, key: str) -> StoredPhoto:
        with self._lock:
            stored = self._photos.get(key)
            if stored is None:
                raise DataError(f"photo {key!r} is no longer on the server; upload it again")
            self._photos.move_to_end(key)
            return stored
