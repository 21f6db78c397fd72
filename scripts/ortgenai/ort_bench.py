"""ORT GenAI latency on requests.json. One process per variant (VmHWM = that engine's peak RSS).

usage: ort_bench.py MODEL_DIR {guided,free} {fresh,rewind} OUT_JSON [N_REQUESTS]
  fresh : a new og.Generator per request (no KV reuse across calls)
  rewind: one Generator per distinct system message, kept; each request rewinds it to the end of
          the system message (Generator.rewind_to) and appends only the rest (a prefix cache)
"""
import json, statistics, sys, time
import numpy as np, onnxruntime_genai as og
from transformers import AutoTokenizer

model_dir, guid, mode, out_path = sys.argv[1:5]
n_req = int(sys.argv[5]) if len(sys.argv) > 5 else 40
FLEX = len(sys.argv) > 6 and sys.argv[6] == 'flex'  # llguidance x-guidance whitespace_flexible (llama.cpp's GBNF allows whitespace)
TOK = AutoTokenizer.from_pretrained('/work/main/.odia/cache/smollm2-135m-instruct-0.1.2')
reqs = json.load(open('/tmp/ortgenai/requests.json'))[:n_req]
t0 = time.perf_counter()
cfg = og.Config(model_dir)
cfg.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": 2, "inter_op_num_threads": 1}}}}))
model = og.Model(cfg)
load_ms = (time.perf_counter() - t0) * 1000
EOS = {0, 2}  # <|endoftext|>, <|im_end|>


def json_object_end(text):  # copy of odia_stream.generation.json_stop.json_object_end
    depth = 0; in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped: escaped = False
            elif ch == "\\": escaped = True
            elif ch == '"': in_string = False
        elif ch == '"' and depth: in_string = True
        elif ch in "{[": depth += 1
        elif ch in "}]" and depth:
            depth -= 1
            if depth == 0: return i + 1
    return None


def prompt_ids(messages):
    text = TOK.apply_chat_template([dict(m) for m in messages], add_generation_prompt=True, tokenize=False)
    ids = TOK(text, add_special_tokens=False)['input_ids']
    sys_len = 0
    if len(messages) >= 2 and messages[0]['role'] == 'system':
        head = TOK(TOK.apply_chat_template([dict(messages[0])], tokenize=False), add_special_tokens=False)['input_ids']
        if len(head) < len(ids) and ids[:len(head)] == head: sys_len = len(head)
    return ids, sys_len


kept = {}  # rewind mode: (system tokens, schema) -> Generator


def generate(messages, schema, max_new):
    if FLEX and schema is not None: schema = {**schema, 'x-guidance': {'whitespace_flexible': True}}
    ids, sys_len = prompt_ids(messages)
    if mode == 'rewind' and sys_len:
        key = (tuple(ids[:sys_len]), json.dumps(schema, sort_keys=True) if (guid == 'guided' and schema is not None) else None)
        g = kept.get(key)
        if g is None:
            p = og.GeneratorParams(model)
            p.set_search_options(do_sample=False, max_length=384)
            if key[1] is not None: p.set_guidance('json_schema', json.dumps(schema))
            g = og.Generator(model, p); g.append_tokens(ids[:sys_len]); kept[key] = g
        else:
            g.rewind_to(sys_len)
        assert len(ids) + max_new <= 384
        g.append_tokens(ids[sys_len:])
        limit = max_new
    else:
        p = og.GeneratorParams(model)
        p.set_search_options(do_sample=False, max_length=len(ids) + max_new)
        if guid == 'guided' and schema is not None: p.set_guidance('json_schema', json.dumps(schema))
        g = og.Generator(model, p); g.append_tokens(ids)
        limit = max_new
    out, text = [], ''
    while len(out) < limit and not g.is_done():
        g.generate_next_token()
        tok = int(g.get_next_tokens()[0]); out.append(tok)
        if tok in EOS: break
        text = TOK.decode(out, skip_special_tokens=True)
        end = json_object_end(text)
        if end is not None: text = text[:end]; break
    return text, len(ids), len(out)


import jsonschema
generate([{"role": "user", "content": "hi"}], None, 2)  # untimed warm-up
passes = []
for pas in range(2):
    rows = []
    for i, r in enumerate(reqs):
        t = time.perf_counter(); text, pt, ot = generate(r['messages'], r['json_schema'], r['max_new_tokens']); ms = (time.perf_counter() - t) * 1000
        try:
            obj = json.loads(text); ok_json = True
            try: jsonschema.validate(obj, r['json_schema']); ok_schema = True
            except jsonschema.ValidationError: ok_schema = False
        except Exception: ok_json = ok_schema = False
        rows.append(dict(i=i, ms=ms, text=text, prompt_tokens=pt, output_tokens=ot, json_ok=ok_json, schema_ok=ok_schema))
    passes.append(rows)
    ms = [x['ms'] for x in rows]
    print(f"{model_dir.split('/')[-1]} {guid} {mode} pass{pas+1}: p50 {np.percentile(ms,50):.1f} p99 {np.percentile(ms,99):.1f} mean {statistics.mean(ms):.1f} ms; "
          f"prompt tok mean {statistics.mean(x['prompt_tokens'] for x in rows):.1f} out tok mean {statistics.mean(x['output_tokens'] for x in rows):.1f} (sum {sum(x['output_tokens'] for x in rows)}); "
          f"json ok {sum(x['json_ok'] for x in rows)}/{len(rows)} schema ok {sum(x['schema_ok'] for x in rows)}/{len(rows)}", flush=True)
hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]
print(f'load {load_ms:.0f} ms, VmHWM {int(hwm)//1024} MiB')
json.dump(dict(model=model_dir, guidance=guid, mode=mode, load_ms=load_ms, vmhwm_kb=int(hwm), passes=passes), open(out_path, 'w'), indent=1)
