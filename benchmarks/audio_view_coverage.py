"""How much of each clip's sound an audio view keeps: the time-shifted window, then the random resized crop.

    python benchmarks/audio_view_coverage.py configs/spoken_gsg.yaml
    python benchmarks/audio_view_coverage.py configs/drums_gsg.yaml --draws 20 "views.rrc_canvas=[1.0,1.0]"

A clip's *content* is the span of frames between 5 % and 95 % of its cumulative mel energy (the word, or
the drum hit with most of its decay). Each view of the recipe is a window of ``views.crop_seconds`` that
may start up to ``views.shift_seconds`` early or late, then BYOL-A's random resized crop, which may zoom
into part of that window or, on a canvas wider than the window (``views.rrc_canvas`` above 1 on the time
axis), land partly on the silence beyond it. This script draws views with the domain's own window and
crop functions and reports, per view, the fraction of the content's frames that the view still shows.
The value, gain, noise and mask steps do not move frames and are left out.

Printed: the mean fraction kept, and how often a view keeps less than half or less than a fifth of the
content. One pair of views with little in common teaches the encoder to match sounds that differ.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from gsg_domains.audio.augment import AudioViewsConfig, _window_start, random_resized_crop

ROOT = Path(__file__).resolve().parents[1]


def content_spans(power: torch.Tensor, frames: torch.Tensor, lo: float = 0.05, hi: float = 0.95) -> torch.Tensor:
    """``[N, F, T]`` mel power and frame counts -> ``[N, 2]`` first and last content frame (inclusive)."""
    energy = power.sum(1) * (torch.arange(power.shape[2]) < frames[:, None])
    cum = energy.cumsum(1) / energy.sum(1, keepdim=True).clamp(min=1e-30)
    first = (cum < lo).sum(1)
    last = (cum < hi).sum(1)
    return torch.stack([first, last], 1)


def kept_fraction(
    spans: torch.Tensor,
    frames: torch.Tensor,
    views_cfg: AudioViewsConfig,
    width: int,
    hop_s: float,
    g: torch.Generator,
    bands: int = 64,
) -> torch.Tensor:
    """One view per clip: the fraction of each clip's content frames inside the view (``bands`` mel bands)."""
    n = spans.shape[0]
    start = _window_start(frames, width, int(round(views_cfg.shift_seconds / hop_s)), g)
    # Channel 1 carries each window frame's clip frame index (channel 0 is 1 where the window is inside the
    # clip). The crop interpolates bilinearly, so only output frames drawn wholly from inside the clip
    # (channel 0 at 1) give exact positions; their smallest and largest are the clip frames the view covers.
    pos = (start[:, None] + torch.arange(width)).float()
    inside = ((pos >= 0) & (pos < frames[:, None])).float()
    # The grid is as tall as the log-mel (``bands``): a crop that zooms out or slides on the frequency axis
    # (``rrc_canvas`` above 1 there) still shows the frames, through the bands it keeps whole.
    grid = torch.stack([inside, pos * inside], 1)[:, :, None, :].expand(n, 2, bands, width).contiguous()
    out = random_resized_crop(grid, views_cfg, g)
    seen = out[:, 0] > 1 - 1e-4
    lo = torch.where(seen, out[:, 1], torch.inf).amin((1, 2))
    hi = torch.where(seen, out[:, 1], -torch.inf).amax((1, 2))
    first, last = spans[:, 0].float(), spans[:, 1].float()
    # Frames as unit intervals: a view that shows frames lo..hi covers [lo - 1/2, hi + 1/2].
    overlap = (torch.minimum(hi, last) - torch.maximum(lo, first) + 1).clamp(min=0)
    return (overlap / (last - first + 1)).clamp(max=1).nan_to_num(0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=str(ROOT / "configs" / "spoken_gsg.yaml"))
    parser.add_argument("overrides", nargs="*", help="key=value config overrides (e.g. views.rrc_canvas=[1.0,1.0])")
    parser.add_argument("--draws", type=int, default=10, help="views per training clip")
    parser.add_argument("--clips", type=int, default=2000, help="training clips used, evenly spaced over the split")
    args = parser.parse_intermixed_args()
    if args.draws < 1 or args.clips < 1:
        parser.error("--draws and --clips must be at least 1")

    from gsg_multimodal.config import load_config
    from gsg_multimodal.runtime import build_domain

    cfg = load_config(args.config, args.overrides)
    domain = build_domain(cfg)
    if cfg.domain != "audio" or domain.encoder_cfg.waveform:
        raise SystemExit("this script measures the log-mel views of the audio domain; give an audio config")
    data = domain.load_data()
    domain.bind(data.info)
    views = domain.views
    total = len(data.pretrain)
    rows = [data.pretrain[int(i)] for i in torch.linspace(0, total - 1, min(args.clips, total)).long()]
    power, frames = views.mel_power(domain.collate(rows))
    spans = content_spans(power, frames)
    hop_s = cfg.data.hop_length / views.sample_rate
    g = torch.Generator().manual_seed(cfg.seed)
    bands = power.shape[1]
    kept = torch.cat([kept_fraction(spans, frames, cfg.views, views.width, hop_s, g, bands) for _ in range(args.draws)])
    content_s = ((spans[:, 1] - spans[:, 0] + 1).float() * hop_s).median().item()
    print(f"{args.config} {' '.join(args.overrides)}")
    print(
        f"{len(rows)} clips x {args.draws} views; median content {content_s:.2f} s; view window "
        f"{cfg.views.crop_seconds} s, rrc_canvas {list(cfg.views.rrc_canvas)}, rrc_scale {list(cfg.views.rrc_scale)}"
    )
    print(
        f"content kept: mean {kept.mean():.3f}; views keeping < 1/2: {(kept < 0.5).float().mean():.3f}; "
        f"< 1/5: {(kept < 0.2).float().mean():.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
