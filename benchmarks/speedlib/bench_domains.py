"""The domains the speed benchmark measures: each one's real config, its built-in data sets, and the variants."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIG = 10**9

# Applied to every run: no progress bar, no trackers, no online kNN, a checkpoint only when the run stops.
BENCH_OVERRIDES = [
    "train.progress_bar=false",
    "train.trackers=[none]",
    "monitor.knn_every=0",
    f"train.checkpoint_every={BIG}",
]


@dataclass
class DomainBench:
    """What the benchmark needs from a domain: its real config, and the data sets for the pipeline test."""

    name: str
    config: Callable[[list[str]], Any]  # overrides -> RunConfig
    datasets: Callable[[], dict[str, list[str]]]  # label -> overrides selecting that data set
    describe: str  # one line for the report
    shape: Callable[[dict], str]  # data.info -> the raw input's shape, for the pipeline table
    steps: int = 30  # timed steps per repetition unless --steps says otherwise (fewer where a step takes seconds)


def variant_overrides(name: str) -> list[str]:
    """The config overrides of a named variant (``gsg_multimodal.variants``), e.g. ``gsg2``."""
    from gsg_multimodal.variants import get_variant

    return list(get_variant(name).overrides)


def domain_config(name: str) -> Callable[[list[str]], Any]:
    """Overrides -> the RunConfig of ``configs/<name>`` with the benchmark's fixed overrides."""

    def build(overrides: list[str]) -> Any:
        from gsg_multimodal.config import load_config

        return load_config(ROOT / "configs" / name, [*BENCH_OVERRIDES, *overrides])

    return build


def timeseries_datasets() -> dict[str, list[str]]:
    from gsg_domains.timeseries.data import BUILTIN_DATASETS

    # Every built-in set loads in well under 2 s. The encoder, heads and views.length (192) stay those of
    # the ACSF1 config, so the step costs about the same everywhere and the pipeline's cost varies.
    return {name: [f"data.name={name}"] for name in BUILTIN_DATASETS}


def timeseries_shape(info: dict) -> str:
    lo, hi = info.get("min_length"), info.get("max_length")
    return f"{info.get('channels', '?')} x {hi if lo == hi else f'{lo}-{hi}'}"


def image_datasets() -> dict[str, list[str]]:
    # Both built-in sets at the Fashion-MNIST config's 10,000-image cap (mnist5k has 4,000 training images).
    return {"fashion_mnist": ["data.name=fashion_mnist"], "mnist5k": ["data.name=mnist5k"]}


def text_datasets() -> dict[str, list[str]]:
    # The debates set has three parties as labels, not Rotten Tomatoes' fresh/rotten filter.
    return {
        "rotten_tomatoes": ["data.name=rotten_tomatoes"],
        "debates_2016": ["data.name=debates_2016", "data.labels=null"],
    }


# The waveform variant of the drums data, as the cpu suite runs it (a 1-D dilated CNN on 4 kHz audio).
DRUMS_WAVE = [
    "encoder.name=dilated_cnn", "encoder.hidden=32", "encoder.depth=6", "encoder.out_dim=128",
    "data.sample_rate=4000", "data.n_mels=32", "data.f_max=1900", "views.crop_seconds=0.5",
]  # fmt: skip


def audio_datasets() -> dict[str, list[str]]:
    sets = {"drums (log-mel CNN)": ["data.name=drums"], "drums (4 kHz waveform, dilated CNN)": DRUMS_WAVE}
    # The spoken words are synthesised by a script, not shipped: measured when they have been made.
    if (ROOT / "data" / "spoken_words").is_dir():
        sets["spoken_words (synthetic, 16 kHz log-mel)"] = ["data.name=null", "data.path=data/spoken_words"]
    return sets


DOMAINS: dict[str, DomainBench] = {
    "timeseries": DomainBench(
        "timeseries",
        domain_config("acsf1_gsg.yaml"),
        timeseries_datasets,
        "configs/acsf1_gsg.yaml (ACSF1, dilated CNN hidden 32 depth 6, 128-d features, views of 192 steps, "
        "projector 256-256, predictor 64, batch 32, SGD)",
        timeseries_shape,
    ),
    "images": DomainBench(
        "images",
        domain_config("fmnist_gsg.yaml"),
        image_datasets,
        "configs/fmnist_gsg.yaml (Fashion-MNIST, first 10,000 training images, small CNN width 16 with "
        "channels_last, 128-d features, small_gray views, batch 256, SGD)",
        lambda info: f"{info['channels']} x {info['height']} x {info['width']}",
    ),
    "text": DomainBench(
        "text",
        domain_config("rt_gsg.yaml"),
        text_datasets,
        "configs/rt_gsg.yaml (Rotten Tomatoes, MiniLM-L6 fine-tuned, mean pooling, views of at most 40 tokens, "
        "projector 512-512, predictor 128, batch 32, AdamW)",
        lambda info: "text",  # the views' token limit is in the config line above
        steps=8,  # a MiniLM GSG step takes seconds on 2 cores
    ),
    "audio": DomainBench(
        "audio",
        domain_config("drums_gsg.yaml"),
        audio_datasets,
        "configs/drums_gsg.yaml (Hydrogen drum one-shots, 16 kHz log-mel, BYOL-A CNN, batch 64, SGD)",
        lambda info: f"clips at {int(info['sample_rate'])} Hz",
        steps=10,  # the waveform encoder's step takes seconds on 2 cores
    ),
}
