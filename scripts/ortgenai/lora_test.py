"""LoRA through og.Adapters on a swappable int4 model.
usage: lora_test.py SWAP_DIR BAKED_DIR   (SWAP_DIR holds adapter1/2.onnx_adapter; BAKED_DIR = builder output with adapter1 baked in)"""
import json, statistics, sys, time
import numpy as np, onnxruntime_genai as og
from transformers import AutoTokenizer
swap_dir, baked_dir = sys.argv[1:3]
TOK = AutoTokenizer.from_pretrained('/work/main/.odia/cache/smollm2-135m-instruct-0.1.2')
reqs = json.load(open('/tmp/ortgenai/requests.json'))
OVL = json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": 2, "inter_op_num_threads": 1}}}})

def load(path):
    t = time.perf_counter(); c = og.Config(path); c.overlay(OVL); m = og.Model(c); return m, (time.perf_counter() - t) * 1000

def ids_of(r):
    return TOK(TOK.apply_chat_template(r['messages'], add_generation_prompt=True, tokenize=False), add_special_tokens=False)['input_ids']

def run(model, r, adapters=None, name=None, guided=True, fixed=None):
    """fixed=N: exactly N new tokens, no stop (for timing); else stop at '}' / EOS / max_new_tokens."""
    ids = ids_of(r); n = fixed or r['max_new_tokens']
    t = time.perf_counter()
    p = og.GeneratorParams(model)
    p.set_search_options(do_sample=False, max_length=len(ids) + n)
    if guided: p.set_guidance('json_schema', json.dumps(r['json_schema']))
    g = og.Generator(model, p)
    t_set = time.perf_counter()
    if adapters is not None and name is not None: g.set_active_adapter(adapters, name)
    t_set = (time.perf_counter() - t_set) * 1000
    g.append_tokens(ids)
    out, logits0 = [], None
    while len(out) < n and not g.is_done():
        if logits0 is None: logits0 = g.get_logits().copy()
        g.generate_next_token(); out.append(int(g.get_next_tokens()[0]))
        if fixed is None and (out[-1] in (0, 2) or TOK.decode(out).rstrip().endswith('}')): break
    return TOK.decode(out), logits0, t_set, (time.perf_counter() - t) * 1000

swap, ms_swap = load(swap_dir); baked, ms_baked = load(baked_dir); base, ms_base = load('/tmp/ortgenai/models/int4')
print(f'model load ms: swap {ms_swap:.0f} baked {ms_baked:.0f} base {ms_base:.0f}')
ad = og.Adapters(swap)
for n in ('a1', 'a2'):
    t = time.perf_counter(); ad.load(f'{swap_dir}/adapter{n[1]}.onnx_adapter', n); print(f'Adapters.load {n}: {(time.perf_counter()-t)*1000:.2f} ms')
same = 0
for i in [1, 3, 5, 7]:
    r = reqs[i]; res = {}
    for label, (m, a, n) in {'base': (base, None, None), 'swap-none': (swap, None, None), 'swap-a1': (swap, ad, 'a1'),
                             'baked-a1': (baked, None, None), 'swap-a2': (swap, ad, 'a2')}.items():
        txt, lg, ts, _ = run(m, r, a, n); res[label] = (txt, lg)
        print(f'req {i} {label:9s} set_active_adapter {ts:.3f} ms  {txt!r}')
    d = lambda x, y: float(np.abs(res[x][1] - res[y][1]).max())
    print(f'req {i} first-step max|logit diff|: swap-a1 vs baked-a1 {d("swap-a1","baked-a1"):.3f}; swap-none vs base {d("swap-none","base"):.3f}; '
          f'swap-a1 vs swap-none {d("swap-a1","swap-none"):.3f}; a2 vs a1 {d("swap-a2","swap-a1"):.3f}; text swap-a1==baked-a1: {res["swap-a1"][0]==res["baked-a1"][0]}')
# timing: prompt of request 1 + exactly 16 new tokens, unguided, 12 reps (first dropped)
def bench(m, seq):
    ms = [run(m, reqs[1], ad if m is swap else None, n, guided=False, fixed=16)[3] for n in seq]
    return statistics.median(ms[1:])
print('timing (req 1 prompt + 16 tokens, unguided, median of 11):')
print(f'  base int4 model        {bench(base, [None]*12):.1f} ms')
print(f'  swap model, no adapter {bench(swap, [None]*12):.1f} ms')
print(f'  swap model, a1 always  {bench(swap, ["a1"]*12):.1f} ms')
print(f'  swap model, a1/a2 alternating per request {bench(swap, ["a1","a2"]*6):.1f} ms')
print(f'  baked-a1 model         {bench(baked, [None]*12):.1f} ms')
ad.unload('a2'); print('unload a2 ok')
print('VmHWM', [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1], 'kB')
