"""OpenBMB MiniCPM chat formats: MiniCPM, MiniCPM3, MiniCPM4 and MiniCPM-V (images, videos).

Registration only: the descriptions in impl.py are imported when a config selects one.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("cpm", "CPMTemplate", "MiniCPM (<用户> / <AI>)", "base", False),
    ("cpm3", "CPM3Template", "MiniCPM3 (ChatML after bos)", "base", False),
    ("cpm4", "CPM4Template", "MiniCPM4 (ChatML after bos)", "base", False),
    ("minicpm_v", "MiniCPMVTemplate", "MiniCPM-V 2.6 / MiniCPM-o (images and videos)", "minicpm_v", False),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
