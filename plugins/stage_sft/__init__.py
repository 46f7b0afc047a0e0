"""Supervised fine-tuning on conversations.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_stages(register):
    register(
        "sft",
        "tunefactory.plugins.stage_sft.impl:SupervisedStage",
        summary="supervised fine-tuning on conversations",
        capabilities={"dataset": "supervised"},
    )


@hookimpl
def tunefactory_validate_config(config):
    """do_predict scores the generated answers with BLEU and ROUGE, which need the metrics extra."""
    if config.command != "train" or config.finetuning.stage != "sft" or not config.training.do_predict:
        return []
    from tunefactory.errors import Problem
    from tunefactory.train.metrics import missing_metric_packages

    missing = missing_metric_packages()
    if missing:
        return [Problem("do_predict", f"scoring predictions needs {', '.join(missing)}",
                        'pip install "tunefactory[metrics]"')]
    return []
