"""FER2013 reader (both variants, real header rows), pre-training and loading its weights."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from tscnn.checkpoints import load_pretrained, save_pretrained
from tscnn.config import from_preset
from tscnn.datasets import DatasetError
from tscnn.datasets.casme2 import read_casme2
from tscnn.datasets.fer2013 import read_fer2013
from tscnn.models.tscnn import TSCNN
from tscnn.pretrain import PRETRAIN_SEED_BASE, WEIGHTS, face_image_set, pretrain, synthetic_micro_set
from tscnn.synth.faces import make_identity
from tscnn.synth.macro import macro_expression_set
from tscnn.train import Trainer, build_model


def test_fer2013_reader_on_the_real_head(fer_head):
    data = read_fer2013(fer_head)
    first = fer_head.read_text().splitlines()[1].split(",")
    assert data.images.shape == (31, 48, 48) and data.images.dtype == np.uint8
    assert data.labels[0] == int(first[0])
    assert data.images[0, 0, :5].tolist() == [int(v) for v in first[1].split()[:5]]
    assert data.images[0, 1, 0] == int(first[1].split()[48])  # row-major
    assert set(data.usage) == {"Training"} and len(data.split("Training")) == 31


def test_icml_variant_with_leading_space_headers(fer_head, tmp_path):
    lines = fer_head.read_text().splitlines()
    icml = ["emotion, Usage, pixels"] + [f"{e},{u},{p}" for e, p, u in (line.split(",") for line in lines[1:])]
    (tmp_path / "icml_face_data.csv").write_text("\n".join(icml) + "\n")
    variant = read_fer2013(tmp_path / "icml_face_data.csv")
    original = read_fer2013(fer_head)
    assert np.array_equal(variant.images, original.images) and np.array_equal(variant.labels, original.labels)


def test_fer2013_bad_rows_name_file_and_row(tmp_path):
    good = " ".join(["7"] * 2304)
    short = " ".join(["1"] * 2303)
    (tmp_path / "short.csv").write_text(f"emotion,pixels,Usage\n0,{good},Training\n3,{short},Training\n")
    with pytest.raises(DatasetError, match=r"short.csv row 3: expected 2304 pixel values in 0..255, got 2303"):
        read_fer2013(tmp_path / "short.csv")
    (tmp_path / "label.csv").write_text(f"emotion,pixels,Usage\n9,{good},Training\n")
    with pytest.raises(DatasetError, match=r"label.csv row 2: emotion '9'"):
        read_fer2013(tmp_path / "label.csv")
    (tmp_path / "cols.csv").write_text("emotion,Usage\n0,Training\n")
    with pytest.raises(DatasetError, match="missing columns"):
        read_fer2013(tmp_path / "cols.csv")


def test_synthetic_macro_set_has_fer2013_shape():
    data = macro_expression_set(subjects=5, per_class=1)
    assert data.images.shape == (35, 48, 48) and np.bincount(data.labels).tolist() == [5] * 7
    assert len(data.split("PublicTest")) == 7  # one held-out identity


def test_pretrain_saves_weights_the_main_job_loads(tmp_path):
    data = macro_expression_set(subjects=5, per_class=1)
    config = from_preset("demo-sgd", max_epochs=1)
    summary = pretrain(face_image_set(data), config, tmp_path, progress=False)
    assert (tmp_path / WEIGHTS).is_file() and summary["val_rows"] == 7 and summary["streams"] == ["ss"]
    saved = torch.load(tmp_path / WEIGHTS, weights_only=True)
    model = build_model(replace(config, pretrained=str(tmp_path / WEIGHTS)), num_classes=5)
    assert torch.equal(model.input_convs["ss"][0].weight, saved["input_conv_ss"]["0.weight"])
    trunk = model.trunk.state_dict()
    assert trunk.keys() == saved["trunk"].keys()
    assert all(torch.equal(trunk[k], saved["trunk"][k]) for k in trunk)
    fresh = build_model(config, num_classes=5)
    assert not torch.equal(fresh.input_convs["ss"][0].weight, saved["input_conv_ss"]["0.weight"])
    with pytest.raises(FileNotFoundError, match="tscnn pretrain"):
        load_pretrained(fresh, tmp_path / "missing.pt")


def test_training_resumes_from_its_checkpoint(tmp_path):
    """An interrupted run resumed from the checkpoint ends exactly where an uninterrupted one does."""
    data = macro_expression_set(subjects=4, per_class=1)
    arrays = {"ss": (data.images[:, None, None] / 255.0).astype(np.float16)}
    train, val = data.split("Training"), data.split("PublicTest")
    config = replace(from_preset("demo-sgd", streams=("ss",), max_epochs=2, patience=5), bf16=False)
    whole = Trainer(config, 7, seed=1).fit(arrays, data.labels, train, val, progress=False)
    checkpoint = tmp_path / "ckpt.pt"
    Trainer(replace(config, max_epochs=1), 7, seed=1).fit(arrays, data.labels, train, val, progress=False,
                                                           checkpoint=checkpoint)
    resumed = Trainer(config, 7, seed=1).fit(arrays, data.labels, train, val, progress=False, checkpoint=checkpoint)
    assert [h["train_loss"] for h in resumed.history] == pytest.approx([h["train_loss"] for h in whole.history])
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float())


def _tiny_prep_config():
    recipe = from_preset("tscnn-plus", max_epochs=2, average_last=1, threads=1)
    return replace(recipe, flow="dis", work_size=64, size=16, augment=False, bf16=False)


def test_synthetic_micro_set_holds_out_subjects_and_never_reuses_an_evaluation_seed(tmp_path):
    data = synthetic_micro_set(3, 0, _tiny_prep_config(), tmp_path / "db", tmp_path / "cache", progress=False)
    stamp = json.loads((tmp_path / "db" / "synth_settings.json").read_text())
    assert stamp["seed"] == PRETRAIN_SEED_BASE and stamp["subjects"] == 3
    n = len(data.labels)
    assert data.arrays["dt"].shape == (n, 1, 4, 16, 16) and set(data.arrays) == {"dt"}
    assert data.classes == ("disgust", "happiness", "repression", "surprise", "others")
    assert set(data.labels) <= set(range(5))
    assert sorted([*data.train, *data.val]) == list(range(n)) and len(data.val) > 0
    # The demo's first face (data seed 0, subject 0) is not the pre-training set's.
    assert not np.array_equal(make_identity(np.random.default_rng([0, 0, 0])).image,
                              make_identity(np.random.default_rng([stamp["seed"], 0, 0])).image)
    again = synthetic_micro_set(3, 0, _tiny_prep_config(), tmp_path / "db", tmp_path / "cache", progress=False)
    assert np.array_equal(again.arrays["dt"], data.arrays["dt"])  # the folder is reused, not written again
    with pytest.raises(ValueError, match="other settings .subjects 3, seed 1000"):
        synthetic_micro_set(4, 0, _tiny_prep_config(), tmp_path / "db", tmp_path / "cache", progress=False)


def test_synthetic_micro_set_in_the_composite_format_gives_u_v_strain_of_the_same_clips(tmp_path):
    frames = synthetic_micro_set(3, 0, _tiny_prep_config(), tmp_path / "db", tmp_path / "cache", progress=False)
    flows = synthetic_micro_set(3, 0, _tiny_prep_config(), tmp_path / "db", tmp_path / "cache",
                                dt_format="flow-folder", progress=False)
    assert (tmp_path / "db-flow16" / "index.csv").is_file()
    assert flows.arrays["dt"].shape == (len(frames.labels), 1, 3, 16, 16)
    assert [flows.classes[i] for i in flows.labels] == [frames.classes[i] for i in frames.labels]
    assert np.array_equal(flows.val, frames.val)
    with pytest.raises(ValueError, match="a flow folder gives the DT stream only, not ss, dt"):
        synthetic_micro_set(3, 0, _tiny_prep_config(), tmp_path / "db", streams=("ss", "dt"),
                            dt_format="flow-folder")


def _held_out_by_subject(tmp_path, subjects: int = 3):
    return synthetic_micro_set(subjects, 1, _tiny_prep_config(), tmp_path / "db", tmp_path / "cache",
                               progress=False)


def test_held_out_rows_are_whole_subjects(tmp_path):
    data = _held_out_by_subject(tmp_path)
    table = read_casme2(tmp_path / "db").table
    assert set(table.subject[data.train]).isdisjoint(set(table.subject[data.val]))
    assert set(table.subject[data.val]) == {"sub03"}  # the last fifth, at least one


def test_temporal_pretraining_loads_its_input_conv_and_trunk_and_leaves_the_rest_to_the_seed(tmp_path):
    """A DT-pre-trained file fills the DT input convolution and the shared trunk of a three-stream network;
    the static streams' input convolutions and the dense layers keep the seed's random weights."""
    data = _held_out_by_subject(tmp_path)
    config = _tiny_prep_config()
    summary = pretrain(data, config, tmp_path / "out", progress=False)
    assert summary["streams"] == ["dt"]
    saved = torch.load(tmp_path / "out" / WEIGHTS, weights_only=True)
    channels = {"ss": 1, "ls": 9, "dt": 4}
    run = replace(config, streams=("ss", "ls", "dt"))
    torch.manual_seed(5)
    model = build_model(replace(run, pretrained=str(tmp_path / "out" / WEIGHTS)), 5, channels)
    torch.manual_seed(5)
    fresh = build_model(run, 5, channels)
    assert torch.equal(model.input_convs["dt"][0].weight, saved["input_conv_dt"]["0.weight"])
    assert all(torch.equal(v, saved["trunk"][k]) for k, v in model.trunk.state_dict().items())
    assert not torch.equal(fresh.input_convs["dt"][0].weight, saved["input_conv_dt"]["0.weight"])
    for name in ("input_convs.ss.0.weight", "input_convs.ls.0.weight", "dense1.dt.2.weight", "classifier.1.weight"):
        assert torch.equal(model.state_dict()[name], fresh.state_dict()[name]), name
    unshared = build_model(replace(run, share_trunk=False), 5, channels)
    assert load_pretrained(unshared, tmp_path / "out" / WEIGHTS) == ["input_conv_dt", "trunk of dt"]
    assert all(torch.equal(v, saved["trunk"][k]) for k, v in unshared.trunks["dt"].state_dict().items())


def test_pretrained_dense_also_starts_the_pre_trained_streams_dense1_from_the_file(tmp_path):
    """With --pretrained-dense the DT stream's Dense 1 layer comes from the file as well; the static streams'
    Dense 1, Dense 2 and the classifier keep the seed's random weights, and without the option Dense 1 does too."""
    source = TSCNN(5, ("dt",), input_size=16)
    for parameter in source.dense1["dt"].parameters():
        torch.nn.init.normal_(parameter, mean=1.0)  # far from any seed's initialisation (biases start at 0)
    save_pretrained(source, tmp_path / "dt.pt", "test", 0.5)
    saved = torch.load(tmp_path / "dt.pt", weights_only=True)
    assert torch.equal(saved["dense1_dt"]["2.weight"], source.dense1["dt"][2].weight)
    torch.manual_seed(3)
    with_dense = TSCNN(5, ("ss", "ls", "dt"), input_size=16)
    torch.manual_seed(3)
    without = TSCNN(5, ("ss", "ls", "dt"), input_size=16)
    fresh = {k: v.clone() for k, v in without.state_dict().items()}
    assert load_pretrained(with_dense, tmp_path / "dt.pt", dense=True) == ["input_conv_dt", "dense1_dt", "trunk"]
    assert load_pretrained(without, tmp_path / "dt.pt") == ["input_conv_dt", "trunk"]
    for name in ("dense1.dt.2.weight", "dense1.dt.2.bias", "dense1.dt.3.weight"):
        assert torch.equal(with_dense.state_dict()[name], source.state_dict()[name]), name
        assert not torch.equal(without.state_dict()[name], source.state_dict()[name]), name
    for name in ("dense1.ss.2.weight", "dense1.ls.2.weight", "dense2.1.weight", "classifier.1.weight"):
        assert torch.equal(with_dense.state_dict()[name], fresh[name]), name
    config = from_preset("tscnn-plus", size=16, streams=("ss", "ls", "dt"), pretrained=str(tmp_path / "dt.pt"),
                         pretrained_dense=True)
    built = build_model(config, 5, {"ss": 1, "ls": 9, "dt": 4})
    assert torch.equal(built.dense1["dt"][2].weight, source.dense1["dt"][2].weight)


def test_pretrained_dense_is_refused_in_one_line_where_it_cannot_load(tmp_path):
    with pytest.raises(ValueError, match="pretrained_dense loads Dense 1 from the pre-trained weights: give "
                                         "--pretrained too"):
        from_preset("tscnn-plus", pretrained_dense=True)
    old = TSCNN(5, ("dt",), input_size=16)  # a file made before Dense 1 was saved
    torch.save({"input_conv_dt": old.input_convs["dt"].state_dict(), "trunk": old.trunk.state_dict(),
                "streams": ["dt"], "channels": {"dt": 4}, "source": "old", "val_accuracy": 0.3}, tmp_path / "old.pt")
    model = TSCNN(5, ("ss", "dt"), input_size=16)
    with pytest.raises(ValueError, match=r"old.pt: holds no Dense 1 layer of the dt stream \(made before they were "
                                         r"saved\): make the file again for --pretrained-dense$"):
        load_pretrained(model, tmp_path / "old.pt", dense=True)
    assert load_pretrained(model, tmp_path / "old.pt") == ["input_conv_dt", "trunk"]  # as before without it
    static = TSCNN(5, ("ss",), input_size=16)
    with pytest.raises(ValueError, match=r"--pretrained-dense needs a pre-trained stream this network has; the "
                                         r"file's streams are dt$"):
        load_pretrained(static, _save_dt_weights(tmp_path / "dt.pt"), dense=True)
    wider = TSCNN(5, ("dt",), input_size=24)  # trunk maps of another size: Dense 1 reads more features
    with pytest.raises(ValueError, match=r"dt.pt: dense1_dt was pre-trained with shape \(256, 512\) \(units x "
                                         r"trunk features\); this network's is \(256, 1152\)$"):
        load_pretrained(wider, tmp_path / "dt.pt", dense=True)


def _save_dt_weights(path, channels: int = 4, centre_flow: bool = False):
    model = TSCNN(5, ("dt",), channels={"dt": channels}, input_size=16, centre_flow=centre_flow)
    save_pretrained(model, path, "test", 0.5)
    return path


def test_pretrained_weights_that_cannot_fit_are_refused_in_one_line(tmp_path):
    weights = _save_dt_weights(tmp_path / "dt4.pt")
    flow_folder_net = TSCNN(3, ("ss", "ls", "dt"), channels={"dt": 3}, input_size=16)
    with pytest.raises(ValueError, match=r"dt4.pt: input_conv_dt was pre-trained on 4 input channels; this "
                                         r"network's dt stream has 3$"):
        load_pretrained(flow_folder_net, weights)
    centred = TSCNN(5, ("dt",), input_size=16, centre_flow=True)
    with pytest.raises(ValueError, match="centre_flow=False, scale_flow=False; this network has True, False"):
        load_pretrained(centred, weights)
    static_unshared = TSCNN(5, ("ss",), input_size=16, share_trunk=False)
    with pytest.raises(ValueError, match=r"for the dt stream\(s\) and a shared trunk; this network has neither"):
        load_pretrained(static_unshared, weights)


def test_weights_files_from_before_the_streams_were_recorded_still_load(tmp_path):
    """The earlier format (the static stream's input convolution and the trunk, nothing else) loads as before."""
    old = TSCNN(7, ("ss",), input_size=16)
    torch.save({"input_conv_ss": old.input_convs["ss"].state_dict(), "trunk": old.trunk.state_dict(),
                "source": "old", "val_accuracy": 0.3}, tmp_path / "old.pt")
    model = TSCNN(5, ("ss", "ls", "dt"), input_size=16, centre_flow=True)  # the centring concerns flow maps only
    assert load_pretrained(model, tmp_path / "old.pt") == ["input_conv_ss", "trunk"]
    assert torch.equal(model.input_convs["ss"][0].weight, old.input_convs["ss"][0].weight)
    dt_only = TSCNN(5, ("dt",), input_size=16)
    assert load_pretrained(dt_only, tmp_path / "old.pt") == ["trunk"]


def test_the_named_synthetic_pretraining_is_made_once_in_the_cache_in_the_database_format(tmp_path, monkeypatch,
                                                                                         request):
    import tscnn.pretrain as pretrain_module
    from tscnn.checkpoints import SYNTHETIC_MICRO, read_pretrained

    monkeypatch.setattr(pretrain_module, "SYNTHETIC_MICRO_SUBJECTS", 3)
    trained_on = []
    real_pretrain = pretrain_module.pretrain

    def pretrain_spy(data, config, out, progress=True):
        summary = real_pretrain(data, config, out, progress=progress)
        trained_on.append((config.threads, torch.get_num_threads()))
        return summary

    monkeypatch.setattr(pretrain_module, "pretrain", pretrain_spy)
    run = replace(_tiny_prep_config(), dataset="flowfolder", streams=("ss", "ls", "dt"), pretrained=SYNTHETIC_MICRO,
                  threads=2)
    test_threads = torch.get_num_threads()
    request.addfinalizer(lambda: torch.set_num_threads(test_threads))
    torch.set_num_threads(2)
    with pytest.raises(ValueError, match="--pretrained synthetic-micro makes its weights once in the cache: give "
                                         "--cache DIR"):
        pretrain_module.with_pretrained_file(run, None)
    resolved = pretrain_module.with_pretrained_file(run, tmp_path / "cache", progress=False)
    assert trained_on == [(1, 1)]  # one thread whatever --threads says: one file per machine
    assert torch.get_num_threads() == 2  # and the run goes on with its own thread count
    weights = tmp_path / "cache" / "pretrained"
    made = sorted(weights.glob("*/pretrained.pt"))
    assert [str(p) for p in made] == [resolved.pretrained]
    assert made[0].parent.name.startswith("synthetic-micro-flow-folder-s1000-n3-")
    saved = torch.load(made[0], weights_only=True)
    assert saved["streams"] == ["dt"] and saved["channels"] == {"dt": 3}  # the composite's u, v, strain
    state, common = read_pretrained(resolved.pretrained, run.streams, True, run.centre_flow, run.scale_flow)
    assert common == ["dt"]
    stamp = made[0].stat().st_mtime_ns
    assert pretrain_module.with_pretrained_file(run, tmp_path / "cache", progress=False) == resolved
    assert made[0].stat().st_mtime_ns == stamp  # reused, not trained again
    frames = pretrain_module.with_pretrained_file(replace(run, dataset="casme2"), tmp_path / "cache", progress=False)
    assert torch.load(frames.pretrained, weights_only=True)["channels"] == {"dt": 4}  # the frames' flow maps
    other = replace(run, pretrained=str(made[0]))
    assert pretrain_module.with_pretrained_file(other, None) is other  # a file is left as it is
    dense = pretrain_module.with_pretrained_file(replace(run, pretrained_dense=True), tmp_path / "cache",
                                                 progress=False)
    assert dense.pretrained == resolved.pretrained.replace(made[0].parent.name, made[0].parent.name + "-dense1")
    assert "dense1_dt" in torch.load(dense.pretrained, weights_only=True)  # a file of its own, made anew
