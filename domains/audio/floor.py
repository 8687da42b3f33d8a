"""The hand-crafted floor: MFCC statistics of each clip + the core's probes (logistic regression, kNN, SVM)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

N_MFCC = 20


def mfcc_statistics(dataset: Any, data_cfg: Any, max_samples: int, batch_size: int = 64) -> np.ndarray:
    """``[N, 4 * N_MFCC]``: mean and std over time of 20 MFCCs and of their deltas, per clip.

    Computed on the frames of each clip's first ``max_samples`` samples (padding excluded): the window
    the learned encoders are evaluated on, with the same sample rate, STFT window and mel bands.
    A silent clip gives constant MFCCs (std 0): kept.
    """
    import torchaudio

    mfcc = torchaudio.transforms.MFCC(
        sample_rate=data_cfg.sample_rate,
        n_mfcc=N_MFCC,
        log_mels=True,
        melkwargs={
            "n_fft": data_cfg.n_fft,
            "hop_length": data_cfg.hop_length,
            "n_mels": data_cfg.n_mels,
            "f_min": data_cfg.f_min,
            "f_max": data_cfg.f_max,
        },
    )
    out = []
    for start in range(0, len(dataset), batch_size):
        rows = dataset[start : start + batch_size]
        lengths = torch.tensor(rows["length"]).clamp(max=max_samples)
        x = torch.zeros(len(lengths), max(int(lengths.max()), data_cfg.n_fft))
        for i, clip in enumerate(rows["audio"]):
            x[i, : lengths[i]] = torch.tensor(clip[:max_samples])
        with torch.no_grad():
            c = mfcc(x)  # [N, 20, T]
            d = torchaudio.functional.compute_deltas(c)
        frames = (lengths // data_cfg.hop_length + 1).clamp(max=c.shape[-1])
        valid = (torch.arange(c.shape[-1]) < frames[:, None])[:, None, :].float()
        both = torch.cat([c, d], 1)
        mean = (both * valid).sum(2) / valid.sum(2)
        std = (((both - mean[..., None]) ** 2 * valid).sum(2) / valid.sum(2)).sqrt()
        out.append(torch.cat([mean, std], 1).numpy())
    return np.concatenate(out).astype(np.float32)


def mfcc_floor(data: Any, data_cfg: Any, eval_cfg: Any, seed: int, max_samples: int) -> dict[str, Any]:
    """kNN / logistic regression / SVM on MFCC statistics, scored like the learned encoders."""
    from gsg_multimodal.probes import evaluate_features

    train_x = mfcc_statistics(data.train, data_cfg, max_samples)
    test_x = mfcc_statistics(data.test, data_cfg, max_samples)
    train_y, test_y = np.asarray(data.train["label"]), np.asarray(data.test["label"])
    results = evaluate_features(train_x, train_y, test_x, test_y, eval_cfg, seed=seed)
    results["name"] = "MFCC statistics"
    results["feature_dim"] = int(train_x.shape[1])
    return results
