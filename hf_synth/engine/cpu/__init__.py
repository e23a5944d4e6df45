"""The CPU runtime of the continuous batcher: what the CPU is, how it is used, and the compiled kernels.

* :mod:`.info`: the CPU model, its instruction sets and what torch, oneDNN, MKL and numba really use;
* :mod:`.tuning`: which method each projection shape runs fastest with here (measured once, cached);
* :mod:`.onednn`: oneDNN's linear and its packed weight layout, where this torch build has them;
* :mod:`.memory`: the allocator setting and the memory figures the batcher sizes itself by;
* :mod:`.threads`: the thread governor (fewer threads while other processes keep cores busy);
* :mod:`.decode_attention` and :mod:`.fused`: the numba kernels of a float32 decode step.

Nothing here is imported until the continuous batcher runs on a CPU (numba is imported by the kernels
only).
"""
