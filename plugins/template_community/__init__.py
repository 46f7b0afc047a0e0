"""Chat formats of single model families from smaller vendors: Aquila (BAAI), BlueLM (vivo), Breeze (MediaTek),
EXAONE (LG), Falcon and Falcon-H1 (TII), OLMo (AI2), OpenChat, Orion (OrionStar), SOLAR (Upstage), XVERSE.

Registration only: the descriptions in impl.py are imported when a config selects one.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("aquila", "AquilaTemplate", "Aquila chat (Human: ... ###Assistant:)", "base", False),
    ("bluelm", "BlueLMTemplate", "BlueLM chat ([|Human|]: / [|AI|]:)", "base", False),
    ("breeze", "BreezeTemplate", "Breeze ([INST] ... [/INST] after bos)", "base", False),
    ("exaone", "ExaoneTemplate", "EXAONE 3 / 3.5 ([|user|] / [|assistant|] ... [|endofturn|])", "base", False),
    ("falcon", "FalconTemplate", "Falcon instruct (User: / Falcon:)", "base", False),
    ("falcon_h1", "FalconH1Template", "Falcon-H1 (ChatML after bos)", "base", False),
    ("olmo", "OLMoTemplate", "OLMo instruct (<|user|> / <|assistant|>)", "base", False),
    ("openchat", "OpenChatTemplate", "OpenChat 3.5 (GPT4 Correct User / Assistant)", "base", False),
    ("openchat-3.6", "OpenChat36Template", "OpenChat 3.6 (Llama 3 header tokens)", "base", False),
    ("orion", "OrionTemplate", "Orion chat (Human: / Assistant:)", "base", False),
    ("solar", "SolarTemplate", "SOLAR instruct (### User: / ### Assistant:)", "base", False),
    ("xverse", "XverseTemplate", "XVERSE chat (Human: / Assistant:)", "base", False),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
