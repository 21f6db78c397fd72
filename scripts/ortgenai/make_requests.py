"""The 40 format-2 requests both engines answer (/tmp/ortgenai/requests.json): synthetic music, seed 7,
the function given, as serving renders them. Run from the repository with its venv."""
import json
from pathlib import Path

from odia_stream.datasets.synthetic_music import iter_music_events
from odia_stream.generation.calls import request_for
from odia_stream.prompting.format import render_prompt
from odia_stream.settings import PromptSettings

out = []
for ev in iter_music_events(400, seed=7):
    if ev.call is None:
        continue
    prompt = render_prompt(ev.tools, ev.history, ev.query, PromptSettings(), ev.call.name)
    req = request_for(prompt, None, 96)
    out.append({"messages": req.messages, "json_schema": req.json_schema, "max_new_tokens": req.max_new_tokens,
                "expected_call": ev.call.model_dump()})
    if len(out) == 40:
        break
Path("/tmp/ortgenai").mkdir(exist_ok=True)
Path("/tmp/ortgenai/requests.json").write_text(json.dumps(out, ensure_ascii=False, indent=1))
