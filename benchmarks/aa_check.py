"""The noise floor of a speed ratio: two identical bare loops (A, B) interleaved with a third variant.

    python benchmarks/aa_check.py images gsg2        # SimSiam A, the variant, SimSiam B; 6 x 15 steps

If A and B, the same config built twice, differ by as much as the variant differs from them, a
ratio target of a few percent cannot be decided on this machine. Uses ``speed.py``'s bare loop.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed  # noqa: E402  (the benchmark next to this file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("domain", choices=list(speed.DOMAINS))
    parser.add_argument("variant", help="a gsg compare variant, e.g. gsg2, gsg, byol")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench = speed.DOMAINS[args.domain]
    names = ["SimSiam A", args.variant, "SimSiam B"]
    loops = {
        name: speed.BareLoop(bench.config(speed.variant_overrides("simsiam" if name.startswith("SimSiam") else name)))
        for name in names
    }
    for loop in loops.values():
        for _ in range(5):
            loop.step()
    rates: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(args.repeats):
        for name in names if rep % 2 == 0 else names[::-1]:
            rates[name].append(loops[name].rate(loops[name].step, args.steps))
    for name, r in rates.items():
        print(f"{name:<12} samples/s median {statistics.median(r):.0f}  per repetition {[round(x) for x in r]}")
    a, b, v = rates["SimSiam A"], rates["SimSiam B"], rates[args.variant]

    def ratio(fast: list[float], slow: list[float]) -> float:  # time per step of slow / fast
        return statistics.median([f / s for f, s in zip(fast, slow, strict=True)])

    print(f"time ratio SimSiam A / SimSiam B (same config): {ratio(b, a):.3f}")
    print(f"time ratio {args.variant} / SimSiam A: {ratio(a, v):.3f}; {args.variant} / SimSiam B: {ratio(b, v):.3f}")


if __name__ == "__main__":
    main()
