"""First-step logits of each ONNX variant vs the torch fp32 model (= the dequantized Q4_1 weights), 10 prompts."""
import json, sys, numpy as np, onnxruntime as ort, torch
from transformers import AutoTokenizer, AutoModelForCausalLM
B = '/work/main/.odia/cache/smollm2-135m-instruct-0.1.2'
TOK = AutoTokenizer.from_pretrained(B)
reqs = json.load(open('/tmp/ortgenai/requests.json'))[:40:4]
prompts = [TOK(TOK.apply_chat_template(r['messages'], add_generation_prompt=True, tokenize=False), add_special_tokens=False)['input_ids'] for r in reqs]
with torch.no_grad():
    m = AutoModelForCausalLM.from_pretrained(B, dtype=torch.float32)
    refs = [m(torch.tensor([ids])).logits[0, -1].numpy() for ids in prompts]
so = ort.SessionOptions(); so.intra_op_num_threads = 2; so.log_severity_level = 3
for d in sys.argv[1:]:
    s = ort.InferenceSession(f'{d}/model.onnx', so, providers=['CPUExecutionProvider'])
    diffs, same = [], 0
    for ids, ref in zip(prompts, refs):
        L = len(ids); feed = {'input_ids': np.array([ids], np.int64), 'attention_mask': np.ones((1, L), np.int64)}
        for i in range(30):
            for kv in ('key', 'value'): feed[f'past_key_values.{i}.{kv}'] = np.zeros((1, 3, 0, 64), np.float32)
        v = s.run(['logits'], feed)[0][0, -1]
        diffs.append(float(np.abs(v - ref).max())); same += int(v.argmax()) == int(ref.argmax())
    print(f'{d}: max|logit diff| vs torch fp32 median {np.median(diffs):.3f} max {max(diffs):.3f}; argmax agrees {same}/{len(prompts)}')
import os
if os.path.exists('/tmp/ortgenai/llamacpp_logits.npy'):
    lc = np.load('/tmp/ortgenai/llamacpp_logits.npy')
    diffs = [float(np.abs(a - b).max()) for a, b in zip(lc, refs)]
    print(f'llama.cpp Q4_1: max|logit diff| vs torch fp32 median {np.median(diffs):.3f} max {max(diffs):.3f}; argmax agrees {sum(int(a.argmax()) == int(b.argmax()) for a, b in zip(lc, refs))}/{len(refs)}')
