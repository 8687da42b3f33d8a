"""The ``gsg`` command. Imports here stay light so ``gsg --help`` answers at once."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import UserError
from .launch import exit_without_finalising, in_process_group_launch

# Named here without importing the table, so `gsg --help` stays instant; a test checks they agree.
VARIANT_NAMES = (
    "simsiam, gsg, gsg2, gsg-random, gsg-hard, byol, simsiam-nosg, byol-gsg, ts2vec, gsg-temporal, gsg-segment, "
    "simclr, supervised"
)


def build_parser() -> argparse.ArgumentParser:
    from .suite import suite_names  # light (no torch): the help lists the suites that exist on disk

    parser = argparse.ArgumentParser(
        prog="gsg",
        description="Pretrain encoders with Guided Stop-Gradient (GSG), SimSiam or BYOL, and evaluate them.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("pretrain", help="pretrain an encoder from a YAML config")
    p.add_argument("config", help="YAML config, e.g. configs/acsf1_gsg.yaml")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.epochs=5 objective.gsg=false")
    p.add_argument("--resume", action="store_true", help="continue the run in output_dir from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in output_dir")

    e = sub.add_parser("evaluate", help="kNN / linear probe / RBF SVM on a run's frozen encoder")
    e.add_argument("run_dir", help="the output_dir of a finished 'gsg pretrain' (or of 'gsg export' from a checkpoint)")
    e.add_argument(
        "overrides",
        nargs="*",
        help="key=value overrides of the run's config: eval.* settings, or other data to score the frozen encoder "
        "on (transfer), e.g. data.name=GunPoint -> eval_data.name-GunPoint.json",
    )
    e.add_argument(
        "--random-init",
        action="store_true",
        help="evaluate the encoder as built before pretraining (random init, or pretrained weights as shipped)",
    )
    e.add_argument("--floor", action="store_true", help="evaluate the domain's hand-crafted baseline instead")

    c = sub.add_parser("compare", help="pretrain several objectives on one config and print one table")
    c.add_argument("config")
    c.add_argument("overrides", nargs="*", help="key=value overrides applied to every variant")
    c.add_argument(
        "--variants", default="gsg,simsiam", help="comma-separated names from the variant table: " + VARIANT_NAMES
    )
    c.add_argument("--no-random", action="store_true", help="skip the row of the encoder before pretraining")
    c.add_argument("--no-floor", action="store_true", help="skip the domain's hand-crafted baseline row")
    c.add_argument("--out", help="folder for the variants' runs (default: runs/compare/<config name>)")

    x = sub.add_parser(
        "export", help="export the encoder of any checkpoint of a run (finished, stopped by max_steps, or crashed)"
    )
    x.add_argument("run_dir", help="the output_dir of a 'gsg pretrain' run with checkpoints")
    x.add_argument("--checkpoint", help="a checkpoints/step-N folder (default: the newest intact one)")
    x.add_argument(
        "--out", help="export folder (default: <run>/encoder for the newest checkpoint, else <run>/encoder-step-N)"
    )
    x.add_argument(
        "--push-to-hub", metavar="REPO_ID", help="also upload the export to the Hugging Face hub (needs a token)"
    )

    m = sub.add_parser(
        "embed", help="features of raw data (a file or folder) from a run's or an export's encoder, into Parquet"
    )
    m.add_argument(
        "source",
        metavar="RUN_OR_ENCODER",
        help="a run directory (its encoder/, else its newest checkpoint) or an encoder export folder",
    )
    m.add_argument(
        "data",
        metavar="DATA",
        help="raw data the domain reads: series .ts/.npy/.npz/.csv/.parquet, an image folder or .npy, "
        "an audio folder or file, text .txt/.csv/.jsonl/.parquet",
    )
    m.add_argument("overrides", nargs="*", help="data.key=value: how to read DATA, e.g. data.label_column=kind")
    m.add_argument("--out", required=True, help="the Parquet file: index, id, label, features (one row per item)")
    m.add_argument("--batch-size", type=int, default=64, help="items encoded at a time (default: 64)")
    m.add_argument("--overwrite", action="store_true", help="replace an existing --out file")

    sub.add_parser("domains", help="list registered domains and their built-in data sets")

    b = sub.add_parser("benchmark", help="run a benchmark suite (cached cells) and write its report")
    b.add_argument("suite", help=f"a suite YAML, or a name: {', '.join(suite_names())} (configs/suite_<name>.yaml)")
    b.add_argument("--out", help="folder for the cells' runs and results (default: runs/benchmark/<suite name>)")
    b.add_argument("--report", help="markdown report path (default: <out>/report.md); plots go beside it")
    b.add_argument("--max-cells", type=int, help="run at most this many cells now; rerun to continue")
    b.add_argument("--report-only", action="store_true", help="only rewrite the report from the cached cells")
    b.add_argument(
        "--workers",
        type=int,
        default=1,
        help="cells run at once, each in its own process with cores/workers threads (default: 1)",
    )
    b.add_argument(
        "--load-results",
        metavar="FILE",
        help="first take the finished cells of a results archive (from --save-results) that are not done here",
    )
    b.add_argument(
        "--save-results",
        metavar="FILE",
        help="at the end, write every finished cell's results to FILE (.tar.gz, small) to continue elsewhere",
    )
    b.add_argument("--no-report", action="store_true", help=argparse.SUPPRESS)  # a --workers worker: the parent reports

    v = sub.add_parser("views", help="draw a few samples and their augmented views to a PNG, to see what is trained on")
    v.add_argument("config")
    v.add_argument("overrides", nargs="*", help="key=value overrides, e.g. views.preset=mnist")
    v.add_argument("--samples", type=int, default=8, help="how many samples (rows of the grid)")
    v.add_argument("--views", type=int, default=4, help="how many augmented views per sample")
    v.add_argument("--out", default="views.png", help="output image (default: views.png)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command; ``argv=None`` reads the command line, as the ``gsg`` program and ``python -m`` do.

    As a program in a multi-process launch, a process ends here without interpreter finalisation once its
    command has returned (``launch.exit_without_finalising``): a gloo teardown abort at exit would
    otherwise fail a finished run.
    """
    code = run(argv)
    if argv is None and in_process_group_launch():
        exit_without_finalising(code)
    return code


def run(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command: its exit code, with a user's mistake as one line and code 2."""
    args = parse_args(argv)
    try:
        commands = {
            "pretrain": cmd_pretrain,
            "evaluate": cmd_evaluate,
            "export": cmd_export,
            "embed": cmd_embed,
            "compare": cmd_compare,
            "domains": cmd_domains,
            "views": cmd_views,
            "benchmark": cmd_benchmark,
        }
        check_launch(args)
        return commands[args.command](args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the last complete checkpoint is kept (continue with --resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `gsg domains | head`: the reader left; nothing more to say
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 0


def check_launch(args: argparse.Namespace) -> None:
    """Refuse a multi-process launch of a command that runs in one process.

    ``pretrain`` and ``evaluate`` share their work across the launched processes and write from the global
    main process only. The others (and ``evaluate --floor``, which builds no model) would run once per process
    and write the same files from each of them at once.
    """
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    distributed = args.command == "pretrain" or (args.command == "evaluate" and not args.floor)
    if world > 1 and not distributed and args.command != "domains":
        what = "evaluate --floor" if args.command == "evaluate" else args.command
        raise UserError(
            f"'gsg {what}' runs in one process, but this launch started {world}; "
            "run it without accelerate launch / torchrun (only pretrain and evaluate use several processes)"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line; ``key=value`` overrides may stand anywhere, also after flags like ``--resume``."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def cmd_pretrain(args: argparse.Namespace) -> int:
    from .config import load_config

    cfg = load_config(args.config, args.overrides)
    from .trainer import Trainer

    trainer = Trainer(cfg, resume=args.resume, overwrite=args.overwrite)
    try:
        summary = trainer.train()
    finally:
        trainer.close()
    state = "finished" if summary["finished"] else "stopped (resume with --resume)"
    trainer.accelerator.print(f"{state}: {summary['steps']} steps in {summary['wall_s']:.0f} s -> {cfg.output_dir}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_floor, evaluate_run, evaluate_transfer, is_transfer, load_run_config, override_slug
    from .probes import format_table

    if args.floor:
        if args.overrides:
            raise UserError("--floor evaluates the run's own data; drop the key=value overrides")
        results = evaluate_floor(args.run_dir)
        if results is None:
            raise UserError("this run's domain has no hand-crafted baseline; drop --floor")
        print(format_table({results.get("name", "floor"): results}))
        return 0
    if args.overrides:
        target = load_run_config(args.run_dir, args.overrides)
        if is_transfer(args.run_dir, target):
            if args.random_init:
                raise UserError("--random-init with other data: evaluate a run of that data with --random-init instead")
            slug = override_slug([o for o in args.overrides if o.startswith(("data.", "views.", "domain="))])
            out = Path(args.run_dir) / f"eval_{slug}.json"
            results = evaluate_transfer(args.run_dir, target, out, log_as=f"transfer/{slug}")
            if results:
                print(format_table({f"{args.run_dir} -> {' '.join(args.overrides)}": results}))
                print(f"(written to {out})")
            return 0
    results = evaluate_run(args.run_dir, random_init=args.random_init, overrides=args.overrides)
    if results:
        print(format_table({results["encoder"] if args.random_init else args.run_dir: results}))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_checkpoint, push_to_hub, read_encoder_config

    path = export_checkpoint(args.run_dir, args.checkpoint, args.out)
    config = read_encoder_config(path)
    print(f"encoder of step {config.get('steps')} ({config['domain']}, {config['out_dim']}-d) -> {path}")
    if args.push_to_hub:
        print(f"pushed to {push_to_hub(path, args.push_to_hub)}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from .embed import embed_file

    done = embed_file(args.source, args.data, args.out, args.batch_size, args.overrides, args.overwrite)
    print(f"{done['rows']} rows x {done['dim']} features -> {done['out']} (encoder: {done['from']})")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Pretrain each variant in its own process (a clean Accelerate state each), then evaluate all."""
    import subprocess

    from .config import load_config, parse_overrides
    from .evaluate import evaluate_run
    from .probes import format_table
    from .provenance import machine_summary
    from .variants import VARIANTS

    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        raise UserError(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    from .trainer import check_output_dir

    base = load_config(args.config, args.overrides)  # validates once, before any training
    root = Path(args.out or Path("runs") / "compare" / Path(args.config).stem)
    check_output_dir(root)
    user_keys = set(_flat_keys(parse_overrides(args.overrides)))
    # Every variant's run is checked before any training: one that cannot be reused stops the command at once.
    plan = []
    for name in names:
        run_dir = root / name
        overrides = [o for o in VARIANTS[name].overrides if o.split("=")[0] not in user_keys]
        overrides += [*args.overrides, f"output_dir={run_dir}"]
        plan.append((name, run_dir, overrides, _compare_action(run_dir, load_config(args.config, overrides))))
    rows, wall = {}, {}
    started = time.time()
    for name, run_dir, overrides, action in plan:
        if action != "reuse":
            cmd = [sys.executable, "-m", "gsg_multimodal", "pretrain", args.config, *overrides, *action.split()]
            print(f"== {name}: {' '.join(cmd[3:])}", flush=True)
            t0 = time.time()
            if subprocess.run(cmd).returncode != 0:
                raise UserError(f"pretraining variant '{name}' failed (see above); fix it and rerun 'gsg compare'")
            wall[name] = time.time() - t0
        else:
            print(f"== {name}: reusing the finished run in {run_dir} (its resolved config equals this one)", flush=True)
        rows[name] = evaluate_run(run_dir)
    if not args.no_random:
        initial = evaluate_run(root / names[0], random_init=True)
        rows[initial.get("encoder", "random init")] = initial
    if not args.no_floor:
        from .evaluate import evaluate_floor

        floor = evaluate_floor(root / names[0])
        if floor is not None:
            rows[floor.get("name", "hand-crafted floor")] = floor
    table = format_table(rows)
    command = " ".join(["gsg", "compare", args.config, *args.overrides, f"--variants {','.join(names)}"])
    pretrain_times = ", ".join(f"{k} {v:.0f} s" for k, v in wall.items()) or "reused earlier runs"
    provenance = [
        f"- command: `{command}`",
        f"- seed: {base.seed}; date: {time.strftime('%Y-%m-%d %H:%M %Z')}; machine: {machine_summary()}",
        f"- pretraining wall time: {pretrain_times}; whole command: {time.time() - started:.0f} s",
    ]
    text = "\n".join([f"# Compare: {Path(args.config).name}", "", *provenance, "", table, ""])
    (root / "compare.md").write_text(text)
    print(f"\n{text}\n(written to {root / 'compare.md'})")
    return 0


def _compare_action(run_dir: Path, wanted: object) -> str:
    """What compare does with a variant's folder: "" (train it), "--resume", or "reuse" (finished, same config).

    A run is reused or resumed only when its resolved config equals the one asked for, by
    ``config.config_differences`` (the rule resume uses); for reuse the evaluation settings must be equal
    too, since evaluation reads them from the run. Anything else is refused, naming the differences.
    """
    from .config import TRAINING_NEUTRAL, build_config, config_differences, read_yaml
    from .trainer import holds_run

    if not holds_run(run_dir):
        return ""
    if not (run_dir / "config.yaml").is_file():
        raise UserError(f"'{run_dir}' holds part of a run but no config.yaml; pass --out <new folder> or remove it")
    try:
        saved = build_config(read_yaml(run_dir / "config.yaml"))
    except UserError as exc:
        raise UserError(f"cannot reuse '{run_dir}': its config.yaml is not valid now ({exc}); pass --out") from None
    finished = (run_dir / "encoder" / "config.json").is_file()
    ignore = tuple(k for k in TRAINING_NEUTRAL if k != "eval.") if finished else TRAINING_NEUTRAL
    differ = config_differences(saved, wanted, ignore)
    if differ:
        shown = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(differ.items())[:4])
        more = f" and {len(differ) - 4} more" if len(differ) > 4 else ""
        raise UserError(
            f"'{run_dir}' holds a run of a different config ({shown}{more}); compare reuses only a run of the "
            f"same config. Pass --out <new folder> for this comparison (nothing was trained)"
        )
    return "reuse" if finished else "--resume"


def _flat_keys(tree: dict, prefix: str = "") -> list[str]:
    keys = []
    for k, v in tree.items():
        keys += _flat_keys(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]
    return keys


def cmd_domains(args: argparse.Namespace) -> int:
    from .registry import available_domains, get_domain

    for name, target in sorted(available_domains().items()):
        print(f"{name}  ({target})")
        try:
            builtin = get_domain(name).builtin
        except UserError as exc:  # one broken plug-in must not hide the others
            print(f"    unavailable: {exc}")
            continue
        for ds, desc in builtin.items():
            print(f"    {ds:<24} {desc}")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from .benchmark import run_benchmark

    if args.max_cells is not None and args.max_cells < 0:
        raise UserError("--max-cells must be 0 or more")
    if args.workers < 1:
        raise UserError(f"--workers must be 1 or more, got {args.workers}")
    command = " ".join(
        ["gsg", "benchmark", args.suite]
        + [f"--out {args.out}"] * bool(args.out)
        + [f"--report {args.report}"] * bool(args.report)
        + [f"--max-cells {args.max_cells}"] * (args.max_cells is not None)
        + [f"--workers {args.workers}"] * (args.workers > 1)
        + ["--report-only"] * args.report_only
        + [f"--load-results {args.load_results}"] * bool(args.load_results)
        + [f"--save-results {args.save_results}"] * bool(args.save_results)
    )
    run_benchmark(
        args.suite,
        args.out,
        args.report,
        args.max_cells,
        args.report_only,
        command,
        workers=args.workers,
        write_report=not args.no_report,
        load_results=args.load_results,
        save_results=args.save_results,
    )
    return 0


def cmd_views(args: argparse.Namespace) -> int:
    """Augment the first ``--samples`` pretraining rows ``--views`` times and let the domain draw them."""
    import torch

    from .config import load_config
    from .runtime import load_bound

    if args.samples < 1 or args.views < 1:
        raise UserError("--samples and --views must be at least 1")
    cfg = load_config(args.config, args.overrides)
    domain, data = load_bound(cfg)
    from .streaming import StreamSource

    if isinstance(data.pretrain, StreamSource):  # a streamed archive: its first examples, in archive order
        rows = data.pretrain.head(args.samples)
    else:
        rows = [data.pretrain[i] for i in range(min(args.samples, len(data.pretrain)))]
    batch = domain.collate(rows)
    generator = torch.Generator().manual_seed(cfg.seed)
    views = domain.make_views(batch, args.views, generator)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    domain.save_views_grid(batch, views, out)
    print(f"{len(rows)} samples x {args.views} views -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
