"""A random all-linear peft LoRA (like random_lora_adapter, but target_modules='all-linear')."""
import sys, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
seed, out = int(sys.argv[1]), sys.argv[2]
torch.manual_seed(seed)
m = AutoModelForCausalLM.from_pretrained('/work/main/.odia/cache/smollm2-135m-instruct-0.1.2', dtype=torch.float32)
pm = get_peft_model(m, LoraConfig(r=8, lora_alpha=16, target_modules='all-linear', init_lora_weights=False, task_type='CAUSAL_LM'))
pm.peft_config['default'].base_model_name_or_path = 'smollm2-135m-instruct-0.1.2'
pm.save_pretrained(out, save_embedding_layers=False)
print(pm.peft_config['default'].target_modules)
