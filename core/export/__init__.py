"""Export: merge, save, shard, quantize, push."""
