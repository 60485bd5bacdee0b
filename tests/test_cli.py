import pytest

from tscnn.cli import main


def test_describe_prints_classes_and_quirks(synth_root, capsys):
    assert main(["datasets", "describe", "casme2", str(synth_root)]) == 0
    out = capsys.readouterr().out
    assert "clips per class" in out and "others" in out and "quirks" in out


def test_json_is_one_flag_that_prints_json_on_stdout(synth_root, capsys):
    """``--json`` means the same in every command that has it: a flag, the result as JSON on stdout alone."""
    import json

    from tscnn.cli import build_parser

    assert main(["datasets", "describe", "casme2", str(synth_root), "--json"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["clips"] == sum(described["clips_per_class"].values()) == sum(
        described["clips_per_subject"].values())
    assert "others" in described["clips_per_class"] and isinstance(described["quirks"], list)
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse keeps them here
    with_json = {name: sub for name, sub in commands.items() if "--json" in sub._option_string_actions}
    with_json["datasets describe"] = commands["datasets"]._subparsers._group_actions[0].choices["describe"]
    assert {"predict", "spot", "bench", "datasets describe"} <= set(with_json)
    for name, sub in with_json.items():
        action = sub._option_string_actions["--json"]
        assert action.nargs == 0 and action.const is True, name  # a flag, never a file name


def test_bad_root_is_a_clear_error(tmp_path, capsys):
    assert main(["datasets", "describe", "casme2", str(tmp_path)]) == 2
    assert "CASME II coding" in capsys.readouterr().err


def test_synth_command(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "db"), "--subjects", "2", "--seed", "4"]) == 0
    assert (tmp_path / "db" / "CASME2-coding-synthetic.xlsx").exists()
    with pytest.raises(SystemExit):
        main(["synth", str(tmp_path / "db"), "--layout", "casme4"])


def test_describe_real_casme3_annotations(real_annotations, capsys):
    args = ["datasets", "describe", "casme3", str(real_annotations), "--annotations-only", "--classes", "7class",
            "--coding", str(real_annotations / "casme3_partA_table.xlsx")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "casme3: 860 clips, 94 subjects" in out and "offset 0 (not annotated)" in out


def test_pretrain_command_without_fer_uses_the_synthetic_set(tmp_path, capsys):
    args = ["pretrain", "--out", str(tmp_path), "--preset", "demo-sgd", "--max-epochs", "1",
            "--synthetic-subjects", "5"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "synthetic macro-expression set" in out and "held-out accuracy" in out and "streams ss;" in out
    assert (tmp_path / "pretrained.pt").is_file() and (tmp_path / "pretrain.json").is_file()


def test_pretrain_command_on_synthetic_micro_expressions(tmp_path, capsys):
    """The temporal stream pre-trained on synthetic subjects of a data seed apart from the evaluated ones; a file
    that cannot load into the network of a run is refused in one line."""
    import torch

    from tscnn.cli import build_parser

    weights = tmp_path / "out" / "pretrained.pt"
    args = ["pretrain", "--source", "synthetic-micro", "--synthetic-subjects", "3", "--seed", "2",
            "--data", str(tmp_path / "db"), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out"),
            "--preset", "tscnn-plus", "--max-epochs", "10", "--threads", "1", "--jobs", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "data seed 1002" in out and "streams dt;" in out
    saved = torch.load(weights, weights_only=True)
    assert saved["streams"] == ["dt"] and saved["channels"] == {"dt": 4} and "input_conv_ss" not in saved
    run = ["run", "--root", str(tmp_path / "db"), "--streams", "dt", "--centre-flow", "--pretrained", str(weights),
           "--out", str(tmp_path / "run")]
    assert main(run) == 2  # refused before the database is read or a results folder made
    err = capsys.readouterr().err.strip()
    assert err.endswith("pretrained.pt: the flow maps were pre-trained with centre_flow=False, scale_flow=False; "
                        "this network has True, False") and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()
    assert main(["pretrain", "--source", "synthetic-macro", "--fer", "x.csv", "--out", str(tmp_path / "o2")]) == 2
    assert "--fer reads FER2013, but --source is synthetic-macro" in capsys.readouterr().err
    assert build_parser().parse_args(["pretrain"]).synthetic_subjects is None  # 40 macro, 200 micro


def test_run_with_the_named_synthetic_pretraining_makes_it_once_and_records_its_file(tmp_path, capsys, monkeypatch):
    import hashlib
    import json

    import tscnn.pretrain as pretrain_module
    from tscnn.synth import SynthSettings, write_database

    monkeypatch.setattr(pretrain_module, "SYNTHETIC_MICRO_SUBJECTS", 3)
    write_database(tmp_path / "db", SynthSettings(subjects=3, seed=5))
    cache = tmp_path / "cache"
    refused = ["run", "--root", str(tmp_path / "db"), "--model", "linear", "--pretrained", "synthetic-micro",
               "--cache", str(cache), "--out", str(tmp_path / "lin")]
    assert main(refused) == 2  # refused before any pre-training
    assert "model linear has none to load them into" in capsys.readouterr().err
    missing = ["run", "--root", str(tmp_path / "none"), "--pretrained", "synthetic-micro", "--cache", str(cache),
               "--out", str(tmp_path / "none-run")]
    assert main(missing) == 2  # the database is read, and refused, before any pre-training
    assert str(tmp_path / "none") in capsys.readouterr().err
    assert not (cache / "pretrained").exists()
    run = ["run", "--root", str(tmp_path / "db"), "--preset", "tscnn-plus-fused", "--pretrained", "synthetic-micro",
           "--size", "16", "--work-size", "64", "--flow", "dis", "--max-epochs", "2", "--average-last", "1",
           "--seeds", "0", "--threads", "1", "--cache", str(cache), "--out", str(tmp_path / "run")]
    assert main(run) == 0
    weights = sorted((cache / "pretrained").glob("synthetic-micro-frames-s1000-n3-*/pretrained.pt"))
    assert len(weights) == 1
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["pretrained"] == str(weights[0])
    fingerprint = json.loads((tmp_path / "run" / "fingerprint.json").read_text())
    assert fingerprint["pretrained_sha1"] == hashlib.sha1(weights[0].read_bytes()).hexdigest()
    stamp = weights[0].stat().st_mtime_ns
    assert main(run) == 0  # the same command resumes the finished run with the same file
    assert weights[0].stat().st_mtime_ns == stamp
