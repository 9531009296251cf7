"""Pure numba kernels.

Each kernel takes its state as arrays, updates them in place and writes its
output into a preallocated array; no kernel allocates per sample or keeps
hidden state.  Stage classes in :mod:`mediacore.stages` own the state and
call these.  Every kernel loops over a leading channel (= stream) axis, so
one call serves a batch of independent streams.
"""
