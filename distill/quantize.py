"""int8 CPU serving: a trained classifier exported to ONNX, its linear layers quantized to int8
(dynamic: weights int8 ahead of time, activations per batch) and run by ONNX Runtime.

ONNX Runtime rather than torch: torch's own dynamic quantization (`torch.ao.quantization`) is
deprecated, and torchao's int8 path ran slower than fp32 on this project's CPUs without
`torch.compile`; ONNX Runtime is maintained, needs no compiler at serving time, and its int8 kernels
use the CPU's integer vector units (AVX2/VNNI).
"""

from __future__ import annotations

import inspect
import logging
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

QUANTIZATIONS = ("int8",)


class OnnxInt8Classifier:
    """The part of a sequence classifier that serving uses (`config`, `device`, `eval()`, a forward
    returning `.logits`), backed by an int8 ONNX Runtime session."""

    device = torch.device("cpu")

    def __init__(self, session: Any, config: PretrainedConfig) -> None:
        self.session = session
        self.config = config
        self.input_names = [i.name for i in session.get_inputs()]

    def eval(self) -> OnnxInt8Classifier:
        return self

    def __call__(self, **inputs: torch.Tensor) -> SequenceClassifierOutput:
        feed = {name: inputs[name].cpu().numpy().astype(np.int64) for name in self.input_names}
        (logits,) = self.session.run(["logits"], feed)
        return SequenceClassifierOutput(logits=torch.from_numpy(logits))


def quantize_int8(model: PreTrainedModel, input_names: Sequence[str]) -> OnnxInt8Classifier:
    """`model` (fp32, any device) as an int8 ONNX Runtime classifier for the CPU, taking `input_names`
    (the tokenizer's `model_input_names`) with any batch size and length."""
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = model.float().cpu().eval()
    # The graph's inputs are named by position: keep the forward signature's order.
    names = [name for name in inspect.signature(model.forward).parameters if name in input_names]
    example = {name: torch.ones(2, 8, dtype=torch.long) for name in names}
    axes = {name: {0: "batch", 1: "tokens"} for name in names} | {"logits": {0: "batch"}}
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "model.onnx", Path(tmp) / "model-int8.onnx"
        with warnings.catch_warnings():  # tracing warnings about Python control flow on shapes
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (),
                str(fp32),
                kwargs=example,
                input_names=names,
                output_names=["logits"],
                dynamic_axes=axes,
                dynamo=False,
            )
        # quantize_dynamic logs a suggestion to the root logger on every call; it is not ours to act on.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        session = onnxruntime.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    return OnnxInt8Classifier(session, model.config)
