"""Media preprocessing speed: images per second through a media processor, with 1 and 2 worker processes.

    python benchmarks/media_preprocess.py [--images 200] [--workers 1,2] [--family qwen2_vl] [--lf-python PY]

A generated set of images of mixed sizes (PNG and JPEG, from 64x48 to 1920x1080) becomes one conversation each
("<image>" and a question, then an answer). Each image goes through the whole path of a training row: the media
processor decodes and regularises it (``load``: image_min_pixels/image_max_pixels at their defaults), expands the
placeholder into the model's tokens (``expand_placeholders``), the template encodes the conversation, and
``model_inputs`` builds the model's tensors (pixel values, grids) for the row. The model is tunefactory's tiny random
model of the family, with the family's template; its processor is the family's real image processor.

Each measurement runs in a fresh process: the processor, tokenizer and image list are loaded first (not timed),
then the rows are spread over a pool of worker processes (fork; one worker: in the process itself), each with one
torch thread. It reports images per second of wall time, images per CPU-second (user + system time of the process
and its workers: a figure other load on the machine disturbs less), tokens and pixel values (to check that two
implementations do the same work) and the peak resident memory. With --lf-python (or when this python can import
llamafactory), the same rows go through LLaMA-Factory's mm_plugin (process_messages, encode_oneturn,
process_token_ids, get_mm_inputs) in that environment and the ratios are printed; otherwise the comparison is
skipped, and the script says so. With --repeat N, each measurement runs N times (alternating) and the best run counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import textwrap
from pathlib import Path

from harness import best_of, cpu_seconds, lf_python, peak_mib, run_child

CHILD_ENV = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
SIZES = ((64, 48), (320, 240), (640, 480), (800, 800), (1024, 768), (1280, 720), (256, 1024), (1920, 1080),
         (500, 375), (96, 96))
QUESTION = "What does this picture show?"
ANSWER = "A coloured gradient with a square in it."


def make_images(folder: Path, count: int) -> list[str]:
    """``count`` images cycling through SIZES, PNG and JPEG alternating (deterministic)."""
    from tunefactory.testing.media_samples import make_image

    paths = []
    for index in range(count):
        width, height = SIZES[index % len(SIZES)]
        suffix = "png" if index % 2 == 0 else "jpg"
        paths.append(make_image(folder / f"img{index:04d}.{suffix}", width, height, seed=index))
    return paths


def conversation() -> list[dict[str, str]]:
    return [{"role": "user", "content": "<image>" + QUESTION}, {"role": "assistant", "content": ANSWER}]


# -- children -------------------------------------------------------------------------------------------------------


_STATE: dict = {}  # what the workers inherit through fork: the loaded processors and the image paths


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _ours_row(index: int) -> tuple[int, int]:
    """(tokens, pixel values) of one row through tunefactory's media processor."""
    import torch

    state = _STATE
    media = state["media_processor"].load(images=[state["paths"][index]])
    messages = state["media_processor"].expand_placeholders(conversation(), media, state["processor"])
    turns = state["template"].encode_turns(state["tokenizer"], messages)
    ids = [token for prompt, answer in turns for token in (*prompt, *answer)]
    inputs = state["media_processor"].model_inputs([media], torch.tensor([ids]), state["processor"])
    return len(ids), sum(v.numel() for k, v in inputs.items() if k.startswith("pixel_values"))


def _run_rows(row, count: int, workers: int) -> list[tuple[int, int]]:
    if workers <= 1:
        return [row(i) for i in range(count)]
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(workers, initializer=_one_thread) as pool:
        results = pool.map(row, range(count), chunksize=max(1, count // (workers * 8)))
        pool.close()
        pool.join()
    return results


def child_ours(image_dir: str, family: str, template_name: str, workers: int) -> dict:
    import time

    from tunefactory.config.loader import Setting
    from tunefactory.config.run_config import build_config
    from tunefactory.data.media import MediaOptions, media_processor_for
    from tunefactory.data.templates import get_template
    from tunefactory.model.tokenizer import load_tokenizer
    from tunefactory.testing.tiny_multimodal import tiny_multimodal_path

    options = {"model_name_or_path": tiny_multimodal_path(family), "template": template_name, "do_train": True}
    config, problems = build_config([Setting(k, v, "bench") for k, v in options.items()], command="train")
    if problems:
        raise SystemExit("\n".join(p.render() for p in problems))
    loaded = load_tokenizer(config)
    if loaded.processor is None:
        raise SystemExit(f"the tiny {family} model has no processor that loads here")
    template = get_template(config, loaded.tokenizer)
    _STATE.update(paths=sorted(str(p) for p in Path(image_dir).iterdir()), tokenizer=loaded.tokenizer,
                  processor=loaded.processor, template=template,
                  media_processor=media_processor_for(template, MediaOptions.from_config(config)))
    _one_thread()
    count = len(_STATE["paths"])
    cpu, start = cpu_seconds(), time.perf_counter()
    results = _run_rows(_ours_row, count, workers)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    return {"images": count, "seconds": seconds, "cpu": cpu, "peak_mib": peak_mib(),
            "tokens": sum(r[0] for r in results), "pixels": sum(r[1] for r in results),
            "processor": f"tunefactory {_STATE['media_processor'].name}"}


LF_CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, time
    image_dir, model, template_name, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    QUESTION, ANSWER = sys.argv[5], sys.argv[6]
    def cpu_seconds():
        return sum(resource.getrusage(w).ru_utime + resource.getrusage(w).ru_stime
                   for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    import torch
    from transformers import AutoProcessor, AutoTokenizer
    from llamafactory.data import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments
    tokenizer = AutoTokenizer.from_pretrained(model)
    try:
        processor = AutoProcessor.from_pretrained(model)
    except ImportError:  # its video processor needs torchvision: build it with the video settings as data
        import transformers
        saved = json.load(open(os.path.join(model, "processor_config.json")))
        class VideoSettings(dict):
            model_input_names = []
            __getattr__ = dict.get
        base = getattr(transformers, saved["processor_class"])
        check = base.check_argument_for_proper_class
        cls = type(base.__name__, (base,), {"check_argument_for_proper_class": lambda self, name, value:
                                            None if name == "video_processor" else check(self, name, value)})
        image_class = getattr(transformers, saved["image_processor"]["image_processor_type"])
        processor = cls(image_processor=image_class.from_pretrained(model), tokenizer=tokenizer,
                        video_processor=VideoSettings(saved.get("video_processor") or {}))
    processor.tokenizer = tokenizer
    for name, value in (("image_max_pixels", 768 * 768), ("image_min_pixels", 32 * 32),
                        ("image_resolution", 768 * 768), ("video_max_pixels", 256 * 256),
                        ("video_min_pixels", 16 * 16), ("video_fps", 2.0), ("video_maxlen", 128)):
        setattr(processor, name, value)  # what LLaMA-Factory's patch_processor sets from its defaults
    template = get_template_and_fix_tokenizer(tokenizer, DataArguments(template=template_name))
    plugin = template.mm_plugin
    paths = sorted(os.path.join(image_dir, p) for p in os.listdir(image_dir))
    def row(index):
        images = [paths[index]]
        messages = [{"role": "user", "content": "<image>" + QUESTION}, {"role": "assistant", "content": ANSWER}]
        messages = plugin.process_messages(messages, images, [], [], processor)
        prompt, answer = template.encode_oneturn(tokenizer, messages)
        ids, _ = plugin.process_token_ids(prompt + answer, None, images, [], [], tokenizer, processor)
        inputs = plugin.get_mm_inputs(images, [], [], [1], [0], [0], [ids], processor)
        return len(ids), sum(v.numel() for k, v in inputs.items() if k.startswith("pixel_values"))
    def one_thread():
        torch.set_num_threads(1)
    one_thread()
    cpu, start = cpu_seconds(), time.perf_counter()
    if workers <= 1:
        results = [row(i) for i in range(len(paths))]
    else:
        import multiprocessing
        with multiprocessing.get_context("fork").Pool(workers, initializer=one_thread) as pool:
            results = pool.map(row, range(len(paths)), chunksize=max(1, len(paths) // (workers * 8)))
            pool.close()
            pool.join()
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print("RESULT " + json.dumps({"images": len(paths), "seconds": seconds, "cpu": cpu,
                                  "peak_mib": max(own, kids) / 1024.0,
                                  "tokens": sum(r[0] for r in results), "pixels": sum(r[1] for r in results),
                                  "processor": "LLaMA-Factory " + type(plugin).__name__}))
    """
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--family", default="qwen2_vl", help="tiny multimodal model family")
    parser.add_argument("--template", default=None, help="template (default: the family's name)")
    parser.add_argument("--lf-python", default=None,
                        help="python of an environment with LLaMA-Factory installed (default: this one, if it can)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best one counts")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--image-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    template = args.template or args.family

    if args.child == "ours":
        print("RESULT " + json.dumps(child_ours(args.image_dir, args.family, template, int(args.workers))))
        return 0

    from tunefactory.testing.tiny_multimodal import tiny_multimodal_path

    model = tiny_multimodal_path(args.family)
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    theirs, why = lf_python(args.lf_python)
    if theirs is None:
        print(f"LLaMA-Factory comparison skipped: {why}")
    with tempfile.TemporaryDirectory(prefix="tf-media-bench-") as tmp:
        image_dir = Path(tmp) / "images"
        make_images(image_dir, args.images)
        print(f"{args.images} images ({len(SIZES)} sizes from 64x48 to 1920x1080, PNG and JPEG), tiny {args.family} "
              f"model {model}, template {template}")
        print(f"{'impl':<16}{'workers':>8}{'images':>8}{'seconds':>9}{'img/s':>8}{'cpu s':>8}{'img/cpu-s':>10}"
              f"{'tokens':>9}{'pixels':>12}{'peak MiB':>9}  processor")
        for count in workers:
            runs: dict[str, list[dict]] = {"tunefactory": []}
            if theirs:
                runs["LLaMA-Factory"] = []
            for _ in range(max(args.repeat, 1)):
                runs["tunefactory"].append(run_child(
                    [sys.executable, __file__, "--child", "ours", "--image-dir", str(image_dir), "--family",
                     args.family, "--template", template, "--workers", str(count)], CHILD_ENV))
                if theirs:
                    runs["LLaMA-Factory"].append(run_child(
                        [theirs, "-c", LF_CHILD, str(image_dir), model, template, str(count), QUESTION, ANSWER],
                        CHILD_ENV))
            best = {}
            for impl, results in runs.items():
                best[impl] = result = best_of(results, "images")
                print(f"{impl:<16}{count:>8}{result['images']:>8}{result['seconds']:>9.2f}{result['rate']:>8.1f}"
                      f"{result['cpu']:>8.1f}{result['cpu_rate']:>10.1f}{result['tokens']:>9}{result['pixels']:>12}"
                      f"{result['peak_mib']:>9.0f}  {result['processor']}")
            if theirs:
                ours, lf = best["tunefactory"], best["LLaMA-Factory"]
                same = "same" if (ours["tokens"], ours["pixels"]) == (lf["tokens"], lf["pixels"]) else "DIFFERENT"
                print(f"  -> {count} worker(s): tunefactory / LLaMA-Factory = {ours['rate'] / lf['rate']:.2f}x "
                      f"images/s, {ours['cpu_rate'] / lf['cpu_rate']:.2f}x images per CPU-second; tokens and "
                      f"pixel values {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
