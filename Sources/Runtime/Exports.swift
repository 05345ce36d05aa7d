// `Tensor` and `Storage` live in their own module, Tensors, below Runtime, so
// that ImageIO reads and writes tensors (npy, images) without depending on the
// executor. Whatever imports Runtime sees them as before, layer plugins included.
@_exported import Tensors
