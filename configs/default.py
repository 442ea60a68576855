"""Default run: CodePhys Stage I + Stage II, the PhysNet baseline and POS/CHROM/GREEN
on the embedded synthetic dataset (no download), tiny shapes for a 2-core CPU.

Command (README's main command):

  ./run.sh demo            # = python train.py --config=configs/default.py --workdir=workdirs/default

Hardware / runtime: 2-core x86-64 CPU, no accelerator; see README for the
measured wall time (budget: under 10 minutes including dataset preparation).
Output: workdir/{codebook,codephys,physnet}/ (each a workdir `eval.py
--config.checkpoint=` accepts), workdir/eval/ per method and split, and
workdir/results.json with MAE/RMSE/Pearson per method and condition (clean test
split, degraded test split), with the selected (held-out subjects) and the final
checkpoint of each learned model, and workdir/curves.png. Expected result: the
README's table (measured with this file; the learned models do not yet reach the
unsupervised methods there).
"""

from configs import common


def get_config():
  # 16 px face crops: a quarter of the 32 px cost per step, so both video stages
  # get ~4x the steps in the same minutes (benchmarks/RESULTS.md has the step times).
  c = common.base(dataset="synthetic_rppg", size=16, clip_length=64)
  # Each pixel's change relative to its clip mean, band-limited to the pulse band
  # (codephys_jax.representations; the README has the comparison that chose it).
  c.input_norm = "relative_band"
  c.dataset_options = dict(num_train=16, num_test=8, duration_s=20.0)
  c.val.fraction = 0.25  # 4 of the 16 training subjects select the checkpoint
  # The paper's augmentations and camera degradations: 12 training subjects are
  # few, and without them the models fit those subjects' heart rates.
  c.augment = common.augment(True)
  # A camera degradation on a quarter of the clips (not half): with half, the
  # baseline's training fit stalled earlier (README, "Training").
  c.augment.degradation_prob = 0.25
  # The baseline first: CodePhys starts its backbone from it (init_backbone).
  c.stages = ("codebook", "physnet", "codephys")
  c.codebook = dict(
      model=common.codebook_model(hidden=64, code_dim=32, num_codes=64),
      loss_weights=dict(mse=1.0, neg_pearson=1.0, vq=1.0),
      **common.optim(
          batch_size=32,
          num_steps=300,
          learning_rate=2e-3,
          weight_decay=0.0,
          warmup_steps=30,
          log_every=50,
          eval_every=150,
          clip_stride=8,
      ),
  )
  backbone = dict(base_width=8, output_channels=32, spatial_out=2)
  video_optim = dict(
      batch_size=4,
      learning_rate=1e-3,
      weight_decay=5e-5,
      warmup_steps=20,
      log_every=25,
      clip_stride=16,
  )
  c.physnet = dict(
      model=dict(backbone="physnet", backbone_kwargs=backbone),
      loss_weights=dict(neg_pearson=1.0, freq_ce=0.0, freq_kl=0.0),
      **common.optim(num_steps=450, eval_every=75, **video_optim),
  )
  # Stage II from the baseline's selected backbone: the queries learn the map to
  # the frozen codes from features that already follow the pulse (from scratch,
  # 300 steps left the queries on 2-3 codes and the output without a pulse).
  c.codephys = dict(
      model=common.codephys_model(backbone),
      stage1_workdir="",  # empty: the sibling codebook/ of this run
      init_backbone="physnet",  # the sibling physnet/ run; "" = from scratch
      loss_weights=common.codephys_losses(),
      soft_query_warmup_steps=40,
      **common.optim(num_steps=150, eval_every=50, **video_optim),
  )
  c.compare.splits = {"clean": "test", "degraded": "test_degraded"}
  return c
