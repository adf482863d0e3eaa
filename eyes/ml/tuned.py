"""The fine-tuned top of the network, served with onnxruntime from stored activations. No torch.

A deep training run (eyes.ml.finetune) exports the tuned part of the backbone as ONNX: input
`activation` (N, C, H, W), the input of the first tuned block that the backbone stored for each
photo, output `embedding` (N, 1280), which the run's head turns into tags. Re-tagging every photo
after a promotion therefore runs only this part, never the whole network on the originals.
"""

from __future__ import annotations

import numpy as np

from eyes.ml.embedder import default_threads
from eyes.ml.files import ACTIVATION_NAME, OUTPUT_NAME

# Measured on the 2-core CPU, two threads, the top tuned from the conv head (7x7x320 in): 0.28 ms
# per photo one at a time, 0.25 in runs of 16, 0.245 of 64, 0.24 of 256. 64 is as fast as any
# within the noise, and bounds the float32 copy and onnxruntime's memory (5 MB a run).
DEFAULT_BATCH_SIZE = 64


class TunedTop:
    """Turns stored activations into embeddings with onnxruntime on the CPU.

    One instance is safe to share between threads: onnxruntime allows concurrent `run` calls on
    one session.
    """

    def __init__(self, onnx_bytes: bytes, threads: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE):
        import onnxruntime as ort  # imported here so that importing this module stays cheap

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle threads must not spin: they would fight numpy and the web server for the cores
        # (see eyes.ml.embedder).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        (inp,) = self._session.get_inputs()
        outputs = [o.name for o in self._session.get_outputs()]
        if inp.name != ACTIVATION_NAME or OUTPUT_NAME not in outputs:
            raise ValueError(
                f"a tuned top takes '{ACTIVATION_NAME}' and gives '{OUTPUT_NAME}'; "
                f"this model takes {inp.name!r} and gives {outputs}"
            )
        self.activation_shape = tuple(int(d) for d in inp.shape[1:])
        self.dim = int(self._session.get_outputs()[outputs.index(OUTPUT_NAME)].shape[1])
        self.batch_size = batch_size

    def embed(self, activations: np.ndarray) -> np.ndarray:
        """(N, C, H, W) stored activations (float16 or float32) -> (N, 1280) float32 embeddings,
        `batch_size` photos per onnxruntime run."""
        if activations.ndim != 4 or activations.shape[1:] != self.activation_shape:
            raise ValueError(
                f"expected activations of shape (N, {', '.join(map(str, self.activation_shape))}), "
                f"got {activations.shape}"
            )
        out = np.empty((len(activations), self.dim), dtype=np.float32)
        for start in range(0, len(activations), self.batch_size):
            # Cast one chunk at a time: a float32 copy of every stored activation could be large.
            chunk = np.ascontiguousarray(activations[start : start + self.batch_size], dtype=np.float32)
            out[start : start + len(chunk)] = self._session.run([OUTPUT_NAME], {ACTIVATION_NAME: chunk})[0]
        return out
