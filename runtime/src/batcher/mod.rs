//! Continuous (iteration-level) batching: a bounded queue per deployment, one scheduler
//! thread per replica, and a supervisor that scales replicas with queue pressure.
//! Design notes: `docs/batcher.md`.

#[cfg(feature = "ctranslate2")]
mod ct2_batcher;
mod engine;
mod queue;
mod replica;
mod request;
mod scheduler;
mod sequence;
mod warm_up;

pub use engine::{
    Engine, EngineConfig, EngineError, EngineStats, LoadedReplica, ReplicaLoader, ReplicaStats,
    RequestOption, ScalingEvent, StartStep, SubmitError, SubmitRequest,
};
pub use kernels::{SamplingParams, TokenLogprob, MAX_TOP_LOGPROBS};
pub use queue::{PushError, RequestQueue};
pub use replica::{LogprobSupport, ReplicaModel, StepObserver};
pub use request::{Completion, Event, EventReceiver, FailureCode, GenerateError, PromptLogprobs};
