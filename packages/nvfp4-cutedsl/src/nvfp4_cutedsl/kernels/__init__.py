"""CuTe DSL kernels, one module per architecture. Nothing here is imported before a compile."""
