"""Time ``knn_predict`` on the size the evaluation must handle: a 60,000-row bank, 10,000 queries, 512-d.

    python benchmarks/knn_speed.py              # 2 CPU threads, as on the CI machine
    python benchmarks/knn_speed.py --threads 0  # torch's default thread count
    python benchmarks/knn_speed.py --device cuda

Prints the wall-clock seconds of one ``knn_predict`` call (the best of ``--repeats``) on random
features; the data do not matter for speed, only the sizes do.
"""

from __future__ import annotations

import argparse
import time

import torch

from gsg_multimodal.probes import knn_predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", type=int, default=60_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--temperature", type=float, default=0.07)
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads; 0 keeps torch's default")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    bank = torch.randn(args.bank, args.dim, generator=g).to(args.device)
    labels = torch.randint(0, args.classes, (args.bank,), generator=g).to(args.device)
    queries = torch.randn(args.queries, args.dim, generator=g).to(args.device)

    def run() -> torch.Tensor:
        return knn_predict(bank, labels, queries, args.k, args.temperature, args.classes, chunk_size=args.chunk_size)

    knn_predict(bank[:100], labels[:100], queries[:10], args.k, args.temperature, args.classes)  # warm-up: BLAS init
    times = []
    for _ in range(args.repeats):
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        pred = run()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    assert pred.shape == (args.queries,)
    print(
        f"knn_predict: bank {args.bank} x {args.dim}, {args.queries} queries, k={args.k}, "
        f"chunk {args.chunk_size}, {torch.get_num_threads()} threads, {args.device}: {min(times):.2f} s"
    )


if __name__ == "__main__":
    main()
