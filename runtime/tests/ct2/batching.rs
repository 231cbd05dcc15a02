//! How a CTranslate2 replica forms its calls (docs/batcher.md § CTranslate2 replicas):
//! requests arriving one after another, each within the arrival pause of the last, go
//! into one call — a burst is not split into a short call and a queue that waits for it
//! — and `max_batch_wait` bounds how long a call is held for them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::generation::load;
use references::fixtures_dir;
use runtime::batcher::{
    Engine, EngineConfig, Event, LoadedReplica, ReplicaLoader, ReplicaModel, SamplingParams,
    SubmitRequest,
};
use runtime::checkpoint::Checkpoint;
use runtime::ct2::{ComputeType, Ct2Model, Quantization};
use runtime::tokenizer::Tokenizer;

/// Requests in the burst, one every [`SPACING`]: the burst lasts 11 × 15 = 165 ms.
const BURST: usize = 12;
const SPACING: Duration = Duration::from_millis(15);

struct Loaded(Arc<Ct2Model>);

impl ReplicaLoader for Loaded {
    fn load(&self, _running: &[Option<u32>]) -> Result<LoadedReplica, String> {
        Ok(LoadedReplica {
            model: ReplicaModel::Ctranslate2(self.0.clone()),
            device: "cpu".into(),
            gpu: None,
        })
    }
}

/// The most sequences any one call decoded together while `BURST` requests arrived
/// `SPACING` apart, under the given arrival pause and hold bound.
fn widest_call(batch_wait: Duration, max_batch_wait: Duration) -> usize {
    let (_scratch, model) = load("gpt2-tiny", Quantization::Float32, ComputeType::Float32);
    let checkpoint = Checkpoint::open(fixtures_dir().join("gpt2-tiny")).expect("fixture opens");
    let tokenizer = Arc::new(Tokenizer::load(&checkpoint).expect("tokenizer loads"));
    let widest = Arc::new(AtomicUsize::new(0));
    let observed = widest.clone();
    let engine = Engine::start(
        EngineConfig {
            name: "ct2-batching".into(),
            max_batch_size: 16,
            max_queue: 64,
            prefill_token_budget: 4096,
            min_replicas: 1,
            max_replicas: 1,
            scale_up_delay: Duration::MAX,
            scale_down_delay: Duration::MAX,
            scale_up_queue_wait: Duration::MAX,
            batch_wait,
            max_batch_wait,
        },
        tokenizer,
        checkpoint.limits(),
        Arc::new(Loaded(Arc::new(model))),
        // Told, at each decoding step of a call, how many of its sequences still run.
        Arc::new(move |running| {
            observed.fetch_max(running, Ordering::SeqCst);
        }),
        &|_| {},
    )
    .expect("engine starts");
    // Warming up ran one-sequence calls; only the burst counts.
    widest.store(0, Ordering::SeqCst);
    let mut receivers = Vec::new();
    for i in 0..BURST {
        if i > 0 {
            std::thread::sleep(SPACING);
        }
        let request = SubmitRequest {
            prompt: format!("Request number {i} says"),
            sampling: SamplingParams::GREEDY,
            max_new_tokens: 4,
            stop: Vec::new(),
            seed: Some(1),
            timeout: None,
            logprobs: None,
            prompt_logprobs: false,
        };
        receivers.push(engine.submit(request).expect("accepted"));
    }
    for mut events in receivers {
        loop {
            match events.blocking_recv() {
                Some(Event::Finished(_)) => break,
                Some(Event::Failed(error)) => panic!("generation failed: {error}"),
                Some(_) => {}
                None => panic!("no result"),
            }
        }
    }
    widest.load(Ordering::SeqCst)
}

#[test]
fn a_burst_whose_arrivals_never_pause_runs_as_one_call() {
    // Each arrival comes 15 ms after the last, well within the 100 ms pause, though the
    // burst as a whole takes longer than that pause.
    let widest = widest_call(Duration::from_millis(100), Duration::from_secs(10));
    assert_eq!(widest, BURST, "the burst was split over several calls");
}

#[test]
fn max_batch_wait_bounds_how_long_a_call_is_held() {
    // The same burst with a 40 ms bound: no call can hold requests that arrive 165 ms apart.
    let widest = widest_call(Duration::from_millis(100), Duration::from_millis(40));
    assert!(
        (1..BURST).contains(&widest),
        "a call held {widest} of {BURST} requests beyond max_batch_wait"
    );
}
