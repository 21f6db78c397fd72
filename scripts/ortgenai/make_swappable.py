"""Turn a builder model with baked fp32 LoRA MatMuls into one whose LoRA weights are overridable
initializers (zeros by default = base model), and write peft adapters as .onnx_adapter files."""
import json, sys, time
from pathlib import Path
import numpy as np, onnx, onnxruntime as ort
from onnx import numpy_helper, helper, TensorProto
from safetensors.numpy import load_file

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
adapters = sys.argv[3:]  # peft dirs
dst.mkdir(parents=True, exist_ok=True)
m = onnx.load(str(src / 'model.onnx'))
baked = {}
for init in m.graph.initializer:
    if '.lora_A.' in init.name or '.lora_B.' in init.name:
        arr = numpy_helper.to_array(init)
        baked[init.name] = arr.copy()
        init.CopyFrom(numpy_helper.from_array(np.zeros_like(arr), init.name))
        shape = [arr.shape[0], 'lora_r'] if '.lora_A.' in init.name else ['lora_r', arr.shape[1]]
        m.graph.input.append(helper.make_tensor_value_info(init.name, TensorProto.FLOAT, shape))
onnx.save(m, str(dst / 'model.onnx'), save_as_external_data=True, location='model.onnx.data', size_threshold=1024)
for f in ['genai_config.json', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']:
    (dst / f).write_bytes((src / f).read_bytes())
print('lora params', len(baked))

def convert(peft_dir, out_file):
    cfg = json.load(open(Path(peft_dir) / 'adapter_config.json'))
    scaling = cfg['lora_alpha'] / cfg['r']
    w = load_file(str(Path(peft_dir) / 'adapter_model.safetensors'))
    params = {}
    keep = {}  # OrtValue.ortvalue_from_numpy does not copy: keep the arrays alive until export
    for k, v in w.items():
        # base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight
        parts = k.split('.')
        i = parts[parts.index('layers') + 1]; proj = parts[-3]; ab = parts[-2]
        blk = 'attn' if proj in ('q_proj', 'k_proj', 'v_proj', 'o_proj') else 'mlp'
        name = f'model.layers.{i}.{blk}.{proj}.{ab}.MatMul.weight'
        arr = v.astype(np.float32).T.copy()
        if ab == 'lora_B':
            arr = arr * np.float32(scaling)
        keep[name] = np.ascontiguousarray(arr)
        params[name] = ort.OrtValue.ortvalue_from_numpy(keep[name])
    af = ort.AdapterFormat()
    af.set_adapter_version(1); af.set_model_version(1)
    af.set_parameters(params)
    af.export_adapter(str(out_file))
    back = ort.AdapterFormat.read_adapter(str(out_file)).get_parameters()
    assert all(np.array_equal(back[k].numpy(), keep[k]) for k in keep), 'adapter file round trip differs'
    return keep

for j, a in enumerate(adapters):
    t = time.perf_counter()
    p = convert(a, dst / f'adapter{j+1}.onnx_adapter')
    print(a, '->', dst / f'adapter{j+1}.onnx_adapter', f'{(time.perf_counter()-t)*1000:.0f} ms', len(p), 'params')
    if j == 0:
        diff = max(float(np.abs(p[k] - baked[k]).max()) for k in baked)
        print('max |converted - builder-baked| for adapter1:', diff, 'names match:', set(p) == set(baked))
