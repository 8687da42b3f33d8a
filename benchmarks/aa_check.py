"""The noise floor of a speed ratio: two identical bare loops (A, B) interleaved with a third variant.

    python benchmarks/aa_check.py images gsg2        # SimSiam A, the variant, SimSiam B; 6 x 15 steps

If A and B, the same config built twice, differ by as much as the variant differs from them, a
ratio target of a few percent cannot be decided on this machine. Uses the bare loop of ``speed.py``
(``speedlib.bare_loop``) and its interleaving (``speedlib.timing``).
"""

from __future__ import annotations

import argparse

import torch
from speedlib.bare_loop import BareLoop
from speedlib.bench_domains import DOMAINS, variant_overrides
from speedlib.timing import interleaved, median, ratios

from gsg_multimodal.variants import VARIANTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("domain", choices=list(DOMAINS))
    parser.add_argument("variant", choices=list(VARIANTS), help="a variant, e.g. gsg2, gsg, byol")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps of each loop first")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("overrides", nargs="*", help="config overrides for all three loops, e.g. train.batch_size=64")
    args = parser.parse_intermixed_args()  # overrides may follow the options
    torch.set_num_threads(args.threads)
    bench = DOMAINS[args.domain]
    names = ["SimSiam A", args.variant, "SimSiam B"]
    loops = {
        name: BareLoop(
            bench.config([*variant_overrides("simsiam" if name.startswith("SimSiam") else name), *args.overrides])
        )
        for name in names
    }
    for loop in loops.values():
        for _ in range(args.warmup):
            loop.step()
    jobs = {name: lambda loop=loop: loop.rate(loop.step, args.steps) for name, loop in loops.items()}
    rates = interleaved(jobs, args.repeats)
    for name, r in rates.items():
        print(f"{name:<12} samples/s median {median(r):.0f}  per repetition {[round(x) for x in r]}")
    a, b, v = rates["SimSiam A"], rates["SimSiam B"], rates[args.variant]
    # Time ratio slow / fast = rate of fast / rate of slow, per repetition.
    print(f"time ratio SimSiam A / SimSiam B (same config): {median(ratios(b, a)):.3f}")
    print(
        f"time ratio {args.variant} / SimSiam A: {median(ratios(a, v)):.3f}; "
        f"{args.variant} / SimSiam B: {median(ratios(b, v)):.3f}"
    )


if __name__ == "__main__":
    main()
