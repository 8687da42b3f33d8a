"""benchmarks/audio_view_coverage.py: how much of a clip's sound a view keeps."""

from __future__ import annotations

import sys

import pytest
import torch

from gsg_domains.audio.augment import AudioViewsConfig

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import audio_view_coverage as coverage  # noqa: E402

WIDTH = 100  # frames per view; the clips below are exactly one view long
HOP_S = 0.01


def _kept(cfg: AudioViewsConfig, n: int = 4000) -> torch.Tensor:
    spans = torch.tensor([[0, WIDTH - 1]]).expand(n, 2)  # the sound fills the whole clip
    frames = torch.full((n,), WIDTH)
    return coverage.kept_fraction(spans, frames, cfg, WIDTH, HOP_S, torch.Generator().manual_seed(0))


def test_the_content_is_the_span_between_5_and_95_percent_of_the_energy() -> None:
    power = torch.zeros(1, 3, 50)
    power[0, :, 10:20] = 1.0  # ten equally loud frames
    assert coverage.content_spans(power, torch.tensor([50])).tolist() == [[10, 19]]
    # Frames past a clip's end (padding of a batch) do not count.
    power[0, :, 40:] = 100.0
    assert coverage.content_spans(power, torch.tensor([40])).tolist() == [[10, 19]]


def test_a_view_without_shift_or_crop_keeps_all_of_the_sound() -> None:
    assert torch.equal(_kept(AudioViewsConfig(shift_seconds=0.0, rrc_p=0.0), n=50), torch.ones(50))


def test_a_crop_that_slides_off_the_clip_keeps_what_it_still_covers() -> None:
    # Crop the size of the input on a canvas 3 times as wide: the centre is uniform over +-2 half-widths,
    # so the crop covers 1 - |c| / 2 of the input: 1/2 on average, less than half half of the time.
    kept = _kept(AudioViewsConfig(shift_seconds=0.0, rrc_canvas=(1.0, 3.0), rrc_scale=(1.0, 1.0)))
    assert kept.mean().item() == pytest.approx(0.5, abs=0.02)
    assert kept.max().item() >= 0.98  # a nearly centred crop covers all but an edge frame
    assert (kept < 0.5).float().mean().item() == pytest.approx(0.5, abs=0.03)


def test_the_frequency_axis_of_the_crop_does_not_change_what_time_span_a_view_keeps() -> None:
    # The crop draws the time axis first: with one seed, views differing only in the frequency canvas
    # (zooming out and sliding up to a quarter of the mel range) keep the same frames.
    time_only = _kept(AudioViewsConfig(rrc_canvas=(1.0, 1.25), rrc_scale=(0.8, 1.25)), n=500)
    with_freq = _kept(AudioViewsConfig(rrc_canvas=(1.25, 1.25), rrc_scale=(0.8, 1.25)), n=500)
    assert time_only.mean().item() < 0.99 and torch.allclose(time_only, with_freq)


def test_a_config_of_another_domain_or_a_bad_count_ends_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["audio_view_coverage.py", str(ROOT / "configs" / "acsf1_gsg.yaml")])
    with pytest.raises(SystemExit, match="give an audio config"):
        coverage.main()
    monkeypatch.setattr(
        sys, "argv", ["audio_view_coverage.py", str(ROOT / "configs" / "drums_gsg.yaml"), "--draws", "0"]
    )
    with pytest.raises(SystemExit):
        coverage.main()
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("--draws and --clips must be at least 1")
