"""The ``tscnn`` command: synth, demo, run, table, train, predict, pretrain, datasets describe."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path("data/synthetic-casme2")
DEFAULT_CACHE = Path("data/cache")
DATASETS = ["casme2", "samm", "smic", "casme3", "mmew", "megc2019"]
LAYOUTS = ["casme2", "samm", "smic", "casme3", "mmew"]
APEX_HELP = "apex of clips with none annotated or an invalid one: the spotter (default) or the middle frame"


def cmd_synth(args: argparse.Namespace) -> int:
    from tscnn.synth import SynthSettings, write_database

    start = time.perf_counter()
    coding = write_database(args.out, SynthSettings(subjects=args.subjects, seed=args.seed, layout=args.layout))
    print(f"wrote {args.layout} database to {args.out} ({time.perf_counter() - start:.1f} s); coding file {coding}")
    return 0


def config_from_args(args: argparse.Namespace):
    """The run's Config from the command line (a preset plus the options given)."""
    from tscnn.config import from_preset
    from tscnn.datasets import default_classes

    return from_preset(
        args.preset, dataset=args.dataset, root=str(args.root), coding=args.coding,
        classes=args.classes or default_classes(args.dataset), apex_fallback=args.apex_fallback,
        streams=tuple(args.streams.split(",")) if args.streams else None, blocks=args.blocks, flow=args.flow,
        seeds=tuple(args.seeds) if args.seeds else None, selection=args.selection, max_epochs=args.max_epochs,
        lr=args.lr, batch_size=args.batch_size, patience=args.patience,
        share_trunk=False if args.unshared else None, threads=args.threads, pretrained=args.pretrained,
        device=args.device,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from tscnn.experiment import config_database, run_experiment
    from tscnn.report import metrics_table, write_report

    config = config_from_args(args)
    out = Path(args.out or f"results/{config.dataset}-{'-'.join(config.streams)}-k{config.blocks}")
    database = config_database(config)
    start = time.perf_counter()
    result = run_experiment(config, out, args.cache, database=database, max_new_folds=args.max_new_folds)
    if not result.complete:
        print(f"stopped after {args.max_new_folds} new folds; run the same command again to resume ({out})")
        return 0
    report = write_report(result, config, database.table)
    print(metrics_table(result.metrics))
    print(f"{time.perf_counter() - start:.0f} s; report: {report}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from tscnn.experiment import train_final_model

    config = config_from_args(args)
    path = train_final_model(config, args.out or f"models/{config.dataset}-{'-'.join(config.streams)}", args.cache)
    print(f"model: {path}  (use: tscnn predict {path} VIDEO_OR_FRAME_FOLDER)")
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from tscnn.experiment import config_database
    from tscnn.tables import run_table

    config = config_from_args(args)
    database = config_database(config)
    path = run_table(args.table, config, args.out or f"results/table-{args.table}-{config.dataset}", args.cache,
                     database=database)
    print(path.read_text())
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from tscnn.predict import predict_clip

    result = predict_clip(args.model, args.source, args.onset, args.apex, args.offset, args.cropped)
    if args.json:
        print(result.to_json())
    else:
        print(f"{result.source}: {result.predicted}  (onset {result.onset}, apex {result.apex} by {result.apex_rule}, "
              f"offset {result.offset})")
        for name, p in sorted(result.probabilities.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<12} {p:.3f}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tscnn.synth import SynthSettings, write_database
    from tscnn.synth.database import CASME2_CODING

    data = Path(args.data)
    if not (data / CASME2_CODING).exists():
        print(f"generating the default synthetic database in {data} ...")
        write_database(data, SynthSettings(seed=args.data_seed))
    run_args = argparse.Namespace(**{**vars(build_parser().parse_args(["run", "--root", str(data)])), **{
        "preset": "demo", "out": args.out, "cache": args.cache, "seeds": args.seeds}})
    return cmd_run(run_args)


def cmd_pretrain(args: argparse.Namespace) -> int:
    from tscnn.config import from_preset
    from tscnn.pretrain import WEIGHTS, pretrain

    if args.fer:
        from tscnn.datasets.fer2013 import read_fer2013

        data = read_fer2013(args.fer, max_rows=args.max_rows)
    else:
        from tscnn.synth.macro import macro_expression_set

        print("no --fer given: pre-training on the synthetic macro-expression set (exercises the path; "
              "use FER2013 for real pre-training)")
        data = macro_expression_set(subjects=args.synthetic_subjects, seed=args.seed)
    config = from_preset(args.preset, max_epochs=args.max_epochs, patience=args.patience, lr=args.lr,
                         batch_size=args.batch_size, threads=args.threads, device=args.device, seeds=(args.seed,))
    summary = pretrain(data, config, args.out)
    print(f"{summary['source']}: {summary['train_rows']} Training / {summary['val_rows']} PublicTest rows; "
          f"epoch {summary['chosen_epoch']} kept, PublicTest accuracy {summary['val_accuracy']:.3f} "
          f"(majority class {summary['chance_accuracy']:.3f}); {summary['seconds']:.0f} s")
    print(f"weights: {Path(args.out) / WEIGHTS}  (use: tscnn run ... --pretrained {Path(args.out) / WEIGHTS})")
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from tscnn.datasets import load_database

    db = load_database(args.dataset, args.root, args.coding, args.classes, args.apex_fallback,
                       check_frames=not args.annotations_only)
    print(db.describe())
    return 0


def add_experiment_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by `run` and `train`: the data and every setting of the Config."""
    p.add_argument("--dataset", default="casme2", choices=DATASETS)
    p.add_argument("--root", required=True, help="the database folder, as distributed (megc2019: a folder holding "
                   "the three, or casme2=PATH,samm=PATH,smic=PATH)")
    p.add_argument("--coding", help="annotation spreadsheet (found in the root when omitted)")
    p.add_argument("--classes", help="class set (default: the database's, e.g. 5class for CASME II)")
    p.add_argument("--apex-fallback", choices=["spotter", "middle"], help=APEX_HELP)
    p.add_argument("--preset", default="paper", choices=["paper", "demo"])
    p.add_argument("--streams", help="comma-separated subset of ss,ls,dt (default: all three)")
    p.add_argument("--blocks", type=int, help="k of the k x k local-spatial grid (default 3)")
    p.add_argument("--flow", choices=["tvl1", "dis", "farneback"])
    p.add_argument("--seeds", type=int, nargs="+")
    p.add_argument("--selection", choices=["val_loss", "fixed", "test_leaky"])
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--patience", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--unshared", action="store_true", help="one trunk per stream (ablation)")
    p.add_argument("--pretrained", help="weights from `tscnn pretrain` for the static stream and the trunk")
    p.add_argument("--device", help="cpu (default), cuda or auto")
    p.add_argument("--threads", type=int)
    p.add_argument("--out", type=Path)
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tscnn", description="Three-stream CNN micro-expression recognition.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="write a synthetic ME database in a real on-disk layout")
    p.add_argument("out", type=Path)
    p.add_argument("--subjects", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layout", choices=list(LAYOUTS), default="casme2")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("run", help="train and evaluate TSCNN leave-one-subject-out on a database")
    add_experiment_arguments(p)
    p.add_argument("--max-new-folds", type=int, help="stop after this many newly trained folds (resume later)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("train", help="train one model on every subject of a database, for `tscnn predict`")
    add_experiment_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("table", help="the paper's Table 3 (blocks) or Table 4 (streams), run with LOSO")
    p.add_argument("table", choices=["blocks", "streams"])
    add_experiment_arguments(p)
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("predict", help="classify a new clip (video file or frame folder)")
    p.add_argument("model", help="model.pt from `tscnn train`")
    p.add_argument("source", help="a video file or a folder of frames")
    p.add_argument("--onset", type=int, help="onset frame number (folder) or index (video); default: the first")
    p.add_argument("--apex", type=int, help="apex frame; default: the spotter's choice")
    p.add_argument("--offset", type=int, help="offset frame; default: the last")
    p.add_argument("--cropped", action="store_true", help="frames are already face crops (skip detection)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("demo", help="the main job: synthetic database -> TSCNN LOSO -> report")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("results/demo"))
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("pretrain", help="pre-train the static stream and trunk on FER2013 (or a synthetic set)")
    p.add_argument("--fer", help="fer2013.csv or icml_face_data.csv; without it, synthetic macro-expressions")
    p.add_argument("--out", type=Path, default=Path("results/pretrain"))
    p.add_argument("--preset", default="paper", choices=["paper", "demo"])
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--patience", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-rows", type=int, help="read only the first rows of the FER2013 file")
    p.add_argument("--synthetic-subjects", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu (default), cuda or auto")
    p.add_argument("--threads", type=int)
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("datasets", help="inspect a database")
    dsub = p.add_subparsers(dest="action", required=True)
    d = dsub.add_parser("describe", help="clips per class and subject, and every quirk found")
    d.add_argument("dataset", choices=DATASETS)
    d.add_argument("root")
    d.add_argument("--coding")
    d.add_argument("--classes", help="class set (default: the database's)")
    d.add_argument("--apex-fallback", choices=["spotter", "middle"], default="spotter", help=APEX_HELP)
    d.add_argument("--annotations-only", action="store_true", help="read the annotation file only, not the frames")
    d.set_defaults(func=cmd_describe)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
