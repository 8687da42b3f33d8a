"""``python -m gsg_multimodal`` (also under ``accelerate launch -m`` and ``torchrun -m``)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
