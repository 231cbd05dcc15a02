//! Logits processing and sampling kernels: temperature → top-k → top-p → draw, and argmax.
