"""The industrial time-series domain: UCR/UEA archives or your own series, sensor augmentations, 1-D encoders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gsg_multimodal.domain import DataSplits, Domain, SequenceViews

from .augment import TimeSeriesViewsConfig, collate_series, eval_view, make_sequence_views, make_views, resolve_length
from .data import BUILTIN_DATASETS, TimeSeriesDataConfig, load_timeseries
from .encoders import TimeSeriesEncoderConfig, build_encoder
from .series import SeriesBatch

__all__ = ["SeriesBatch", "TimeSeriesDomain"]


class TimeSeriesDomain(Domain[TimeSeriesDataConfig, TimeSeriesViewsConfig, TimeSeriesEncoderConfig]):
    """Series ``[channels, time]`` of any length: at their own length (``SeriesBatch``) or resampled (views.length)."""

    name = "timeseries"
    data_config = TimeSeriesDataConfig
    views_config = TimeSeriesViewsConfig
    encoder_config = TimeSeriesEncoderConfig
    builtin = BUILTIN_DATASETS

    def load_data(self) -> DataSplits:
        if self.data_cfg.streaming:
            from .stream import load_stream  # pyarrow's readers only for streamed archives

            splits = load_stream(self.data_cfg, self.cache_dir)
        else:
            splits = load_timeseries(self.data_cfg)
        length = resolve_length(self.views_cfg, splits.info)
        if length is not None:  # the resampled recipe; at native resolution the encoder needs no length
            splits.info["length"] = length
        return splits

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_series(rows)

    def make_views(self, batch: dict[str, Any], n_views: int, generator: Any) -> list[Any]:
        return make_views(batch, n_views, self.views_cfg, self.length, generator)

    def make_sequence_views(self, batch: dict[str, Any], n_views: int, generator: Any) -> SequenceViews:
        return make_sequence_views(batch, n_views, self.views_cfg, generator)

    def eval_input(self, batch: dict[str, Any]) -> Any:
        return eval_view(batch, self.views_cfg, self.length)

    def save_views_grid(self, batch: dict[str, Any], views: list[Any], path: Path) -> None:
        from .plot import save_views_grid  # matplotlib only when drawing

        save_views_grid(batch, views, path, self.eval_input(batch))

    def build_encoder(self) -> Any:
        return build_encoder(self.encoder_cfg, self.info)

    def encoder_input(self) -> str | None:
        # Every encoder pools over time, so only the channel count must match (not the length).
        return f"series[channels={int(self.info['channels'])}]"

    @property
    def length(self) -> int | None:
        """Steps of every view and eval input (``views.length``), or ``None`` at native resolution."""
        return self.info.get("length")
