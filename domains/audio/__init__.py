"""The audio domain: drums, spoken words or your own clips; BYOL-A style views; log-mel or waveform encoders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gsg_multimodal.domain import DataSplits, Domain, RawData
from gsg_multimodal.errors import UserError

from .augment import AudioViewsConfig, Views, check_crop, collate_audio, crop_samples
from .data import BUILTIN_DATASETS, AudioDataConfig, load_audio
from .encoders import AudioEncoderConfig, build_encoder


class AudioDomain(Domain[AudioDataConfig, AudioViewsConfig, AudioEncoderConfig]):
    """Mono clips at one sample rate; views are normalised log-mels ``[N, 1, n_mels, frames]`` or waveforms."""

    name = "audio"
    data_config = AudioDataConfig
    views_config = AudioViewsConfig
    encoder_config = AudioEncoderConfig
    builtin = BUILTIN_DATASETS

    def __init__(self, data: AudioDataConfig, views: AudioViewsConfig, encoder: AudioEncoderConfig) -> None:
        super().__init__(data, views, encoder)
        check_crop(self.views_cfg, self.data_cfg)
        self._views: Views | None = None

    def load_data(self) -> DataSplits:
        return load_audio(self.data_cfg)

    def on_bind(self, info: dict[str, Any]) -> None:
        if int(info["sample_rate"]) != self.data_cfg.sample_rate or int(info["n_mels"]) != self.data_cfg.n_mels:
            raise UserError(
                f"the encoder was made for {info['sample_rate']} Hz, {info['n_mels']} mel bands, but data has "
                f"{self.data_cfg.sample_rate} Hz, {self.data_cfg.n_mels}; use the run's own data section"
            )
        self._views = Views(self.views_cfg, self.data_cfg, info, waveform=self.encoder_cfg.waveform)

    @property
    def views(self) -> Views:
        if self._views is None:
            raise RuntimeError("domain 'audio' is not bound: call bind(info) (after load_data) first")
        return self._views

    def collate(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_audio(rows)

    def make_views(self, batch: dict[str, Any], n_views: int, generator: Any) -> list[Any]:
        return self.views.make_views(batch, n_views, generator)

    def eval_input(self, batch: dict[str, Any]) -> Any:
        return self.views.eval_input(batch)

    def build_encoder(self) -> Any:
        return build_encoder(self.encoder_cfg, self.info)

    def encoder_input(self) -> str | None:
        if self.encoder_cfg.waveform:
            # The waveform encoders are the time-series domain's 1-D networks: they read any mono series.
            return "series[channels=1]"
        return f"log-mel[n_mels={int(self.info['n_mels'])}, sample_rate={int(self.info['sample_rate'])}]"

    def raw_rows(self, raw: Any, sample_rate: int | None = None, **options: Any) -> list[dict[str, Any]]:
        """Sound-file paths or 1-D waveforms (at ``sample_rate`` Hz, default the encoder's) -> rows."""
        from .raw import audio_rows

        if options:
            raise UserError(f"unknown option(s) {sorted(options)} for audio; it takes sample_rate=")
        return audio_rows(raw, self.data_cfg, sample_rate)

    def read_raw(self, path: Path) -> RawData:
        from .raw import read_audio

        return read_audio(path)

    def handcrafted_floor(self, data: DataSplits, eval_cfg: Any, seed: int) -> dict[str, Any] | None:
        from .floor import mfcc_floor

        return mfcc_floor(data, self.data_cfg, eval_cfg, seed, crop_samples(self.views_cfg, self.data_cfg.sample_rate))

    def save_views_grid(self, batch: dict[str, Any], views: list[Any], path: Path) -> None:
        from .views_figure import save_views_grid

        save_views_grid(self.views.eval_input(batch), views, path, waveform=self.encoder_cfg.waveform)
