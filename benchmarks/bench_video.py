"""What the temporal filter costs next to decoding and encoding a film, per frame, side by side.

Writes a grainy gray 854x480 film (`FRAMES` frames of a pan over a photo, as the tests make them),
then times, in interleaved rounds (`benchmarks.timing.interleave`), frames per second of

- decode + encode: decode a frame (PyAV) and encode it with libx264 at crf 18 into an MP4 in memory,
  its Y' kept and its chroma neutral: what every colorized frame costs whatever the model;
- chroma at 480p: the predicted ab (the scene's true ab at 256x256) upsampled onto the
  full-resolution L, Lab -> sRGB keeping L, and sRGB -> Cb/Cr (`colorization.inference.films`'s
  per-frame work besides the network; its cost grows with the share of out-of-gamut colours);
- the filter (`Deflicker`) at 854x480 (a network that runs at the film's own size) and at 256x256
  (ECCV16's working size).

Everything runs on one thread (torch, OpenCV, the decoder, x264), so the figures are CPU cost per
frame and the ratios hold on a busy machine. Environment: ``BENCH_FRAMES`` (default 24).
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.timing import SMOKE, interleave, rate, table
from colorization.color.spaces import lab_to_rgb_keep_l
from colorization.video.deflicker import Deflicker
from colorization.video.io import luma_plane, probe
from colorization.video.ycbcr import YCbCrSpec, luma_to_l, rgb_to_cbcr
from tests.helpers.clips import film_clip, write_film

FRAMES = int(os.environ.get("BENCH_FRAMES", 3 if SMOKE else 24))
WIDTH, HEIGHT = 854, 480
WORKING = (256, 256)


def decode_encode(path: Path) -> None:
    """Decode every frame of `path` and encode it again (Y' kept, neutral chroma) into memory."""
    spec = probe(path).ycbcr
    with av.open(str(path)) as source, av.open(io.BytesIO(), "w", format="mp4") as target:
        stream = source.streams.video[0]
        stream.thread_count = 1
        video = target.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"crf": "18", "threads": "1"}
        for frame in source.decode(stream):
            out = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
            for plane, values in zip(out.planes, (luma_plane(frame, spec), 128, 128), strict=True):
                rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
                rows[:, : plane.width] = values
            out.pts = frame.pts
            target.mux(video.encode(out))
        target.mux(video.encode(None))


def chroma(ls: list[torch.Tensor], ab_small: torch.Tensor, spec: YCbCrSpec) -> None:
    """The per-frame work of `colorization.inference.films` besides the network and the filter."""
    for l in ls:
        ab = F.interpolate(ab_small[None], size=l.shape[-2:], mode="bilinear", align_corners=False)
        rgb = lab_to_rgb_keep_l(torch.cat([l[None], ab], dim=1))[0]
        rgb_to_cbcr(rgb, spec, subsample=True)


def filtered(ls: list[torch.Tensor], abs_: list[torch.Tensor]) -> None:
    deflicker = Deflicker()
    for l, ab in zip(ls, abs_, strict=True):
        deflicker(l, ab)


def run() -> str:
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        clip = film_clip(FRAMES, HEIGHT, WIDTH)
        path = write_film(Path(tmp) / "film.mp4", clip.gray, audio=None)
        spec = probe(path).ycbcr
        with av.open(str(path)) as container:
            ls = [luma_to_l(luma_plane(f, spec), spec) for f in container.decode(video=0)]
        generator = torch.Generator().manual_seed(0)
        abs_full = [20 * torch.randn(2, HEIGHT, WIDTH, generator=generator) for _ in ls]
        ls_small = [F.interpolate(l[None], size=WORKING, mode="area")[0] for l in ls]
        abs_small = [20 * torch.randn(2, *WORKING, generator=generator) for _ in ls]
        scene_ab = F.interpolate(clip.ab[:1], size=WORKING, mode="area")[0]  # a prediction as smooth as a network's
        variants = {
            "decode + encode": rate(lambda: decode_encode(path), FRAMES),
            "chroma at 480p": rate(lambda: chroma(ls, scene_ab, spec), FRAMES),
            "filter at 854x480": rate(lambda: filtered(ls, abs_full), FRAMES),
            "filter at 256x256": rate(lambda: filtered(ls_small, abs_small), FRAMES),
        }
        measured = interleave(variants, "video", unit="frames/s")
    rows = [
        [
            name,
            measured.rates[name].cell("{:.1f}"),
            f"{1000 / measured.rates[name].median:.1f}",
            measured.ratios[name].cell("{:.2f}", "x"),
        ]
        for name in measured.names
    ]
    intro = (
        f"## Colorizing films: the temporal filter next to decoding and encoding\n\n"
        f"A grainy gray {WIDTH}x{HEIGHT} film of {FRAMES} frames, one thread for everything; rate relative to "
        f"decode + encode (libx264, crf 18).\n\n"
    )
    return intro + table(["per frame", "frames/s", "ms/frame", "rate vs decode + encode"], rows)


if __name__ == "__main__":
    print(run())
