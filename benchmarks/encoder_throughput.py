"""Forward + backward time of the time-series recipe's encoder, full precision and bf16 autocast.

    OMP_NUM_THREADS=2 python benchmarks/encoder_throughput.py            # 32 x 427: a GSG step on OSULeaf

Prints milliseconds and GFLOP/s (convolutions only: 2 flops per multiply-add, backward counted as twice the
forward) for the whole encoder (TS2Vec's 64-wide 10-block dilated CNN, 320-d output) and for its widest
layer alone (a 320 -> 320 kernel-3 dilated convolution), so a CPU's bf16 speed-up can be told apart per layer
and for the whole network. docs/timeseries.md quotes it ("Time to accuracy on 2 cores").
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(step: Callable[[], None], repeats: int) -> float:
    for _ in range(2):  # warm-up: kernel selection and allocations
        step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def conv_gflop(net: torch.nn.Module, batch: int, length: int) -> float:
    """Forward + backward GFLOP of the convolutions (the encoder's arithmetic; 'same' padding keeps the length)."""
    macs = sum(
        m.in_channels * m.out_channels * m.kernel_size[0] * batch * length
        for m in net.modules()
        if isinstance(m, torch.nn.Conv1d)
    )
    return 3 * 2 * macs / 1e9


def main() -> None:
    from domains.timeseries.encoders import TimeSeriesEncoderConfig, dilated_cnn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="series per step (views x batch size; default 32)")
    parser.add_argument("--length", type=int, default=427, help="time steps per series (default 427, OSULeaf)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    encoder, _ = dilated_cnn(1, TimeSeriesEncoderConfig(hidden=64, depth=10, out_dim=320))
    widest = torch.nn.Conv1d(320, 320, 3, padding="same", dilation=2)
    cases = {
        "encoder": (encoder, torch.randn(args.batch, 1, args.length)),
        "320->320 conv": (widest, torch.randn(args.batch, 320, args.length)),
    }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {args.batch} x {args.length} steps")
    for name, (net, x) in cases.items():
        x.requires_grad_(True)
        for precision in ("fp32", "bf16"):

            def step(net: torch.nn.Module = net, x: torch.Tensor = x, bf16: bool = precision == "bf16") -> None:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    out = net(x)
                out.float().amax(-1).sum().backward()

            seconds = timed(step, args.repeats)
            gflop = conv_gflop(net, args.batch, args.length)
            rate = gflop / seconds
            print(f"{name:>14} {precision}: {seconds * 1000:7.1f} ms  {rate:6.1f} GFLOP/s ({gflop:.1f} GFLOP)")


if __name__ == "__main__":
    main()
