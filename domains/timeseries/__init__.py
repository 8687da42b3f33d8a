"""The industrial time-series domain: UCR/UEA archives or your own series, sensor augmentations, 1-D encoders."""

from __future__ import annotations

from typing import Any

from gsg_multimodal.domain import DataSplits, Domain

from .augment import TimeSeriesViewsConfig, collate_series, eval_view, make_views, resolve_length
from .data import BUILTIN_DATASETS, TimeSeriesDataConfig, load_timeseries
from .encoders import TimeSeriesEncoderConfig, build_encoder


class TimeSeriesDomain(Domain):
    """Series ``[channels, time]`` of any length, resampled to one length per view."""

    name = "timeseries"
    data_config = TimeSeriesDataConfig
    views_config = TimeSeriesViewsConfig
    encoder_config = TimeSeriesEncoderConfig

    def __init__(self, data: Any, views: Any, encoder: Any) -> None:
        super().__init__(data, views, encoder)
        self._length: int | None = None

    @classmethod
    def builtin_datasets(cls) -> dict[str, str]:
        return dict(BUILTIN_DATASETS)

    def load_data(self) -> DataSplits:
        splits = load_timeseries(self.data_cfg)
        splits.info["length"] = self._length = resolve_length(self.views_cfg, splits.info)
        return splits

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_series(rows)

    def make_views(self, batch: dict[str, Any], n_views: int, generator: Any) -> list[Any]:
        return make_views(batch, n_views, self.views_cfg, self.length, generator)

    def eval_input(self, batch: dict[str, Any]) -> Any:
        return eval_view(batch, self.views_cfg, self.length)

    def build_encoder(self, info: dict[str, Any]) -> Any:
        self._length = self._length or info.get("length")
        return build_encoder(self.encoder_cfg, info)

    def encoder_input(self, info: dict[str, Any]) -> str | None:
        # Every encoder pools over time, so only the channel count must match (not the length).
        return f"series[channels={int(info['channels'])}]"

    @property
    def length(self) -> int:
        if self._length is None:
            raise RuntimeError("load_data() or build_encoder(info) must run before views are made")
        return self._length
