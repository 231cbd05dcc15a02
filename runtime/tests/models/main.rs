//! Model tests: real tokenizers and real tiny checkpoints from `tests/fixtures/`, checked
//! against Hugging Face transformers' outputs. One test binary, to keep link time down.

mod batching;
mod generation;
mod golden;
mod int8;
mod limits;
mod logprobs;
mod model_dir;
mod tokenizer;
