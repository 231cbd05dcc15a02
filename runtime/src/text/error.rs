use thiserror::Error;

#[derive(Debug, Error)]
pub enum TextError {
    #[error("decoding {token_count} token ids (first {first_id:?}) failed: {message}")]
    Decode {
        token_count: usize,
        first_id: Option<u32>,
        message: String,
    },
}
