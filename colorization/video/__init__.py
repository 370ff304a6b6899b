"""Films: reading and writing them (`io`, `ycbcr`), motion between frames (`flow`) and the temporal filter
on a colorized film's chroma (`deflicker`).

The layer above `colorization.files`: it knows nothing of networks. The temporal metrics live beside
the image metrics (`colorization.metrics.temporal`), the streaming pipeline beside the other ways of
running a colorizer (`colorization.inference.films`). Needs the ``video`` extra (PyAV, OpenCV), which
``make install`` installs; importing this package alone imports neither, so the command lines can
offer what is defined here without them.
"""

VIDEO_SUFFIXES = (".avi", ".m4v", ".mkv", ".mov", ".mp4", ".webm")
"""Files with these endings (compared in lower case) are films; FFmpeg reads each of these containers."""
FILTERS = ("flow", "none")
"""``--deflicker`` choices: ``flow`` (the temporal filter, `deflicker.Deflicker`; the default) or ``none``."""
DEFAULT_CRF = 18
CRF_RANGE = (0, 51)
"""x264's CRF scale: 0 is lossless, 18 visually lossless, 23 x264's default, 51 the worst."""
