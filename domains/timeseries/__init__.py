"""The industrial time-series domain: UCR/UEA archives or your own series, sensor augmentations, 1-D encoders."""

from __future__ import annotations

from typing import Any

from gsg_multimodal.domain import DataSplits, Domain
from gsg_multimodal.errors import UserError

from .augment import TimeSeriesViewsConfig, collate_series, eval_view, make_views, resolve_length
from .data import BUILTIN_DATASETS, TimeSeriesDataConfig, load_timeseries
from .encoders import TimeSeriesEncoderConfig, build_encoder


class TimeSeriesDomain(Domain[TimeSeriesDataConfig, TimeSeriesViewsConfig, TimeSeriesEncoderConfig]):
    """Series ``[channels, time]`` of any length, resampled to one length per view."""

    name = "timeseries"
    data_config = TimeSeriesDataConfig
    views_config = TimeSeriesViewsConfig
    encoder_config = TimeSeriesEncoderConfig
    builtin = BUILTIN_DATASETS

    def load_data(self) -> DataSplits:
        splits = load_timeseries(self.data_cfg)
        splits.info["length"] = resolve_length(self.views_cfg, splits.info)
        return splits

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_series(rows)

    def make_views(self, batch: dict[str, Any], n_views: int, generator: Any) -> list[Any]:
        return make_views(batch, n_views, self.views_cfg, self.length, generator)

    def eval_input(self, batch: dict[str, Any]) -> Any:
        return eval_view(batch, self.views_cfg, self.length)

    def build_encoder(self) -> Any:
        return build_encoder(self.encoder_cfg, self.info)

    def encoder_input(self) -> str | None:
        # Every encoder pools over time, so only the channel count must match (not the length).
        return f"series[channels={int(self.info['channels'])}]"

    @property
    def length(self) -> int:
        return int(self.info["length"])

    def save_views_grid(self, batch: dict[str, Any], views: list[Any], path: Any) -> None:
        raise UserError("drawing time-series views arrives with the crop views")
