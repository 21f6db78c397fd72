"""llama.cpp baseline (the project's LlamaCppGenerator) on requests.json; run from /work/main with its venv.
usage: llamacpp_bench.py {grammar,free} OUT_JSON [N_REQUESTS]"""
import asyncio, json, statistics, sys, time
from pathlib import Path
import numpy as np, jsonschema
from odia_stream.generation.llamacpp_generator import LlamaCppGenerator
from odia_stream.generation.base_model import smollm2_gguf_path
from odia_stream.generation.protocol import GenerationRequest

variant, out_path = sys.argv[1:3]
n_req = int(sys.argv[3]) if len(sys.argv) > 3 else 40

async def main():
    t0 = time.perf_counter()
    gen = LlamaCppGenerator(smollm2_gguf_path(), Path('/work/main/.odia/cache/smollm2-135m-instruct-0.1.2'),
                            adapter_cache=Path('/tmp/ortgenai/lora-gguf'), max_new_tokens=96, threads=2, grammar=(variant == 'grammar'))
    load_ms = (time.perf_counter() - t0) * 1000
    reqs = json.load(open('/tmp/ortgenai/requests.json'))[:n_req]
    await gen.generate([GenerationRequest(messages=[{"role": "user", "content": "hi"}], max_new_tokens=2)])  # untimed warm-up
    passes = []
    for pas in range(2):
        rows = []
        for i, r in enumerate(reqs):
            g = GenerationRequest(messages=r['messages'], json_schema=r['json_schema'], max_new_tokens=r['max_new_tokens'])
            t = time.perf_counter(); (res,) = await gen.generate([g]); ms = (time.perf_counter() - t) * 1000
            try:
                obj = json.loads(res.text); ok_json = True
                try: jsonschema.validate(obj, r['json_schema']); ok_schema = True
                except jsonschema.ValidationError: ok_schema = False
            except Exception: ok_json = ok_schema = False
            rows.append(dict(i=i, ms=ms, text=res.text, prompt_tokens=res.prompt_tokens, output_tokens=res.output_tokens, json_ok=ok_json, schema_ok=ok_schema))
        passes.append(rows)
        ms = [x['ms'] for x in rows]
        print(f"llamacpp {variant} pass{pas+1}: p50 {np.percentile(ms,50):.1f} p99 {np.percentile(ms,99):.1f} mean {statistics.mean(ms):.1f} ms; "
              f"prompt tok mean {statistics.mean(x['prompt_tokens'] for x in rows):.1f} out tok mean {statistics.mean(x['output_tokens'] for x in rows):.1f} (sum {sum(x['output_tokens'] for x in rows)}); "
              f"json ok {sum(x['json_ok'] for x in rows)}/{len(rows)} schema ok {sum(x['schema_ok'] for x in rows)}/{len(rows)}", flush=True)
    print('prefix state hits/misses', gen.prefix_states.hits, gen.prefix_states.misses)
    await gen.aclose()
    hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]
    print(f'load {load_ms:.0f} ms, VmHWM {int(hwm)//1024} MiB')
    json.dump(dict(engine='llamacpp', variant=variant, load_ms=load_ms, vmhwm_kb=int(hwm), passes=passes), open(out_path, 'w'), indent=1)

asyncio.run(main())
