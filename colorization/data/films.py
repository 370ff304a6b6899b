"""A folder of colour films as the ground truth of ``evaluate.py data=video`` (`conf/data/video.yaml`).

Each film is turned gray (only its luma Y' is read, as ``colorize`` reads a black-and-white film),
colorized by every model, and scored against its own colour frames. `max_frames` and `frame_stride`
bound the cost: the first `max_frames` frames of each film are colorized and go into the temporal
metrics, which need consecutive frames, and every `frame_stride`-th of them into the image metrics,
which cost more per frame than colorizing it.
"""

from __future__ import annotations

from pathlib import Path

from colorization.errors import ConfigError, DataError, check_int
from colorization.metrics.temporal import CDC_DILATIONS
from colorization.video import VIDEO_SUFFIXES

MIN_FRAMES = max(CDC_DILATIONS) + 1
"""CDC compares frames up to 4 apart: a film must give at least 5 frames."""
MAX_FRAMES = 10**6


class FilmFolder:
    """The colour films under `root` (any depth, in path order; hidden files left out) and how much of each to score."""

    protocol = None
    """Not one of the photo protocols (`colorization.data.protocols`): the table says how films were scored."""

    def __init__(self, root: str | Path | None, max_frames: int | None = 48, frame_stride: int = 1) -> None:
        if root in (None, "", "???"):
            raise ConfigError("data.root is not set; expected the folder of colour films (data=video data.root=DIR)")
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"data.root={str(self.root)!r} is not a folder; expected a folder of colour films")
        if max_frames is not None:
            check_int("data.max_frames", max_frames, MIN_FRAMES, MAX_FRAMES)
        self.max_frames = max_frames
        self.frame_stride = check_int("data.frame_stride", frame_stride, 1, MAX_FRAMES)
        self.films = sorted(
            path
            for path in self.root.rglob("*")
            if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file() and not path.name.startswith(".")
        )
        if not self.films:
            raise DataError(f"{self.root}: no films in it; expected files ending in {', '.join(VIDEO_SUFFIXES)}")

    def prepare_data(self) -> None:
        """Training starts here (Lightning's DataModule protocol); films are for evaluation only."""
        raise ConfigError(
            "data=video is a folder of films for evaluate.py; train.py trains on photos (data=folder, ...)"
        )

    @property
    def description(self) -> str:
        return str(self.root)

    def relative(self, film: Path) -> Path:
        """Where `film` sits under `root` (its outputs mirror it)."""
        return film.relative_to(self.root)
