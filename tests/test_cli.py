import pytest

from tscnn.cli import main


def test_describe_prints_classes_and_quirks(synth_root, capsys):
    assert main(["datasets", "describe", "casme2", str(synth_root)]) == 0
    out = capsys.readouterr().out
    assert "clips per class" in out and "others" in out and "quirks" in out


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
    assert "synthetic macro-expression set" in out and "PublicTest accuracy" in out
    assert (tmp_path / "pretrained.pt").is_file() and (tmp_path / "pretrain.json").is_file()
