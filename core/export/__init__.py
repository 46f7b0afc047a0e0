"""Export: merge adapters, quantize, save in shards, write what other tools need, check, push.

- `exporter`: ``tunefactory export CONFIG`` (``run``), the order of the work and the checks before loading;
- `target`: the export folder policy (a non-empty folder is refused unless it holds a previous tunefactory export,
  marked by its ``export_check.json``);
- `fit`: whether the adapters fit the base, from shapes alone;
- `calibration`: calibration samples for export_quantization_bit;
- `weights`: shards of at most export_size GB, safetensors or legacy .bin;
- `tokenizer_files`: tokenizer, chat template, slow-tokenizer files, processor;
- `ollama`: the Modelfile;
- `check` and `reload_check`: the export reloaded by plain transformers and compared with the merged model;
- `hub`: export_hub_model_id.
"""
