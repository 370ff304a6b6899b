"""The temporal filter: its acceptance test on a grainy, flickering pan (measured with the exact
motion), scene cuts, and what it must leave to the current prediction (new and occluded pixels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colorization.color.spaces import rgb_to_lab
from colorization.errors import ConfigError, DataError
from colorization.inference.films import stream_film
from colorization.video.deflicker import Deflicker, make_deflicker
from colorization.video.flow import inside, warp
from colorization.video.io import open_film
from tests.helpers.clips import Clip, film_clip, moving_square, pan_and_zoom, scene_cut_clip, write_film

FLICKER_SCALE = 20.0
"""ab units of the random net's response; its input L is centred on 50 and divided by `L_SCALE`."""
L_SCALE = 8.0


def flickering_colorizer(seed: int = 0) -> torch.nn.Module:
    """A fixed random small conv net on L: its colours follow the content and jump with grain and exposure."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 5, padding=2), torch.nn.Tanh(), torch.nn.Conv2d(8, 2, 5, padding=2)
        ).eval()


def predict(clip: Clip) -> torch.Tensor:
    """(T, 2, H, W): the scene's true ab plus the random net's response to each grainy, flickering frame."""
    with torch.no_grad():
        return clip.ab + FLICKER_SCALE * flickering_colorizer()((clip.l_frames - 50.0) / L_SCALE)


def run(deflicker: Deflicker, l: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    return torch.stack([deflicker(l[t], ab[t]) for t in range(len(l))])


def chroma_warping_error(clip: Clip, ab: torch.Tensor) -> float:
    """Mean over pairs of the mean squared ab difference between frame t and frame t+1 warped onto
    it with the *exact* motion, over the pixels whose match stays inside the frame."""
    height, width = ab.shape[-2:]
    errors = []
    for t in range(len(ab) - 1):
        flow = clip.pan.flow(t, t + 1, height, width)
        following = warp(ab[t + 1].numpy().transpose(1, 2, 0), flow)
        squared = ((following - ab[t].numpy().transpose(1, 2, 0)) ** 2).sum(-1)
        errors.append(squared[inside(flow)].mean())
    return float(np.mean(errors))


def mean_chroma(ab: torch.Tensor) -> float:
    return float(ab.norm(dim=1).mean())


def test_default_filter_halves_the_flicker_and_keeps_the_colour():
    clip = film_clip(frames=24)
    predicted = predict(clip)
    l_before = clip.l_frames.clone()
    deflicker = Deflicker()
    filtered = run(deflicker, clip.l_frames, predicted)

    # the colorizer must really flicker: its colours jump far more than the scene's own do
    assert chroma_warping_error(clip, predicted) > 4 * chroma_warping_error(clip, clip.ab)
    ratio = chroma_warping_error(clip, filtered) / chroma_warping_error(clip, predicted)
    kept = mean_chroma(filtered) / mean_chroma(predicted)
    assert ratio <= 0.5, f"warping error ratio {ratio:.3f}"
    assert kept >= 0.8, f"chroma kept {kept:.3f}"
    assert deflicker.cuts == 0  # +-10% exposure flicker is not a scene cut
    assert torch.equal(clip.l_frames, l_before)  # L is never touched


@pytest.mark.parametrize(
    "settings",
    [{}, {"cut_distance": 1.0}],
    ids=["default", "found-by-matching-alone"],  # the histogram test off: too few pixels match across the cut
)
def test_a_scene_cut_resets_the_filter(settings):
    clip, cut = scene_cut_clip()
    noise = torch.randn(len(clip.gray), 2, *clip.gray.shape[1:], generator=torch.Generator().manual_seed(0))
    predicted = 3.0 * noise
    predicted[:cut, 0] += 60.0  # red before the cut
    predicted[cut:, 0] -= 40.0  # green after it

    deflicker = Deflicker(**settings)
    filtered = run(deflicker, clip.l_frames, predicted)
    assert deflicker.cuts == 1
    assert torch.equal(filtered[cut], predicted[cut])  # the first frame after the cut starts afresh
    assert filtered[cut:, 0].max() < -25.0  # no red from before the cut


def test_pixels_entering_the_frame_take_the_current_prediction():
    frames, height, width = 6, 72, 96
    pan = pan_and_zoom(frames, height, width, step=(3.0, 0.0), zoom_step=0.0)
    clip = film_clip(frames, height, width, pan=pan)
    predicted = 10.0 * torch.randn(frames, 2, height, width, generator=torch.Generator().manual_seed(1))
    deflicker = Deflicker()
    for t in range(frames):
        out = deflicker(clip.l_frames[t], predicted[t])
        if t:
            to_previous = pan.flow(t, t - 1, height, width)
            new = torch.from_numpy(~inside(to_previous))  # not in the previous frame at all
            assert new.sum() >= 2 * height
            assert torch.equal(out[:, new], predicted[t][:, new])
            assert (deflicker.last_weight > 0).mean() > 0.8  # while the rest of the frame is filtered


def test_uncovered_background_takes_the_current_prediction():
    scene = moving_square()
    frames, _, height, width = scene.l.shape
    predicted = torch.full((frames, 2, height, width), -40.0)  # green background
    predicted[:, 0][torch.from_numpy(scene.square)] = 60.0  # a red square
    deflicker = Deflicker()
    taken = []
    for t in range(frames):
        out = deflicker(scene.l[t], predicted[t])
        unused = torch.from_numpy(deflicker.last_weight == 0)
        assert torch.equal(out[:, unused], predicted[t][:, unused])  # where it does not blend, it is the prediction
        if t:
            uncovered = torch.from_numpy(scene.square[t - 1] & ~scene.square[t])  # square then, background now
            taken.append(float(unused[uncovered].float().mean()))
            # none of the square's red is carried onto the background it uncovers (a* units, of the 100 between)
            assert (out[0][uncovered] - predicted[t][0][uncovered]).max() < 1.0
    # most uncovered pixels take the prediction as it is; the others were matched to nearby background
    assert np.mean(taken) >= 0.7


def test_settings_and_shapes_are_checked():
    assert make_deflicker("none") is None
    assert isinstance(make_deflicker("flow", strength=0.5), Deflicker)
    with pytest.raises(ConfigError, match="deflicker='blur' is unknown"):
        make_deflicker("blur")
    with pytest.raises(ConfigError, match="strength=1.5 is out of range"):
        Deflicker(strength=1.5)
    with pytest.raises(DataError, match=r"\(1, h, w\) L and \(2, h, w\) ab"):
        Deflicker()(torch.zeros(1, 8, 8), torch.zeros(2, 8, 9))


def test_reset_starts_a_new_film():
    clip = film_clip(frames=3)
    predicted = predict(clip)
    deflicker = Deflicker()
    run(deflicker, clip.l_frames, predicted)
    deflicker.reset()
    assert torch.equal(deflicker(clip.l_frames[1], predicted[1]), predicted[1])  # nothing carried from before


def film_ab(path) -> torch.Tensor:
    """(T, 2, H, W) ab of a film's frames as a player shows them."""
    with open_film(path) as film:
        rgb = np.stack([frame.rgb for frame in film.frames(rgb=True)])
    return rgb_to_lab(torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255.0)[:, 1:]


class Recorded:
    """A temporal filter (or none) that keeps the ab it hands on: the pipeline calls it once per frame, in order."""

    def __init__(self, inner: Deflicker | None) -> None:
        self.inner, self.ab = inner, []

    def __call__(self, l: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        out = self.inner(l, ab) if self.inner is not None else ab
        self.ab.append(out.clone())
        return out


def test_a_colorized_film_flickers_half_as_much_with_the_default_filter(tmp_path):
    """The acceptance test through the whole pipeline: frames decoded from a file, the filter inside it."""
    clip = film_clip(frames=24)
    source = write_film(tmp_path / "pan.mp4", clip.gray)
    net = flickering_colorizer()

    def colorize_small(l: torch.Tensor) -> torch.Tensor:  # a colour of its own plus the net's grainy response
        return torch.tensor([15.0, 25.0]).view(1, 2, 1, 1) + FLICKER_SCALE * net((l - 50.0) / L_SCALE)

    chroma = {"flow": Recorded(Deflicker()), "none": Recorded(None)}  # the default filter, and --deflicker none
    films = {
        name: stream_film(source, tmp_path / name / "pan.mp4", colorize_small, lambda l: l, deflicker=recorded)
        for name, recorded in chroma.items()
    }
    filtered, unfiltered = (torch.stack(chroma[name].ab) for name in ("flow", "none"))
    ratio = chroma_warping_error(clip, filtered) / chroma_warping_error(clip, unfiltered)
    kept = mean_chroma(filtered) / mean_chroma(unfiltered)
    assert ratio <= 0.5, f"warping error ratio {ratio:.3f}"
    assert kept >= 0.8, f"chroma kept {kept:.3f}"

    # the films as a player shows them: steadier too, though their chroma also follows the film's own luma
    # (grain and exposure change the colour that a fixed ab has on screen, which no filter of ab removes)
    shown = {name: film_ab(result.target) for name, result in films.items()}
    assert chroma_warping_error(clip, shown["flow"]) < 0.85 * chroma_warping_error(clip, shown["none"])
    assert mean_chroma(shown["flow"]) >= 0.8 * mean_chroma(shown["none"])
