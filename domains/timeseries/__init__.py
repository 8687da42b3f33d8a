"""The industrial time-series domain: UCR/UEA archives or your own series, sensor augmentations, 1-D encoders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gsg_multimodal.domain import DataSplits, Domain, RawData, SequenceViews
from gsg_multimodal.errors import UserError

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
    embed_options = ("format", "label_column", "series_column", "nan_policy")
    info_added = ("channel_mean", "channel_std")  # data.normalize=dataset statistics, stored since export v3
    _recovered: dict[str, list[float]] | None = None  # those statistics, recomputed for an older export

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

    def raw_rows(self, raw: Any, **options: Any) -> list[dict[str, Any]]:
        """Series ``[N, C, T]`` / ``[N, T]`` or a list of ``[C, T_i]`` arrays -> rows preprocessed as in training."""
        from . import raw as raw_series

        if options:
            raise UserError(f"unknown option(s) {sorted(options)} for time series; set data options with data={{...}}")
        info = self.info
        if self.data_cfg.normalize == "dataset" and not all(k in info for k in raw_series.STATS):
            if self._recovered is None:  # an export made before they were stored: read once per domain
                self._recovered = raw_series.recovered_stats(self)
            info = {**info, **self._recovered}
        return raw_series.series_rows(raw_series.as_series(raw), self.data_cfg, info)

    def read_raw(self, path: Path) -> RawData:
        from .raw import read_series_file

        return read_series_file(path, self.data_cfg)

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
