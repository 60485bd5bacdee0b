"""The ``tscnn`` command: synth, demo, run, table, train, predict, spot, export, pretrain, datasets describe."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from dataclasses import fields
from pathlib import Path

from tscnn import __version__
from tscnn.bench_rows import add_bench_arguments
from tscnn.config import Config

DEFAULT_DATA = Path("data/synthetic-casme2")
DEFAULT_CACHE = Path("data/cache")
SPOT_Z = 6.0  # tscnn.spot.SpotSettings.z (not imported here: the parser loads no heavy module)
APEX_HELP = "apex of clips with none annotated or an invalid one: the spotter (default) or the middle frame"
EXAMPLES = """examples:
  tscnn demo                                                   # the main job on the synthetic database
  tscnn run --root /data/CASME2                                # TSCNN, the paper's recipe, LOSO
  tscnn run --root /data/CASME2 --streams dt --seeds 0 1 2     # one cell of the paper's Table 4
  tscnn run --dataset flowfolder --root megc2019-flow28 --model tscnn --preset tscnn-plus --streams uvs
  tscnn run --dataset flowfolder --root megc2019-flow28 --model ststnet --protocol cross \\
            --train-datasets casme2 --test-datasets smic
  tscnn table streams --root /data/CASME2 --seeds 0 1 2        # the paper's Table 4
  tscnn table methods --root /data/CASME2                       # Table 1: TSCNN, baselines, peers
  tscnn predict models/casme2/model.pt clip.mp4
  tscnn spot recording.mp4 --model models/casme2/model.pt --save-json intervals.json
  tscnn predict models/casme2/model.pt clip.mp4 --json | jq .predicted
  tscnn bench --data megc2019-flow28 --rows tscnn-plus linear --pairs casme2:smic casme2+smic:samm
"""


def _choices() -> dict[str, list[str]]:
    """The names each option accepts, from the one place that defines them."""
    from tscnn.config import (
        AUGMENT_MODES,
        FACE_ALIGN,
        FLOOR_VIEWS,
        OPTIMIZERS,
        PRESETS,
        PROTOCOLS,
        SCHEDULES,
        SELECTIONS,
    )
    from tscnn.datasets import READERS
    from tscnn.datasets.base import APEX_FALLBACKS
    from tscnn.models import MODELS
    from tscnn.preprocessing.flow import FLOW_METHODS

    return {"model": sorted(MODELS), "dataset": sorted(READERS), "preset": sorted(PRESETS),
            "flow": list(FLOW_METHODS), "selection": list(SELECTIONS), "optimizer": list(OPTIMIZERS),
            "schedule": list(SCHEDULES), "augment_mode": list(AUGMENT_MODES), "protocol": list(PROTOCOLS),
            "apex_fallback": list(APEX_FALLBACKS), "face_align": list(FACE_ALIGN), "floor_views": list(FLOOR_VIEWS)}


CHOICES = _choices()
CONFIG_FIELDS = [f for f in fields(Config) if f.name != "extra"]


def _layouts() -> list[str]:
    from tscnn.synth.database import LAYOUTS

    return sorted(LAYOUTS)


def cmd_synth(args: argparse.Namespace) -> int:
    from tscnn.synth import SynthSettings, write_database

    start = time.perf_counter()
    coding = write_database(args.out, SynthSettings(subjects=args.subjects, seed=args.seed, layout=args.layout))
    print(f"wrote {args.layout} database to {args.out} ({time.perf_counter() - start:.1f} s); coding file {coding}")
    return 0


def config_from_args(args: argparse.Namespace):
    """The run's Config: the model's (or the named) preset plus every Config field given on the command line."""
    from tscnn.datasets import default_classes
    from tscnn.runner import config_for

    given = {f.name: getattr(args, f.name) for f in CONFIG_FIELDS if getattr(args, f.name, None) is not None}
    for name, value in given.items():
        if isinstance(value, list):  # list options: space- and/or comma-separated items
            given[name] = tuple(item for part in value for item in part)
    given["root"] = str(args.root)
    given.setdefault("classes", default_classes(given.get("dataset", "casme2")))
    return config_for(given.pop("model", "tscnn"), given.pop("preset", None), **given)


def cmd_run(args: argparse.Namespace) -> int:
    from tscnn.app import run_and_report
    from tscnn.report import metrics_table

    start = time.perf_counter()
    result, report = run_and_report(config_from_args(args), args.out, args.cache, args.max_new_folds,
                                    args.resume_any_code, jobs=args.jobs, ray=args.ray)
    if not result.complete:
        print(f"stopped after {args.max_new_folds} new folds; run the same command again to resume ({result.out})")
        return 0
    print(metrics_table(result.metrics))
    print(f"{time.perf_counter() - start:.0f} s; report: {report}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from tscnn.app import train_final_model
    from tscnn.runner import default_out

    config = config_from_args(args)
    path = train_final_model(config, args.out or default_out(config, "models"), args.cache)
    print(f"model: {path}  (use: tscnn predict {path} VIDEO_OR_FRAME_FOLDER)")
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from tscnn.tables import run_table

    config = config_from_args(args)
    path = run_table(args.table, config, args.out or f"results/table-{args.table}-{config.dataset}", args.cache,
                     jobs=args.jobs, ray=args.ray)
    print(path.read_text())
    return 0


def cmd_spot(args: argparse.Namespace) -> int:
    from tscnn.predict import format_model_card
    from tscnn.spot import SpotSettings, format_table, print_warnings_plainly, spot

    print_warnings_plainly()
    result = spot(args.source, args.model, SpotSettings(z=args.z), cropped=args.cropped, fps=args.fps,
                  progress=True)
    if args.save_json:
        args.save_json.parent.mkdir(parents=True, exist_ok=True)
        args.save_json.write_text(json.dumps(result.to_dict(), indent=2))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    if args.model:
        print(format_model_card(result.model_card))
    print(format_table(result))
    if args.save_json:
        print(f"intervals: {args.save_json}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from tscnn.predict import format_model_card, predict_clip
    from tscnn.spot import print_warnings_plainly

    print_warnings_plainly()

    if getattr(args, "fast", False):  # DIS flow, fast face detection, bf16 network (tscnn.fast)
        from tscnn.fast import predict_clip_fast as predict_clip
    result = predict_clip(args.model, args.source, args.onset, args.apex, args.offset, args.cropped)
    if args.json:
        print(result.to_json())
    else:
        print(format_model_card(result.model_card))
        print(f"{result.source}: {result.predicted}  (onset {result.onset}, apex {result.apex} by {result.apex_rule}, "
              f"offset {result.offset})")
        for name, p in sorted(result.probabilities.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<12} {p:.3f}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from tscnn.bench import bench_main

    return bench_main(args, as_json=args.json)


def cmd_export(args: argparse.Namespace) -> int:
    from tscnn.export import MissingPackageError, export_onnx

    try:
        info = export_onnx(args.model, args.onnx, tolerance=args.tolerance)
    except MissingPackageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    inputs = ", ".join(f"{s} {'x'.join(map(str, shape))}" for s, shape in info["inputs"].items())
    print(f"wrote {info['onnx_path']} ({info['bytes'] / 1e6:.1f} MB, {info['model']}, opset {info['opset']}): "
          f"inputs {inputs}; outputs logits, probabilities over {', '.join(info['classes'])}")
    print(f"onnxruntime vs PyTorch on {info['check_batch']} random clips: max abs diff {info['max_abs_diff']:.2e} "
          f"(tolerance {info['tolerance']:g})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tscnn.app import demo_config, ensure_demo_data, run_and_report
    from tscnn.report import metrics_table

    start = time.perf_counter()
    ensure_demo_data(args.data, args.data_seed)
    result, report = run_and_report(demo_config(args.data, tuple(args.seeds), args.data_seed), args.out, args.cache)
    print(metrics_table(result.metrics))
    print(f"{time.perf_counter() - start:.0f} s; report: {report}")
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from tscnn.config import from_preset
    from tscnn.pretrain import PRETRAIN_SEED_BASE, WEIGHTS, face_image_set, pretrain, synthetic_micro_set

    source = args.source or ("fer" if args.fer else "synthetic-macro")
    if args.fer and source != "fer":
        raise ValueError(f"--fer reads FER2013, but --source is {source}")
    config = from_preset(args.preset, max_epochs=args.max_epochs, patience=args.patience, lr=args.lr,
                         batch_size=args.batch_size, threads=args.threads, device=args.device, seeds=(args.seed,))
    if source == "synthetic-micro":
        subjects = args.synthetic_subjects or 200
        streams = tuple(s for s in args.streams.split(",") if s)
        data_dir = args.data or Path(f"data/synthetic-pretrain-s{PRETRAIN_SEED_BASE + args.seed}-n{subjects}")
        print(f"synthetic micro-expressions: {subjects} subjects in {data_dir} (made once, then reused)")
        data = synthetic_micro_set(subjects, args.seed, config, data_dir, args.cache, streams=streams,
                                   dt_format=args.dt_format, jobs=args.jobs)
    elif source == "fer":
        if not args.fer:
            raise ValueError("--source fer needs --fer FILE (fer2013.csv or icml_face_data.csv)")
        from tscnn.datasets.fer2013 import read_fer2013

        data = face_image_set(read_fer2013(args.fer, max_rows=args.max_rows))
    else:
        from tscnn.synth.macro import macro_expression_set

        print("no --fer given: pre-training on the synthetic macro-expression set (exercises the path; "
              "use FER2013 for real pre-training)")
        data = face_image_set(macro_expression_set(subjects=args.synthetic_subjects or 40, seed=args.seed))
    summary = pretrain(data, config, args.out)
    print(f"{summary['source']}: streams {','.join(summary['streams'])}; {summary['train_rows']} training / "
          f"{summary['val_rows']} held-out rows; epoch {summary['chosen_epoch']} kept, held-out accuracy "
          f"{summary['val_accuracy']:.3f} (majority class {summary['chance_accuracy']:.3f}); "
          f"{summary['seconds']:.0f} s")
    print(f"weights: {Path(args.out) / WEIGHTS}  (use: tscnn run ... --pretrained {Path(args.out) / WEIGHTS})")
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from tscnn.datasets import load_database

    db = load_database(args.dataset, args.root, args.coding, args.classes, args.apex_fallback,
                       check_frames=not args.annotations_only)
    if args.apex_root:
        from tscnn.datasets.apeximages import attach_apex_images

        db = attach_apex_images(db, args.apex_root, check=not args.annotations_only)
    if args.json:
        print(json.dumps(db.summary(), indent=2))
        return 0
    print(db.describe())
    if not args.annotations_only:
        from tscnn.preprocessing.keyframes import key_frame_note

        note = key_frame_note(db.table)
        if note:
            print(note)
    return 0


def add_experiment_arguments(p: argparse.ArgumentParser) -> None:
    """Every Config field as ``--field-name`` (help from ``tscnn.config.FIELD_HELP``; a field not given takes
    the preset's value), plus where to write and cache."""
    from tscnn.config import FIELD_HELP, Config

    defaults = Config()
    for f in CONFIG_FIELDS:
        default = getattr(defaults, f.name)
        option = "--" + f.name.replace("_", "-")
        help_text = f"{FIELD_HELP.get(f.name, '')} (default: {_shown(default)})"
        if f.name == "root":
            p.add_argument(option, required=True, help=FIELD_HELP["root"] + " (megc2019: a folder holding the "
                           "three, or casme2=PATH,samm=PATH,smic=PATH; flowfolder: the folder with index.csv)")
        elif isinstance(default, bool):
            p.add_argument(option, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif isinstance(default, tuple):
            kind = int if f.name == "seeds" else str
            p.add_argument(option, nargs="+", type=_list_of(kind), default=None, help=help_text + "; "
                           "space- or comma-separated")
        else:
            kind = type(default) if default is not None and not isinstance(default, str) else str
            p.add_argument(option, type=kind, default=None, help=help_text,
                           choices=CHOICES.get(f.name))
    p.add_argument("--unshared", dest="share_trunk", action="store_false", default=None,
                   help="alias of --no-share-trunk")
    p.add_argument("--out", type=Path, help="results folder (default: results/<dataset>-<model>-<streams>)")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"prepared-input cache (default: {DEFAULT_CACHE})")
    p.add_argument("--jobs", type=int, default=1, help="folds trained at once in worker processes, threads split "
                   "between them, and clips prepared at once the first time (default: 1; results do not depend on it)")
    p.add_argument("--resume-any-code", action="store_true",
                   help="resume a results folder made by another code version (if the change cannot alter results)")


def add_ray_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ray", metavar="ADDRESS", help="send the folds to a Ray cluster: its address for ray.init, local "
                   "(a new local instance) or auto (the one running here, else a new one); records return here "
                   "and are written here; needs pip install 'tscnn[ray]'; results do not depend on it")


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return repr(value) if isinstance(value, str) else str(value)


def _list_of(kind: type):
    """argparse type for one item of a list option that may also be comma-separated."""
    def parse(text: str) -> list:
        return [kind(part) for part in text.split(",") if part.strip()]
    parse.__name__ = kind.__name__
    return parse


JSON_NOTE = ("--json, wherever a command has it (predict, spot, bench, datasets describe), is a flag: the command "
             "prints its result as JSON on stdout instead of the text, and nothing else goes to stdout (progress "
             "and warnings go to stderr); an option that writes a file takes the file's name (spot --save-json FILE, "
             "bench --summary FILE).")


def add_json_argument(p: argparse.ArgumentParser, what: str) -> None:
    """The one meaning of ``--json`` (``JSON_NOTE``): a flag that prints ``what`` as JSON on stdout."""
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout instead of the text "
                   "(progress and warnings on stderr)")


def _add_source_arguments(p: argparse.ArgumentParser, what: str) -> None:
    """The clip or recording to read (``predict``, ``spot``) and whether its frames are face crops already."""
    p.add_argument("source", help=what)
    p.add_argument("--cropped", action="store_true", help="frames are already face crops (skip detection)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tscnn", description="Three-stream CNN micro-expression recognition.",
                                     epilog=EXAMPLES + "\n" + textwrap.fill(JSON_NOTE, 100),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"tscnn {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    parser.add_argument("--quiet", action="store_true", help="no progress bars and no other library's warnings "
                        "(bars are drawn only on a terminal anyway)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="write a synthetic ME database in a real on-disk layout")
    p.add_argument("out", type=Path)
    p.add_argument("--subjects", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layout", choices=_layouts(), default="casme2", help="on-disk layout (default: casme2)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("run", help="train and evaluate TSCNN leave-one-subject-out on a database")
    add_experiment_arguments(p)
    p.add_argument("--max-new-folds", type=int, help="stop after this many newly trained folds (resume later)")
    add_ray_argument(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("train", help="train one model on every subject of a database, for `tscnn predict`")
    add_experiment_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("table", help="the paper's Table 3 (blocks), Table 4 (streams) or Tables 1 and 2 (methods: "
                       "TSCNN, LBP-TOP, HOOF, the linear floor, and STSTNet, Off-ApexNet, SSSNet with their own "
                       "recipes), run with LOSO")
    p.add_argument("table", choices=["blocks", "streams", "methods"])
    add_experiment_arguments(p)
    add_ray_argument(p)
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("predict", help="classify a new clip (video file or frame folder)")
    p.add_argument("model", help="model.pt from `tscnn train`")
    _add_source_arguments(p, "a video file or a folder of frames")
    p.add_argument("--onset", type=int, help="onset frame number (folder) or index (video); default: the first")
    p.add_argument("--apex", type=int, help="apex frame; default: the spotter's choice")
    p.add_argument("--offset", type=int, help="offset frame; default: the last")
    p.add_argument("--fast", action="store_true", help="the fast path (tscnn.fast): DIS (or the model's own fast "
                   "flow) instead of TV-L1, face found on a shrunk frame, bf16 network where native; for a model "
                   "trained with --flow dis the default answer, for a TV-L1 model often another (a warning says "
                   "so; benchmarks/fast_flow_accuracy.py)")
    add_json_argument(p, "the prediction (phase frames, apex rule, class probabilities, model card)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="write a saved network as ONNX, checked against PyTorch with onnxruntime")
    p.add_argument("model", help="model.pt from `tscnn train` (a network: tscnn, ststnet, offapexnet)")
    p.add_argument("onnx", help="the ONNX file to write")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest allowed |onnxruntime - PyTorch| of logits and probabilities (default 1e-4)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("spot", help="find micro-expression intervals in a long video and classify each")
    _add_source_arguments(p, "a video file or a folder of frames (then give --fps)")
    p.add_argument("--model", help="model.pt from `tscnn train`: classify each interval (default: spot only)")
    p.add_argument("--save-json", type=Path, metavar="FILE", help="also write the intervals (frames, seconds, class "
                   "probabilities) as JSON to FILE")
    add_json_argument(p, "the intervals (frames, seconds, class probabilities)")
    p.add_argument("--fps", type=float, help="frame rate (default: the video's own; required for a frame folder)")
    p.add_argument("--z", type=float, default=SPOT_Z, help="threshold in robust standard deviations of the "
                   f"video's own motion noise (default: {SPOT_Z})")
    p.set_defaults(func=cmd_spot)

    p = sub.add_parser("bench", help="the real-data benchmark: TSCNN and its peers on a flow folder, LOSO and "
                       "cross-database, resumable; merge summaries or compare rows with the floor",
                       description="Every row is an ordinary run in its own results folder under --out (resumed "
                       "when started again); the summary (--summary) keeps each row's UF1 / UAR, seed ensemble, "
                       "leaky shadow, minutes and machine.")
    add_bench_arguments(p)
    add_json_argument(p, "the summary (or the merged summary, or the comparison)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="the main job: synthetic database -> TSCNN LOSO -> report")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("results/demo"))
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("pretrain", help="pre-train TSCNN's input convolutions and trunk: the static stream on "
                       "FER2013 (or synthetic macro-expressions), or the temporal one on synthetic micro-expressions")
    p.add_argument("--source", choices=["fer", "synthetic-macro", "synthetic-micro"],
                   help="what to pre-train on (default: fer with --fer, else synthetic-macro)")
    p.add_argument("--fer", help="fer2013.csv or icml_face_data.csv (--source fer)")
    p.add_argument("--streams", default="dt", help="synthetic-micro: the streams trained, comma-separated (default dt)")
    p.add_argument("--dt-format", default="frames", choices=["frames", "flow-folder"],
                   help="synthetic-micro: DT as the frames' 4 flow maps, or a flow folder's u, v, strain (composite)")
    p.add_argument("--data", type=Path, help="synthetic-micro: folder of its database, made once "
                   "(default data/synthetic-pretrain-s<data seed>-n<subjects>)")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="synthetic-micro: prepared-input cache")
    p.add_argument("--jobs", type=int, default=1, help="synthetic-micro: clips prepared at once in worker processes "
                   "the first time (default: 1; the tensors do not depend on it)")
    p.add_argument("--out", type=Path, default=Path("results/pretrain"))
    p.add_argument("--preset", default="paper", choices=CHOICES["preset"])
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--patience", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-rows", type=int, help="read only the first rows of the FER2013 file")
    p.add_argument("--synthetic-subjects", type=int,
                   help="subjects of a synthetic set (default 40 macro, 200 micro)")
    p.add_argument("--seed", type=int, default=0, help="training seed; a synthetic set's data seed too "
                   "(micro: 1000 + seed, apart from every evaluation seed)")
    p.add_argument("--device", help="cpu (default), cuda or auto")
    p.add_argument("--threads", type=int)
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("datasets", help="inspect a database")
    dsub = p.add_subparsers(dest="action", required=True)
    d = dsub.add_parser("describe", help="clips per class and subject, and every quirk found")
    d.add_argument("dataset", choices=CHOICES["dataset"])
    d.add_argument("root")
    d.add_argument("--coding")
    d.add_argument("--classes", help="class set (default: the database's)")
    d.add_argument("--apex-fallback", choices=["spotter", "middle"], default="spotter", help=APEX_HELP)
    d.add_argument("--annotations-only", action="store_true", help="read the annotation file only, not the frames")
    d.add_argument("--apex-root", help="flowfolder: folder of apex face images (index.csv with an apex column)")
    add_json_argument(d, "clips per class, database and subject, and the quirks")
    d.set_defaults(func=cmd_describe)
    return parser


def check_options(args: argparse.Namespace) -> None:
    """Every option in its domain before the command starts (``tscnn.config.DOMAINS`` for the run settings,
    ``OPTION_DOMAINS`` for the others): the same one-line refusal as the Python API's. ``model`` is a file,
    not a registry name, in predict, export and spot."""
    from tscnn.config import DOMAINS, OPTION_DOMAINS, check_domains

    values = {name: _flat(value) for name, value in vars(args).items()}
    file_model = args.command in ("predict", "export", "spot")
    settings = {k: v for k, v in DOMAINS.items() if not (k == "model" and file_model)}
    check_domains(values, {**settings, **OPTION_DOMAINS})


def _flat(value: object) -> object:
    """A list option's items (``--seeds 0,1 2`` parses as [[0, 1], [2]])."""
    if isinstance(value, list):
        return tuple(item for part in value for item in (part if isinstance(part, list) else [part]))
    return value


def main(argv: list[str] | None = None) -> int:
    """Run a command; a bad input or setting ends in one line naming what is wrong and exit code 2
    (``--debug`` shows the traceback instead)."""
    from tscnn.console import plain_warnings

    args = build_parser().parse_args(argv)
    plain_warnings(args.quiet)
    try:
        check_options(args)
        return args.func(args)
    except KeyboardInterrupt as err:  # Ctrl-C: what is saved (tscnn.results_folder.RunInterrupted), no traceback
        if args.debug:
            raise
        print(f"interrupted: {err}" if str(err) else "interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
