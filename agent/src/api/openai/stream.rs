//! Streaming several choices as one OpenAI event stream: the choices' steps interleave as
//! they come, each chunk naming its choice by `index`; after the last choice finished, an
//! optional usage chunk, then `data: [DONE]`. A failure ends the stream with OpenAI's error
//! object (the other choices are dropped, which cancels them). A client that disconnects
//! drops the stream, which cancels every choice.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, SelectAll, Stream, StreamExt};
use runtime::batcher::{Completion, TokenLogprob};
use serde_json::Value;

use crate::api::generate::{Generation, Step};
use crate::api::native::SSE_KEEP_ALIVE;
use crate::api::openai::error;
use crate::api::request_log::RequestLog;

/// One step of one choice.
pub(crate) enum ChoiceStep {
    Token {
        index: usize,
        id: u32,
        text: String,
        logprob: Option<TokenLogprob>,
    },
    Finished {
        index: usize,
        completion: Completion,
    },
}

/// Renders the usage chunk from the totals (`stream_options.include_usage`).
pub(crate) type UsageChunk = Box<dyn FnOnce(Usage) -> Value + Send>;

/// Token counts over all choices.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
}

/// Streams `generations` (choice `i` is `generations[i]`): `opening` chunks first, then
/// `render` of each step as it comes, then `usage` of the totals when given, then `[DONE]`.
/// Each prompt has `per_prompt` choices; its prompt tokens are counted once.
pub(crate) fn sse(
    generations: Vec<Generation>,
    per_prompt: usize,
    opening: Vec<Value>,
    render: impl FnMut(ChoiceStep) -> Value + Send + 'static,
    usage: Option<UsageChunk>,
    log: RequestLog,
) -> Response {
    let steps = stream::select_all(generations.into_iter().enumerate().map(
        |(index, generation)| -> Steps {
            Box::pin(generation.into_stream().map(move |step| (index, step)))
        },
    ));
    let state = Streaming {
        steps,
        pending: opening.iter().map(data).collect(),
        render: Box::new(render),
        usage,
        totals: Usage::default(),
        per_prompt: per_prompt.max(1),
        log,
        ended: false,
    };
    let events = stream::unfold(state, |mut state| async move {
        let event = state.next_event().await?;
        Some((Ok::<Event, Infallible>(event), state))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(SSE_KEEP_ALIVE).text("keep-alive"))
        .into_response()
}

type Steps = Pin<Box<dyn Stream<Item = (usize, Step)> + Send>>;

struct Streaming {
    steps: SelectAll<Steps>,
    /// Events to send before reading further steps (the opening, then the tail).
    pending: VecDeque<Event>,
    render: Box<dyn FnMut(ChoiceStep) -> Value + Send>,
    usage: Option<UsageChunk>,
    totals: Usage,
    per_prompt: usize,
    log: RequestLog,
    /// Every choice finished, or one failed: nothing more is read.
    ended: bool,
}

impl Streaming {
    async fn next_event(&mut self) -> Option<Event> {
        if let Some(event) = self.pending.pop_front() {
            return Some(event);
        }
        if self.ended {
            return None;
        }
        match self.steps.next().await {
            Some((index, Step::Token { id, text, logprob })) => {
                Some(data(&(self.render)(ChoiceStep::Token {
                    index,
                    id,
                    text,
                    logprob,
                })))
            }
            Some((index, Step::Finished(completion))) => {
                if index % self.per_prompt == 0 {
                    self.totals.prompt_tokens += completion.prompt_tokens;
                }
                self.totals.completion_tokens += completion.tokens.len();
                Some(data(&(self.render)(ChoiceStep::Finished {
                    index,
                    completion,
                })))
            }
            Some((_, Step::Failed(failure))) => {
                self.ended = true;
                Some(data(&error::body(&failure)))
            }
            None => {
                self.ended = true;
                let totals = self.totals;
                self.log
                    .tokens(totals.prompt_tokens, totals.completion_tokens);
                tracing::info!(
                    prompt_tokens = totals.prompt_tokens,
                    completion_tokens = totals.completion_tokens,
                    "stream finished"
                );
                if let Some(usage) = self.usage.take() {
                    self.pending.push_back(data(&usage(totals)));
                }
                self.pending.push_back(Event::default().data("[DONE]"));
                self.pending.pop_front()
            }
        }
    }
}

fn data(value: &Value) -> Event {
    Event::default().data(value.to_string())
}
