"""The one internal example format every dataset format is converted to, as rows of a `datasets.Dataset`.

Columns:
- ``prompt``: list of ``{"role", "content"}`` turns ending with a user or observation turn.
- ``response``: the answers to the last prompt turn: one for supervised data, two (chosen, rejected) for pairwise
  data, one for KTO (with ``kto_tag``), none for unsupervised prediction data.
- ``system``: the system prompt ("" when none); ``tools``: the tool definitions as JSON text ("" when none).
- ``images``, ``videos``, ``audios``: media paths, already resolved against media_dir.
- ``kto_tag``: whether a KTO answer is desirable (None for other layouts).
"""

from __future__ import annotations

USER = "user"
ASSISTANT = "assistant"
FUNCTION = "function"
OBSERVATION = "observation"
PROMPT_ROLES = (USER, OBSERVATION)
ANSWER_ROLES = (ASSISTANT, FUNCTION)
COLUMNS = ("prompt", "response", "system", "tools", "images", "videos", "audios", "kto_tag")
