"""ByteDance Seed chat formats: Seed-Coder and Seed-OSS (reasoning in <seed:think>).

Registration only: the descriptions in impl.py are imported when a config selects one.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("seed_coder", "SeedCoderTemplate", "Seed-Coder instruct (bos role ... eos)", "base", False),
    ("seed_oss", "SeedOSSTemplate", "Seed-OSS with <seed:think> reasoning", "base", True),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
