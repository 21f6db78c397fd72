"""Tables from results/*.json: per pass p50/p99/mean, tokens, validity, agreement with llama.cpp, cost model."""
import json, glob, statistics
import numpy as np
R = '/tmp/ortgenai/results'
reqs = json.load(open('/tmp/ortgenai/requests.json'))
files = [('llama.cpp', 'GBNF grammar (project default)', 'llamacpp_grammar_1.json'), ('llama.cpp', 'GBNF grammar, rerun at end', 'llamacpp_grammar_2.json'),
         ('llama.cpp', 'no grammar', 'llamacpp_free.json'),
         ('ORT GenAI int4', 'guidance, fresh generator', 'ort_int4_guided_fresh.json'), ('ORT GenAI int4', 'no guidance, fresh generator', 'ort_int4_free_fresh.json'),
         ('ORT GenAI int4', 'guidance, rewind_to system prefix', 'ort_int4_guided_rewind.json'),
         ('ORT GenAI int8', 'guidance, fresh generator', 'ort_int8_guided_fresh.json'), ('ORT GenAI int8', 'guidance, rewind_to system prefix', 'ort_int8_guided_rewind.json'),
         ('ORT GenAI fp32', 'guidance, fresh generator', 'ort_fp32_guided_fresh.json'), ('ORT GenAI fp32', 'guidance, rewind_to system prefix', 'ort_fp32_guided_rewind.json')]
ref = json.load(open(f'{R}/llamacpp_grammar_1.json'))['passes'][1]
# cold = first occurrence of each system message in pass 1
seen, cold = set(), []
for i, r in enumerate(reqs):
    s = r['messages'][0]['content']
    if s not in seen: seen.add(s); cold.append(i)
print('| engine | variant | pass | p50 ms | p99 ms | mean ms | cold-call mean ms (pass 1 only) | prompt tok (mean) | output tok (mean / sum) | valid JSON+schema /40 | same text as llama.cpp grammar /40 | peak RSS MiB |')
print('|---|---|---|---|---|---|---|---|---|---|---|---|')
fits = []
for eng, var, f in files:
    d = json.load(open(f'{R}/{f}'))
    for k, rows in enumerate(d['passes']):
        ms = [x['ms'] for x in rows]
        coldm = f"{statistics.mean(rows[i]['ms'] for i in cold):.0f}" if k == 0 else ''
        same = sum(a['text'] == b['text'] for a, b in zip(rows, ref))
        print(f"| {eng} | {var} | {k+1} | {np.percentile(ms,50):.0f} | {np.percentile(ms,99):.0f} | {statistics.mean(ms):.0f} | {coldm} | "
              f"{statistics.mean(x['prompt_tokens'] for x in rows):.1f} | {statistics.mean(x['output_tokens'] for x in rows):.1f} / {sum(x['output_tokens'] for x in rows)} | "
              f"{sum(x['schema_ok'] for x in rows)} | {same} | {d['vmhwm_kb']//1024 if k == 1 else ''} |")
    rows = d['passes'][1]
    A = np.vstack([np.ones(len(rows)), [x['output_tokens'] for x in rows]]).T
    (a, b), *_ = np.linalg.lstsq(A, np.array([x['ms'] for x in rows]), rcond=None)
    fits.append(f'| {eng} | {var} | {a:.0f} | {b:.1f} |')
print('\nLeast-squares fit of pass-2 latency: ms = a + b * output_tokens\n\n| engine | variant | a (ms: prompt + fixed cost) | b (ms per output token) |\n|---|---|---|---|')
print('\n'.join(fits))
print('\nInvalid outputs:')
for eng, var, f in files:
    if 'free' in f: continue
    rows = json.load(open(f'{R}/{f}'))['passes'][1]
    bad = [(x['i'], x['output_tokens'], x['text'][:70]) for x in rows if not x['schema_ok']]
    if bad: print(f'  {eng} {var}: {bad}')
# apples to apples: requests where ORT and llama.cpp emitted the same number of output tokens
print('\nPass-2 latency on requests with identical output text to llama.cpp (grammar):')
for eng, var, f in files[3:]:
    if 'free' in f: continue
    rows = json.load(open(f'{R}/{f}'))['passes'][1]
    idx = [i for i in range(40) if rows[i]['text'] == ref[i]['text']]
    print(f'  {eng} {var}: n={len(idx)}  mean ORT {statistics.mean(rows[i]["ms"] for i in idx):.0f} ms vs llama.cpp {statistics.mean(ref[i]["ms"] for i in idx):.0f} ms; '
          f'p50 {np.percentile([rows[i]["ms"] for i in idx],50):.0f} vs {np.percentile([ref[i]["ms"] for i in idx],50):.0f}')
print('\nSame parsed JSON value as llama.cpp (grammar), pass 2:')
def parse(t):
    try: return json.loads(t)
    except Exception: return None
for eng, var, f in files[2:]:
    rows = json.load(open(f'{R}/{f}'))['passes'][1]
    print(f'  {eng} {var}: {sum(parse(a["text"]) is not None and parse(a["text"]) == parse(b["text"]) for a, b in zip(rows, ref))}/40')
