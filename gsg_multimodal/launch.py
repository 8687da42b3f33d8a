"""How a process of a multi-process launch (torchrun, ``accelerate launch``) knows it is one, and how it ends.

Kept free of heavy imports: the CLI asks on every command, including the quick ones.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn


def in_process_group_launch() -> bool:
    """True in a process of a multi-process launch: ``WORLD_SIZE`` > 1."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def exit_without_finalising(code: int) -> NoReturn:
    """End a process of a multi-process launch once its work is written, skipping interpreter finalisation.

    With gloo, a rank whose work is done and whose process group is destroyed can still abort while the
    interpreter finalises ("terminate called without an active exception", SIGABRT: a C++ thread torn down
    at exit, pytorch/pytorch#179291). It was seen on a quiet 2-core machine, where it turned a finished run
    into a failed launch. Python's own buffers and logging handlers are flushed first. Nothing else here
    registers exit-time work: TensorBoard's writer does not flush at exit, and ``end_training`` finishes the
    trackers.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)
