"""Measurements behind docs/dependencies.md: our LR schedule, EMA and weighted kNN against the libraries.

Run: OMP_NUM_THREADS=1 python tests/scripts/measure_dependencies.py
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from gsg_multimodal.model import lr_multiplier
from gsg_multimodal.probes import knn_predict


def schedules() -> None:
    from transformers import get_cosine_schedule_with_warmup

    for total, warm in [(100, 0), (100, 5), (37, 3)]:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=1.0)
        sched = get_cosine_schedule_with_warmup(opt, warm, total)
        theirs = []
        for _ in range(total):
            theirs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        ours = [lr_multiplier(s, total, warm, "cosine") for s in range(total)]
        diff = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
        print(f"lr, {total} steps, warmup {warm}: max |ours - transformers| = {diff:.3g}")


def ema(steps: int = 50) -> None:
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    ours = copy.deepcopy(net)
    avg = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(0.99), use_buffers=True)
    avg.update_parameters(net)  # its first call copies: start equal to the online network, as ours does
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(steps):
        net(torch.randn(16, 8)).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
        with torch.no_grad():  # what model.py's target update does
            mine = [*ours.parameters(), *[b for b in ours.buffers() if b.is_floating_point()]]
            theirs = [*net.parameters(), *[b for b in net.buffers() if b.is_floating_point()]]
            torch._foreach_lerp_(mine, theirs, 0.01)
            for m, t in zip(ours.buffers(), net.buffers(), strict=True):
                if not m.is_floating_point():
                    m.copy_(t)
        avg.update_parameters(net)
    a, b = ours.state_dict(), avg.module.state_dict()
    for key in a:
        print(f"ema {key}: bit-identical {torch.equal(a[key], b[key])}, max diff {(a[key] - b[key]).abs().max()}")


def knn(k: int = 20, temperature: float = 0.07) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    bank = torch.nn.functional.normalize(torch.from_numpy(rng.standard_normal((2000, 64)).astype(np.float32)), dim=1)
    labels = torch.from_numpy(rng.integers(0, 10, 2000))
    queries = torch.nn.functional.normalize(torch.from_numpy(rng.standard_normal((1000, 64)).astype(np.float32)), dim=1)
    t = time.perf_counter()
    ours = knn_predict(bank, labels, queries, k, temperature, 10).numpy()
    t_ours = time.perf_counter() - t
    clf = KNeighborsClassifier(
        n_neighbors=k, metric="cosine", algorithm="brute", weights=lambda d: np.exp((1 - d) / temperature)
    ).fit(bank.numpy(), labels.numpy())
    t = time.perf_counter()
    theirs = clf.predict(queries.numpy())
    t_theirs = time.perf_counter() - t
    print(f"knn agreement {np.mean(ours == theirs):.4f}; ms: ours {t_ours * 1e3:.1f}, sklearn {t_theirs * 1e3:.1f}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    schedules()
    ema()
    knn()
