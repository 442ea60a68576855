"""The printed comparison table tells a cell-trunk run from a PhysNet run."""

from codephys_jax import comparison


def _row(method, backbone, checkpoint="selected", step=1000):
  return dict(
      method=method,
      backbone=backbone,
      checkpoint=checkpoint,
      step=step,
      condition="clean",
      mae=1.0,
      rmse=2.0,
      pearson=0.5,
      snr=3.0,
  )


def test_learned_rows_show_their_backbone():
  assert comparison.method_label(_row("physnet", "cell_tcn")) == (
      "physnet [cell_tcn] (selected, step 1000)"
  )
  assert comparison.method_label(_row("physnet", "physnet", "final", 7)) == (
      "physnet [physnet] (final, step 7)"
  )
  assert comparison.method_label(_row("pos", None, None, None)) == "pos"


def test_rows_without_a_backbone_field_still_print():
  """results.json tables written before rows carried `backbone`."""
  row = _row("physnet", None)
  del row["backbone"]
  table = comparison.format_table([row])
  assert "| physnet (selected, step 1000) | clean | 1.00 | 2.00 | 0.500 | 3.00 |" in table
