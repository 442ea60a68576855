"""End-to-end training library on a tiny synthetic dataset: every stage, resume,
determinism, export and evaluation of the resulting checkpoints.

The run under test is the session's `tiny_run` (tests/conftest.py): every stage
of `helpers.tiny_config`, trained once in a process without TensorFlow and
shared with tests/test_without_tensorflow.py. The tests here that train again
train only what they need (a stage or two) and compare with it bit for bit.
"""

import json
import os
import shutil

import jax
import ml_collections
import numpy as np
import pytest

from codephys_jax import checkpointing
from codephys_jax import comparison
from codephys_jax import data as data_lib
from codephys_jax import eval_lib
from codephys_jax import export as export_lib
from codephys_jax import inference
from codephys_jax import methods
from codephys_jax import models
from codephys_jax import stages
from codephys_jax import train_lib
from codephys_jax import trainer
from codephys_jax.stages import base as stage_base
from codephys_jax.stages import codebook as codebook_stage
from codephys_jax.stages import codephys as codephys_stage
from codephys_jax.stages import physnet as physnet_stage
from configs import common
from configs import default as default_config
from helpers import tiny_config


@pytest.fixture
def data_dir(tiny_run):
  """The tiny dataset, prepared by the `tiny_run` process."""
  return tiny_run.config.data_dir


@pytest.fixture
def run(tiny_run):
  """(a fresh copy of the config, the run's workdir, its summary)."""
  return tiny_config(tiny_run.config.data_dir), tiny_run.workdir, tiny_run.summary


def test_workdir_layout_and_results_table(run):
  config, workdir, summary = run
  for stage in ("codebook", "codephys", "physnet"):
    assert os.path.isdir(os.path.join(workdir, stage, "checkpoints"))
  with open(os.path.join(workdir, "results.json")) as f:
    results = json.load(f)
  rows = {(r["method"], r["condition"]) for r in results["table"]}
  assert rows == {(m, c) for m in ("codephys", "physnet", "pos") for c in ("clean", "degraded")}
  for r in results["table"]:
    assert r["num_videos"] == 1 and np.isfinite(r["mae"]) and r["mae"] >= 0
  assert set(summary["codebook"]) >= {"recon_mse", "recon_pearson", "perplexity"}
  assert os.path.exists(os.path.join(workdir, "eval", "codephys_test", "metrics.json"))
  # Learned models: the checkpoint selected on the validation subjects and the final one.
  checkpoints = {(r["method"], r["condition"], r["checkpoint"]) for r in results["table"]}
  for m in ("codephys", "physnet"):
    for c in ("clean", "degraded"):
      assert {(m, c, "selected"), (m, c, "final")} <= checkpoints
  final = [r for r in results["table"] if r["checkpoint"] == "final"]
  assert all(r["step"] == config.codephys.num_steps for r in final)
  # Each learned row names its trunk: the `physnet` stage of this config runs the cell trunk.
  for r in results["table"]:
    want = config[r["method"]].model.backbone if r["method"] in stages.METHODS else None
    assert r["backbone"] == want, r
  assert config.physnet.model.backbone == "cell_tcn"
  printed = comparison.format_table(results["table"])
  assert "| physnet [cell_tcn] (selected, step " in printed
  assert "| pos | clean |" in printed


def test_curves_and_scalars_are_written(run):
  from codephys_jax import curves

  _, workdir, _ = run
  assert os.path.getsize(os.path.join(workdir, "curves.png")) > 0
  series = curves.read_scalars(os.path.join(workdir, "codephys", curves.SCALARS_FILE))
  for name in (
      "train/loss",
      "train/perplexity",
      "train/usage",
      "train/target_perplexity",
      "train/code_ce",
      "train/freq_ce",
      "eval/mae",
  ):
    assert name in series and np.all(np.isfinite(series[name][1])), name


def test_same_config_on_the_same_machine_gives_identical_results(run, tmp_path):
  """What is deterministic: the same config and seed, with the same jax/XLA build
  and the same CPU and thread settings, give a bit-identical results.json and
  identical parameters (across machines, XLA's CPU code generation may differ).

  Trains the two video stages again (2 steps each) on a copy of the run's Stage I,
  and compares all of results.json, every row of which they produce again. Stage I
  trained twice is compared in test_killed_run_resumes_to_identical_parameters.
  """
  config, workdir, _ = run
  again = str(tmp_path / "again")
  shutil.copytree(os.path.join(workdir, "codebook"), os.path.join(again, "codebook"))
  config.stages = tuple(s for s in config.stages if s != "codebook")  # physnet, codephys
  config.export = False  # the exported file is not compared
  train_lib.train_and_evaluate(config, again)
  with open(os.path.join(workdir, "results.json")) as f, open(
      os.path.join(again, "results.json")
  ) as g:
    assert json.load(f) == json.load(g)
  for stage in ("codephys", "physnet"):
    a, _, _ = checkpointing.load_params(os.path.join(workdir, stage, "checkpoints"), which="latest")
    b, _, _ = checkpointing.load_params(os.path.join(again, stage, "checkpoints"), which="latest")
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_codephys_uses_the_frozen_stage1_codebook(run):
  _, workdir, _ = run
  s1, s1_state, _ = checkpointing.load_params(os.path.join(workdir, "codebook", "checkpoints"))
  s2, _, meta = checkpointing.load_params(
      os.path.join(workdir, "codephys", "checkpoints"), which="latest"
  )
  np.testing.assert_array_equal(
      np.asarray(s2["stage1_codebook"]["codebook"]),
      np.asarray(s1_state["vq_state"]["quantizer"]["codebook"]),
  )
  for a, b in zip(
      jax.tree.leaves((s2["stage1_decoder"], s2["stage1_encoder"])),
      jax.tree.leaves((s1["decoder"], s1["encoder"])),
  ):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert meta["stage"] == "codephys" and meta["stage1_workdir"].endswith("codebook")


def test_codephys_backbone_starts_from_the_selected_physnet_checkpoint(run):
  """init_backbone='physnet': Stage II's initial backbone (BatchNorm statistics
  included) is the baseline run's selected one; another backbone shape is refused."""
  config, workdir, _ = run
  physnet_dir = os.path.join(workdir, "physnet")
  p_params, p_state, p_meta = checkpointing.load_params(os.path.join(physnet_dir, "checkpoints"))
  _, _, meta = checkpointing.load_params(os.path.join(workdir, "codephys", "checkpoints"))
  assert meta["init_backbone_workdir"] == os.path.abspath(physnet_dir)
  assert meta["init_backbone_step"] == p_meta["step"]
  mesh = trainer.make_mesh()
  builder = data_lib.load_builder(config.dataset, **data_lib.builder_kwargs(config))
  deps, _ = stages.get_stage("codephys").dependencies(config, os.path.join(workdir, "codephys"))
  setup = stages.get_stage("codephys").setup(config, builder, mesh, deps)
  start = trainer.fetch(setup.state.variables)
  _assert_same_backbone(start, p_params, p_state)
  other = dict(config.codephys.model.backbone_kwargs, base_width=2)
  with pytest.raises(ValueError, match="codephys.init_backbone: .* has backbone"):
    stages.get_stage("codephys").dependencies(
        _with(config, "codephys.model.backbone_kwargs", other), os.path.join(workdir, "codephys")
    )
  with pytest.raises(FileNotFoundError, match="physnet' before 'codephys'"):
    stages.get_stage("codephys").dependencies(
        _with(config, "codephys.init_backbone", os.path.join(workdir, "nowhere")),
        os.path.join(workdir, "codephys"),
    )


def _assert_same_backbone(variables, params, state):
  """`variables`' video backbone (params and BatchNorm statistics) is exactly
  that of the checkpoint's `params` / `state`."""
  for ours, theirs in (
      (variables["params"]["video_backbone"], params["video_backbone"]),
      (variables["batch_stats"]["video_backbone"], state["batch_stats"]["video_backbone"]),
  ):
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _with(config, field, value):
  """A copy of `config` with the dotted `field` set to `value`."""
  c = config.copy_and_resolve_references()
  *path, last = field.split(".")
  node = c
  for name in path:
    node = node[name]
  node[last] = value
  return c


def test_physnet_fine_tunes_the_backbone_of_another_run(run, tmp_path):
  """physnet.init_backbone=<a finished run's codephys/ dir>: the baseline's initial
  backbone (BatchNorm statistics included) is that run's selected one, its head is
  fresh, the checkpoint records where it came from; a missing run is named."""
  config, workdir, _ = run
  source = os.path.join(workdir, "codephys")
  c_params, c_state, c_meta = checkpointing.load_params(os.path.join(source, "checkpoints"))
  tuned = _with(config, "physnet.init_backbone", source)
  deps, meta = stages.get_stage("physnet").dependencies(tuned, str(tmp_path / "physnet"))
  assert meta == {
      "init_backbone_workdir": os.path.abspath(source),
      "init_backbone_step": c_meta["step"],
  }
  mesh = trainer.make_mesh()
  builder = data_lib.load_builder(config.dataset, **data_lib.builder_kwargs(config))
  start = trainer.fetch(stages.get_stage("physnet").setup(tuned, builder, mesh, deps).state.variables)
  scratch_deps, _ = stages.get_stage("physnet").dependencies(config, str(tmp_path / "p2"))
  assert scratch_deps is None
  scratch = trainer.fetch(
      stages.get_stage("physnet").setup(config, builder, mesh, scratch_deps).state.variables
  )
  _assert_same_backbone(start, c_params, c_state)
  # Everything else is the from-scratch initialisation (same seed).
  rest = {k: v for k, v in start["params"].items() if k != "video_backbone"}
  assert rest
  for a, b in zip(
      jax.tree.leaves(rest),
      jax.tree.leaves({k: scratch["params"][k] for k in rest}),
      strict=True,
  ):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  with pytest.raises(ValueError, match="sibling shorthand"):
    stages.get_stage("physnet").dependencies(_with(config, "physnet.init_backbone", "physnet"), "")
  with pytest.raises(FileNotFoundError, match="physnet.init_backbone: no checkpoints in"):
    stages.get_stage("physnet").dependencies(
        _with(config, "physnet.init_backbone", str(tmp_path / "nowhere")), str(tmp_path)
    )


def test_training_freezes_exactly_the_models_frozen_subtrees(run):
  """Stage II set-up masks models.FROZEN (teacher_proj included) in the optimiser:
  one step changes the backbone and none of the frozen subtrees."""
  config, workdir, _ = run
  mesh = trainer.make_mesh()
  builder = data_lib.load_builder(config.dataset, **data_lib.builder_kwargs(config))
  stage1 = codephys_stage.load_stage1(os.path.join(workdir, "codebook"))
  setup = stages.get_stage("codephys").setup(config, builder, mesh, stage1)
  assert setup.frozen == models.FROZEN == setup.model.frozen_subtrees()
  before = jax.tree.map(np.array, trainer.fetch(setup.state.params))  # copies: state is donated
  step = trainer.make_train_step(setup.loss_fn, mesh=mesh)
  state = setup.state
  for _, batch in zip(range(2), setup.make_iterator(0)):  # the warm-up's first lr is 0
    state, _ = step(state, trainer.shard_batch(mesh, batch))
  after = trainer.fetch(state.params)
  for name in models.FROZEN:
    for a, b in zip(jax.tree.leaves(before[name]), jax.tree.leaves(after[name])):
      np.testing.assert_array_equal(a, b, err_msg=name)
  assert any(
      np.any(a != b)
      for a, b in zip(
          jax.tree.leaves(before["video_backbone"]), jax.tree.leaves(after["video_backbone"])
      )
  )


def test_export_round_trip_equals_direct_call(run):
  config, workdir, _ = run
  path = os.path.join(workdir, "codephys", "export", export_lib.EXPORT_NAME)
  exported = export_lib.load_exported(path)
  model, variables, _, _ = inference.load_run(os.path.join(workdir, "codephys"))
  # The model's own apply, jitted (op by op it costs a minute of dispatch here).
  direct_fn = jax.jit(lambda v, x: model.apply(v, x, train=False)["rppg"])
  rng = np.random.default_rng(0)
  for batch in (1, 3):
    clips = rng.integers(0, 255, (batch, config.clip_length, 16, 16, 3), dtype=np.uint8)
    direct = direct_fn(variables, stage_base.normalize_frames(clips, config.input_norm))
    np.testing.assert_allclose(np.asarray(exported(clips)), np.asarray(direct), atol=1e-5)
  # The sidecar records the face pipeline, and the exported model asks for it.
  assert export_lib.load_sidecar(path)["preprocess"] == dict(config.preprocess)
  assert methods.from_exported(path).preprocess == dict(config.preprocess)


def test_eval_py_accepts_each_checkpoint(run, tmp_path):
  config, workdir, _ = run
  for method in stages.METHODS:
    cfg = ml_collections.ConfigDict(
        dict(
            method=method,
            dataset="synthetic_rppg",
            split="test",
            manual_dir="",
            data_dir=config.data_dir,
            checkpoint=os.path.join(workdir, method),
            batch_size=2,
            preprocess=dict(config.preprocess),
            dataset_options=dict(config.dataset_options),
            eval=config.eval,
            num_waveform_plots=1,
        )
    )
    out = str(tmp_path / method)
    metrics = eval_lib.evaluate(cfg, out)
    assert metrics["num_videos"] == 1
    for name in ("metrics.json", "per_video.csv", "bland_altman.png"):
      assert os.path.exists(os.path.join(out, name))
    # The saved signals score to the same metrics.
    signals = eval_lib.read_signals(os.path.join(out, eval_lib.SIGNALS_FILE))
    assert len(signals) == 1 and signals[0][1].shape == signals[0][2].shape
    rescored = eval_lib.score(signals, cfg.eval)
    assert rescored.metrics["mae"] == pytest.approx(metrics["mae"], abs=1e-3)
  # Crop size unset: taken from the checkpoint (16 here, eval.py's default would be 72).
  cfg = ml_collections.ConfigDict(
      dict(
          method="codephys",
          dataset="synthetic_rppg",
          split="test",
          manual_dir="",
          data_dir=config.data_dir,
          checkpoint=os.path.join(workdir, "codephys"),
          batch_size=2,
          preprocess={**dict(config.preprocess), "size": None},
          dataset_options=dict(config.dataset_options),
          eval=config.eval,
          num_waveform_plots=1,
      )
  )
  resolved = eval_lib.resolve_preprocess(cfg, eval_lib.make_predictor(cfg))
  assert resolved.preprocess.size == config.preprocess.size and cfg.preprocess.size is None
  single = eval_lib.evaluate(cfg, str(tmp_path / "from_ckpt"))
  assert single["num_videos"] == 1
  # Two runs separated by a comma: their ensemble (here one run twice, whose
  # ensemble is that run's waveform at unit scale: the same heart rate).
  cfg.checkpoint = os.path.join(workdir, "codephys") + "," + os.path.join(workdir, "codephys")
  both = eval_lib.evaluate(cfg, str(tmp_path / "ensemble"))
  assert both["num_videos"] == 1 and both["mae"] == pytest.approx(single["mae"], abs=1e-6)
  sig_one = eval_lib.read_signals(str(tmp_path / "from_ckpt" / eval_lib.SIGNALS_FILE))[0][1]
  sig_two = eval_lib.read_signals(str(tmp_path / "ensemble" / eval_lib.SIGNALS_FILE))[0][1]
  np.testing.assert_allclose(sig_two, (sig_one - sig_one.mean()) / sig_one.std(), atol=1e-4)
  # A checkpoint of the other kind is refused with a clear message.
  with pytest.raises(ValueError, match="holds a 'physnet' run"):
    inference.load_predictor(os.path.join(workdir, "physnet"), method="codephys")


def _codebook_params(workdir):
  params, state, _ = checkpointing.load_params(
      os.path.join(workdir, "codebook", "checkpoints"), which="latest"
  )
  return jax.tree.leaves((params, state))


class Preempted(Exception):
  pass


def _run_killed_at_step_3(config, workdir, monkeypatch):
  """Train until the data iterator dies before step 3 (step 2's checkpoint is written)."""
  original = stage_base.train_iterator

  def killed_at_step_3(*args, **kwargs):
    make = original(*args, **kwargs)

    def make_iterator(start):
      for i, batch in enumerate(make(start)):
        if start + i >= 3:
          raise Preempted()
        yield batch

    return make_iterator

  monkeypatch.setattr(stage_base, "train_iterator", killed_at_step_3)
  with pytest.raises(Preempted):
    train_lib.train_and_evaluate(config, workdir)
  monkeypatch.undo()


def test_killed_run_resumes_to_identical_parameters(run, tmp_path, monkeypatch):
  config, workdir, _ = run
  config = ml_collections.ConfigDict(config.to_dict())
  config.stages = ("codebook",)
  config.compare.enabled = False
  resumed = str(tmp_path / "resumed")
  _run_killed_at_step_3(config, resumed, monkeypatch)
  steps = sorted(
      int(d) for d in os.listdir(os.path.join(resumed, "codebook", "checkpoints")) if d.isdigit()
  )
  assert steps == [2]
  train_lib.train_and_evaluate(config, resumed)
  # Same config and seed, killed and resumed == the module fixture's uninterrupted
  # run, bit for bit (deterministic data order, step-folded RNG, restored state).
  for a, b in zip(_codebook_params(resumed), _codebook_params(workdir)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("stage", ["codebook", "physnet"])
def test_eight_devices_match_one_device_with_the_real_losses(stage):
  """The stage losses (EMA codebook + dead-code restart; PhysNet BatchNorm) give
  the same parameters on 8 data-parallel devices as on 1."""
  config = common.tiny(default_config.get_config())
  rng = np.random.default_rng(0)
  batch = {
      "ppg": rng.standard_normal((8, config.clip_length)).astype(np.float32),
      "frames": rng.integers(0, 255, (8, config.clip_length, 16, 16, 3), dtype=np.uint8),
  }
  cfg = config[stage]
  if stage == "codebook":
    model = codebook_stage.make_model(config)
    loss_fn = codebook_stage.make_loss(model, config)
    post = codebook_stage.make_restart(model, cfg.model.dead_code_threshold)
    init_fn = lambda r, b: model.init(r, b["ppg"], train=False)  # noqa: E731
  else:
    model = physnet_stage.make_model(config)
    loss_fn = physnet_stage.make_loss(model, config)
    post = None
    init_fn = lambda r, b: model.init(  # noqa: E731
        r, stage_base.normalize_frames(b["frames"], config.input_norm), train=False
    )
  results = []
  for devices in (jax.devices()[:1], jax.devices()[:8]):
    mesh = trainer.make_mesh(devices=devices)
    state = trainer.create_train_state(
        init_fn=init_fn,
        tx=stage_base.optimizer(cfg),
        rng=jax.random.key(0),
        mesh=mesh,
        example_batch=batch,
    )
    step = trainer.make_train_step(loss_fn, mesh=mesh, post_update=post)
    for _ in range(3):
      state, metrics = step(state, trainer.shard_batch(mesh, batch))
    results.append(
        (
            trainer.fetch(state.params),
            trainer.fetch(state.model_state),
            float(trainer.fetch(metrics["loss"])),
        )
    )
  (p1, s1, l1), (p8, s8, l8) = results
  assert l1 == pytest.approx(l8, rel=1e-5)
  # Same values up to float reduction order (the FFT of the demo's relative_band
  # input moved one of 6912 weights by 3.5e-6 on parameters of ~0.02).
  for a, b in zip(jax.tree.leaves((p1, s1)), jax.tree.leaves((p8, s8))):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-5)


def test_device_input_pipeline_trains_and_resumes_bit_for_bit(data_dir, tmp_path, monkeypatch):
  """input_pipeline='device' (clips cut and augmented on the devices): a run killed at
  step 3 and resumed ends with the parameters of an uninterrupted run, and the
  video stage trains on device batches with the paper's augmentations."""
  config = tiny_config(data_dir)
  config.stages = ("codebook", "physnet")
  config.compare.enabled = False
  config.export = False
  config.input_pipeline = "device"
  config.augment.enabled = True
  config.augment.degradation_prob = 0.0
  config.augment.speed_range = (0.8, 1.2)
  # Host-only steps of the demo recipe off: HR-balanced speed, illumination
  # changes, Stage I's label speed augmentation.
  config.augment.target_hr_bpm = ()
  config.augment.illumination_change_prob = 0.0
  config.codebook.speed_augment = False
  straight = str(tmp_path / "straight")
  summary = train_lib.train_and_evaluate(config, straight)
  assert np.isfinite(summary["physnet"]["mae"])
  resumed = str(tmp_path / "resumed")
  _run_killed_at_step_3(config, resumed, monkeypatch)
  train_lib.train_and_evaluate(config, resumed)
  for a, b in zip(_codebook_params(resumed), _codebook_params(straight)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  base = [
      checkpointing.load_params(os.path.join(w, "physnet", "checkpoints"), which="latest")[0]
      for w in (resumed, straight)
  ]
  for a, b in zip(jax.tree.leaves(base[0]), jax.tree.leaves(base[1])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_refit_trains_on_the_validation_subjects_up_to_the_selected_step(run, tmp_path):
  """config.refit: every video stage is trained again, on the training split with
  its validation subjects, up to the step the run selected on them; Stage II keeps
  the run's Stage I and starts from the refit baseline; the comparison gets
  `<stage>_refit` rows. `until` outside [1, num_steps] is refused."""
  config, workdir, _ = run
  copy = str(tmp_path / "run")
  shutil.copytree(workdir, copy, ignore=shutil.ignore_patterns(comparison.REFIT_DIR))
  builder = data_lib.load_builder(config.dataset, **data_lib.builder_kwargs(config))
  train, val = data_lib.train_val_videos(builder, config)
  refit_cfg = train_lib.refit_config(config, copy)
  train_all, val_again = data_lib.train_val_videos(builder, refit_cfg)
  subjects = lambda videos: sorted(videos[i]["subject_id"] for i in range(len(videos)))
  assert subjects(train_all) == sorted(subjects(train) + subjects(val))
  assert subjects(val_again) == subjects(val) and not set(subjects(train)) & set(subjects(val))

  summary = train_lib.refit(config, copy)
  assert set(summary) == {"physnet", "codephys"}
  for stage in ("physnet", "codephys"):
    step = train_lib.selected_step(os.path.join(copy, stage))
    assert summary[stage]["step"] == step
    _, _, meta = checkpointing.load_params(
        os.path.join(copy, comparison.REFIT_DIR, stage, "checkpoints"), which="latest"
    )
    assert meta["step"] == step
    # Nothing is selected on the (now trained-on) validation subjects.
    settings = os.path.join(
        copy, comparison.REFIT_DIR, stage, "checkpoints", "codephys_checkpointer.json"
    )
    assert json.load(open(settings))["best_metric"] is None
  _, _, meta = checkpointing.load_params(
      os.path.join(copy, comparison.REFIT_DIR, "codephys", "checkpoints"), which="latest"
  )
  assert meta["stage1_workdir"] == os.path.abspath(os.path.join(copy, "codebook"))
  assert meta["init_backbone_workdir"] == os.path.abspath(
      os.path.join(copy, comparison.REFIT_DIR, "physnet")
  )
  assert meta["init_backbone_step"] == summary["physnet"]["step"]
  assert not any(r["checkpoint"] == "refit" for r in comparison.compare(config, copy)["table"])
  refit_on = _with(config, "refit", True)
  table = comparison.compare(refit_on, copy)["table"]
  refit_rows = {r["method"] for r in table if r["checkpoint"] == "refit"}
  assert refit_rows == {"physnet", "codephys"}

  with pytest.raises(ValueError, match="until=3 must be in"):
    train_lib.train_stage(config, str(tmp_path / "too_far"), stage="physnet", until=3)
  short = str(tmp_path / "short")
  train_lib.train_stage(config, short, stage="physnet", until=1)
  _, _, meta = checkpointing.load_params(os.path.join(short, "checkpoints"), which="latest")
  assert meta["step"] == 1
  # A refit whose step is not the selected one (a stale directory) is refused.
  shutil.rmtree(os.path.join(copy, comparison.REFIT_DIR, "physnet"))
  shutil.copytree(short, os.path.join(copy, comparison.REFIT_DIR, "physnet"))
  with pytest.raises(ValueError, match="not the step"):
    comparison.compare(refit_on, copy)
  # A workdir past the step a run stops at is refused, not silently kept.
  train_lib.train_stage(config, short, stage="physnet")
  with pytest.raises(ValueError, match="past the 1 steps"):
    train_lib.train_stage(config, short, stage="physnet", until=1)
