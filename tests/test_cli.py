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
