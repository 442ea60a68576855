"""Default run: CodePhys Stage I + Stage II, the no-codebook baseline and POS/CHROM/GREEN
on the embedded synthetic dataset (no download), tiny shapes for a 2-core CPU.

Command:

  ./run.sh demo  # = python train.py --config=configs/default.py --workdir=workdirs/default

Hardware / runtime: 2-core x86-64 CPU, no accelerator; 5 min 45 s with the
dataset already prepared (2026-12-03, idle machine), 8 min 19 s from scratch
(2026-11-27). Output: workdir/{codebook,codephys,physnet}/ (each a workdir
`eval.py --config.checkpoint=` accepts), workdir/eval/ per method and split, and
workdir/results.json with MAE/RMSE/Pearson per method and condition (clean test
split, degraded test split), with the selected (held-out subjects) and the final
checkpoint of each learned model, and workdir/curves.png. Expected result
(measured with this file on 2026-12-03): the baseline exact on all 8 clean test
videos (MAE 0.00 bpm), CodePhys on 7, the 53 bpm subject at its second harmonic
(MAE 6.37; the same code gave 0.00 on the machine of 2026-11-27), and both on 7
of the 8 degraded ones, one FFT bin off on the eighth (MAE 0.22 bpm).

How each setting below was chosen, with the runs behind it: docs/EXPERIMENTS.md.
"""

from configs import common


def get_config():
  # 16 px crops (the cell trunk pools them to 4 x 4 cells); 128-frame clips so the
  # frequency loss can tell a 50 bpm pulse from its 2nd harmonic (64 frames cannot).
  c = common.base(dataset="synthetic_rppg", size=16, clip_length=128)
  # Each pixel's change relative to its clip mean, band-limited to 0.6-4 Hz.
  c.input_norm = "relative_band"
  c.dataset_options = dict(num_train=16, num_test=8, duration_s=20.0)
  c.val.fraction = 0.25  # 4 of the 16 training subjects select the checkpoint
  # The paper's augmentations + camera degradations: without them 12 subjects are fitted.
  c.augment = common.augment(True)
  c.augment.degradation_prob = 0.25  # at 0.5 the baseline's training fit stalled earlier
  # HR-balanced speed: each clip is replayed to put its pulse at a target rate drawn
  # log-uniformly over 40-150 bpm, so no filter is learned for the subjects' own rates.
  c.augment.speed_range = (0.4, 1.6)
  c.augment.target_hr_bpm = (40.0, 150.0)
  c.augment.target_hr_scale = "log"  # uniform in bpm: 45-60 bpm rare, slow pulses went to 2f0
  # Flicker and brightness steps on half of the clips, so the models do not follow the light.
  c.augment.illumination_change_prob = 0.5
  # The baseline first: CodePhys starts its backbone from it (init_backbone).
  c.stages = ("codebook", "physnet", "codephys")
  c.codebook = dict(
      model=common.codebook_model(hidden=64, code_dim=32, num_codes=64),
      speed_augment=True,  # label clips get the same HR-balanced speed: codes at 40-150 bpm
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
  # The cell trunk (models/cell_tcn.py CellTCNBackbone) for both video models: it averages
  # 4 x 4 skin cells first and its step is 7.6x cheaper than a 16 px PhysNet's
  # (benchmarks/backbones.py).
  backbone = dict(
      grid=4,
      width=32,
      output_channels=32,
      spatial_out=2,
      num_blocks=4,
      temporal_kernel=5,
      colour_norm="instance",
  )
  video_optim = dict(
      batch_size=4,
      learning_rate=1e-3,
      weight_decay=5e-5,
      warmup_steps=20,
      log_every=50,
      clip_stride=16,
  )
  c.physnet = dict(
      model=dict(backbone="cell_tcn", backbone_kwargs=backbone),
      # Frequency CE 1.0 (0.1-0.2 did not): keeps a slow double-humped beat off its 2nd harmonic.
      loss_weights=dict(neg_pearson=1.0, freq_ce=1.0, freq_kl=0.0),
      ema_decay=0.0,  # > 0: evaluate, select and export a moving average of the parameters
      init_backbone="",  # "" = from scratch; a run's physnet/ or codephys/ dir = fine-tune its backbone
      **common.optim(num_steps=1000, eval_every=100, **video_optim),
  )
  # Stage II starts from the baseline's selected backbone (from scratch it learned no pulse).
  c.codephys = dict(
      model=common.codephys_model(backbone, backbone="cell_tcn"),
      stage1_workdir="",  # empty: the sibling codebook/ of this run
      init_backbone="physnet",  # the sibling physnet/ run; "" = from scratch
      loss_weights=dict(common.codephys_losses(), freq_ce=1.0),  # as the baseline's
      soft_query_warmup_steps=40,
      ema_decay=0.0,
      **common.optim(num_steps=400, eval_every=50, **video_optim),
  )
  c.compare.splits = {"clean": "test", "degraded": "test_degraded"}
  return c
